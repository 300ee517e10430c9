//! Sync benchmark against fixed targets (issue 5), on a real server process.
//!
//! `cargo bench -p ocop-tests --bench sync` — N = 1,000 and 10,000 score sheets
//! of the 31-criterion rubric with notes (~3 KB of JSON each), phases:
//! push N to an empty server; pull N to a fresh device; push 100 changed
//! sheets; pull those 100; a sync with nothing to send; 100 sheets edited
//! differently on two devices offline, then both sync (conflicts flagged,
//! edits lost); then N = 10,000 new sheets from devices pushing together: 100
//! devices × 100 sheets at once, 500 × 20 at once, and 500 × 20 arriving on a
//! schedule that offers 6,000 sheets/s.
//! Reports ms, sheets/s, server peak RSS and bytes on the wire, as JSON lines
//! and a table. `OCOP_BENCH_N=1000` limits the sizes; `OCOP_BENCH_AS_APP=1`
//! sends push bodies compressed as the app does (zstd; `=gzip`: gzip); `OCOP_BENCH_PUSH_ONLY=1`
//! runs only the first phase (to profile it); `OCOP_BENCH_SERVER_LOG=ocop_sync_server=debug`
//! has the server log each push's timing to stderr; each N runs
//! `OCOP_BENCH_REPEATS` times (default 3) on new servers and the median run of
//! each phase is reported.
//!
//! The server runs as a separate process (this binary re-executed with
//! `--serve DIR PORT`, which runs the same `ocop_sync_server::serve` as the
//! server binary) so its peak RSS is its own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocop_shared::wire::*;
use ocop_sync_server::Options;
use uuid::Uuid;

use ocop_tests::load::{ADMIN_PASSWORD, member_sheets, setup};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve_mode(Path::new(&args[i + 1]), args[i + 2].parse().expect("port"));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(bench_main());
}

fn serve_mode(dir: &Path, port: u16) {
    // OCOP_BENCH_SERVER_LOG=ocop_sync_server=debug: the server logs each
    // push's timing (read, prepared, written) to stderr.
    if let Ok(filter) = std::env::var("OCOP_BENCH_SERVER_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let state = ocop_sync_server::open(
            dir,
            Options {
                admin_password: Some(ADMIN_PASSWORD.into()),
                public_url: None,
            },
        )
        .await
        .expect("open");
        let listener = ocop_sync_server::listen(([127, 0, 0, 1], port).into()).expect("bind");
        ocop_sync_server::serve(listener, state)
            .await
            .expect("serve");
    });
}

/// One row of the report.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    n: usize,
    phase: String,
    ms: f64,
    sheets_per_s: Option<f64>,
    requests: u64,
    bytes_up: u64,
    bytes_down: u64,
    server_peak_rss_mb: f64,
    note: String,
    /// Where the phase's CPU went (the phases that move N sheets).
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<CpuUse>,
    /// Where one push's wall time went, mean ms per push: the server's
    /// `Server-Timing` steps in the order spent, then `device`, the whole
    /// exchange as the device saw it (the pushing phases).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    push_steps: Vec<Step>,
}

/// One step of [`Row::push_steps`].
#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    step: String,
    ms: f64,
}

/// Sums of the pushes' steps, for [`Row::push_steps`].
#[derive(Default)]
struct StepSums {
    pushes: usize,
    sums: Vec<(String, f64)>,
}

impl StepSums {
    fn add(&mut self, timing: &[(String, f64)], device: Duration) {
        self.pushes += 1;
        for (name, d) in timing
            .iter()
            .cloned()
            .chain([("device".to_owned(), ms(device))])
        {
            match self.sums.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += d,
                None => self.sums.push((name, d)),
            }
        }
    }

    fn means(&self) -> Vec<Step> {
        self.sums
            .iter()
            .map(|(step, sum)| Step {
                step: step.clone(),
                ms: sum / self.pushes.max(1) as f64,
            })
            .collect()
    }
}

