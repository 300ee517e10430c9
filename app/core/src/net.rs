//! The HTTP side: one reqwest client with timeouts, and one function that
//! turns any exchange into either the expected JSON or a classified
//! [`Failure`]. A 2xx whose body does not parse is *not* success.

use std::time::Duration;

use ocop_shared::wire::{
    ErrorBody, ErrorCode, PROTOCOL_VERSION, PullResponse, PushRequest, PushResponse, TokenResponse,
    paths, pull_headers,
};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::plan::{Failure, StatusClass, classify_status};

/// Push bodies above this are compressed.
const COMPRESS_ABOVE_BYTES: usize = 16 * 1024;

/// zstd's level for push bodies: its fastest positive level.
const PUSH_ZSTD_LEVEL: i32 = 1;

/// A push body (the request's JSON) as [`Api::push`] sends it, and its
/// `Content-Encoding`: zstd over 16 KiB (`COMPRESS_ABOVE_BYTES`), as it is
/// otherwise (or if compressing fails). Public so that the sync benchmark
/// sends what the app sends (`OCOP_BENCH_AS_APP`).
pub fn push_body_as_sent(json: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
    if json.len() > COMPRESS_ABOVE_BYTES
        && let Ok(z) = zstd::bulk::compress(&json, PUSH_ZSTD_LEVEL)
    {
        return (z, Some("zstd"));
    }
    (json, None)
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        // Field networks: connect fails fast, a slow 3G push of 500 sheets still fits.
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("ocop-app/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

pub(crate) fn url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

fn send_failure(e: &reqwest::Error) -> Failure {
    if e.is_builder() {
        return Failure::Permanent {
            status: 0,
            message: format!("bad server address: {e}"),
        };
    }
    if e.is_timeout() {
        return Failure::Transient("the server did not answer in time".into());
    }
    Failure::Transient(format!("cannot reach the server: {e}"))
}

async fn finish<T: DeserializeOwned>(
    r: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, Failure> {
    finish_response(r.map_err(|e| send_failure(&e))?).await
}

async fn finish_response<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, Failure> {
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Failure::Transient(format!("the answer was cut off: {e}")))?;
    match classify_status(status) {
        StatusClass::Success => serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Transient(format!(
                "the answer (http {status}) is not what the sync server sends (captive portal or proxy?): {e}"
            ))
        }),
        StatusClass::Unauthorized => Err(Failure::Unauthorized),
        StatusClass::Transient => Err(Failure::Transient(format!(
            "server busy or failing (http {status}){}",
            message_of(&bytes).map(|m| format!(": {m}")).unwrap_or_default()
        ))),
        StatusClass::Permanent => Err(Failure::Permanent {
            status,
            message: message_of(&bytes).unwrap_or_else(|| format!("http {status}")),
        }),
    }
}

fn message_of(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(bytes)
        .ok()
        .map(|b| b.message)
}

