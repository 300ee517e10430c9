//! Opening the local SQLite file: WAL, embedded append-only migrations, and a
//! refusal to touch a file written by a newer app (it could silently lose
//! columns that version relies on).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Append-only: never edit a released entry, add a new one. Entry `i` moves
/// the schema from version `i` to `i + 1`, each in its own transaction.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the local model, the outbox and what needs attention.
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
    // 2: evidence photos, stored content-addressed in the data dir.
    r#"
    CREATE TABLE attachments (
        sha256       TEXT PRIMARY KEY,
        size         INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        uploaded     INTEGER NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL
    );
    "#,
    // 3: stored mutation bodies name their format, so a later wire change can
    // re-encode them in a migration instead of failing to read them; attention
    // keeps what a retry needs and lists refused photos too.
    r#"
    INSERT INTO meta(key, value) VALUES ('body_format', '2')
        ON CONFLICT(key) DO UPDATE SET value = excluded.value;
    ALTER TABLE attention ADD COLUMN kind TEXT NOT NULL DEFAULT 'mutation';
    ALTER TABLE attention ADD COLUMN entity_kind TEXT;
    ALTER TABLE attention ADD COLUMN entity_key TEXT;
    ALTER TABLE attention ADD COLUMN photo TEXT;
    ALTER TABLE attachments ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// Format of the mutation JSON in `outbox.body` and `attention.body`
/// (`meta.body_format`): 2 = the wire shape with `op` externally tagged.
pub(crate) const BODY_FORMAT: u32 = 2;

pub(crate) fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

pub(crate) fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Before anything writes to the file (switching to WAL does): a file of a
    // newer app is left exactly as it is.
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > schema_version() {
        return Err(Error::DatabaseTooNew {
            found,
            supported: schema_version(),
        });
    }
    // WAL: readers never block the writer and a commit is one append.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage(format!(
            "could not switch to wal mode (got {mode})"
        )));
    }
    // FULL: a committed tap survives power loss, not just a process kill.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    let format: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'body_format'",
            [],
            |r| r.get(0),
        )
        .ok();
    if let Some(f) = format.and_then(|f| f.parse::<u32>().ok())
        && f > BODY_FORMAT
    {
        return Err(Error::Storage(format!(
            "queued changes are stored in format {f}, newer than this app understands ({BODY_FORMAT}); update the app"
        )));
    }
    Ok(conn)
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = schema_version();
    if found > supported {
        return Err(Error::DatabaseTooNew { found, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-check inside the write lock: another process may have migrated.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