/// CPU used during a phase: by the server process, by this one (the
/// devices: HTTP client, encoding and decoding), and how busy the machine's
/// cores were (everything, the kernel included). With the cores near 100%
/// a phase is bound by CPU, and only less CPU per sheet makes it faster.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct CpuUse {
    server_ms: f64,
    devices_ms: f64,
    cores_busy_pct: f64,
}

/// CPU counters at one instant (see [`CpuUse`]).
struct CpuMark {
    server_s: f64,
    me_s: f64,
    busy: u64,
    total: u64,
}

/// User + system CPU seconds of a process so far, every thread included
/// (those that ended too), from `/proc/<pid>/stat` (Linux; clock ticks of
/// 1/100 s, USER_HZ, fixed by the kernel's ABI). 0 where there is no /proc.
fn process_cpu_s(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

/// Busy and total clock ticks of all the machine's cores, from `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

impl CpuMark {
    fn now(server: &Server) -> CpuMark {
        let (busy, total) = machine_ticks();
        CpuMark {
            server_s: process_cpu_s(&server.child.id().to_string()),
            me_s: process_cpu_s("self"),
            busy,
            total,
        }
    }

    fn since(&self, server: &Server) -> CpuUse {
        let now = CpuMark::now(server);
        CpuUse {
            server_ms: (now.server_s - self.server_s) * 1000.0,
            devices_ms: (now.me_s - self.me_s) * 1000.0,
            cores_busy_pct: 100.0 * (now.busy - self.busy) as f64
                / (now.total - self.total).max(1) as f64,
        }
    }
}

struct Server {
    child: std::process::Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn peak_rss_mb(&self) -> f64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

async fn start_server(dir: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    // Wrapped in `Server` at once: its Drop kills and reaps the process on every path.
    let mut server = Server {
        child: std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--serve",
                dir.to_str().expect("utf-8 dir"),
                &port.to_string(),
            ])
            .env("RUST_LOG", "error")
            .spawn()
            .expect("start server process"),
        url: format!("http://127.0.0.1:{port}"),
    };
    let url = server.url.clone();
    let client = reqwest::Client::new();
    for _ in 0..2000 {
        if client
            .get(format!("{url}{}", paths::HEALTH))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = server.child.kill();
    panic!("bench server did not start");
}

/// How push bodies go (`OCOP_BENCH_AS_APP`).
#[derive(Clone, Copy)]
enum PushBodies {
    /// Plain JSON, as the phases define them.
    Plain,
    /// As the app sends them (`ocop_app::push_body_as_sent`).
    AsApp,
    /// gzip at its fastest level over 16 KiB: what the app sent before.
    Gzip,
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    send: PushBodies,
}

impl Client {
    fn new(url: &str) -> Client {
        // No automatic decompression: we count the compressed bytes ourselves.
        Client {
            http: reqwest::Client::builder()
                .no_gzip()
                .no_zstd()
                .pool_max_idle_per_host(600)
                .build()
                .expect("client"),
            url: url.into(),
            send: match std::env::var("OCOP_BENCH_AS_APP").as_deref() {
                Ok("gzip") => PushBodies::Gzip,
                Ok(_) => PushBodies::AsApp,
                Err(_) => PushBodies::Plain,
            },
        }
    }

    async fn push(&self, token: &str, body: Vec<u8>) -> (PushResponse, u64, u64) {
        let (r, up, down, _) = self.push_timed(token, body).await;
        (r, up, down)
    }

    /// [`Client::push`], with the server's `Server-Timing` steps (ms).
    async fn push_timed(
        &self,
        token: &str,
        body: Vec<u8>,
    ) -> (PushResponse, u64, u64, Vec<(String, f64)>) {
        let sent = Instant::now();
        let mut rb = self
            .http
            .post(format!("{}{}", self.url, paths::PUSH))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept-encoding", ACCEPT_ENCODING);
        // Compressed here, inside the push's time, as the app does.
        let body = match self.send {
            PushBodies::Plain => body,
            PushBodies::AsApp => {
                let (body, encoding) = ocop_app::push_body_as_sent(body);
                if let Some(e) = encoding {
                    rb = rb.header("content-encoding", e);
                }
                body
            }
            PushBodies::Gzip if body.len() > 16 * 1024 => {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&body).expect("gzip");
                rb = rb.header("content-encoding", "gzip");
                enc.finish().expect("gzip")
            }
            PushBodies::Gzip => body,
        };
        let up = body.len() as u64;
        let r = rb.body(body).send().await.expect("push");
        // When the answer's headers were in: what is left of the device's
        // time after it is reading and decoding the answer.
        let headers = ms(sent.elapsed());
        let mut timing = r
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .map(ocop_sync_server::http::parse_server_timing)
            .unwrap_or_default();
        timing.push(("headers".to_owned(), headers));
        let (v, down) = decode(r).await;
        (v, up, down, timing)
    }

    async fn pull(&self, token: &str, cursor: u64) -> (PullResponse, u64) {
        decode(self.pull_start(token, cursor).await).await
    }

    /// Sends a pull and returns once its headers are in (the body unread).
    async fn pull_start(&self, token: &str, cursor: u64) -> reqwest::Response {
        self.http
            .get(format!(
                "{}{}?cursor={cursor}&limit={DEFAULT_PULL_LIMIT}",
                self.url,
                paths::PULL
            ))
            .bearer_auth(token)
            .header("accept-encoding", ACCEPT_ENCODING)
            .send()
            .await
            .expect("pull")
    }
}

