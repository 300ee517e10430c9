//! The app's speed as an assessor feels it, measured on the real app binary
//! in its WebView (under Xvfb) against a real server on 127.0.0.1:
//! - a tap: `set_answer` through Tauri's invoke until the SQLite commit
//!   returned, over 1,000 taps (p50, p99);
//! - cold start: the app launched (WebDriver session included) until the
//!   rounds screen of a signed-in device shows, then the product list;
//! - rendering the score sheet of one product (all criteria) after a tap on it;
//! - the UI's wasm, gzip-compressed.
//!
//! `scripts/bench-ui` builds what it needs and runs this; it prints a table
//! with each target and the ratio to it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ocop_sync_server::{demo, testing};
use ocop_tests::ui::App;
use serde_json::json;

const TAPS: usize = 1000;
const RENDERS: usize = 10;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn row(what: &str, value: f64, unit: &str, target: f64) {
    println!(
        "| {what:<44} | {value:>9.1} {unit:<3} | ≤ {target:>6.0} {unit:<3} | {:>5.2} |",
        value / target
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = std::env::var_os("OCOP_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/ocop-score"));
    assert!(
        bin.exists(),
        "no app at {} (set OCOP_APP_BIN)",
        bin.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let srv = testing::spawn(&tmp.path().join("server")).await.unwrap();
    let info = demo::seed_with_url(&*srv.state.store, &srv.url).unwrap();
    let member = &info.members()[0];
    let product = &info.products[0];
    let phone = tmp.path().join("phone");

    // Sign in once, then every start is a signed-in device's.
    let app = App::start(&bin, &phone, &srv.url, 390, 844).await;
    app.find("[data-test=qr]")
        .await
        .send_keys(&member.qr_payload)
        .await
        .unwrap();
    app.click("[data-test=connect]").await;
    app.find("[data-test=round]").await;
    app.close().await;

    eprintln!("signed in; cold starts");
    let mut starts = Vec::new();
    let mut lists = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let app = App::start(&bin, &phone, &srv.url, 390, 844).await;
        app.find("[data-test=round]").await;
        starts.push(t0.elapsed().as_secs_f64() * 1000.0);
        app.click("[data-test=round]").await;
        app.find("[data-test=product]").await;
        lists.push(t0.elapsed().as_secs_f64() * 1000.0);
        app.close().await;
    }
    starts.sort_by(f64::total_cmp);
    lists.sort_by(f64::total_cmp);

    let app = App::start(&bin, &phone, &srv.url, 390, 844).await;
    app.click("[data-test=round]").await;
    let link = format!("[data-test=product][data-code='{}']", product.code);
    app.find(&link).await;
    let rubric = ocop_tests::demo_rubric(&info, 0);
    let n = rubric.criterion_count();

    eprintln!("renders");
    // Rendering: a tap on the product until every criterion's card is there.
    let mut renders = Vec::new();
    for _ in 0..RENDERS {
        let v = app
            .client
            .execute_async(
                r#"
                const [sel, n, done] = arguments;
                const t0 = performance.now();
                document.querySelector(sel).click();
                const poll = () => {
                  if (document.querySelectorAll('[data-test^="crit-"]').length >= n) {
                    requestAnimationFrame(() => done(performance.now() - t0));
                  } else { requestAnimationFrame(poll); }
                };
                poll();
                "#,
                vec![json!(link), json!(n)],
            )
            .await
            .expect("render");
        renders.push(v.as_f64().unwrap());
        app.client.back().await.unwrap();
        app.find(&link).await;
    }
    renders.sort_by(f64::total_cmp);

    let taps_n: usize = std::env::var("OCOP_BENCH_TAPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(TAPS);
    eprintln!("{taps_n} taps");

    // Taps: each invoke waits for the core's SQLite commit.
    let crits: Vec<(String, Vec<String>)> = rubric
        .criteria()
        .map(|(_, _, c)| {
            let ids = c.option_sets[0]
                .options
                .iter()
                .map(|o| o.id.clone())
                .collect();
            (c.code.clone(), ids)
        })
        .collect();
    // WebDriver runs its scripts in their own JavaScript world, where Tauri's
    // IPC answers never arrive: the loop runs in the page's world (a script
    // element) and leaves its timings in the DOM, which both worlds share.
    let loop_js = format!(
        r#"(async () => {{
          const [product, crits, taps] = {args};
          const out = [];
          for (let i = 0; i < taps; i++) {{
            const [criterion, opts] = crits[i % crits.length];
            const option = opts[i % opts.length];
            const t0 = performance.now();
            await window.__TAURI__.core.invoke('set_answer', {{product, criterion, option}});
            out.push(performance.now() - t0);
          }}
          document.body.dataset.benchTaps = JSON.stringify(out);
        }})().catch(e => {{ document.body.dataset.benchTaps = JSON.stringify(String(e)); }});"#,
        args = json!([product.id, crits, taps_n])
    );
    app.client
        .execute(
            "const s = document.createElement('script'); s.textContent = arguments[0]; document.head.appendChild(s);",
            vec![json!(loop_js)],
        )
        .await
        .expect("start the taps");
    let deadline = Instant::now() + Duration::from_secs(600);
    let v = loop {
        let v = app
            .client
            .execute("return document.body.dataset.benchTaps || null;", vec![])
            .await
            .unwrap();
        if let Some(s) = v.as_str() {
            break serde_json::from_str::<serde_json::Value>(s).unwrap();
        }
        assert!(Instant::now() < deadline, "the taps did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut taps: Vec<f64> =
        serde_json::from_value(v.clone()).unwrap_or_else(|_| panic!("the taps failed: {v}"));
    taps.sort_by(f64::total_cmp);
    app.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let wasm = std::fs::read(root.join("app/ui/dist/ocop_ui_bg.wasm")).expect("app/ui/dist");
    let gz = {
        let mut c = std::process::Command::new("gzip")
            .args(["-9", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        // Written from another thread: gzip's output must be read meanwhile.
        let mut stdin = c.stdin.take().unwrap();
        let feed = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&wasm).unwrap();
        });
        let n = c.wait_with_output().unwrap().stdout.len();
        feed.join().unwrap();
        n
    };

    println!("app: {}", bin.display());
    println!(
        "| measure                                      |     value     |  target    | ratio |"
    );
    println!(
        "|----------------------------------------------|---------------|------------|-------|"
    );
    row(
        &format!("tap → committed, p50 ({TAPS} taps)"),
        percentile(&taps, 0.5),
        "ms",
        15.0,
    );
    row(
        &format!("tap → committed, p99 ({TAPS} taps)"),
        percentile(&taps, 0.99),
        "ms",
        15.0,
    );
    row(
        "cold start → rounds screen (median of 3)",
        percentile(&starts, 0.5),
        "ms",
        1500.0,
    );
    row(
        "cold start → product list (median of 3)",
        percentile(&lists, 0.5),
        "ms",
        1500.0,
    );
    row(
        &format!("score sheet render, {n} criteria (median)"),
        percentile(&renders, 0.5),
        "ms",
        50.0,
    );
    row("UI wasm, gzip -9", gz as f64 / 1024.0, "KiB", 500.0);
}
