//! Shared helpers: a real sync server on 127.0.0.1 (in process), devices
//! signed in as the demo council, a fault-injecting TCP proxy.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use ocop_app::Device;
use ocop_sync_server::demo::{self, DemoInfo, DemoUser};
use ocop_sync_server::testing::{self, TestServer};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

pub const LIMIT: Duration = Duration::from_secs(60);

pub struct Server {
    pub dir: TempDir,
    pub srv: TestServer,
    pub demo: DemoInfo,
}

pub async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let srv = testing::spawn(dir.path()).await.unwrap();
    let demo = demo::seed(&*srv.state.store).unwrap();
    Server { dir, srv, demo }
}

pub struct Dev {
    pub dir: TempDir,
    pub dev: Arc<Device>,
}

pub async fn device(url: &str, u: &DemoUser) -> Dev {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::open(dir.path()).unwrap();
    dev.login(url, &u.username, &u.password, "test device")
        .await
        .unwrap();
    Dev {
        dir,
        dev: Arc::new(dev),
    }
}

pub async fn sync(d: &Device) -> ocop_app::SyncReport {
    tokio::time::timeout(LIMIT, d.sync_now())
        .await
        .expect("sync took too long")
        .unwrap()
}

/// Answers every criterion of a product: option number `pick(i)` (mod the
/// number of options) of criterion `i`.
pub fn answer_all(d: &Device, product: Uuid, pick: impl Fn(usize) -> usize) {
    let rubric = d.rubric(product).unwrap();
    for (i, (_, _, c)) in rubric.criteria().enumerate() {
        let opts: Vec<_> = c.options().collect();
        let o = &opts[pick(i) % opts.len()];
        d.set_answer(product, &c.code, Some(&o.id)).unwrap();
    }
}

/// The code and `n`-th option id of criterion number `i` of a product's rubric.
pub fn option(d: &Device, product: Uuid, i: usize, n: usize) -> (String, String) {
    let rubric = d.rubric(product).unwrap();
    let (_, _, c) = rubric.criteria().nth(i).unwrap();
    let opts: Vec<_> = c.options().collect();
    (c.code.clone(), opts[n % opts.len()].id.clone())
}

// ------------------------------------------------------------------ proxy

/// A TCP proxy in front of the server that can go down, cut answers off
/// after the server committed, or pretend to be a captive portal.
pub struct Proxy {
    pub url: String,
    /// Notified each time the start of a push request has been passed on.
    pub pushes: Arc<tokio::sync::Notify>,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Up = 0,
    /// Connections are accepted and closed at once.
    Down = 1,
    /// Requests reach the server; the first byte of its answer closes the connection.
    CutAnswers = 2,
    /// Every request gets `200 OK` with an HTML login page.
    Portal = 3,
    /// Every request gets `503` with the server's JSON error shape.
    Busy = 4,
    /// Pushes get `422` with the server's JSON error shape (a body the server
    /// cannot parse); everything else reaches the server.
    RefusePush = 5,
    /// Pushes get `413`; everything else reaches the server.
    PushTooLarge = 6,
    /// Pulls are cut off unanswered; everything else reaches the server.
    NoPull = 7,
    /// Every request chunk reaches the server 300 ms late.
    Slow = 8,
}

/// Pushes passed on by any proxy of this test process.
static PUSHES_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Proxy {
    /// Waits until a push has been passed on after `since` pushes in all
    /// (read [`Proxy::pushes_seen`] before starting the sync).
    pub async fn push_after(&self, since: u64) {
        while PUSHES_SEEN.load(Ordering::SeqCst) <= since {
            self.pushes.notified().await;
        }
    }

    pub fn pushes_seen(&self) -> u64 {
        PUSHES_SEEN.load(Ordering::SeqCst)
    }

    pub async fn start(upstream: &str) -> Proxy {
        let up = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(Mode::Up as u8));
        let m = mode.clone();
        let pushes = Arc::new(tokio::sync::Notify::new());
        let n = pushes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let up = up.clone();
                let m = m.clone();
                let n = n.clone();
                tokio::spawn(async move {
                    let _ = handle(client, &up, m, n).await;
                });
            }
        });
        Proxy {
            url,
            pushes,
            mode,
            task,
        }
    }

    pub fn set(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn mode(m: &AtomicU8) -> Mode {
    match m.load(Ordering::SeqCst) {
        0 => Mode::Up,
        1 => Mode::Down,
        2 => Mode::CutAnswers,
        3 => Mode::Portal,
        4 => Mode::Busy,
        5 => Mode::RefusePush,
        6 => Mode::PushTooLarge,
        7 => Mode::NoPull,
        _ => Mode::Slow,
    }
}

async fn handle(
    mut client: TcpStream,
    up: &str,
    m: Arc<AtomicU8>,
    pushes: Arc<tokio::sync::Notify>,
) -> std::io::Result<()> {
    match mode(&m) {
        Mode::Down => return Ok(()),
        Mode::Portal | Mode::Busy => {
            let mut buf = vec![0u8; 65536];
            let _ = client.read(&mut buf).await?;
            let (status, ct, body) = if mode(&m) == Mode::Portal {
                (
                    "200 OK",
                    "text/html",
                    "<html><body>Đăng nhập Wi-Fi / Wi-Fi login</body></html>",
                )
            } else {
                (
                    "503 Service Unavailable",
                    "application/json",
                    r#"{"code":"internal","message":"overloaded"}"#,
                )
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(resp.as_bytes()).await?;
            return Ok(());
        }
        _ => {}
    }
    let server = TcpStream::connect(up).await?;
    let (mut cr, cw) = client.into_split();
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let (mut sr, mut sw) = server.into_split();
    let m2 = m.clone();
    let cw2 = cw.clone();
    let upward = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 || mode(&m2) == Mode::Down {
                return Ok::<_, std::io::Error>(());
            }
            // Requests are small enough that one starts a chunk.
            let chunk = &buf[..n];
            let push = chunk.starts_with(b"POST /api/v1/sync/push");
            let pull = chunk.starts_with(b"GET /api/v1/sync/pull");
            let canned = match mode(&m2) {
                Mode::RefusePush if push => Some((
                    "422 Unprocessable Entity",
                    r#"{"code":"bad_request","message":"unknown field `op`"}"#,
                )),
                Mode::PushTooLarge if push => Some((
                    "413 Payload Too Large",
                    r#"{"code":"too_large","message":"body too large"}"#,
                )),
                Mode::NoPull if pull => {
                    cw2.lock().await.shutdown().await?;
                    return Ok(());
                }
                Mode::Slow => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    None
                }
                _ => None,
            };
            if let Some((status, body)) = canned {
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut w = cw2.lock().await;
                w.write_all(resp.as_bytes()).await?;
                w.shutdown().await?;
                return Ok(());
            }
            sw.write_all(chunk).await?;
            if push {
                PUSHES_SEEN.fetch_add(1, Ordering::SeqCst);
                pushes.notify_one();
            }
        }
    });
    let downward = async {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            match mode(&m) {
                // The server has answered, so it has committed: drop the answer.
                Mode::CutAnswers | Mode::Down | Mode::Portal | Mode::Busy => return Ok(()),
                _ => cw.lock().await.write_all(&buf[..n]).await?,
            }
        }
    };
    let r: std::io::Result<()> = downward.await;
    // On every way out (a server killed mid-answer resets the connection):
    // the client must see its connection close, not wait for an answer.
    upward.abort();
    let _ = upward.await;
    let _ = cw.lock().await.shutdown().await;
    r
}
