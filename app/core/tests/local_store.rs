//! The local SQLite file on its own: migrations, refusal of newer files,
//! and surviving a process killed between two answers.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

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
    let mode: String = c
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "not switched to wal");
    assert!(!dir.path().join(format!("{DB}-wal")).exists());
}

/// The schema as released, frozen: entry `i` moves version `i` to `i + 1`.
/// Copied from `MIGRATIONS` when each was released; a released entry must
/// never change (devices in the field already ran it), only new ones append.
const RELEASED: [&str; 2] = [
    // 1
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    -- Everything the server lets this user see, as pulled (`server_json`), and
    -- the same with unacknowledged local changes on top (`local_json`).
    -- `key` is the natural key (a sheet's is round/product/owner, so a sheet the
    -- server re-keys keeps its row).
    CREATE TABLE entities (
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        id          TEXT,
        round_id    TEXT,
        product_id  TEXT,
        owner_id    TEXT,
        seq         INTEGER NOT NULL DEFAULT 0,
        server_json TEXT,
        local_json  TEXT NOT NULL,
        open_conflicts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    CREATE INDEX entities_round ON entities(kind, round_id);
    CREATE INDEX entities_product ON entities(kind, product_id);
    CREATE INDEX entities_id ON entities(kind, id);
    -- Mutations not yet acknowledged. `id` is the device-monotonic mutation id
    -- (from meta.next_mutation_id, never reused); `entity` names the entity
    -- whose local view the mutation changes; `sent` = it may have reached the
    -- server, so its body must never change again.
    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY,
        entity_kind TEXT NOT NULL,
        entity_key  TEXT NOT NULL,
        body        TEXT NOT NULL,
        sent        INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX outbox_entity ON outbox(entity_kind, entity_key);
    -- Mutations the server rejected for good: kept for the user to read.
    CREATE TABLE attention (
        id          INTEGER PRIMARY KEY,
        body        TEXT NOT NULL,
        code        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    "#,
    // 2
    r#"
    CREATE TABLE attachments (
        sha256       TEXT PRIMARY KEY,
        size         INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        uploaded     INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL
    );
    "#,
];

#[test]
fn released_migrations_are_never_edited_only_appended() {
    let all = ocop_app::testing::migrations();
    assert!(all.len() >= RELEASED.len());
    for (i, sql) in RELEASED.iter().enumerate() {
        assert_eq!(all[i], *sql, "migration {} was edited after release", i + 1);
    }
}

#[test]
fn every_released_schema_built_from_its_frozen_sql_opens_and_migrates() {
    for v in 1..=RELEASED.len() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join(DB)).unwrap();
        for sql in &RELEASED[..v] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", v as i64).unwrap();
        c.execute(
            "INSERT INTO outbox(id, entity_kind, entity_key, body, created_at) VALUES (7, 'sheet', 'k', '{}', 'now')",
            [],
        )
        .unwrap();
        c.execute(
            "INSERT INTO attention(id, body, code, reason, at) VALUES (3, 'not json', 'invalid', 'why', 'now')",
            [],
        )
        .unwrap();
        drop(c);
        let d = Device::open(dir.path()).unwrap();
        let st = d.status().unwrap();
        assert_eq!((st.pending, st.needs_attention), (1, 1), "schema {v}");
        let att = d.needs_attention().unwrap();
        assert_eq!(att[0].raw.as_deref(), Some("not json"), "schema {v}");
        drop(d);
        let c = Connection::open(dir.path().join(DB)).unwrap();
        let now: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(now, ocop_app::schema_version());
        let format: String = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'body_format'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(format, "2", "schema {v} records the body format");
    }
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
        // Wait for the parent's go-ahead: no answer is committed after the
        // last one the parent read, so each one it read must be there as
        // printed, and none is overwritten behind its back.
        let mut go = String::new();
        if std::io::stdin().read_line(&mut go).unwrap_or(0) == 0 {
            return;
        }
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
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut go = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut saved = std::collections::BTreeMap::new();
    let t0 = Instant::now();
    let mut seen = 0;
    while seen < 45 {
        assert!(t0.elapsed() < LIMIT, "child too slow");
        let Some(Ok(l)) = lines.next() else {
            panic!("child ended early")
        };
        // The first one shares its line with libtest's "test ... " prefix.
        let Some(at) = l.find("answered ") else {
            continue;
        };
        let parts: Vec<&str> = l[at..].split_whitespace().collect();
        {
            seen += 1;
            saved.insert(parts[2].to_string(), parts[3].to_string());
            if seen < 45 {
                go.write_all(b"\n").unwrap();
                go.flush().unwrap();
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
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
