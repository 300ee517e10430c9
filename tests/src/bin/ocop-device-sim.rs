//! A device as a separate process, for kill tests: signs in (once; the token
//! is kept in its data directory), answers every criterion of some products
//! tap by tap — each tap a committed local transaction — syncing between taps
//! whatever the server is doing, then syncs until its outbox is empty.
//!
//! `ocop-device-sim --server URL --dir DIR --username U --password P --products N [--seed S]`
//! Prints one JSON line with what it did; exits 0 once everything is acknowledged,
//! 2 if it gave up (deadline).

use std::time::{Duration, Instant};

use ocop_app::Device;
use ocop_shared::bundled;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).unwrap_or_else(|| panic!("missing {n}"));
    let server = need("--server");
    let dir = need("--dir");
    let username = need("--username");
    let password = need("--password");
    let products: usize = need("--products").parse().expect("--products N");
    let seed: usize = arg(&args, "--seed")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let tap_delay = Duration::from_millis(
        arg(&args, "--tap-delay-ms")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    let deadline = Instant::now()
        + Duration::from_secs(
            arg(&args, "--deadline-secs")
                .and_then(|s| s.parse().ok())
                .unwrap_or(120),
        );

    let device = Device::open(&dir).expect("open device");
    if device.session().expect("session").is_none() {
        loop {
            match device
                .login(&server, &username, &password, &format!("sim-{username}"))
                .await
            {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("login: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("login failed: {e}"),
            }
        }
    }
    while device.rounds().expect("rounds").is_empty() {
        let _ = device.sync_now().await;
        if Instant::now() > deadline {
            eprintln!("no round after the deadline");
            std::process::exit(2);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rubrics = bundled::scoreable();
    let round = device.rounds().expect("rounds")[0].id;
    let items = device.list_products(round).expect("products");
    let mut taps = 0u64;
    let mut sync_errors = 0u64;
    for (p, item) in items.iter().take(products).enumerate() {
        let r = rubrics
            .iter()
            .find(|r| r.id == item.product.rubric.id)
            .expect("rubric");
        let answered = device
            .sheet(item.product.id)
            .map(|v| v.sheet.answers.len())
            .unwrap_or(0);
        for (k, (_, _, c)) in r.criteria().enumerate().skip(answered) {
            let opts: Vec<_> = c.options().collect();
            let o = &opts[(seed + p * 7 + k * 3) % opts.len()].id;
            device
                .set_answer(item.product.id, &c.code, Some(o))
                .expect("answer");
            taps += 1;
            if !tap_delay.is_zero() {
                tokio::time::sleep(tap_delay).await;
            }
            if k % 8 == 7 && device.sync_now().await.is_err() {
                sync_errors += 1;
            }
        }
    }
    loop {
        match device.sync_now().await {
            Ok(_) if device.status().expect("status").pending == 0 => break,
            Ok(_) => {}
            Err(_) => sync_errors += 1,
        }
        if Instant::now() > deadline {
            eprintln!(
                "outbox not empty after the deadline: {} pending",
                device.status().expect("status").pending
            );
            std::process::exit(2);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    println!("{{\"username\":\"{username}\",\"taps\":{taps},\"sync_errors\":{sync_errors}}}");
}