/// The next page's cursor named by a pull answer's headers, if it has more.
fn next_from_headers(r: &reqwest::Response) -> Option<u64> {
    let h = r.headers();
    let value = |name| h.get(name).and_then(|v| v.to_str().ok());
    pull_headers::next_page(
        value(pull_headers::HAS_MORE),
        value(pull_headers::NEXT_CURSOR),
    )
}

/// What the app's HTTP client (reqwest with its gzip and zstd features) sends.
const ACCEPT_ENCODING: &str = "gzip, zstd";

async fn decode<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> (T, u64) {
    let status = r.status();
    let encoding = r
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = r.bytes().await.expect("body");
    let n = bytes.len() as u64;
    let text = match encoding.as_deref() {
        Some("gzip") => {
            let mut s = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut s)
                .expect("gunzip");
            s
        }
        Some("zstd") => zstd::decode_all(&bytes[..]).expect("zstd"),
        Some(other) => panic!("unexpected content-encoding {other}"),
        None => bytes.to_vec(),
    };
    assert!(
        status.is_success(),
        "http {status}: {}",
        String::from_utf8_lossy(&text)
    );
    (serde_json::from_slice(&text).expect("json"), n)
}

fn body(mutations: Vec<Mutation>) -> Vec<u8> {
    serde_json::to_vec(&PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations,
    })
    .expect("encode")
}

/// Pulls like the app does (`app/core/src/sync.rs`): each page is fetched and
/// decoded by a task of its own; as soon as a page's headers name the next
/// cursor, the next page's task starts, so the next page is prepared by the
/// server and decoded while this one is still being decoded (the app: stored).
async fn pull_all(c: &Client, token: &str, from: u64) -> (usize, u64, u64, u64) {
    let (mut cursor, mut sheets, mut requests, mut bytes) = (from, 0usize, 0u64, 0u64);
    let mut ahead: Option<(u64, Prefetch)> = None;
    loop {
        let mut current = match ahead.take() {
            Some((at, p)) if at == cursor => p,
            _ => Prefetch::start(c, token, cursor),
        };
        ahead = current
            .next_hint()
            .await
            .map(|at| (at, Prefetch::start(c, token, at)));
        let (page, n) = current.page().await;
        requests += 1;
        bytes += n;
        sheets += page
            .changes
            .iter()
            .filter(|c| matches!(c.entity, Entity::Sheet(_)))
            .count();
        cursor = page.next_cursor;
        if !page.has_more {
            assert!(ahead.is_none(), "the headers said there was more");
            return (sheets, requests, bytes, cursor);
        }
    }
}

