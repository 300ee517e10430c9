//! Router-level tests with `tower::ServiceExt::oneshot` (no socket).

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ocop_shared::wire::{ErrorBody, ErrorCode, MAX_BODY_BYTES, paths};
use ocop_sync_server::http::route_table;
use ocop_sync_server::{Options, open, router};
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let state = open(
        dir.path(),
        Options {
            admin_password: Some("pw-for-router-tests".into()),
            public_url: None,
        },
    )
    .await
    .unwrap();
    (dir, router(state))
}

async fn body_of(r: axum::response::Response) -> (StatusCode, Vec<u8>) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

fn error_of(bytes: &[u8]) -> ErrorBody {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not the error shape ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

#[tokio::test]
async fn every_route_is_served_and_documented_in_openapi() {
    let (_d, app) = app().await;
    let doc: serde_json::Value =
        serde_json::from_str(ocop_sync_server::http::OPENAPI_JSON).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for (method, path) in route_table() {
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} is missing from openapi.json"
        );
        let concrete = path
            .replace("{sha256}", &"a".repeat(64))
            .replace("{id}/{version}", "x/1")
            .replace("{id}", "0190a1b2-0000-7000-8000-000000000000");
        let req = Request::builder()
            .method(method)
            .uri(&concrete)
            .body(Body::empty())
            .unwrap();
        let status = app.clone().oneshot(req).await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{method} {path} not routed");
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} not routed"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        route_table().len(),
        "openapi documents exactly the routes"
    );
    let (status, body) = body_of(
        app.oneshot(Request::get(paths::OPENAPI).body(Body::empty()).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, ocop_sync_server::http::OPENAPI_JSON.as_bytes());
}

#[tokio::test]
async fn malformed_json_is_400_in_the_one_error_shape() {
    let (_d, app) = app().await;
    let req = Request::post(paths::LOGIN)
        .header("content-type", "application/json")
        .body(Body::from("{\"username\": 5"))
        .unwrap();
    let (status, body) = body_of(app.clone().oneshot(req).await.unwrap()).await;
    assert_eq!(status, 400);
    let e = error_of(&body);
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(
        e.message.starts_with("malformed json at username"),
        "{}",
        e.message
    );
    assert_eq!(e.message, e.message.to_lowercase());
}

