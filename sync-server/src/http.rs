//! The HTTP layer: router, extractors, handlers, attachments.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State,
};
use axum::http::header::{AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use ocop_shared::score::is_sha256_hex;
use ocop_shared::wire::{
    AttachmentMeta, CreateProductRequest, CreateRoundRequest, CreateUserRequest,
    DEFAULT_PULL_LIMIT, EnrolRequest, EnrolmentCodeRequest, LoginRequest, MAX_ATTACHMENT_BYTES,
    MAX_BODY_BYTES, PROTOCOL_VERSION, SetRosterRequest, paths, pull_headers,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use uuid::Uuid;

use crate::client_ip::TrustedProxies;
use crate::error::{ApiError, Error, Result};
use crate::store::{Principal, PushTiming, Store};

/// The OpenAPI 3 document served at [`paths::OPENAPI`] (hand-maintained).
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Answers shorter than this are sent uncompressed. A push's answer (~9 KB
/// for 100 sheets) shrinks to ~1 KB, which saves a phone nothing next to
/// the ~340 KB it just sent, while making and reading the zstd stream cost
/// both sides ~0.1 ms of a ~4 ms push (tests/benches/sync.rs, the `headers`
/// and `device` steps with and without). Pull pages, the large answers, are
/// still compressed.
pub const COMPRESS_ABOVE: u16 = 16 * 1024;

/// Server-specific path (not a wire constant): every revision of one sheet.
pub const SHEET_REVISIONS: &str = "/api/v1/sheets/{id}/revisions";

/// Failed logins (or enrolments) allowed per key per minute before 429.
pub const LOGIN_FAILURES_PER_MINUTE: usize = 5;

/// The window [`LOGIN_FAILURES_PER_MINUTE`] counts over.
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub data_dir: PathBuf,
    /// Base URL put into enrolment QR payloads; from the `Host` header when unset.
    pub public_url: Option<String>,
    /// The generated admin password at first start (print it once).
    pub first_admin_password: Option<String>,
    limiter: Arc<FailureLimiter>,
    /// Reverse proxies whose forwarding headers name the client (`client_ip`).
    pub trusted_proxies: TrustedProxies,
    uploads: Arc<tokio::sync::Mutex<()>>,
    fault_exit_after_commit: bool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, data_dir: PathBuf, public_url: Option<String>) -> AppState {
        AppState {
            store,
            data_dir,
            public_url,
            first_admin_password: None,
            limiter: Arc::default(),
            trusted_proxies: TrustedProxies::default(),
            uploads: Arc::default(),
            // Test-only fault hook: exit right after a push commits, before answering.
            fault_exit_after_commit: std::env::var("OCOP_FAULT_EXIT_AFTER_COMMIT")
                .is_ok_and(|v| v == "1"),
        }
    }

    fn attachments_dir(&self) -> PathBuf {
        self.data_dir.join("attachments")
    }

    fn rate_limited(&self, key: &str) -> bool {
        self.limiter.is_limited(key, Instant::now())
    }

    fn record_failure(&self, key: &str) {
        self.limiter.record(key, Instant::now());
    }

    fn clear_failures(&self, key: &str) {
        self.limiter.clear(key);
    }
}