#[derive(Clone)]
pub(crate) struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    fn json<B: Serialize>(&self, rb: reqwest::RequestBuilder, body: &B) -> reqwest::RequestBuilder {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        rb.header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(serde_json::to_vec(body).unwrap_or_default())
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        let rb = self.http.post(url(&self.base, path));
        finish(self.json(rb, body).send().await).await
    }

    /// Large pushes go zstd-compressed (the server accepts `Content-Encoding:
    /// zstd` or `gzip`): 500 sheets of JSON shrink about tenfold, which is
    /// what matters on a rural 3G link. zstd at level 1 rather than gzip at
    /// its fastest: less CPU on the phone for as small a body, and several
    /// times cheaper for the server to read (tests/benches/sync.rs with
    /// `OCOP_BENCH_AS_APP`, `docs/sync-protocol.md`).
    pub async fn push(&self, req: &PushRequest) -> Result<PushResponse, Failure> {
        let body = serde_json::to_vec(req).unwrap_or_default();
        let mut rb = self
            .http
            .post(url(&self.base, paths::PUSH))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let (body, encoding) = push_body_as_sent(body);
        if let Some(e) = encoding {
            rb = rb.header(CONTENT_ENCODING, HeaderValue::from_static(e));
        }
        finish(rb.body(body).send().await).await
    }

    /// Sends a pull and waits for its headers only: the caller may ask for
    /// the next page (see [`PullStart::next`]) before reading this one.
    pub async fn pull_start(&self, cursor: u64, limit: usize) -> Result<PullStart, Failure> {
        let mut rb = self.http.get(format!(
            "{}?cursor={cursor}&limit={limit}",
            url(&self.base, paths::PULL)
        ));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.map_err(|e| send_failure(&e))?;
        Ok(PullStart { resp })
    }

    /// Downloads one attachment's bytes (the caller checks their hash).
    pub async fn get_attachment(&self, sha: &str) -> Result<Vec<u8>, Failure> {
        let mut rb = self
            .http
            .get(format!("{}/{sha}", url(&self.base, paths::ATTACHMENTS)));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await.map_err(|e| send_failure(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::Transient(format!("the photo was cut off: {e}")))?;
        match classify_status(status) {
            StatusClass::Success => Ok(bytes.to_vec()),
            StatusClass::Unauthorized => Err(Failure::Unauthorized),
            StatusClass::Transient => Err(Failure::Transient(format!(
                "photo download failed (http {status})"
            ))),
            StatusClass::Permanent => Err(Failure::Permanent {
                status,
                message: message_of(&bytes).unwrap_or_else(|| format!("http {status}")),
            }),
        }
    }

    /// Uploads one attachment; when the server already holds part of it
    /// (a 409 naming `received`), sends only the rest.
    pub async fn put_attachment(
        &self,
        sha: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), Failure> {
        match self.put_from(sha, content_type, &bytes, 0).await {
            Err(PutError::Resume(from)) if from < bytes.len() as u64 => {
                match self.put_from(sha, content_type, &bytes, from).await {
                    Ok(()) => Ok(()),
                    Err(PutError::Resume(_)) => Err(Failure::Transient(
                        "attachment upload raced another upload".into(),
                    )),
                    Err(PutError::Failed(f)) => Err(f),
                }
            }
            Err(PutError::Resume(_)) => Err(Failure::Transient(
                "attachment upload could not resume".into(),
            )),
            Err(PutError::Failed(f)) => Err(f),
            Ok(()) => Ok(()),
        }
    }

    async fn put_from(
        &self,
        sha: &str,
        content_type: &str,
        bytes: &[u8],
        from: u64,
    ) -> Result<(), PutError> {
        let total = bytes.len() as u64;
        let mut rb = self
            .http
            .put(format!(
                "{}/{sha}?offset={from}&total={total}",
                url(&self.base, paths::ATTACHMENTS)
            ))
            .header(CONTENT_TYPE, content_type)
            .body(bytes[from as usize..].to_vec());
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| PutError::Failed(send_failure(&e)))?;
        let status = resp.status().as_u16();
        let b = resp.bytes().await.unwrap_or_default();
        match classify_status(status) {
            StatusClass::Success => Ok(()),
            StatusClass::Unauthorized => Err(PutError::Failed(Failure::Unauthorized)),
            StatusClass::Transient => Err(PutError::Failed(Failure::Transient(format!(
                "attachment upload failed (http {status})"
            )))),
            StatusClass::Permanent => {
                let body = serde_json::from_slice::<ErrorBody>(&b).ok();
                let received = body
                    .as_ref()
                    .and_then(|e| e.details.as_ref())
                    .and_then(|d| d.get("received"))
                    .and_then(|r| r.as_u64());
                match (status, received) {
                    (409, Some(r)) => Err(PutError::Resume(r)),
                    _ => Err(PutError::Failed(Failure::Permanent {
                        status,
                        message: body.map_or_else(|| format!("http {status}"), |e| e.message),
                    })),
                }
            }
        }
    }
}

enum PutError {
    Resume(u64),
    Failed(Failure),
}

pub(crate) fn push_request(mutations: Vec<ocop_shared::wire::Mutation>) -> PushRequest {
    PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations,
    }
}

pub(crate) type Token = TokenResponse;

/// A pull whose headers have arrived and whose body has not been read.
pub(crate) struct PullStart {
    resp: reqwest::Response,
}