/// One pull page in flight: the next cursor its headers name arrives
/// first, then the decoded page (as `app/core/src/sync.rs` does it).
struct Prefetch {
    hint: Option<tokio::sync::oneshot::Receiver<Option<u64>>>,
    page: tokio::task::JoinHandle<(PullResponse, u64)>,
}

impl Prefetch {
    fn start(c: &Client, token: &str, cursor: u64) -> Prefetch {
        let (tell, hint) = tokio::sync::oneshot::channel();
        let (c, token) = (c.clone(), token.to_owned());
        let page = tokio::spawn(async move {
            let r = c.pull_start(&token, cursor).await;
            let _ = tell.send(next_from_headers(&r));
            decode(r).await
        });
        Prefetch {
            hint: Some(hint),
            page,
        }
    }

    async fn next_hint(&mut self) -> Option<u64> {
        match self.hint.take() {
            Some(h) => h.await.ok().flatten(),
            None => None,
        }
    }

    async fn page(self) -> (PullResponse, u64) {
        self.page.await.expect("pull task")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn phases(n: usize, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Sheets are member × product: 100 products, n / 100 members.
    let products = 100.min(n);
    let members = n / products;
    let s = tokio::task::block_in_place(|| setup(tmp.path(), members, products));
    let server = start_server(tmp.path()).await;
    let c = Client::new(&server.url);
    let row = |phase: &str,
               d: Duration,
               sheets: Option<usize>,
               requests: u64,
               up: u64,
               down: u64,
               rss: f64,
               note: String| Row {
        n,
        phase: phase.into(),
        ms: ms(d),
        sheets_per_s: sheets.map(|k| k as f64 / d.as_secs_f64()),
        requests,
        bytes_up: up,
        bytes_down: down,
        server_peak_rss_mb: rss,
        note,
        cpu: None,
        push_steps: Vec::new(),
    };

    // Push N: each member device sends its sheets (one per product) in batches of 100.
    let bodies: Vec<(usize, Vec<u8>)> = (0..members)
        .map(|m| (m, body(member_sheets(&s, m))))
        .collect();
    let avg = bodies.iter().map(|(_, b)| b.len()).sum::<usize>() / n;
    let cpu = CpuMark::now(&server);
    let t = Instant::now();
    let (mut up, mut down) = (0, 0);
    let mut steps = StepSums::default();
    for (m, b) in &bodies {
        let sent = Instant::now();
        let (r, u, d, timing) = c.push_timed(&s.members[*m], b.clone()).await;
        steps.add(&timing, sent.elapsed());
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "push applied"
        );
        up += u;
        down += d;
    }
    rows.push(row(
        "push N to an empty server",
        t.elapsed(),
        Some(n),
        members as u64,
        up,
        down,
        server.peak_rss_mb(),
        format!("~{avg} B of JSON per sheet"),
    ));
    rows.last_mut().expect("row").cpu = Some(cpu.since(&server));
    rows.last_mut().expect("row").push_steps = steps.means();
    // OCOP_BENCH_PUSH_ONLY=1 stops here: the push phase alone, to profile it.
    if std::env::var_os("OCOP_BENCH_PUSH_ONLY").is_some() {
        return;
    }

    // Pull N to a fresh device (the chair sees every sheet).
    let cpu = CpuMark::now(&server);
    let t = Instant::now();
    let (sheets, requests, bytes, cursor) = pull_all(&c, &s.chair, 0).await;
    assert_eq!(sheets, n);
    rows.push(row(
        "pull N to a fresh device",
        t.elapsed(),
        Some(n),
        requests,
        0,
        bytes,
        server.peak_rss_mb(),
        "zstd, as the app negotiates".into(),
    ));
    rows.last_mut().expect("row").cpu = Some(cpu.since(&server));

    // Current revisions of member 0's sheets, as its devices last pulled them.
    let (mine, _) = c.pull(&s.members[0], 0).await;
    let mut revs: BTreeMap<Uuid, (SheetState, u64)> = BTreeMap::new();
    let mut page = mine;
    let mut cur = 0;
    loop {
        for ch in &page.changes {
            if let Entity::Sheet(st) = &ch.entity {
                let rev = st.answers.get("1.2").map_or(0, |a| a.rev);
                revs.insert(st.id, ((**st).clone(), rev));
            }
        }
        if !page.has_more {
            break;
        }
        cur = page.next_cursor;
        page = c.pull(&s.members[0], cur).await.0;
    }
    let _ = cur;
    let edit = |st: &SheetState, rev: u64, option: &str, id: u64| Mutation {
        id,
        client_time: None,
        op: Op::SetAnswers {
            sheet: SheetKey {
                sheet_id: st.id,
                round_id: st.round_id,
                product_id: st.product_id,
                rubric: st.rubric.clone(),
            },
            answers: vec![AnswerEdit {
                criterion: "1.2".into(),
                answer: Answer {
                    option: Some(option.into()),
                    ..Default::default()
                },
                base_rev: rev,
            }],
        },
    };

    // Push 100 changed sheets (one request), then pull those 100; 11 rounds,
    // medians reported (one request is too short to time once).
    let (mut push_t, mut pull_t) = (Vec::new(), Vec::new());
    let (mut up, mut down, mut pull_bytes, mut pull_reqs) = (0, 0, 0, 0);
    let mut cursor2 = cursor;
    for round in 0..11u64 {
        let option = if round % 2 == 0 { "a" } else { "b" };
        let changed = body(
            revs.values()
                .take(100)
                .enumerate()
                .map(|(i, (st, rev))| edit(st, *rev, option, 1000 + round * 100 + i as u64))
                .collect(),
        );
        let t = Instant::now();
        let (r, u, d) = c.push(&s.members[0], changed).await;
        push_t.push(t.elapsed());
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "{:?}",
            r.results[0]
        );
        (up, down) = (u, d);
        let t = Instant::now();
        let (sheets, requests, bytes, next) = pull_all(&c, &s.chair, cursor2).await;
        pull_t.push(t.elapsed());
        assert_eq!(sheets, 100);
        (pull_bytes, pull_reqs, cursor2) = (bytes, requests, next);
    }
    push_t.sort();
    pull_t.sort();
    rows.push(row(
        "push 100 changed sheets (median of 11)",
        push_t[5],
        Some(100),
        1,
        up,
        down,
        server.peak_rss_mb(),
        format!("max {:.2} ms", ms(push_t[10])),
    ));
    rows.push(row(
        "pull the 100 changed sheets (median of 11)",
        pull_t[5],
        Some(100),
        pull_reqs,
        0,
        pull_bytes,
        server.peak_rss_mb(),
        format!("max {:.2} ms", ms(pull_t[10])),
    ));