/// Failed attempts per key within the last [`LOGIN_WINDOW`].
#[derive(Default)]
struct FailureLimiter {
    map: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` is over its budget at `now`. Prunes expired failures of
    /// every key and drops emptied keys, so that failures under many
    /// usernames or addresses cannot grow the map without bound.
    fn is_limited(&self, key: &str, now: Instant) -> bool {
        let mut map = self.lock();
        map.retain(|_, q| {
            while q
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > LOGIN_WINDOW)
            {
                q.pop_front();
            }
            !q.is_empty()
        });
        map.get(key)
            .is_some_and(|q| q.len() >= LOGIN_FAILURES_PER_MINUTE)
    }

    fn record(&self, key: &str, now: Instant) {
        self.lock()
            .entry(key.to_string())
            .or_default()
            .push_back(now);
    }

    fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn limiter_forgets_keys_whose_failures_are_older_than_the_window() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..100 {
            l.record(&format!("login:guess{i}:10.0.0.1"), t0);
        }
        assert_eq!(l.keys(), 100);
        assert!(
            !l.is_limited("login:guess0:10.0.0.1", t0),
            "one failure each"
        );
        let later = t0 + LOGIN_WINDOW + Duration::from_secs(1);
        assert!(!l.is_limited("login:other:10.0.0.1", later));
        assert_eq!(l.keys(), 0, "expired keys are dropped, not kept empty");
    }

    #[test]
    fn limiter_limits_after_the_budget_within_the_window_only() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        for _ in 0..LOGIN_FAILURES_PER_MINUTE {
            assert!(!l.is_limited("k", t0));
            l.record("k", t0);
        }
        assert!(l.is_limited("k", t0 + Duration::from_secs(59)));
        assert!(!l.is_limited("k", t0 + LOGIN_WINDOW + Duration::from_secs(1)));
    }
}

/// Runs a blocking store call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*store))
        .await
        .map_err(|e| Error::Internal(format!("blocking task failed: {e}")))?
}

// ------------------------------------------------------------------ extractors

/// The authenticated caller (from `Authorization: Bearer <token>`).
pub struct Auth(pub Principal);

const TOKEN_HELP: &str =
    "keep unsynced data on the device and sign in again (log in or enrol with a new code)";

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthorized(format!("no bearer token was sent; {TOKEN_HELP}"))
            })?;
        let principal = blocking(state, move |s| s.authenticate(&token)).await?;
        principal.map(Auth).ok_or_else(|| {
            Error::Unauthorized(format!(
                "this device's token is unknown or revoked; {TOKEN_HELP}"
            ))
        })
    }
}

/// The client's IP address, when the server runs with connect info: the
/// peer, or behind a trusted proxy the address it forwards for.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| state.trusted_proxies.client(c.0.ip(), &parts.headers)),
        ))
    }
}

/// JSON body extractor whose failures use the one error shape:
/// malformed → 400 naming where parsing stopped, oversized → 413 naming the limit.
pub struct Json<T>(pub T);

fn bytes_rejection(r: BytesRejection) -> Error {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::body_too_large()
    } else {
        Error::BadRequest(format!(
            "could not read the request body: {}",
            r.body_text().to_lowercase()
        ))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        crate::body::decode(&bytes).map(Json)
    }
}

/// A request body as it came (the limits of [`Json`] apply): for a handler
/// that leaves decoding to the store.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // A body declared larger than the limit is read and dropped before
        // the 413 goes out: answered at once, the connection closed under a
        // client still sending, which then saw a broken pipe instead of the
        // 413 that tells the app to send less (its plan halves the batch, or
        // sets the one mutation aside). Bounded: past `DRAIN_BYTES` the
        // connection is simply closed.
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            drain(req.into_body(), DRAIN_BYTES).await;
            return Err(Error::body_too_large());
        }
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(bytes_rejection)
    }
}

/// How much of an oversized push body is read before its 413 (see `RawBody`).
const DRAIN_BYTES: usize = 4 * MAX_BODY_BYTES;

/// Reads and drops up to `cap` bytes of `body`.
async fn drain(mut body: axum::body::Body, cap: usize) {
    use http_body_util::BodyExt;
    let mut read = 0;
    while read < cap {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

fn query<T>(
    q: std::result::Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T> {
    q.map(|Query(t)| t)
        .map_err(|e| Error::BadRequest(e.body_text().to_lowercase()))
}

fn path<T>(p: std::result::Result<Path<T>, axum::extract::rejection::PathRejection>) -> Result<T> {
    p.map(|Path(t)| t)
        .map_err(|e| Error::BadRequest(e.body_text().to_lowercase()))
}

// ------------------------------------------------------------------ router

/// Every route the router serves, as `(method, path template)`; the OpenAPI
/// test checks each one is documented.
pub fn route_table() -> Vec<(&'static str, String)> {
    let att = format!("{}/{{sha256}}", paths::ATTACHMENTS);
    vec![
        ("GET", paths::HEALTH.into()),
        ("GET", paths::OPENAPI.into()),
        ("POST", paths::LOGIN.into()),
        ("POST", paths::ENROL.into()),
        ("GET", paths::ME.into()),
        ("POST", paths::PUSH.into()),
        ("GET", paths::PULL.into()),
        ("PUT", att.clone()),
        ("HEAD", att.clone()),
        ("GET", att),
        ("GET", SHEET_REVISIONS.into()),
        ("GET", paths::ADMIN_USERS.into()),
        ("POST", paths::ADMIN_USERS.into()),
        ("POST", paths::ADMIN_ENROLMENT_CODES.into()),
        ("GET", paths::ADMIN_DEVICES.into()),
        ("POST", format!("{}/{{id}}/revoke", paths::ADMIN_DEVICES)),
        ("GET", paths::ADMIN_RUBRICS.into()),
        ("POST", paths::ADMIN_RUBRICS.into()),
        (
            "POST",
            format!("{}/{{id}}/{{version}}/publish", paths::ADMIN_RUBRICS),
        ),
        ("GET", paths::ADMIN_ROUNDS.into()),
        ("POST", paths::ADMIN_ROUNDS.into()),
        ("PUT", format!("{}/{{id}}/roster", paths::ADMIN_ROUNDS)),
        ("PUT", format!("{}/{{id}}/status", paths::ADMIN_ROUNDS)),
        ("POST", paths::ADMIN_PRODUCTS.into()),
        ("GET", paths::ADMIN_QUARANTINE.into()),
        ("GET", paths::ADMIN_AUDIT.into()),
        ("GET", paths::ADMIN_EXPORT.into()),
    ]
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let att = format!("{}/{{sha256}}", paths::ATTACHMENTS);
    Router::new()
        .route(paths::HEALTH, get(health))
        .route(paths::OPENAPI, get(openapi))
        .route(paths::LOGIN, post(login))
        .route(paths::ENROL, post(enrol))
        .route(paths::ME, get(me))
        .route(
            paths::PUSH,
            post(push).route_layer(axum::middleware::from_fn(stamp_arrival)),
        )
        .route(paths::PULL, get(pull))
        .route(
            &att,
            put(put_attachment)
                .head(head_attachment)
                .get(get_attachment)
                .layer(DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES as usize)),
        )
        .route(SHEET_REVISIONS, get(sheet_revisions))
        .route(paths::ADMIN_USERS, get(list_users).post(create_user))
        .route(paths::ADMIN_ENROLMENT_CODES, post(enrolment_code))
        .route(paths::ADMIN_DEVICES, get(list_devices))
        .route(
            &format!("{}/{{id}}/revoke", paths::ADMIN_DEVICES),
            post(revoke_device),
        )
        .route(paths::ADMIN_RUBRICS, get(list_rubrics).post(import_rubric))
        .route(
            &format!("{}/{{id}}/{{version}}/publish", paths::ADMIN_RUBRICS),
            post(publish_rubric),
        )
        .route(paths::ADMIN_ROUNDS, get(list_rounds).post(create_round))
        .route(
            &format!("{}/{{id}}/roster", paths::ADMIN_ROUNDS),
            put(set_roster),
        )
        .route(
            &format!("{}/{{id}}/status", paths::ADMIN_ROUNDS),
            put(set_round_status),
        )
        .route(paths::ADMIN_PRODUCTS, post(create_product))
        .route(paths::ADMIN_QUARANTINE, get(quarantine))
        .route(paths::ADMIN_AUDIT, get(audit))
        .route(paths::ADMIN_EXPORT, get(export))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestDecompressionLayer::new())
        // Outside the decompression layer, whose 415 has no body, and the
        // router, whose 405 has none (see `error_shape`).
        .layer(axum::middleware::from_fn(crate::error_shape::uniform))
        // Fastest level: a pull page of 500 sheets is ~2 MB of very repetitive
        // JSON; zstd (preferred when the client accepts it) or gzip at level 1
        // still shrink it 15-25 fold, and the default levels cost more CPU than
        // the rest of the pull together (measured in tests/benches/sync.rs).
        // Answers under `COMPRESS_ABOVE` go as they are (see there).
        .layer(
            CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest)
                .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_ABOVE))),
        )
        // One INFO span per request (method, uri) so an error logged inside a
        // handler, a 500 included, says which call it was.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

async fn fallback(method: Method, uri: Uri) -> ApiError {
    Error::NotFound(format!("no endpoint {method} {}", uri.path()))
}

// ------------------------------------------------------------------ handlers

async fn health(State(state): State<AppState>) -> Result<axum::Json<serde_json::Value>> {
    let seq = blocking(&state, |s| s.server_seq()).await?;
    Ok(axum::Json(serde_json::json!({
        "status": "ok",
        "protocol": PROTOCOL_VERSION,
        "server_seq": seq,
    })))
}

async fn openapi() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Response> {
    let key = format!(
        "login:{}:{}",
        req.username.trim().to_lowercase(),
        ip.map_or("-".into(), |i| i.to_string())
    );
    if state.rate_limited(&key) {
        return Err(Error::RateLimited(
            "too many failed logins for this account from this address; wait a minute and try again".into(),
        ));
    }
    match blocking(&state, move |s| s.login(&req)).await {
        Ok(t) => {
            state.clear_failures(&key);
            Ok(axum::Json(t).into_response())
        }
        Err(e @ Error::Unauthorized(_)) => {
            state.record_failure(&key);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn enrol(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<EnrolRequest>,
) -> Result<Response> {
    let key = format!("enrol:{}", ip.map_or("-".into(), |i| i.to_string()));
    if state.rate_limited(&key) {
        return Err(Error::RateLimited(
            "too many wrong enrolment codes from this address; wait a minute and try again".into(),
        ));
    }
    match blocking(&state, move |s| s.enrol(&req)).await {
        Ok(t) => Ok(axum::Json(t).into_response()),
        Err(e @ Error::Unauthorized(_)) => {
            state.record_failure(&key);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

async fn me(Auth(p): Auth) -> impl IntoResponse {
    axum::Json(serde_json::json!({ "user": p.user, "device_id": p.device_id }))
}

/// When a request reached its route, before its extractors ran (see
/// [`server_timing`]).
#[derive(Debug, Clone, Copy)]
struct Arrived(Instant);

async fn stamp_arrival(mut req: Request, next: axum::middleware::Next) -> Response {
    req.extensions_mut().insert(Arrived(Instant::now()));
    next.run(req).await
}

/// A push's `Server-Timing` header (milliseconds, in the order they are
/// spent): `body` authenticating and reading the body, `queue` waiting for
/// a blocking thread, the store's `read`, `prepare` and `write` (see
/// [`PushTiming`]), and `total` from arrival to the answer (before the
/// answer is compressed and sent).
fn server_timing(body: Duration, queue: Duration, t: &PushTiming, total: Duration) -> HeaderValue {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let text = format!(
        "body;dur={:.3}, queue;dur={:.3}, read;dur={:.3}, prepare;dur={:.3}, write;dur={:.3}, total;dur={:.3}",
        ms(body),
        ms(queue),
        ms(t.read),
        ms(t.prepare),
        ms(t.write),
        ms(total)
    );
    HeaderValue::from_str(&text).expect("ascii")
}

/// The `(name, milliseconds)` pairs of a `Server-Timing` header as
/// [`server_timing`] writes it (entries without a `dur` are skipped).
pub fn parse_server_timing(header: &str) -> Vec<(String, f64)> {
    header
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let name = parts.next()?.to_owned();
            let dur = parts.find_map(|p| p.strip_prefix("dur="))?.parse().ok()?;
            Some((name, dur))
        })
        .collect()
}

async fn push(
    State(state): State<AppState>,
    arrived: Option<axum::Extension<Arrived>>,
    Auth(p): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let handled = Instant::now();
    let arrived = arrived.map_or(handled, |a| a.0.0);
    // Decoded by the store, off this runtime thread (a push of 100 sheets is
    // ~340 KB of JSON; see `Store::push_body`).
    let (resp, timing, queued) = blocking(&state, move |s| {
        let queued = handled.elapsed();
        s.push_body(p, body).map(|(r, t)| (r, t, queued))
    })
    .await?;
    if state.fault_exit_after_commit && !resp.results.is_empty() {
        // Die the way a power cut or the OOM killer does: SIGKILL, no unwinding,
        // no flush; exit code 86 only if `kill` itself is unavailable.
        tracing::warn!("fault hook: SIGKILL after commit, before the response");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::exit(86);
    }
    let mut out = axum::Json(resp).into_response();
    let timing = server_timing(handled - arrived, queued, &timing, arrived.elapsed());
    out.headers_mut()
        .insert(HeaderName::from_static("server-timing"), timing);
    Ok(out)
}

#[derive(Deserialize)]
struct PullQuery {
    #[serde(default)]
    cursor: u64,
    limit: Option<usize>,
}

async fn pull(
    State(state): State<AppState>,
    Auth(p): Auth,
    q: std::result::Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(DEFAULT_PULL_LIMIT);
    let page = blocking(&state, move |s| s.pull_json(&p, q.cursor, limit)).await?;
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                HeaderName::from_static(pull_headers::NEXT_CURSOR),
                HeaderValue::from(page.next_cursor),
            ),
            (
                HeaderName::from_static(pull_headers::HAS_MORE),
                HeaderValue::from_static(if page.has_more { "true" } else { "false" }),
            ),
        ],
        page.json,
    )
        .into_response())
}

async fn sheet_revisions(
    State(state): State<AppState>,
    Auth(p): Auth,
    id: std::result::Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Response> {
    let id = path(id)?;
    let revs = blocking(&state, move |s| s.sheet_revisions(&p, id)).await?;
    Ok(axum::Json(revs).into_response())
}

// ---- admin

async fn list_users(State(state): State<AppState>, Auth(p): Auth) -> Result<Response> {
    Ok(axum::Json(blocking(&state, move |s| s.list_users(&p)).await?).into_response())
}

async fn create_user(
    State(state): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateUserRequest>,
) -> Result<Response> {
    let u = blocking(&state, move |s| s.create_user(&p, &req)).await?;
    Ok((StatusCode::CREATED, axum::Json(u)).into_response())
}

fn server_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8787");
    format!("http://{host}")
}

async fn enrolment_code(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Json(req): Json<EnrolmentCodeRequest>,
) -> Result<Response> {
    let url = server_url(&state, &headers);
    let c = blocking(&state, move |s| s.issue_enrolment_code(&p, &req, &url)).await?;
    Ok((StatusCode::CREATED, axum::Json(c)).into_response())
}

async fn list_devices(State(state): State<AppState>, Auth(p): Auth) -> Result<Response> {
    Ok(axum::Json(blocking(&state, move |s| s.list_devices(&p)).await?).into_response())
}

async fn revoke_device(
    State(state): State<AppState>,
    Auth(p): Auth,
    id: std::result::Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Response> {
    let id = path(id)?;
    blocking(&state, move |s| s.revoke_device(&p, id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_rubrics(State(state): State<AppState>, Auth(p): Auth) -> Result<Response> {
    Ok(axum::Json(blocking(&state, move |s| s.list_rubrics(&p)).await?).into_response())
}

async fn import_rubric(
    State(state): State<AppState>,
    Auth(p): Auth,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body = body.map_err(bytes_rejection)?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| Error::BadRequest("the rubric file is not utf-8 text".into()))?;
    let r = blocking(&state, move |s| s.import_rubric(&p, &text)).await?;
    Ok(axum::Json(r).into_response())
}

async fn publish_rubric(
    State(state): State<AppState>,
    Auth(p): Auth,
    params: std::result::Result<Path<(String, u32)>, axum::extract::rejection::PathRejection>,
) -> Result<Response> {
    let (id, version) = path(params)?;
    let r = blocking(&state, move |s| s.publish_rubric(&p, &id, version)).await?;
    Ok(axum::Json(r).into_response())
}

async fn list_rounds(State(state): State<AppState>, Auth(p): Auth) -> Result<Response> {
    Ok(axum::Json(blocking(&state, move |s| s.list_rounds(&p)).await?).into_response())
}

async fn create_round(
    State(state): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateRoundRequest>,
) -> Result<Response> {
    let r = blocking(&state, move |s| s.create_round(&p, &req)).await?;
    Ok((StatusCode::CREATED, axum::Json(r)).into_response())
}

async fn set_roster(
    State(state): State<AppState>,
    Auth(p): Auth,
    id: std::result::Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    Json(req): Json<SetRosterRequest>,
) -> Result<Response> {
    let id = path(id)?;
    let r = blocking(&state, move |s| s.set_roster(&p, id, &req)).await?;
    Ok(axum::Json(r).into_response())
}

#[derive(Deserialize)]
struct RoundStatusBody {
    status: ocop_shared::wire::RoundStatus,
}

async fn set_round_status(
    State(state): State<AppState>,
    Auth(p): Auth,
    id: std::result::Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
    Json(body): Json<RoundStatusBody>,
) -> Result<Response> {
    let id = path(id)?;
    let r = blocking(&state, move |s| s.set_round_status(&p, id, body.status)).await?;
    Ok(axum::Json(r).into_response())
}

async fn create_product(
    State(state): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateProductRequest>,
) -> Result<Response> {
    let r = blocking(&state, move |s| s.create_product(&p, &req)).await?;
    Ok((StatusCode::CREATED, axum::Json(r)).into_response())
}

async fn quarantine(State(state): State<AppState>, Auth(p): Auth) -> Result<Response> {
    Ok(axum::Json(blocking(&state, move |s| s.quarantine(&p)).await?).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit(
    State(state): State<AppState>,
    Auth(p): Auth,
    q: std::result::Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let limit = query(q)?.limit.unwrap_or(200).min(10_000);
    Ok(axum::Json(blocking(&state, move |s| s.audit(&p, limit)).await?).into_response())
}

#[derive(Deserialize)]
struct ExportQuery {
    round_id: Uuid,
}

async fn export(
    State(state): State<AppState>,
    Auth(p): Auth,
    q: std::result::Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    let round = query(q)?.round_id;
    Ok(axum::Json(blocking(&state, move |s| s.export_round(&p, round)).await?).into_response())
}

// ------------------------------------------------------------------ attachments

#[derive(Deserialize)]
struct UploadQuery {
    offset: Option<u64>,
    total: Option<u64>,
}

/// `Content-Range: bytes START-END/TOTAL` → (START, TOTAL).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

fn check_hash(sha: &str) -> Result<()> {
    if is_sha256_hex(sha) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "{sha:?} is not a lowercase hex sha-256; attachments are addressed by their sha-256"
        )))
    }
}

fn attachment_too_large(size: u64) -> Error {
    Error::TooLarge(format!(
        "attachment is {size} bytes; the limit is {MAX_ATTACHMENT_BYTES} bytes ({} MiB)",
        MAX_ATTACHMENT_BYTES / (1024 * 1024)
    ))
}

async fn put_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    sha: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
    q: std::result::Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let sha = path(sha)?;
    check_hash(&sha)?;
    let q = query(q)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            attachment_too_large(MAX_ATTACHMENT_BYTES + 1)
        } else {
            bytes_rejection(r)
        }
    })?;
    let range = headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range);
    let offset = q.offset.or(range.map(|r| r.0)).unwrap_or(0);
    // Checked: offset comes from the client and may be anything up to u64::MAX.
    let end = offset.checked_add(body.len() as u64).ok_or_else(|| {
        Error::BadRequest(format!(
            "upload offset {offset} plus this chunk of {} bytes is past any attachment size; the limit is {MAX_ATTACHMENT_BYTES} bytes",
            body.len()
        ))
    })?;
    let total = q.total.or(range.map(|r| r.1)).unwrap_or(end);
    if total > MAX_ATTACHMENT_BYTES {
        return Err(attachment_too_large(total));
    }
    if end > total {
        return Err(Error::BadRequest(format!(
            "this chunk ends at byte {end} but the attachment is {total} bytes"
        )));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let _guard = state.uploads.lock().await;
    let dir = state.attachments_dir();
    tokio::fs::create_dir_all(&dir).await?;
    let final_path = dir.join(&sha);
    let part_path = dir.join(format!("{sha}.part"));
    let sha2 = sha.clone();
    let existing = blocking(&state, move |s| s.attachment(&sha2)).await?;
    if let Some(m) = &existing
        && m.received == m.size
        && tokio::fs::try_exists(&final_path).await.unwrap_or(false)
    {
        return Ok(axum::Json(m.clone()).into_response());
    }
    let on_disk = tokio::fs::metadata(&part_path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let received = match &existing {
        Some(m) if m.size == total => m.received.min(on_disk),
        _ => 0,
    };
    if offset != received {
        return Err(Error::Conflict {
            message: format!(
                "upload offset {offset} does not match the {received} bytes the server holds; resume from {received}"
            ),
            details: Some(serde_json::json!({ "received": received })),
        });
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(offset == 0)
        .open(&part_path)
        .await?;
    file.set_len(offset).await?;
    let mut file = tokio::io::BufWriter::new(file);
    tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(offset)).await?;
    file.write_all(&body).await?;
    file.flush().await?;
    file.get_ref().sync_all().await?;
    drop(file);
    let new_received = end;
    let mut meta = AttachmentMeta {
        sha256: sha.clone(),
        size: total,
        content_type,
        received: new_received,
    };
    if new_received == total {
        let data = tokio::fs::read(&part_path).await?;
        let got = hex::encode(Sha256::digest(&data));
        if got != sha {
            let _ = tokio::fs::remove_file(&part_path).await;
            let sha2 = sha.clone();
            blocking(&state, move |s| s.discard_attachment(&sha2)).await?;
            return Err(Error::invalid(format!(
                "the uploaded bytes hash to {got}, not {sha}; the upload was discarded, send it again"
            )));
        }
        tokio::fs::rename(&part_path, &final_path).await?;
    } else {
        meta.received = new_received;
    }
    let m2 = meta.clone();
    blocking(&state, move |s| s.record_attachment(&p, &m2)).await?;
    Ok(axum::Json(meta).into_response())
}

/// Upload progress of a photo, for its uploader to resume. The same
/// visibility as [`get_attachment`]: a photo the caller may not read answers
/// 404 like one that does not exist (start its upload at offset 0), so
/// neither its existence, its size nor its completeness is told.
async fn head_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    sha: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response> {
    let sha = path(sha)?;
    check_hash(&sha)?;
    let sha2 = sha.clone();
    let (meta, allowed) = blocking(&state, move |s| {
        Ok((s.attachment(&sha2)?, s.can_read_attachment(&p, &sha2)?))
    })
    .await?;
    let Some(m) = meta.filter(|_| allowed) else {
        return Err(Error::NotFound(format!(
            "attachment {sha} is not available to you; to upload it, start at offset 0"
        )));
    };
    let (received, size) = (m.received, Some(m.size));
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert("upload-offset", HeaderValue::from(received));
    h.insert("x-ocop-received", HeaderValue::from(received));
    if let Some(size) = size {
        h.insert("x-ocop-size", HeaderValue::from(size));
    }
    h.insert(
        "x-ocop-complete",
        HeaderValue::from_static(if size == Some(received) {
            "true"
        } else {
            "false"
        }),
    );
    Ok(resp)
}

async fn get_attachment(
    State(state): State<AppState>,
    Auth(p): Auth,
    sha: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response> {
    let sha = path(sha)?;
    check_hash(&sha)?;
    let sha2 = sha.clone();
    let (meta, allowed) = blocking(&state, move |s| {
        Ok((s.attachment(&sha2)?, s.can_read_attachment(&p, &sha2)?))
    })
    .await?;
    let not_found = || Error::NotFound(format!("attachment {sha} is not available to you"));
    let meta = meta
        .filter(|m| m.received == m.size)
        .ok_or_else(not_found)?;
    if !allowed {
        return Err(not_found());
    }
    let data = tokio::fs::read(state.attachments_dir().join(&sha)).await?;
    let ct = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(CONTENT_TYPE, ct)], data).into_response())
}
