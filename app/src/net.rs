//! The HTTP side: one reqwest client with timeouts, and one function that
//! turns any exchange into either the expected JSON or a classified
//! [`Failure`]. A 2xx whose body does not parse is *not* success.

use std::time::Duration;

use ocop_shared::wire::{
    ErrorBody, PROTOCOL_VERSION, PullResponse, PushRequest, PushResponse, TokenResponse, paths,
    pull_headers,
};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::plan::{Failure, StatusClass, classify_status};

/// Push bodies above this are compressed.
const GZIP_ABOVE_BYTES: usize = 16 * 1024;

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

    /// Large pushes go gzip-compressed (the server accepts
    /// `Content-Encoding: gzip`): 500 sheets of JSON shrink about tenfold,
    /// which is what matters on a rural 3G link.
    pub async fn push(&self, req: &PushRequest) -> Result<PushResponse, Failure> {
        let body = serde_json::to_vec(req).unwrap_or_default();
        let mut rb = self
            .http
            .post(url(&self.base, paths::PUSH))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let rb = if body.len() > GZIP_ABOVE_BYTES {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let gz = enc.write_all(&body).and_then(|()| enc.finish());
            match gz {
                Ok(gz) => rb
                    .header(CONTENT_ENCODING, HeaderValue::from_static("gzip"))
                    .body(gz),
                Err(_) => rb.body(body),
            }
        } else {
            rb.body(body)
        };
        finish(rb.send().await).await
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