    // A sync with nothing to send: one pull round trip at the current cursor (median of 50).
    let mut times = Vec::new();
    let mut nbytes = 0;
    for _ in 0..50 {
        let t = Instant::now();
        let (p, b) = c.pull(&s.chair, cursor2).await;
        times.push(t.elapsed());
        nbytes = b;
        assert!(p.changes.is_empty());
    }
    times.sort();
    rows.push(row(
        "sync with nothing to send (median of 50)",
        times[25],
        None,
        1,
        0,
        nbytes,
        server.peak_rss_mb(),
        format!("p99 {:.2} ms", ms(times[49])),
    ));

    // 100 sheets edited differently on two devices of member 0 while offline.
    let (now_mine, _) = c.pull(&s.members[0], 0).await;
    let _ = now_mine;
    let mut cur_revs = BTreeMap::new();
    let (mut cursor3, mut more) = (0, true);
    while more {
        let (p, _) = c.pull(&s.members[0], cursor3).await;
        for ch in &p.changes {
            if let Entity::Sheet(st) = &ch.entity {
                cur_revs.insert(
                    st.id,
                    ((**st).clone(), st.answers.get("1.2").map_or(0, |a| a.rev)),
                );
            }
        }
        cursor3 = p.next_cursor;
        more = p.has_more;
    }
    let targets: Vec<_> = cur_revs.values().take(100).cloned().collect();
    let a = body(
        targets
            .iter()
            .enumerate()
            .map(|(i, (st, rev))| edit(st, *rev, "b", 5000 + i as u64))
            .collect(),
    );
    let b = body(
        targets
            .iter()
            .enumerate()
            .map(|(i, (st, rev))| edit(st, *rev, "c", 1 + i as u64))
            .collect(),
    );
    let t = Instant::now();
    let (ra, _, _) = c.push(&s.members[0], a).await;
    let (rb, _, _) = c.push(&s.member0_second, b).await;
    let el = t.elapsed();
    let applied = ra
        .results
        .iter()
        .filter(|x| matches!(x.outcome, Outcome::Applied { .. }))
        .count();
    let flagged = rb
        .results
        .iter()
        .filter(|x| matches!(x.outcome, Outcome::Conflict { .. }))
        .count();
    // Lost: an edit neither current nor kept as a conflict.
    let (after, _) = {
        let mut all = BTreeMap::new();
        let (mut cu, mut more) = (0, true);
        while more {
            let (p, _) = c.pull(&s.members[0], cu).await;
            for ch in p.changes {
                if let Entity::Sheet(st) = ch.entity {
                    all.insert(st.id, *st);
                }
            }
            cu = p.next_cursor;
            more = p.has_more;
        }
        (all, ())
    };
    let mut lost = 0;
    for (st, _) in &targets {
        let now = &after[&st.id];
        let a_kept = now
            .answers
            .get("1.2")
            .is_some_and(|x| x.answer.option.as_deref() == Some("b"));
        let b_kept = now.answers.get("1.2").is_some_and(|x| x.answer.option.as_deref() == Some("c"))
            || now.conflicts.iter().any(|c| matches!(&c.field, ConflictField::Answer { criterion, theirs } if criterion == "1.2" && theirs.option.as_deref() == Some("c")));
        lost += usize::from(!a_kept) + usize::from(!b_kept);
    }
    // Checked in every run: the reported median run must not hide a lost edit.
    assert_eq!(lost, 0, "edits lost in the two-device conflict phase");
    assert_eq!(flagged, 100, "every stale edit flagged as a conflict");
    rows.push(row(
        "100 sheets edited on two devices offline, both sync",
        el,
        Some(200),
        2,
        0,
        0,
        server.peak_rss_mb(),
        format!("{applied} applied, {flagged} conflicts flagged, {lost} edits lost"),
    ));
}

