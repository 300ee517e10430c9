//! The real binary as a child process: it dies right after committing a push
//! and before answering (test-only fault hook); the device retries the same
//! batch against the restarted server on the same data directory. Both a
//! small push and one large enough to be prepared while it is written.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use ocop_shared::wire::{
    Answer, AnswerEdit, Op, Outcome, SheetKey, SheetState, TokenResponse, paths,
};
use rstest::rstest;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// Starts `ocop-sync-server demo` on 127.0.0.1:0 and returns it with its URL.
async fn start(data: &std::path::Path, fault: bool) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocop-sync-server"));
    cmd.args([
        "demo",
        "--bind",
        "127.0.0.1:0",
        "--admin-password",
        "crash-test-admin",
        "--data",
    ])
    .arg(data)
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    if fault {
        cmd.env("OCOP_FAULT_EXIT_AFTER_COMMIT", "1");
    } else {
        cmd.env_remove("OCOP_FAULT_EXIT_AFTER_COMMIT");
    }
    let mut child = cmd.spawn().expect("spawn server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(u) = line.strip_prefix("listening on ") {
                return u.trim().to_string();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server start timed out");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// `products` new sheets; `whole`: every criterion answered with a long
/// note (a push of more than 64 KB, prepared while it is written), else one.
#[rstest]
#[case::small(3, false)]
#[case::large_and_streamed(12, true)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_batch_after_crash_yields_no_duplicate(#[case] sheets: usize, #[case] whole: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start(dir.path(), true).await;
    let (st, body, t) = login(
        &url,
        "lan.tt",
        &ocop_sync_server::demo::demo_password("lan.tt"),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let t: TokenResponse = t.unwrap();
    let d = Device::new(&url, t.clone());
    let (_, rounds, _) = d
        .get::<serde_json::Value>(&format!("{}?cursor=0&limit=10000", paths::PULL))
        .await;
    let products: Vec<serde_json::Value> = rounds["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["entity"].get("product").cloned())
        .collect();
    assert_eq!(products.len(), 12);
    let rubric = ocop_shared::bundled::scoreable();
    let mut batch = Vec::new();
    let mut sheet_ids = Vec::new();
    for p in &products[..sheets] {
        let rref: ocop_shared::rubric::RubricRef =
            serde_json::from_value(p["rubric"].clone()).unwrap();
        let r = rubric.iter().find(|r| r.id == rref.id).unwrap();
        let answered = if whole { usize::MAX } else { 1 };
        let sid = Uuid::now_v7();
        sheet_ids.push(sid);
        batch.push(
            d.mutation(Op::SetAnswers {
                sheet: SheetKey {
                    sheet_id: sid,
                    round_id: serde_json::from_value(p["round_id"].clone()).unwrap(),
                    product_id: serde_json::from_value(p["id"].clone()).unwrap(),
                    rubric: rref.clone(),
                },
                answers: r
                    .criteria()
                    .take(answered)
                    .map(|(_, _, c)| AnswerEdit {
                        criterion: c.code.clone(),
                        answer: Answer {
                            option: Some(c.options().next().unwrap().id.clone()),
                            note: if whole {
                                "đã kiểm tra tại cơ sở sản xuất ".repeat(8)
                            } else {
                                String::new()
                            },
                            ..Answer::default()
                        },
                        base_rev: 0,
                    })
                    .collect(),
            }),
        );
    }
    let size = serde_json::to_vec(&batch).unwrap().len();
    assert_eq!(size > 64 * 1024, whole, "{size} bytes");
    // The server commits, then dies before answering: the device sees a failure.
    let (status, _, _) = {
        let r = d
            .raw(reqwest::Method::POST, paths::PUSH)
            .await
            .json(&serde_json::json!({"protocol": 1, "mutations": batch}))
            .send()
            .await;
        match r {
            Ok(r) => decode::<serde_json::Value>(r).await,
            Err(_) => (0, serde_json::Value::Null, None),
        }
    };
    assert_eq!(status, 0, "no response may arrive");
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        exit.signal(),
        Some(9),
        "the server died by SIGKILL after committing: {exit:?}"
    );

    // Restart on the same data; the device retries the very same batch.
    let (mut child, url) = start(dir.path(), false).await;
    let d = Device::new(&url, t);
    let resp = d.push(batch.clone()).await;
    assert_eq!(resp.results.len(), sheets);
    for r in &resp.results {
        let Outcome::Duplicate { original } = &r.outcome else {
            panic!("{resp:?}")
        };
        assert!(
            matches!(**original, Outcome::Applied { .. }),
            "{original:?}"
        );
    }
    for sid in sheet_ids {
        let (st, body, revs) = d
            .get::<Vec<SheetState>>(&format!("/api/v1/sheets/{sid}/revisions"))
            .await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(
            revs.unwrap().len(),
            1,
            "exactly one revision of sheet {sid}"
        );
    }
    child.kill().await.unwrap();
}