impl PullStart {
    /// The next page's cursor when the headers say there is one (a server
    /// older than the headers, or an error answer, says nothing). Only a hint:
    /// the body decides.
    pub fn next(&self) -> Option<u64> {
        if !self.resp.status().is_success() {
            return None;
        }
        let h = self.resp.headers();
        let value = |name| h.get(name).and_then(|v| v.to_str().ok());
        pull_headers::next_page(
            value(pull_headers::HAS_MORE),
            value(pull_headers::NEXT_CURSOR),
        )
    }

    /// Reads and decodes the page (a 2xx whose body is not a page is a
    /// failure, as for every call).
    pub async fn page(self) -> Result<PullResponse, Failure> {
        if self.resp.status().as_u16() == 409 {
            let bytes = self.resp.bytes().await.unwrap_or_default();
            let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
            return Err(match body {
                Some(b) if b.code == ErrorCode::CursorAhead => Failure::CursorAhead {
                    server_seq: b
                        .details
                        .as_ref()
                        .and_then(|d| d["server_seq"].as_u64())
                        .unwrap_or(0),
                },
                b => Failure::Permanent {
                    status: 409,
                    message: b.map_or_else(|| "http 409".into(), |b| b.message),
                },
            });
        }
        finish_response(self.resp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(status: u16, headers: &[(&str, &str)]) -> PullStart {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        PullStart {
            resp: reqwest::Response::from(b.body(Vec::<u8>::new()).unwrap()),
        }
    }

    /// What a push puts on the wire, read by a bare listener on 127.0.0.1: a
    /// body over 16 KiB goes zstd-compressed and decompresses to the
    /// request's JSON; a small one goes as it is.
    #[tokio::test]
    async fn a_large_push_goes_zstd_compressed_and_a_small_one_as_it_is() {
        use ocop_shared::wire::{Mutation, Op, PROTOCOL_VERSION};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for (n, compressed) in [(1u64, false), (400, true)] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 1 << 16];
                let (head, want) = loop {
                    let k = s.read(&mut chunk).await.unwrap();
                    assert!(k > 0, "the request ended early");
                    buf.extend_from_slice(&chunk[..k]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .unwrap()
                            .trim()
                            .parse()
                            .unwrap();
                        buf.drain(..i + 4);
                        break (head, len);
                    }
                };
                while buf.len() < want {
                    let k = s.read(&mut chunk).await.unwrap();
                    assert!(k > 0, "the body ended early");
                    buf.extend_from_slice(&chunk[..k]);
                }
                let answer = r#"{"results":[],"server_seq":0}"#;
                s.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
                (head, buf)
            });
            let api = Api {
                http: client(),
                base: format!("http://{addr}"),
                token: None,
            };
            let req = PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations: (1..=n)
                    .map(|id| Mutation {
                        id,
                        client_time: None,
                        op: Op::Submit {
                            sheet_id: uuid::Uuid::now_v7(),
                        },
                    })
                    .collect(),
            };
            let sent = serde_json::to_vec(&req).unwrap();
            assert_eq!(sent.len() > COMPRESS_ABOVE_BYTES, compressed);
            api.push(&req).await.unwrap();
            let (head, body) = server.await.unwrap();
            let json = if compressed {
                assert!(head.contains("content-encoding: zstd"), "{head}");
                assert!(
                    body.len() * 3 < sent.len(),
                    "{} of {} bytes",
                    body.len(),
                    sent.len()
                );
                zstd::decode_all(&body[..]).unwrap()
            } else {
                assert!(!head.contains("content-encoding"), "{head}");
                body
            };
            assert_eq!(json, sent);
        }
    }

    /// The header values themselves are a table in `shared`'s wire tests;
    /// here: they are read from a success only.
    #[test]
    fn only_a_success_that_says_there_is_more_names_the_next_page() {
        let more = [
            (pull_headers::NEXT_CURSOR, "42"),
            (pull_headers::HAS_MORE, "true"),
        ];
        assert_eq!(start(200, &more).next(), Some(42));
        assert_eq!(start(200, &[]).next(), None, "a server without the headers");
        assert_eq!(start(503, &more).next(), None, "an error answer");
    }
}