/// `devices` devices push `per_device` new sheets each. With `rate: None` all
/// start together (a burst: the last answer waits for every sheet before it,
/// so its latency is about devices × per_device ÷ throughput). With
/// `rate: Some(r)` the pushes are sent on a fixed schedule offering `r`
/// sheets/s (open loop, as devices syncing at their own times would); latency
/// counts from the scheduled send, so a server falling behind shows in it.
async fn concurrent(devices: usize, per_device: usize, rate: Option<f64>, rows: &mut Vec<Row>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = tokio::task::block_in_place(|| setup(tmp.path(), devices, per_device));
    let server = start_server(tmp.path()).await;
    let c = Arc::new(Client::new(&server.url));
    let bodies: Vec<Vec<u8>> = (0..devices).map(|m| body(member_sheets(&s, m))).collect();
    let up: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let start = Arc::new(tokio::sync::Barrier::new(devices));
    let gap = rate.map(|r| Duration::from_secs_f64(per_device as f64 / r));
    let cpu = CpuMark::now(&server);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (m, b) in bodies.into_iter().enumerate() {
        let (c, token, start) = (c.clone(), s.members[m].clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let t = match gap {
                None => {
                    start.wait().await;
                    Instant::now()
                }
                Some(gap) => {
                    let at = tokio::time::Instant::from_std(t + gap * m as u32);
                    tokio::time::sleep_until(at).await;
                    at.into_std()
                }
            };
            let sent = Instant::now();
            let (r, _, d, timing) = c.push_timed(&token, b).await;
            assert!(
                r.results
                    .iter()
                    .all(|x| matches!(x.outcome, Outcome::Applied { .. }))
            );
            (t.elapsed(), d, timing, sent.elapsed())
        }));
    }
    let mut lat = Vec::new();
    let mut down = 0;
    let mut steps = StepSums::default();
    for t in tasks {
        let (l, d, timing, exchange) = t.await.expect("task");
        lat.push(l);
        down += d;
        steps.add(&timing, exchange);
    }
    let el = t.elapsed();
    lat.sort();
    let p = |q: f64| ms(lat[((lat.len() as f64 - 1.0) * q).round() as usize]);
    rows.push(Row {
        n: devices * per_device,
        phase: match rate {
            None => format!("{devices} devices push {per_device} sheets each, all at once"),
            Some(r) => format!(
                "{devices} devices push {per_device} sheets each, sent on a schedule offering {r:.0} sheets/s"
            ),
        },
        ms: ms(el),
        sheets_per_s: Some((devices * per_device) as f64 / el.as_secs_f64()),
        requests: devices as u64,
        bytes_up: up,
        bytes_down: down,
        server_peak_rss_mb: server.peak_rss_mb(),
        note: format!("latency p50 {:.1} ms, p99 {:.1} ms", p(0.5), p(0.99)),
        cpu: Some(cpu.since(&server)),
        push_steps: steps.means(),
    });
}

