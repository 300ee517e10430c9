//! The local SQLite file on its own: migrations, refusal of newer files,
//! and surviving a process killed between two answers.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ocop_app::Device;
use rusqlite::Connection;

const DB: &str = "ocop.sqlite";

#[test]
fn a_database_written_by_a_newer_app_is_refused_with_a_message_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let c = Connection::open(dir.path().join(DB)).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let e = Device::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "database_too_new");
    let msg = e.to_string();
    assert!(msg.contains("newer") && msg.contains("99"), "{msg}");
    // And the file is untouched.
    let c = Connection::open(dir.path().join(DB)).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

#[test]
fn every_earlier_schema_opens_migrates_and_keeps_its_outbox() {
    let all = ocop_app::testing::migrations();
    assert_eq!(all.len() as i64, ocop_app::schema_version());
    for v in 1..=all.len() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join(DB)).unwrap();
        for sql in &all[..v] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", v as i64).unwrap();
        c.execute(
            "INSERT INTO outbox(id, entity_kind, entity_key, body, created_at) VALUES (7, 'sheet', 'k', '{}', 'now')",
            [],
        )
        .unwrap();
        drop(c);
        let d = Device::open(dir.path()).unwrap();
        assert_eq!(d.status().unwrap().pending, 1, "schema {v}");
        drop(d);
        let c = Connection::open(dir.path().join(DB)).unwrap();
        let now: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(now, ocop_app::schema_version());
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}

/// Run by the kill test as a child process: answers criteria one by one and
/// prints a line after each committed answer, until killed.
#[test]
#[ignore = "child process of the kill test"]
fn child_answering_until_killed() {
    let Ok(dir) = std::env::var("OCOP_CHILD_DIR") else {
        return;
    };
    let product: uuid::Uuid = std::env::var("OCOP_CHILD_PRODUCT")
        .unwrap()
        .parse()
        .unwrap();
    let d = Device::open(&dir).unwrap();
    let rubric = d.rubric(product).unwrap();
    let crit: Vec<_> = rubric.criteria().map(|(_, _, c)| c.clone()).collect();
    for n in 0.. {
        let c = &crit[n % crit.len()];
        let opts: Vec<_> = c.options().collect();
        let o = &opts[(n / crit.len()) % opts.len()];
        d.set_answer(product, &c.code, Some(&o.id)).unwrap();
        println!("answered {n} {} {}", c.code, o.id);
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_killed_between_two_answers_loses_nothing_it_had_saved() {
    let s = server().await;
    let d = device(&s.srv.url, &s.demo.members()[0]).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[0];
    let dir = d.dir.path().to_path_buf();
    drop(d.dev);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_answering_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OCOP_CHILD_DIR", &dir)
        .env("OCOP_CHILD_PRODUCT", p.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut saved = std::collections::BTreeMap::new();
    let t0 = Instant::now();
    let mut seen = 0;
    while seen < 45 {
        assert!(t0.elapsed() < LIMIT, "child too slow");
        let Some(Ok(l)) = lines.next() else {
            panic!("child ended early")
        };
        let parts: Vec<&str> = l.split_whitespace().collect();
        if parts.first() == Some(&"answered") {
            seen += 1;
            saved.insert(parts[2].to_string(), parts[3].to_string());
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint, mid-transaction maybe
    child.wait().unwrap();

    let d = Device::open(&dir).unwrap();
    let v = d.sheet(p).unwrap();
    for (code, opt) in &saved {
        assert_eq!(
            v.sheet.answers[code].answer.option.as_deref(),
            Some(opt.as_str()),
            "an answer reported saved is there"
        );
    }
    assert!(
        d.status().unwrap().pending >= 1,
        "and queued for the server"
    );
    // And it all reaches the server.
    sync(&d).await;
    assert_eq!(d.status().unwrap().pending, 0);
    let fresh = device(&s.srv.url, &s.demo.members()[0]).await;
    sync(&fresh.dev).await;
    let v = fresh.dev.sheet(p).unwrap();
    for (code, opt) in &saved {
        assert_eq!(
            v.sheet.answers[code].answer.option.as_deref(),
            Some(opt.as_str())
        );
    }
}
