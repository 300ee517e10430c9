//! The device against the real `ocop-sync-server` binary as a child process,
//! killed in the middle of pushes and restarted on the same data directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{LIMIT, sync};
use ocop_app::Device;
use ocop_sync_server::demo::demo_password;
use rusqlite::Connection;
use uuid::Uuid;

/// Builds the server binary once (cargo serialises with any other build).
fn server_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "ocop-sync-server",
                "--bin",
                "ocop-sync-server",
            ])
            .status()
            .unwrap();
        assert!(st.success(), "building the server failed");
        // target/debug/deps/<test> -> target/debug/ocop-sync-server
        let exe = std::env::current_exe().unwrap();
        exe.parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("ocop-sync-server")
    })
    .clone()
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(data: &Path, port: u16, fault_exit_after_commit: bool) -> Proc {
    let mut cmd = Command::new(server_binary());
    cmd.args([
        "demo",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--admin-password",
        "admin-pw-test",
    ])
    .arg("--data")
    .arg(data)
    .env("RUST_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if fault_exit_after_commit {
        cmd.env("OCOP_FAULT_EXIT_AFTER_COMMIT", "1");
    }
    let p = Proc {
        child: cmd.spawn().unwrap(),
    };
    let url = format!("http://127.0.0.1:{port}/api/v1/health");
    let t0 = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
        {
            return p;
        }
        assert!(t0.elapsed() < LIMIT, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts(data: &Path) -> (u64, u64, u64) {
    let c = Connection::open(data.join(ocop_sync_server::DB_FILE)).unwrap();
    let q = |t: &str| -> u64 {
        c.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap() as u64
    };
    // A sheet's slot is its snapshot row (server schema 8).
    (
        q("applied_mutations"),
        q("entities WHERE kind = 'sheet'"),
        q("quarantine"),
    )
}

async fn member(url: &str, dir: &Path) -> Device {
    let d = Device::open(dir).unwrap();
    d.login(url, "lan.tt", &demo_password("lan.tt"), "child test")
        .await
        .unwrap();
    d
}

fn products(d: &Device) -> Vec<Uuid> {
    let round = d.rounds().unwrap()[0].id;
    d.list_products(round)
        .unwrap()
        .into_iter()
        .map(|p| p.product.id)
        .collect()
}

fn answer_everything(d: &Device, shift: usize) {
    for p in products(d) {
        common::answer_all(d, p, |i| i + shift);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_exiting_after_commit_before_answering_then_restarted_loses_and_duplicates_nothing()
 {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let srv = start(data.path(), port, true).await;
    let dd = tempfile::tempdir().unwrap();
    let d = member(&url, dd.path()).await;
    sync(&d).await;
    let p = products(&d)[0];
    common::answer_all(&d, p, |i| i);
    let n = d.status().unwrap().pending;

    let e = tokio::time::timeout(LIMIT, d.sync_now())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), "offline", "{e}");
    drop(srv);
    assert_eq!(
        d.status().unwrap().pending,
        n,
        "committed on the server but never acknowledged"
    );
    assert_eq!(counts(data.path()).0, n, "the server did commit the batch");

    let _srv = start(data.path(), port, false).await;
    sync(&d).await;
    let st = d.status().unwrap();
    assert_eq!((st.pending, st.needs_attention, st.conflicts), (0, 0, 0));
    assert_eq!(
        counts(data.path()),
        (n, 1, 0),
        "the resend was recognised, not applied again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_sigkill_mid_push_and_restarted_converges_without_loss() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut srv = start(data.path(), port, false).await;
    // The device talks through a proxy that says when a push is on its way
    // to the server, so the kill lands mid-push every round, not by luck.
    let proxy = common::Proxy::start(&url).await;
    let dd = tempfile::tempdir().unwrap();
    let d = member(&proxy.url, dd.path()).await;
    sync(&d).await;
    let mut total = 0u64;
    let mut died_mid_push = 0;
    for (round, delay_ms) in [0u64, 3, 10].into_iter().enumerate() {
        answer_everything(&d, round);
        total += d.status().unwrap().pending;
        let sync_task = {
            let d = &d;
            async move { tokio::time::timeout(LIMIT, d.sync_now()).await.unwrap() }
        };
        let since = proxy.pushes_seen();
        let killer = async {
            proxy.push_after(since).await;
            // Kill -9 while the push is being read or committed.
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let _ = srv.child.kill();
            let _ = srv.child.wait();
        };
        let (r, ()) = tokio::join!(sync_task, killer);
        if let Err(e) = &r {
            assert_eq!(e.code(), "offline", "{e}");
            died_mid_push += 1;
        }
        srv = start(data.path(), port, false).await;
        sync(&d).await;
        let st = d.status().unwrap();
        assert_eq!((st.pending, st.needs_attention), (0, 0), "round {round}");
    }
    assert!(
        died_mid_push >= 1,
        "no round saw the server die during a push"
    );
    let (applied, sheets, quarantined) = counts(data.path());
    assert_eq!(applied, total, "every mutation applied exactly once");
    assert_eq!(quarantined, 0);
    assert_eq!(sheets as usize, products(&d).len());

    // A second device of the same member sees exactly what the first holds.
    let d2d = tempfile::tempdir().unwrap();
    let d2 = member(&url, d2d.path()).await;
    sync(&d2).await;
    for p in products(&d) {
        assert_eq!(
            d.sheet(p).unwrap().sheet.answers,
            d2.sheet(p).unwrap().sheet.answers
        );
        assert!(d2.sheet(p).unwrap().score.complete());
    }
    drop(srv);
}
