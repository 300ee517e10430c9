//! Real processes: the sync-server binary is killed with SIGKILL 50 times
//! while five device processes answer sheets tap by tap and push. Afterwards
//! every device's sheets are on the server exactly as the device has them,
//! no mutation was applied twice, and every outbox is empty.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ocop_shared::wire::{Entity, SheetState, paths};
use ocop_sync_server::{Options, Principal, demo};
use ocop_tests::{free_port, server_binary};
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};

const KILLS: usize = 50;
const DEVICES: usize = 5;
const PRODUCTS: usize = 3;

async fn start_server(data: &Path, port: u16) -> Child {
    let child = Command::new(server_binary())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env(
            "OCOP_ADMIN_PASSWORD",
            ocop_sync_server::testing::ADMIN_PASSWORD,
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server binary");
    let url = format!("http://127.0.0.1:{port}{}", paths::HEALTH);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server did not come up on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_fifty_times_while_five_devices_push_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("server");
    let info = {
        let st = ocop_sync_server::open(
            &data,
            Options {
                admin_password: Some(ocop_sync_server::testing::ADMIN_PASSWORD.into()),
                public_url: None,
            },
        )
        .await
        .expect("open server data");
        demo::seed(st.store.as_ref()).expect("seed")
    };
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&data, port).await;

    let members = &info.members()[..DEVICES];
    let mut devices = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let child = Command::new(env!("CARGO_BIN_EXE_ocop-device-sim"))
            .args([
                "--server",
                &url,
                "--username",
                &m.username,
                "--password",
                &m.password,
            ])
            .args([
                "--products",
                &PRODUCTS.to_string(),
                "--seed",
                &i.to_string(),
                "--tap-delay-ms",
                "25",
                "--deadline-secs",
                "150",
            ])
            .arg("--dir")
            .arg(tmp.path().join(format!("device-{i}")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start device process");
        devices.push(child);
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut kills = 0;
    let mut kills_while_pushing = 0;
    while kills < KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..150))).await;
        let running = devices
            .iter_mut()
            .filter_map(|d| d.try_wait().ok())
            .filter(Option::is_none)
            .count();
        server.start_kill().expect("SIGKILL server"); // SIGKILL on unix
        server.wait().await.expect("reap server");
        kills += 1;
        if running > 0 {
            kills_while_pushing += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..50))).await;
        server = start_server(&data, port).await;
    }

    let mut taps = 0;
    for (i, d) in devices.into_iter().enumerate() {
        let out = tokio::time::timeout(Duration::from_secs(180), d.wait_with_output())
            .await
            .expect("device finished in time")
            .expect("device output");
        assert!(out.status.success(), "device {i} gave up: {:?}", out.status);
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("device summary");
        taps += line["taps"].as_u64().unwrap_or(0);
    }
    assert!(
        kills_while_pushing >= KILLS / 2,
        "only {kills_while_pushing} of {KILLS} kills happened while devices pushed"
    );
    server.start_kill().expect("stop server");
    server.wait().await.expect("reap server");

    // Verify against the files themselves.
    let st = ocop_sync_server::open(
        &data,
        Options {
            admin_password: Some(ocop_sync_server::testing::ADMIN_PASSWORD.into()),
            public_url: None,
        },
    )
    .await
    .expect("reopen server data");
    let page = st
        .store
        .pull(&Principal::system(), 0, 1_000_000)
        .expect("pull");
    let server_sheets: Vec<SheetState> = page
        .changes
        .into_iter()
        .filter_map(|c| match c.entity {
            Entity::Sheet(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(
        server_sheets.len(),
        DEVICES * PRODUCTS,
        "one sheet per member and product"
    );
    for (i, m) in members.iter().enumerate() {
        let dev = ocop_app::Device::open(tmp.path().join(format!("device-{i}")))
            .expect("open device files");
        assert_eq!(
            dev.status().expect("status").pending,
            0,
            "device {i} outbox not empty"
        );
        assert!(
            dev.needs_attention().expect("attention").is_empty(),
            "device {i} has refused mutations"
        );
        for p in &info.product_ids[..PRODUCTS] {
            let local = dev.sheet(*p).expect("local sheet").sheet;
            let remote = server_sheets
                .iter()
                .find(|s| s.product_id == *p && s.owner_id == m.id)
                .expect("sheet on server");
            assert_eq!(local.answers.len(), 31, "device {i} answered everything");
            let l: Vec<_> = local.answers.iter().map(|(k, v)| (k, &v.answer)).collect();
            let r: Vec<_> = remote.answers.iter().map(|(k, v)| (k, &v.answer)).collect();
            assert_eq!(
                l, r,
                "device {i} product {p}: server differs from the device"
            );
        }
    }
    drop(st);
    let db = rusqlite::Connection::open(data.join(ocop_sync_server::DB_FILE)).expect("open db");
    let dups: i64 = db
        .query_row("SELECT COUNT(*) FROM (SELECT device_id, mutation_id FROM sheet_revisions GROUP BY 1, 2 HAVING COUNT(*) > 1)", [], |r| r.get(0))
        .expect("dup query");
    assert_eq!(dups, 0, "a mutation was applied twice");
    eprintln!(
        "{KILLS} SIGKILLs ({kills_while_pushing} while devices pushed), {taps} taps, nothing lost or duplicated"
    );
}