async fn bench_main() {
    let ns: Vec<usize> = std::env::var("OCOP_BENCH_N")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut rows = Vec::new();
    let repeats: usize = std::env::var("OCOP_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    for n in ns {
        // Each repeat on a new server; the median run (by time) of each phase
        // is reported, with the highest peak RSS of all runs.
        let mut runs: Vec<Vec<Row>> = Vec::new();
        for _ in 0..repeats {
            let mut r = Vec::new();
            phases(n, &mut r).await;
            runs.push(r);
        }
        for i in 0..runs[0].len() {
            let mut all: Vec<&Row> = runs.iter().map(|r| &r[i]).collect();
            all.sort_by(|a, b| a.ms.total_cmp(&b.ms));
            let mut median = all[all.len() / 2].clone();
            median.server_peak_rss_mb =
                all.iter().map(|r| r.server_peak_rss_mb).fold(0.0, f64::max);
            if repeats > 1 {
                median.note = format!("{} (median of {repeats} runs)", median.note);
            }
            rows.push(median);
        }
    }
    if std::env::var_os("OCOP_BENCH_PUSH_ONLY").is_none() {
        concurrent(100, 100, None, &mut rows).await;
        concurrent(500, 20, None, &mut rows).await;
        concurrent(500, 20, Some(6_000.0), &mut rows).await;
    }
    for r in &rows {
        println!("{}", serde_json::to_string(r).expect("json"));
    }
    println!(
        "\n| N | phase | ms | sheets/s | requests | bytes up | bytes down | server peak RSS MB | note |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {} | {} | {} | {} | {:.1} | {} |",
            r.n,
            r.phase,
            r.ms,
            r.sheets_per_s.map_or("—".into(), |v| format!("{v:.0}")),
            r.requests,
            r.bytes_up,
            r.bytes_down,
            r.server_peak_rss_mb,
            match (r.cpu, r.sheets_per_s) {
                (Some(c), Some(_)) => {
                    let per = |ms: f64| ms * 1000.0 / r.n as f64;
                    format!(
                        "{}; CPU per sheet: server {:.0} µs, devices {:.0} µs; cores busy {:.0}%",
                        r.note,
                        per(c.server_ms),
                        per(c.devices_ms),
                        c.cores_busy_pct
                    )
                }
                _ => r.note.clone(),
            } + &if r.push_steps.is_empty() {
                String::new()
            } else {
                format!(
                    "; per push (ms): {}",
                    r.push_steps
                        .iter()
                        .map(|s| format!("{} {:.2}", s.step, s.ms))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
}
