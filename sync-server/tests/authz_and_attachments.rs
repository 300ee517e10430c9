//! Blind scoring enforced on push, pull and attachments: a table of
//! role × endpoint × own/other's data. Plus resumable, verified attachments.

mod common;

use common::*;
use ocop_shared::wire::{Answer, AttachmentMeta, Entity, Outcome, RejectCode, paths};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Chair,
    Owner,
    OtherMember,
    Secretary,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sees {
    Full,
    StatusOnly,
    Nothing,
}

/// Who sees the owner's sheet before release, may write it, may fetch its photo, may use admin endpoints.
const MATRIX: &[(Who, Sees, Option<RejectCode>, bool, bool)] = &[
    //  who              pull sheet         push to that sheet              photo  admin
    (
        Who::Chair,
        Sees::Full,
        Some(RejectCode::Forbidden),
        true,
        false,
    ),
    (Who::Owner, Sees::Full, None, true, false),
    (
        Who::OtherMember,
        Sees::Nothing,
        Some(RejectCode::Forbidden),
        false,
        false,
    ),
    (
        Who::Secretary,
        Sees::StatusOnly,
        Some(RejectCode::Forbidden),
        false,
        false,
    ),
    (
        Who::Admin,
        Sees::Full,
        Some(RejectCode::Forbidden),
        true,
        true,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_matrix_role_by_endpoint_by_own_or_others_data() {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let owner = w.member(0);
    let photo = b"anh chup bao bi san pham".to_vec();
    let sha = hex::encode(Sha256::digest(&photo));
    let sid = Uuid::now_v7();
    let mut edit = one_answer(&rubric, 0, 0, 0);
    edit.answer.attachments = vec![sha.clone()];
    edit.answer.note = "bao bì đạt".into();
    let r = owner
        .push(vec![owner.mutation(set_answers(&w, 0, sid, vec![edit]))])
        .await;
    assert_eq!(r.missing_attachments, vec![sha.clone()]);
    let up = owner
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{sha}", paths::ATTACHMENTS),
        )
        .await
        .header("content-type", "image/jpeg")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 200);
    let r = owner.push(vec![]).await;
    assert!(
        r.missing_attachments.is_empty(),
        "uploaded: no longer missing"
    );

    for &(who, sees, push_reject, photo_ok, admin_ok) in MATRIX {
        let d = match who {
            Who::Chair => w.chair(),
            Who::Owner => owner,
            Who::OtherMember => w.member(1),
            Who::Secretary => w.secretary(),
            Who::Admin => &w.admin,
        };
        // pull
        let sheet = d.pull_all().await.into_iter().find_map(|c| match c.entity {
            Entity::Sheet(s) if s.id == sid => Some(s),
            _ => None,
        });
        let got = match &sheet {
            None => Sees::Nothing,
            Some(s) if s.answers.is_empty() => Sees::StatusOnly,
            Some(_) => Sees::Full,
        };
        assert_eq!(got, sees, "{who:?} pull");
        // push
        let r = d
            .push(vec![d.mutation(set_answers(
                &w,
                0,
                sid,
                vec![one_answer(&rubric, 1, 0, 0)],
            ))])
            .await;
        match push_reject {
            None => assert!(
                matches!(r.results[0].outcome, Outcome::Applied { .. }),
                "{who:?} push {r:?}"
            ),
            Some(code) => assert!(
                matches!(&r.results[0].outcome, Outcome::Rejected { code: c, .. } if *c == code),
                "{who:?} push {r:?}"
            ),
        }
        // attachment
        let resp = d
            .raw(
                reqwest::Method::GET,
                &format!("{}/{sha}", paths::ATTACHMENTS),
            )
            .await
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(status == 200, photo_ok, "{who:?} photo got {status}");
        if photo_ok {
            assert_eq!(resp.bytes().await.unwrap().to_vec(), photo);
        } else {
            assert_eq!(status, 404, "{who:?}: hidden as not found");
        }
        // revisions endpoint follows the same rule
        let (st, _, _) = d
            .get::<serde_json::Value>(&format!("/api/v1/sheets/{sid}/revisions"))
            .await;
        assert_eq!(st == 200, sees != Sees::Nothing, "{who:?} revisions {st}");
        // admin endpoints
        for p in [
            paths::ADMIN_USERS,
            paths::ADMIN_QUARANTINE,
            paths::ADMIN_AUDIT,
            paths::ADMIN_ROUNDS,
        ] {
            let (st, _, _) = d.get::<serde_json::Value>(p).await;
            assert_eq!(st, if admin_ok { 200 } else { 403 }, "{who:?} GET {p}");
        }
    }
    // No token at all: 401 everywhere that needs one.
    let http = reqwest::Client::new();
    for p in [paths::PULL, paths::ME, paths::ADMIN_USERS] {
        let r = http.get(format!("{}{p}", w.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{p}");
    }
    // Members do not see a round they are not on: a second round's data stays hidden.
    let _ = Answer::default();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_resume_verify_and_refuse_oversize() {
    let w = world().await;
    let d = w.member(0);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&data));
    let url = format!("{}/{sha}", paths::ATTACHMENTS);
    let total = data.len();
    // First chunk.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{url}?offset=0&total={total}"),
        )
        .await
        .body(data[..70_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m: AttachmentMeta = r.json().await.unwrap();
    assert_eq!((m.received, m.size), (70_000, total as u64));
    // HEAD says how much arrived.
    let h = d
        .raw(reqwest::Method::HEAD, &url)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers()["upload-offset"], "70000");
    assert_eq!(h.headers()["x-ocop-complete"], "false");
    // A wrong offset is refused with the offset to resume from.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{url}?offset=100&total={total}"),
        )
        .await
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["details"]["received"], 70_000);
    // Rest via Content-Range.
    let r = d
        .raw(reqwest::Method::PUT, &url)
        .await
        .header(
            "content-range",
            format!("bytes 70000-{}/{total}", total - 1),
        )
        .body(data[70_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m: AttachmentMeta = r.json().await.unwrap();
    assert_eq!(m.received, total as u64);
    let h = d
        .raw(reqwest::Method::HEAD, &url)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers()["x-ocop-complete"], "true");
    let got = d
        .raw(reqwest::Method::GET, &url)
        .await
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.to_vec(), data);
    assert!(
        w.server
            .state
            .data_dir
            .join("attachments")
            .join(&sha)
            .exists(),
        "content-addressed file"
    );

    // Bytes that do not match the hash: 422 and discarded.
    let liar = hex::encode(Sha256::digest(b"something else"));
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{liar}", paths::ATTACHMENTS),
        )
        .await
        .body(b"not that".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let h = d
        .raw(
            reqwest::Method::HEAD,
            &format!("{}/{liar}", paths::ATTACHMENTS),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers()["upload-offset"], "0");

    // Over the limit: a clear terminal 413 that states it.
    let too_big = ocop_shared::wire::MAX_ATTACHMENT_BYTES + 1;
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{liar}?offset=0&total={too_big}", paths::ATTACHMENTS),
        )
        .await
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&ocop_shared::wire::MAX_ATTACHMENT_BYTES.to_string())
    );
    // An offset whose end overflows u64: 400 in the one error shape, no panic.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{liar}?offset={}", paths::ATTACHMENTS, u64::MAX),
        )
        .await
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: ocop_shared::wire::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.code, ocop_shared::wire::ErrorCode::BadRequest);
    assert!(body.message.contains("offset"), "{}", body.message);
    // Not a sha-256: 400.
    let r = d
        .raw(
            reqwest::Method::PUT,
            &format!("{}/nothex", paths::ATTACHMENTS),
        )
        .await
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