#[tokio::test]
async fn oversized_body_is_413_and_the_message_states_the_limit() {
    let (_d, app) = app().await;
    let big = vec![b' '; MAX_BODY_BYTES + 10];
    let req = Request::post(paths::LOGIN)
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, body) = body_of(app.oneshot(req).await.unwrap()).await;
    assert_eq!(status, 413);
    let e = error_of(&body);
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    assert!(
        e.message.contains(&MAX_BODY_BYTES.to_string()),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn unknown_path_is_404_and_missing_token_is_401_in_the_one_error_shape() {
    let (_d, app) = app().await;
    let (status, body) = body_of(
        app.clone()
            .oneshot(Request::get("/api/v1/nope").body(Body::empty()).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error_of(&body).code, ErrorCode::NotFound);
    let (status, body) = body_of(
        app.oneshot(Request::get(paths::PULL).body(Body::empty()).unwrap())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let e = error_of(&body);
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert!(!e.message.contains("discard"));
}

#[tokio::test]
async fn responses_are_gzipped_when_accepted_and_gzip_bodies_are_read() {
    let (_d, app) = app().await;
    let req = Request::get(paths::OPENAPI)
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let (_, zipped) = body_of(resp).await;
    assert!(zipped.len() < ocop_sync_server::http::OPENAPI_JSON.len());

    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"{"username":"admin","password":"wrong","device_name":"x"}"#)
        .unwrap();
    let req = Request::post(paths::LOGIN)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(Body::from(enc.finish().unwrap()))
        .unwrap();
    let (status, body) = body_of(app.oneshot(req).await.unwrap()).await;
    assert_eq!(
        status,
        401,
        "gzip body decoded and the password checked: {}",
        String::from_utf8_lossy(&body)
    );
}

/// A short answer (a push's, an error) goes as it is even when the client
/// accepts compression: making and reading the stream costs more than the
/// bytes it saves (see `COMPRESS_ABOVE`); a long one is compressed.
#[tokio::test]
async fn short_answers_go_uncompressed_and_long_ones_compressed() {
    let (_d, app) = app().await;
    let short = Request::post(paths::LOGIN)
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip, zstd")
        .body(Body::from(
            r#"{"username":"admin","password":"wrong","device_name":"x"}"#,
        ))
        .unwrap();
    let resp = app.clone().oneshot(short).await.unwrap();
    assert!(resp.headers().get("content-encoding").is_none());
    let (status, body) = body_of(resp).await;
    assert_eq!(status, 401);
    assert!(body.len() > 32 && body.len() < ocop_sync_server::http::COMPRESS_ABOVE as usize);
    assert_eq!(error_of(&body).code, ErrorCode::Unauthorized);
    assert!(
        ocop_sync_server::http::OPENAPI_JSON.len()
            > ocop_sync_server::http::COMPRESS_ABOVE as usize
    );
    let long = Request::get(paths::OPENAPI)
        .header("accept-encoding", "gzip, zstd")
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(long).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "zstd");
}

/// The app's client accepts both; zstd is preferred (cheaper to make and to
/// read for a pull page of a thousand sheets) and round-trips to the same JSON.
#[tokio::test]
async fn zstd_is_preferred_when_accepted_and_zstd_bodies_are_read() {
    let (_d, app) = app().await;
    let req = Request::get(paths::OPENAPI)
        .header("accept-encoding", "gzip, zstd")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "zstd");
    let (_, packed) = body_of(resp).await;
    assert!(packed.len() < ocop_sync_server::http::OPENAPI_JSON.len());
    assert_eq!(
        zstd::decode_all(&packed[..]).unwrap(),
        ocop_sync_server::http::OPENAPI_JSON.as_bytes()
    );

    let body = zstd::encode_all(
        &br#"{"username":"admin","password":"wrong","device_name":"x"}"#[..],
        1,
    )
    .unwrap();
    let req = Request::post(paths::LOGIN)
        .header("content-type", "application/json")
        .header("content-encoding", "zstd")
        .body(Body::from(body))
        .unwrap();
    let (status, body) = body_of(app.oneshot(req).await.unwrap()).await;
    assert_eq!(
        status,
        401,
        "zstd body decoded and the password checked: {}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn rubric_import_reports_every_issue_and_published_versions_are_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let state = open(
        dir.path(),
        Options {
            admin_password: Some("pw".into()),
            public_url: None,
        },
    )
    .await
    .unwrap();
    let store = state.store.clone();
    let app = router(state);
    let login = Request::post(paths::LOGIN)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"username":"admin","password":"pw","device_name":"t"}"#,
        ))
        .unwrap();
    let (_, body) = body_of(app.clone().oneshot(login).await.unwrap()).await;
    let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |body: String| {
        Request::post(paths::ADMIN_RUBRICS)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body))
            .unwrap()
    };

    let bundled = ocop_shared::bundled::scoreable().remove(0);
    // Invalid: two problems, both listed.
    let mut bad: serde_json::Value = serde_json::to_value(&bundled).unwrap();
    bad["id"] = "Bad Id".into();
    bad["parts"][0]["cap"] = 7.into();
    let (status, body) = body_of(app.clone().oneshot(post(bad.to_string())).await.unwrap()).await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let e = error_of(&body);
    let issues = e.details.unwrap()["issues"].as_array().unwrap().len();
    assert!(issues >= 2, "every issue listed: {}", e.message);

    // Same id+version as a published bundled rubric but different body → 409.
    let mut changed = serde_json::to_value(&bundled).unwrap();
    changed["title_vi"] = "đã sửa".into();
    let (status, _) = body_of(
        app.clone()
            .oneshot(post(changed.to_string()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    // Identical body → fine, reported as published.
    let (status, body) = body_of(
        app.clone()
            .oneshot(post(serde_json::to_string(&bundled).unwrap()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["published"],
        true
    );
    // A new version imports unpublished, then publishes.
    changed["version"] = (bundled.version + 1).into();
    let (status, _) = body_of(
        app.clone()
            .oneshot(post(changed.to_string()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let publish = Request::post(format!(
        "{}/{}/{}/publish",
        paths::ADMIN_RUBRICS,
        bundled.id,
        bundled.version + 1
    ))
    .header("authorization", format!("Bearer {token}"))
    .body(Body::empty())
    .unwrap();
    let (status, _) = body_of(app.oneshot(publish).await.unwrap()).await;
    assert_eq!(status, 200);
    let sys = ocop_sync_server::Principal::system();
    let list = store.list_rubrics(&sys).unwrap();
    assert!(
        list.iter()
            .any(|r| r.version == bundled.version + 1 && r.published)
    );
}

#[test]
fn every_json_example_in_the_protocol_doc_decodes_as_a_wire_type() {
    use ocop_shared::wire::{LoginRequest, PullResponse, PushRequest, PushResponse};
    let doc = include_str!("../../docs/sync-protocol.md");
    let mut blocks = 0;
    for (i, part) in doc.split("```json").skip(1).enumerate() {
        let text = part.split("```").next().unwrap();
        let ok = serde_json::from_str::<ErrorBody>(text).is_ok()
            || serde_json::from_str::<LoginRequest>(text).is_ok()
            || serde_json::from_str::<PushRequest>(text).is_ok()
            || serde_json::from_str::<PushResponse>(text).is_ok()
            || serde_json::from_str::<PullResponse>(text).is_ok();
        assert!(ok, "json example {i} is no wire type:\n{text}");
        blocks += 1;
    }
    assert!(blocks >= 5, "only {blocks} json examples found");
}

/// A request the layers refuse before any handler runs.
#[derive(Debug, Clone, Copy)]
enum Refused {
    WrongMethod,
    BrotliBody,
    LongUri,
}

fn refused_request(r: Refused) -> Request<Body> {
    match r {
        Refused::WrongMethod => Request::delete(paths::PUSH).body(Body::empty()).unwrap(),
        Refused::BrotliBody => Request::post(paths::LOGIN)
            .header("content-type", "application/json")
            .header("content-encoding", "br")
            .body(Body::from(vec![0x1b, 0x03, 0x00, 0xf8]))
            .unwrap(),
        Refused::LongUri => Request::get(format!(
            "{}?cursor=0&pad={}",
            paths::PULL,
            "a".repeat(ocop_sync_server::error_shape::MAX_URI_BYTES)
        ))
        .body(Body::empty())
        .unwrap(),
    }
}

#[rstest::rstest]
#[case::wrong_method_is_405(Refused::WrongMethod, 405, ErrorCode::MethodNotAllowed, &["delete", "/api/v1/sync/push", "POST"])]
#[case::unsupported_content_encoding_is_415(Refused::BrotliBody, 415, ErrorCode::UnsupportedMediaType, &["content-encoding br", "gzip", "zstd"])]
#[case::uri_too_long_is_414(Refused::LongUri, 414, ErrorCode::UriTooLong, &["8192"])]
#[tokio::test]
async fn every_failure_has_the_code_and_message_body(
    #[case] r: Refused,
    #[case] status: u16,
    #[case] code: ErrorCode,
    #[case] says: &[&str],
) {
    let (_d, app) = app().await;
    let resp = app.oneshot(refused_request(r)).await.unwrap();
    let allow = resp.headers().get("allow").cloned();
    assert_eq!(resp.headers()["content-type"], "application/json", "{r:?}");
    let (got, body) = body_of(resp).await;
    assert_eq!(got.as_u16(), status, "{}", String::from_utf8_lossy(&body));
    let e = error_of(&body);
    assert_eq!(e.code, code);
    assert_eq!(
        e.code.http_status(),
        status,
        "the code's status is the one sent"
    );
    for s in says {
        assert!(
            e.message.to_lowercase().contains(&s.to_lowercase()),
            "{:?} does not say {s:?}",
            e.message
        );
    }
    if matches!(r, Refused::WrongMethod) {
        assert!(allow.is_some(), "405 keeps its allow header");
    }
}

/// Through a real socket: hyper hands a long URI to the server (it refuses
/// only past 65,534 bytes), so the 414 is the server's, with its body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_uri_over_a_socket_is_414_with_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = ocop_sync_server::testing::spawn(dir.path()).await.unwrap();
    let url = format!(
        "{}{}?cursor=0&pad={}",
        server.url,
        paths::PULL,
        "a".repeat(20_000)
    );
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 414);
    let e: ErrorBody = r.json().await.unwrap();
    assert_eq!(e.code, ErrorCode::UriTooLong);
}
