//! A fault-injecting HTTP proxy on 127.0.0.1.
//!
//! Field devices sync over networks that drop requests, drop responses after
//! the server committed, deliver twice and deliver late. This proxy does all
//! of that on purpose, deterministically from a seed when requests arrive one
//! at a time: each request draws one [`Fault`] from a seeded RNG.
//! A dropped request or response closes the connection without an answer, so
//! the client sees a real transport error, not a polite HTTP status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward and answer normally.
    Pass,
    /// Close the connection before forwarding: the server never sees it.
    DropRequest,
    /// Forward, let the server commit, then close without answering.
    DropResponse,
    /// Forward twice, answer with the second response (a network-level resend).
    Duplicate,
    /// First re-deliver an older push of the same device (late, reordered
    /// delivery), then forward this one normally.
    ReplayOld,
}

/// Probabilities (in percent) of each fault; the rest passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    pub drop_request: u32,
    pub drop_response: u32,
    pub duplicate: u32,
    pub replay_old: u32,
}

impl FaultRates {
    pub const NONE: FaultRates = FaultRates {
        drop_request: 0,
        drop_response: 0,
        duplicate: 0,
        replay_old: 0,
    };
    pub const FLAKY: FaultRates = FaultRates {
        drop_request: 10,
        drop_response: 10,
        duplicate: 10,
        replay_old: 10,
    };
}

#[derive(Debug, Clone)]
struct Captured {
    method: hyper::Method,
    path: String,
    headers: hyper::HeaderMap,
    body: Bytes,
}

#[derive(Debug)]
struct Control {
    upstream: Mutex<String>,
    rng: Mutex<StdRng>,
    rates: Mutex<FaultRates>,
    offline: AtomicBool,
    pushes: Mutex<Vec<Captured>>,
    log: Mutex<Vec<(String, Fault)>>,
    client: reqwest::Client,
}

/// A running proxy; dropped → stops accepting.
#[derive(Debug)]
pub struct Proxy {
    /// What devices use as the server URL.
    pub url: String,
    control: Arc<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1:0 in front of `upstream` (a base URL).
    pub async fn start(upstream: &str, seed: u64) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr: SocketAddr = listener.local_addr().expect("proxy addr");
        let control = Arc::new(Control {
            upstream: Mutex::new(upstream.trim_end_matches('/').to_string()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rates: Mutex::new(FaultRates::NONE),
            offline: AtomicBool::new(false),
            pushes: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                // Pass bodies through byte for byte, compressed or not.
                .no_gzip()
                .build()
                .expect("proxy client"),
        });
        let c = control.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(c.clone(), req));
                    // An Err from the service closes the connection without a response.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy {
            url: format!("http://{addr}"),
            control,
            task,
        }
    }

    pub fn set_rates(&self, rates: FaultRates) {
        *self.control.rates.lock().unwrap() = rates;
    }

    /// While offline every request fails at the transport level.
    pub fn set_offline(&self, offline: bool) {
        self.control.offline.store(offline, Ordering::SeqCst);
    }

    /// Points the proxy at a (restarted) server.
    pub fn set_upstream(&self, upstream: &str) {
        *self.control.upstream.lock().unwrap() = upstream.trim_end_matches('/').to_string();
    }

    /// Every request seen, as `(path, fault)`.
    pub fn log(&self) -> Vec<(String, Fault)> {
        self.control.log.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(c: Arc<Control>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let cap = Captured {
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body,
    };
    let is_push =
        cap.method == hyper::Method::POST && cap.path.starts_with(ocop_shared::wire::paths::PUSH);

    let fault = if c.offline.load(Ordering::SeqCst) {
        Fault::DropRequest
    } else {
        let rates = *c.rates.lock().unwrap();
        let roll: u32 = c.rng.lock().unwrap().random_range(0..100);
        let mut edge = rates.drop_request;
        if roll < edge {
            Fault::DropRequest
        } else if roll < {
            edge += rates.drop_response;
            edge
        } {
            Fault::DropResponse
        } else if roll < {
            edge += rates.duplicate;
            edge
        } {
            Fault::Duplicate
        } else if roll < {
            edge += rates.replay_old;
            edge
        } && is_push
        {
            Fault::ReplayOld
        } else {
            Fault::Pass
        }
    };
    c.log.lock().unwrap().push((path, fault));

    match fault {
        Fault::DropRequest => return Err(Dropped),
        Fault::ReplayOld => {
            let old = {
                let pushes = c.pushes.lock().unwrap();
                let auth = cap.headers.get(hyper::header::AUTHORIZATION);
                let same: Vec<&Captured> = pushes
                    .iter()
                    .filter(|p| p.headers.get(hyper::header::AUTHORIZATION) == auth)
                    .collect();
                if same.is_empty() {
                    None
                } else {
                    let i = c.rng.lock().unwrap().random_range(0..same.len());
                    Some(same[i].clone())
                }
            };
            if let Some(old) = old {
                let _ = forward(&c, &old).await;
            }
        }
        _ => {}
    }
    if is_push {
        c.pushes.lock().unwrap().push(cap.clone());
    }
    let first = forward(&c, &cap).await;
    match fault {
        Fault::DropResponse => Err(Dropped),
        Fault::Duplicate => forward(&c, &cap).await,
        _ => first,
    }
}

async fn forward(c: &Control, cap: &Captured) -> Result<Response<Full<Bytes>>, Dropped> {
    let upstream = c.upstream.lock().unwrap().clone();
    let mut rb = c
        .client
        .request(cap.method.clone(), format!("{upstream}{}", cap.path));
    for (k, v) in &cap.headers {
        if k != hyper::header::HOST && k != hyper::header::CONTENT_LENGTH {
            rb = rb.header(k, v);
        }
    }
    let resp = rb
        .body(cap.body.clone())
        .send()
        .await
        .map_err(|_| Dropped)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|_| Dropped)?;
    let mut out = Response::builder().status(status);
    for (k, v) in &headers {
        if k != hyper::header::CONTENT_LENGTH && k != hyper::header::TRANSFER_ENCODING {
            out = out.header(k, v);
        }
    }
    out.body(Full::new(bytes)).map_err(|_| Dropped)
}
