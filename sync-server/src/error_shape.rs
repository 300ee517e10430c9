//! Every failure in the one error shape, including the ones no handler
//! makes: a known path asked with the wrong method (405, from the router),
//! a body in an encoding the server cannot decode (415, from the
//! decompression layer), a URI too long to read (414, here), and any other
//! status a layer answers with an empty body. A client then reads one shape
//! for every failure instead of guessing from a bare status.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{ALLOW, CONTENT_ENCODING, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// The longest URI (path and query) the server reads: no route needs more
/// than ~200 bytes, and a query this long is a client bug or a probe.
/// (A URI over 65,534 bytes is refused by the HTTP library before the
/// server sees it: a 414 without a body; see docs/sync-protocol.md.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Middleware: refuses an over-long URI, and gives any failure that left
/// the layers inside without the error shape its `{code, message}` body.
pub async fn uniform(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Error::UriTooLong(format!(
            "the uri is {uri_len} bytes; the server reads at most {MAX_URI_BYTES}: send long data in a request body"
        ))
        .into_response();
    }
    // Kept for the message of a failure (cheap clones: shared bytes).
    let method = req.method().clone();
    let uri = req.uri().clone();
    let encoding = req.headers().get(CONTENT_ENCODING).cloned();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let err = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = allowed_methods(uri.path());
            let mut out = Error::MethodNotAllowed(format!(
                "{method} is not allowed on {}; this path answers {allow}",
                uri.path()
            ))
            .into_response();
            // The router's 405 has no `Allow` header; RFC 9110 asks for one.
            if let Ok(v) = allow.parse() {
                out.headers_mut().insert(ALLOW, v);
            }
            return out;
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType(format!(
            "content-encoding {} is not supported; send the body as it is, or gzip- or zstd-compressed",
            encoding
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(unknown)")
                .to_lowercase()
        )),
        StatusCode::URI_TOO_LONG => Error::UriTooLong(format!(
            "the uri is too long; the server reads at most {MAX_URI_BYTES} bytes"
        )),
        other => generic(other),
    };
    let mut out = err.into_response();
    // The status stays what the inner layer said; headers that tell the
    // client how to retry (`Allow`, `Accept-Encoding`) go along.
    *out.status_mut() = status;
    for name in [ALLOW, axum::http::header::ACCEPT_ENCODING] {
        if let Some(v) = resp.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// The methods [`crate::http::route_table`] serves on `path`, e.g. `GET, HEAD`.
fn allowed_methods(path: &str) -> String {
    let matches = |template: &str| {
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
    };
    let methods: Vec<&str> = crate::http::route_table()
        .into_iter()
        .filter(|(_, t)| matches(t))
        .map(|(m, _)| m)
        .collect();
    methods.join(", ")
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A failure without a body from a layer (not a handler: every handler
/// answers through [`Error`]): the code of its status, or the nearest one
/// (`bad_request` for another 4xx, `internal` for a 5xx), and a message that
/// names the status.
fn generic(status: StatusCode) -> Error {
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let m = format!("the request was refused: {} {reason}", status.as_u16());
    match status {
        StatusCode::UNAUTHORIZED => Error::Unauthorized(m),
        StatusCode::FORBIDDEN => Error::Forbidden(m),
        StatusCode::NOT_FOUND => Error::NotFound(m),
        StatusCode::CONFLICT => Error::conflict(m),
        StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge(m),
        StatusCode::UNPROCESSABLE_ENTITY => Error::invalid(m),
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited(m),
        s if s.is_server_error() => Error::Internal(m),
        _ => Error::BadRequest(m),
    }
}
