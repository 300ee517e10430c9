//! SQLite implementation of [`Store`].
//!
//! - One writer connection behind a mutex (every write is a `BEGIN IMMEDIATE`
//!   transaction) and one reader connection (WAL lets it read while the
//!   writer writes).
//! - Append-only migrations, each in a transaction, tracked by `user_version`;
//!   a database made by a newer server is refused.
//! - `entities` holds the current JSON snapshot of everything a client can
//!   pull, with the `seq` of its last write, so a pull is one range scan over
//!   the `seq` index.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use ocop_shared::council::{self, CouncilInput, CouncilMode, Member, MemberSheet, Participation};
use ocop_shared::rubric::{Rubric, RubricRef};
use ocop_shared::score::{check_answer, score_sheet};
use ocop_shared::validate::{Severity, load_rubric};
use ocop_shared::wire::{
    AccountRole, Answer, AnswerEdit, AnswerState, AttachmentMeta, Change, ConflictField,
    ConflictRecord, CouncilRole, CreateProductRequest, CreateRoundRequest, CreateUserRequest,
    DecisionInfo, EnrolRequest, EnrolmentCodeRequest, EnrolmentCodeResponse, Entity, LoginRequest,
    MAX_BATCH_MUTATIONS, Mutation, MutationResult, Op, Outcome, PROTOCOL_VERSION,
    ParticipationInfo, ProductInfo, PullResponse, PushRequest, PushResponse, RejectCode,
    RosterEntry, RoundInfo, RoundStatus, RubricImportResponse, SetRosterRequest, SheetKey,
    SheetState, SheetStatus, TokenResponse, UserInfo,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::access::{self, Refusal};
use crate::error::{Error, Result};
use crate::prepare::{NewSheet, PrepareCtx, Prepared, Streamed, first_answers, prepare_all};
use crate::sheet_cache::SheetCache;
use crate::store::{
    AuditEntry, DeviceInfo, PageJson, Principal, PushTiming, QuarantineEntry, RubricSummary, Store,
};

/// Append-only: never edit a shipped migration, add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('seq', 0);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE enrolment_codes (
    code TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    used_at TEXT
);
CREATE TABLE rubrics (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, version)
);
CREATE TABLE rounds (id TEXT PRIMARY KEY);
CREATE TABLE roster (
    round_id TEXT NOT NULL REFERENCES rounds(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    active INTEGER NOT NULL,
    PRIMARY KEY (round_id, user_id)
);
CREATE TABLE products (
    id TEXT PRIMARY KEY,
    round_id TEXT NOT NULL REFERENCES rounds(id)
);
CREATE TABLE participations (
    product_id TEXT NOT NULL REFERENCES products(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    participation TEXT NOT NULL,
    PRIMARY KEY (product_id, user_id)
);
-- One sheet per round x product x member; the body lives in entities.
CREATE TABLE sheets (
    id TEXT PRIMARY KEY,
    round_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    UNIQUE (round_id, product_id, owner_id)
);
CREATE INDEX sheets_product ON sheets(product_id);
-- A second device's sheet id for an existing slot, mapped onto the canonical id.
CREATE TABLE sheet_aliases (alias_id TEXT PRIMARY KEY, sheet_id TEXT NOT NULL);
-- Every accepted revision of every sheet (the whole sheet after the write).
CREATE TABLE sheet_revisions (
    id INTEGER PRIMARY KEY,
    sheet_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX sheet_revisions_sheet ON sheet_revisions(sheet_id, seq);
CREATE TABLE sheet_attachments (
    sheet_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (sheet_id, sha256)
);
CREATE INDEX sheet_attachments_sha ON sheet_attachments(sha256);
CREATE TABLE attachments (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    received INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    uploaded_by TEXT NOT NULL
);
-- Idempotency: (device, mutation id) is unique; a resend finds its outcome here.
CREATE TABLE applied_mutations (
    device_id TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    body_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (device_id, mutation_id)
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    mutation TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    seq INTEGER
);
-- What clients pull: current snapshot of every entity with the seq of its last write.
CREATE TABLE entities (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    round_id TEXT,
    product_id TEXT,
    owner_id TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX entities_seq ON entities(seq);
CREATE INDEX entities_product ON entities(product_id, kind);
CREATE INDEX entities_round ON entities(round_id, kind);
"#,
    // 2: revisions store what a write changed (answers whose rev is the write's
    // seq, plus every other field) instead of the whole sheet again; rows written
    // before keep delta = 0 and are read as whole sheets.
    r#"
ALTER TABLE sheet_revisions ADD COLUMN delta INTEGER NOT NULL DEFAULT 0;
"#,
    // 3: every push answers with the caller's missing attachments; without this
    // index that query scanned every sheet on the server on each push.
    r#"
CREATE INDEX sheets_owner ON sheets(owner_id);
"#,
    // 4: a sheet's slot is keyed owner first. A push comes from one member's
    // device and names that member's sheets across many products: keyed
    // (round, product, owner) each new sheet of a batch landed on another index
    // page (one dirty 4 KiB page per sheet per index in every commit); keyed
    // (owner, round, product) a batch touches a few. The same index serves the
    // owner lookups, so `sheets_owner` and the unused `sheets_product` go.
    // `entities_product` goes for the same reason (a product's sheets are read
    // through the round's, see `product_sheets`).
    // From this version sheet snapshots and revisions may be stored as
    // zstd-compressed BLOBs (see `pack_body`); TEXT rows stay readable.
    r#"
CREATE TABLE sheets_v4 (
    id TEXT PRIMARY KEY,
    round_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    UNIQUE (owner_id, round_id, product_id)
);
INSERT INTO sheets_v4 (id, round_id, product_id, owner_id)
    SELECT id, round_id, product_id, owner_id FROM sheets;
DROP TABLE sheets;
ALTER TABLE sheets_v4 RENAME TO sheets;
DROP INDEX entities_product;
"#,
    // 5: a new sheet's snapshot (and first revision) may be stored as a zstd
    // skippable frame holding its seq followed by the snapshot compressed
    // with a placeholder where the seq goes (made before the writer knows
    // the seq, see `prepare.rs`). Nothing to change in the tables; the
    // version is raised so that an older server, which could not read such
    // a body, refuses the database instead of failing on a sheet.
    r#"
-- 5: sheet bodies may carry their seq in a skippable frame (no DDL)
"#,
    // 6: a new sheet's first revision may keep no body of its own
    // (`delta = 2`, `LAZY_REVISION`): its body is the sheet's snapshot until
    // the sheet's next write copies it into the row. Nothing to change in the
    // tables; the version is raised so that an older server, which would read
    // such a row as an empty body, refuses the database.
    r#"
-- 6: a sheet's first revision may point at its snapshot (no DDL)
"#,
    // 7: sheet bodies may be compressed with the zstd dictionary `BODY_DICT`
    // (its id in each frame). Nothing to change in the tables; the version is
    // raised so that an older server, which could not read such a body,
    // refuses the database.
    r#"
-- 7: sheet bodies may need the zstd dictionary "OCOP" (no DDL)
"#,
    // 8: a sheet's slot is its snapshot row's: `entities` already holds each
    // sheet's round, product and owner, so the `sheets` table (a rowid table
    // and an index on its id, besides the slot index) copied them; a new
    // sheet wrote three b-trees for it. The slot stays unique through a
    // partial index on the snapshots. Every `sheets` row was written with its
    // snapshot in one transaction, so no slot is lost.
    r#"
CREATE UNIQUE INDEX entities_sheet_slot ON entities (owner_id, round_id, product_id)
    WHERE kind = 'sheet';
DROP TABLE sheets;
"#,
    // 9: a pushed mutation's audit entry is its idempotency row: the row
    // already holds the device, the mutation id, the outcome (with its seq)
    // and the time, and now the operation (`op`); the audit listing reads
    // these rows beside the `audit` table (see `audit`), instead of a second
    // row per mutation repeating them. Rows written before keep `op` NULL:
    // their audit rows exist and are listed as before.
    r#"
ALTER TABLE applied_mutations ADD COLUMN op TEXT;
"#,
    // 10: a sheet written once, whole, by a prepared first write keeps no
    // revision row: its one revision is its snapshot, whose body names the
    // write (`origin_frame` in `prepare.rs`); the sheet's next write makes
    // the row from it (`write_sheet_rows`). A new sheet wrote a revision row
    // and an index entry for nothing most sheets ever need: ~14% of the WAL
    // frames of a push of new sheets. Nothing to change in the tables; the
    // version is raised so that an older server, which would list such a
    // sheet's history as empty and could not read its body, refuses the
    // database.
    r#"
-- 10: a sheet written once may keep no revision row (no DDL)
"#,
];

/// `sheet_revisions.delta` of a revision whose body is not in its row but
/// is the sheet's snapshot (schema 6): a new sheet's first revision, until
/// the sheet's next write copies the snapshot into the row (`write_sheet_rows`).
const LAZY_REVISION: i64 = 2;

/// Read connections per store.
const READERS: usize = 4;

/// WAL length (4 KiB pages) past which the checkpoint thread makes writers
/// wait once so the WAL starts over (64 MiB).
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Page cache of each read (and the checkpoint) connection, as SQLite's
/// negative `cache_size`: KiB.
const READER_CACHE_KIB: i64 = -512;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The SQLite store.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// A small pool of read connections (WAL readers never block the writer).
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    rubrics: Mutex<HashMap<RubricRef, Arc<Rubric>>>,
    checkpointer: Checkpointer,
    /// Pushes waiting for the writer (see `commit_group`).
    push_queue: Mutex<std::collections::VecDeque<Arc<PushJob>>>,
    /// Group commits made and pushes they carried (see [`SqliteStore::group_stats`]).
    groups: std::sync::atomic::AtomicU64,
    grouped_pushes: std::sync::atomic::AtomicU64,
    group_failures: std::sync::atomic::AtomicU64,
    group_mutations: usize,
    /// Sheets the writer wrote last (see `sheet_cache`); only the writer,
    /// holding `writer`, uses it.
    sheets: Mutex<SheetCache>,
    /// Products the writer read (see [`SqliteStore::product`]).
    products: Mutex<lru::LruCache<Uuid, Arc<ProductInfo>>>,
    /// Whether each product the writer asked about is finalized (see
    /// [`SqliteStore::ensure_unlocked`]).
    finalized: Mutex<HashMap<Uuid, bool>>,
    /// Pushes being prepared now, and their turns (see [`SqliteStore::prepare`]).
    preparing: (Mutex<usize>, std::sync::Condvar),
    prepare_slots: usize,
}

/// Products kept by the writer: a province's round has hundreds.
const PRODUCT_CACHE: usize = 4096;

/// How a snapshot is stored (see [`pack_body`]).
type PackFn = fn(&[u8]) -> Result<Vec<u8>>;

/// What preparing a push needs (see [`SqliteStore::prepare_ctx`]), nameable.
type Ctx<'a> = PrepareCtx<&'a (dyn Fn(&RubricRef) -> Option<Arc<Rubric>> + Sync), PackFn>;

/// A turn to prepare a push (see [`SqliteStore::prepare_turn`]).
struct Preparing<'a>(&'a (Mutex<usize>, std::sync::Condvar));

impl Drop for Preparing<'_> {
    fn drop(&mut self) {
        *lock(&self.0.0) -= 1;
        self.0.1.notify_one();
    }
}

/// Answers, when dropped, every push of a group not answered yet: only a
/// panic in the middle of a group leaves one unanswered.
struct AnswerAll<'a>(&'a [(Arc<PushJob>, PushWork)]);

impl Drop for AnswerAll<'_> {
    fn drop(&mut self) {
        for (j, _) in self.0 {
            let mut done = lock(&j.done);
            if done.is_none() {
                *done = Some(Err(Error::Internal(
                    "the server failed while saving this push; nothing of it was saved, send it again"
                        .into(),
                )));
            }
        }
    }
}

/// A push waiting in the group-commit queue, and then its answer.
struct PushJob {
    work: Mutex<Option<PushWork>>,
    done: Mutex<Option<Result<PushResponse>>>,
}

/// At most this many mutations are committed together; a group still always
/// takes at least one push, whatever its size.
const GROUP_MUTATIONS: usize = 2_000;

/// A queued push: who, what, and what was prepared of each mutation (see
/// `prepare.rs`).
type PushWork = (Principal, Batch);

/// A queued push's mutations: prepared before queueing, or being prepared
/// while the writer writes them (see [`Streamed`]).
enum Batch {
    Ready(PushRequest, Vec<Prepared>),
    Streamed(Arc<Streamed>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Ready(r, _) => r.mutations.len(),
            Batch::Streamed(s) => s.len(),
        }
    }
}

/// What is checked before a push touches the database.
fn check_push(protocol: u32, mutations: usize) -> Result<()> {
    if protocol != PROTOCOL_VERSION {
        return Err(Error::BadRequest(format!(
            "protocol {} is not supported; this server speaks protocol {PROTOCOL_VERSION}",
            protocol
        )));
    }
    if mutations > MAX_BATCH_MUTATIONS {
        return Err(Error::TooLarge(format!(
            "{} mutations in one push; the limit is {MAX_BATCH_MUTATIONS}",
            mutations
        )));
    }
    Ok(())
}

/// Copies committed WAL pages back into the database file on its own thread
/// and connection. SQLite's automatic checkpoint runs inside the commit that
/// crosses the threshold, so one push in ~ten paid for copying everyone's
/// pages (14% of push time, measured with `perf` on
/// `cargo run --release -p ocop-tests --example store_push`). PASSIVE never
/// blocks the writer or readers; durability is unchanged (a commit is durable
/// once its WAL frames are synced, checkpointed or not).
struct Checkpointer {
    wake: Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Commits since the store opened (see [`CHECKPOINT_EVERY`]).
    commits: Arc<std::sync::atomic::AtomicU64>,
}

/// Commits a checkpoint waits for under steady writes. Pages that every
/// commit touches (the last leaf and the inner pages of each index, the seq)
/// are then copied into the database file and synced once for several
/// commits: one device pushing 100 new sheets after another, a checkpoint
/// every 4th commit against every commit: server CPU per sheet 37-41 against
/// 45-47 µs, 31,200-35,500 against 27,300-31,000 sheets/s (three runs each,
/// in turn; `docs/sync-protocol.md`).
const CHECKPOINT_EVERY: u64 = 4;

/// How long committed pages wait in the WAL for more commits: a quiet
/// server checkpoints this soon after its last commit.
const CHECKPOINT_QUIET: std::time::Duration = std::time::Duration::from_millis(50);

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
        // One pending wake-up is enough: a checkpoint covers every commit before it.
        let (wake, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = commits.clone();
        let thread = std::thread::Builder::new()
            .name("ocop-checkpoint".into())
            .spawn(move || {
                let checkpoint = || {
                    let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        r.get::<_, i64>(1)
                    });
                    match passive {
                        // Under steady writes the WAL only starts over when a write
                        // begins just after a checkpoint caught up, which may not
                        // happen: past the limit, writers wait once (RESTART) so
                        // it does, and journal_size_limit trims the file.
                        Ok(frames) if frames > WAL_RESTART_FRAMES => {
                            if let Err(e) =
                                conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                            {
                                tracing::warn!(error = %e, frames, "wal restart failed; retried after the next commit");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "wal checkpoint failed; retried after the next commit");
                        }
                    }
                };
                // Commits wake the thread; every `CHECKPOINT_EVERY` of them, or
                // once they stop for `CHECKPOINT_QUIET`, it checkpoints. Also on
                // a timer: a reader that held old pages may have stopped the
                // last run short.
                let mut covered = 0;
                loop {
                    let count = || counted.load(std::sync::atomic::Ordering::Relaxed);
                    let wait = if count() > covered {
                        CHECKPOINT_QUIET
                    } else {
                        std::time::Duration::from_secs(30)
                    };
                    match rx.recv_timeout(wait) {
                        Ok(()) => {
                            let now = count();
                            if now - covered >= CHECKPOINT_EVERY {
                                covered = now;
                                checkpoint();
                            }
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            covered = count();
                            checkpoint();
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            checkpoint();
                            return;
                        }
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            wake: Mutex::new(Some(wake)),
            thread: Mutex::new(Some(thread)),
            commits,
        })
    }

    /// After a commit: count it and wake the thread (a no-op if a wake-up is
    /// already pending).
    fn nudge(&self) {
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(w) = lock(&self.wake).as_ref() {
            let _ = w.try_send(());
        }
    }
}

impl Drop for SqliteStore {
    /// Stops the checkpoint thread after a last checkpoint, so a store reopened
    /// on the same file right after finds no other connection still working.
    fn drop(&mut self) {
        lock(&self.checkpointer.wake).take();
        if let Some(t) = lock(&self.checkpointer.thread).take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// zstd level of stored sheet bodies: the fastest positive level, about 6
/// fold smaller for sheet JSON, so a new sheet's snapshot and revision fill
/// a fraction of a page each instead of a page each (page writes bound the
/// push rate). Level -1 was tried (2026-12-03): twice as fast to compress a
/// 3 KB sheet and 71k fewer instructions per new sheet (callgrind), but its
/// bodies are ~20% larger and, in interleaved runs of the sync bench, push
/// N = 10,000 was slower (9,544 / 10,340 / 8,134 against 10,357 / 11,954 /
/// 8,601 sheets/s at level 1) and so was pull (24,968 / 26,931 / 22,169
/// against 29,085 / 37,908 / 24,778).
const BODY_ZSTD_LEVEL: i32 = 1;

/// The zstd dictionary sheet bodies are compressed with (schema 7), trained
/// on sample sheets of both bundled score sheets with random notes (`cargo
/// run --release -p ocop-tests --example sheet_samples`, which says how).
/// Sheets share their shape (keys, criterion codes, option ids), which a
/// single 3 KB body cannot teach zstd: with it a body is ~22% smaller and
/// compresses 1.3-1.7x and decompresses 1.2-2.2x as fast (`zstd -b1` on
/// 1,000-1,500 bodies, benchmark sheets and sheets with random notes). Its
/// id is in every frame compressed with it; a shipped dictionary never
/// changes (stored bodies need it): a better one is added under a new id.
static BODY_DICT: &[u8] = include_bytes!("sheet-bodies-1.dict");

/// The id `BODY_DICT` was trained with ("OCOP"), as frames record it.
const BODY_DICT_ID: u32 = 0x4F43_4F50;

static BODY_CDICT: std::sync::LazyLock<zstd::dict::EncoderDictionary<'static>> =
    std::sync::LazyLock::new(|| zstd::dict::EncoderDictionary::copy(BODY_DICT, BODY_ZSTD_LEVEL));

static BODY_DDICT: std::sync::LazyLock<zstd::dict::DecoderDictionary<'static>> =
    std::sync::LazyLock::new(|| zstd::dict::DecoderDictionary::copy(BODY_DICT));

/// Compression contexts kept for reuse: making one per body cost more than
/// compressing it. Shared, not one per thread: pushes are prepared on
/// whichever blocking thread runs them (hundreds when hundreds of devices
/// push at once), and a context per thread held its tables on every one.
static BODY_CCTX: Mutex<Vec<zstd::bulk::Compressor<'static>>> = Mutex::new(Vec::new());

/// Contexts kept when none is in use (more are made while more compress at
/// once, then dropped).
const BODY_CCTX_KEPT: usize = 4;

/// A sheet body as it is stored: zstd-compressed JSON (a BLOB).
fn pack_body(json: &[u8]) -> Result<Vec<u8>> {
    let kept = lock(&BODY_CCTX).pop();
    let mut c = match kept {
        Some(c) => c,
        None => zstd::bulk::Compressor::with_prepared_dictionary(&BODY_CDICT)
            .map_err(|e| Error::Internal(format!("zstd: {e}")))?,
    };
    let packed = c
        .compress(json)
        .map_err(|e| Error::Internal(format!("zstd: {e}")));
    let mut pool = lock(&BODY_CCTX);
    if pool.len() < BODY_CCTX_KEPT {
        pool.push(c);
    }
    packed
}

/// Bodies shorter than this are stored as their JSON TEXT: zstd's fixed cost
/// per frame (its entropy tables) is most of the work for a few hundred bytes
/// and saves little room (callgrind on the store_push example: the two
/// compressions were a third of an edit's instructions, the delta's
/// ~400 B frame a large part of that).
const SMALL_BODY: usize = 1024;

/// A sheet body as it is stored: small ones as TEXT, others packed (a BLOB).
/// Both read back through [`StoredBody`].
fn store_body(json: String) -> Result<rusqlite::types::Value> {
    use rusqlite::types::Value;
    if json.len() < SMALL_BODY {
        Ok(Value::Text(json))
    } else {
        pack_body(json.as_bytes()).map(Value::Blob)
    }
}

/// Decompresses a body written by [`pack_body`] (its frame records its size),
/// with this thread's reused context; a new sheet's body, compressed before
/// its seq was known, gets its seq in place (see `prepare.rs`).
pub fn unpack_body(b: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = String::new();
    unpack_body_into(b, &mut out)?;
    Ok(out.into_bytes())
}

/// [`unpack_body`] appended to `out` (bodies are JSON, so UTF-8, checked
/// once), through a buffer kept by the thread instead of new strings per
/// body (a pull page unpacks hundreds).
fn unpack_body_into(b: &[u8], out: &mut String) -> std::io::Result<()> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let (seq, frame) = match crate::prepare::split_seq_frame(b) {
        Some((seq, packed)) => (Some(seq), packed),
        None => (None, b),
    };
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        unpack_frame_into(frame, &mut s)?;
        let text = std::str::from_utf8(&s).map_err(std::io::Error::other)?;
        match seq {
            Some(seq) => crate::prepare::fill_into(text, seq, out),
            None => out.push_str(text),
        }
        // A huge body once must not stay held by the thread.
        if s.capacity() > 1 << 20 {
            *s = Vec::new();
        }
        Ok(())
    })
}

/// One zstd frame with its size, decompressed into `out` (replacing what it held).
fn unpack_frame_into(b: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
        static DCTX_DICT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let size = zstd::zstd_safe::get_frame_content_size(b)
        .ok()
        .flatten()
        .ok_or_else(|| std::io::Error::other("a stored body is not a zstd frame with its size"))?;
    // A damaged size field must not make us allocate gigabytes: bodies are
    // bounded by the request limit.
    let size = usize::try_from(size)
        .ok()
        .filter(|&n| n <= 64 << 20)
        .ok_or_else(|| std::io::Error::other("a stored body claims an impossible size"))?;
    // Bodies written before schema 7 have no dictionary.
    let dict = match zstd::zstd_safe::get_dict_id_from_frame(b).map(u32::from) {
        None => false,
        Some(BODY_DICT_ID) => true,
        Some(other) => {
            return Err(std::io::Error::other(format!(
                "a stored body needs zstd dictionary {other}, which this server does not have"
            )));
        }
    };
    let ctx = if dict { &DCTX_DICT } else { &DCTX };
    ctx.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(if dict {
                zstd::bulk::Decompressor::with_prepared_dictionary(&BODY_DDICT)?
            } else {
                zstd::bulk::Decompressor::new()?
            });
        }
        out.clear();
        out.reserve(size);
        d.as_mut()
            .expect("set above")
            .decompress_to_buffer(b, out)?;
        Ok(())
    })
}

/// A stored entity or revision body read back as its JSON text: TEXT as is
/// (every kind but sheets, and sheets written before schema 4), a BLOB
/// decompressed.
struct StoredBody(String);

impl rusqlite::types::FromSql for StoredBody {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::{FromSqlError, ValueRef};
        match v {
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| StoredBody(s.to_owned()))
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            ValueRef::Blob(b) => {
                let mut text = String::new();
                unpack_body_into(b, &mut text).map_err(|e| FromSqlError::Other(Box::new(e)))?;
                Ok(StoredBody(text))
            }
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn enum_from<T: DeserializeOwned>(s: &str) -> Result<T> {
    Ok(serde_json::from_value(serde_json::Value::String(
        s.to_string(),
    ))?)
}

fn uuid_col(s: String) -> Result<Uuid> {
    Uuid::parse_str(&s).map_err(|e| Error::Internal(format!("bad uuid in database: {e}")))
}

fn hash_password(password: &str) -> Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| Error::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("argon2: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random password of 16 url-safe characters.
pub fn generate_password() -> String {
    let bytes: [u8; 12] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn generate_code() -> String {
    let bytes: [u8; 8] = rand::random();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char)
        .collect();
    format!(
        "{}-{}",
        chars[..4].iter().collect::<String>(),
        chars[4..].iter().collect::<String>()
    )
}

/// Codes compare without case, dashes or spaces.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn require_admin(actor: &Principal) -> Result<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden("this needs an admin account".into()))
    }
}

// ------------------------------------------------------------------ helpers on a connection

fn current_seq(conn: &Connection) -> Result<u64> {
    let v: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))?;
    Ok(v as u64)
}

fn next_seq(conn: &Connection) -> Result<u64> {
    let v: i64 = conn.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'seq' RETURNING value",
        [],
        |r| r.get(0),
    )?;
    Ok(v as u64)
}

/// Scope columns of an entity row, used by pull visibility.
#[derive(Default)]
struct Scope {
    round: Option<Uuid>,
    product: Option<Uuid>,
    owner: Option<Uuid>,
}

fn entity_parts(e: &Entity) -> Result<(&'static str, String, Scope, String)> {
    let (kind, id, scope, body) = match e {
        Entity::User(u) => (
            "user",
            u.id.to_string(),
            Scope {
                owner: Some(u.id),
                ..Scope::default()
            },
            serde_json::to_string(u)?,
        ),
        Entity::Rubric(r) => (
            "rubric",
            format!("{}@{}", r.id, r.version),
            Scope::default(),
            serde_json::to_string(r)?,
        ),
        Entity::Round(r) => (
            "round",
            r.id.to_string(),
            Scope {
                round: Some(r.id),
                ..Scope::default()
            },
            serde_json::to_string(r)?,
        ),
        Entity::Roster(r) => (
            "roster",
            format!("{}:{}", r.round_id, r.user_id),
            Scope {
                round: Some(r.round_id),
                owner: Some(r.user_id),
                ..Scope::default()
            },
            serde_json::to_string(r)?,
        ),
        Entity::Product(p) => (
            "product",
            p.id.to_string(),
            Scope {
                round: Some(p.round_id),
                product: Some(p.id),
                ..Scope::default()
            },
            serde_json::to_string(p)?,
        ),
        Entity::Participation(p) => (
            "participation",
            format!("{}:{}", p.product_id, p.user_id),
            Scope {
                round: Some(p.round_id),
                product: Some(p.product_id),
                owner: Some(p.user_id),
            },
            serde_json::to_string(p)?,
        ),
        Entity::Sheet(s) => (
            "sheet",
            s.id.to_string(),
            Scope {
                round: Some(s.round_id),
                product: Some(s.product_id),
                owner: Some(s.owner_id),
            },
            serde_json::to_string(s)?,
        ),
        Entity::Decision(d) => (
            "decision",
            d.product_id.to_string(),
            Scope {
                round: Some(d.round_id),
                product: Some(d.product_id),
                ..Scope::default()
            },
            serde_json::to_string(d)?,
        ),
        Entity::Attachment(a) => (
            "attachment",
            a.sha256.clone(),
            Scope::default(),
            serde_json::to_string(a)?,
        ),
    };
    Ok((kind, id, scope, body))
}

fn put_entity(conn: &Connection, seq: u64, e: &Entity, owner_override: Option<Uuid>) -> Result<()> {
    let (kind, id, mut scope, body) = entity_parts(e)?;
    if owner_override.is_some() {
        scope.owner = owner_override;
    }
    conn.prepare_cached(
        "INSERT INTO entities (kind, id, seq, round_id, product_id, owner_id, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, round_id = excluded.round_id,
           product_id = excluded.product_id, owner_id = excluded.owner_id, body = excluded.body",
    )?
    .execute(params![
        kind,
        id,
        seq as i64,
        scope.round.map(|u| u.to_string()),
        scope.product.map(|u| u.to_string()),
        scope.owner.map(|u| u.to_string()),
        body
    ])?;
    Ok(())
}

/// Where a pull page ends: the cursor to ask from next, and whether more
/// follows (its rows went to [`SqliteStore::pull_rows`]'s `emit`).
struct RawPage {
    next_cursor: u64,
    has_more: bool,
}

/// A pull row's payload as [`SqliteStore::pull_rows`] hands it on: JSON
/// text, or a body as stored (see [`unpack_body`]), unpacked by whoever
/// takes it straight where it goes (a page's JSON is spliced, not copied
/// through a string per row).
enum RowBody<'a> {
    Json(&'a str),
    Stored(&'a [u8]),
}

impl RowBody<'_> {
    /// Appends the payload's JSON to `out`.
    fn append_to(&self, out: &mut String) -> Result<()> {
        match self {
            RowBody::Json(s) => out.push_str(s),
            RowBody::Stored(b) => unpack_body_into(b, out)?,
        }
        Ok(())
    }
}

/// Parses a stored payload back into its [`Entity`].
fn entity_from(kind: &str, body: &str) -> Result<Entity> {
    Ok(match kind {
        "user" => Entity::User(serde_json::from_str(body)?),
        "rubric" => Entity::Rubric(serde_json::from_str(body)?),
        "round" => Entity::Round(serde_json::from_str(body)?),
        "roster" => Entity::Roster(serde_json::from_str(body)?),
        "product" => Entity::Product(serde_json::from_str(body)?),
        "participation" => Entity::Participation(serde_json::from_str(body)?),
        "sheet" => Entity::Sheet(serde_json::from_str(body)?),
        "decision" => Entity::Decision(serde_json::from_str(body)?),
        "attachment" => Entity::Attachment(serde_json::from_str(body)?),
        other => return Err(Error::Internal(format!("unknown entity kind {other}"))),
    })
}

fn get_entity<T: DeserializeOwned>(conn: &Connection, kind: &str, id: &str) -> Result<Option<T>> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM entities WHERE kind = ?1 AND id = ?2")?
        .query_row(params![kind, id], |r| {
            r.get::<_, StoredBody>(0).map(|b| b.0)
        })
        .optional()?;
    match body {
        Some(b) => Ok(Some(serde_json::from_str(&b)?)),
        None => Ok(None),
    }
}

/// One row of the audit log (a pushed mutation's entry is its idempotency
/// row instead, schema 9: see `Store::audit`).
fn audit(
    conn: &Connection,
    actor: &Principal,
    action: &str,
    detail: serde_json::Value,
    seq: Option<u64>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, user_id, device_id, action, detail, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now(),
        actor.user.id.to_string(),
        actor.device_id.to_string(),
        action,
        detail.to_string(),
        seq.map(|s| s as i64)
    ])?;
    Ok(())
}

fn user_by_id(conn: &Connection, id: Uuid) -> Result<Option<UserInfo>> {
    get_entity(conn, "user", &id.to_string())
}

fn council_role(conn: &Connection, round: Uuid, user: Uuid) -> Result<Option<CouncilRole>> {
    let role: Option<String> = conn
        .prepare_cached(
            "SELECT role FROM roster WHERE round_id = ?1 AND user_id = ?2 AND active = 1",
        )?
        .query_row(params![round.to_string(), user.to_string()], |r| r.get(0))
        .optional()?;
    role.map(|r| enum_from(&r)).transpose()
}

fn new_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

fn create_device(conn: &Connection, user: &UserInfo, name: &str) -> Result<TokenResponse> {
    let (token, hash) = new_token();
    let device_id = Uuid::now_v7();
    conn.execute(
        "INSERT INTO devices (id, user_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![device_id.to_string(), user.id.to_string(), name, hash, now()],
    )?;
    Ok(TokenResponse {
        token,
        device_id,
        user: user.clone(),
    })
}

/// Gives a device of `user` a new token, keeping its id so that mutations
/// resent after the new sign-in are still recognised as duplicates. `None`
/// when the id is unknown or another user's (the caller makes a new device).
fn reattach_device(
    conn: &Connection,
    user: &UserInfo,
    device_id: Uuid,
    name: &str,
) -> Result<Option<TokenResponse>> {
    let row: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT user_id, revoked_at FROM devices WHERE id = ?1",
            params![device_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((owner, revoked_at)) = row else {
        return Ok(None);
    };
    if uuid_col(owner)? != user.id {
        return Ok(None);
    }
    if revoked_at.is_some() {
        // An admin revoked it (a lost phone): a password must not bring it back.
        return Err(Error::Unauthorized(format!(
            "device {device_id} was revoked by an admin; sign in without a device id to register this phone as a new device"
        )));
    }
    let (token, hash) = new_token();
    conn.execute(
        "UPDATE devices SET token_hash = ?1, name = ?2 WHERE id = ?3",
        params![hash, name, device_id.to_string()],
    )?;
    Ok(Some(TokenResponse {
        token,
        device_id,
        user: user.clone(),
    }))
}

// ------------------------------------------------------------------ push machinery

/// Why one mutation was not applied.
enum OpError {
    Reject(RejectCode, String),
    Store(Error),
    /// Only the first write of a new sheet can go without the mutation's
    /// answers (dropped while it waited, see `push_body`): decode it again.
    NeedWhole,
}

impl<E: Into<Error>> From<E> for OpError {
    fn from(e: E) -> Self {
        OpError::Store(e.into())
    }
}

fn reject(code: RejectCode, reason: impl Into<String>) -> OpError {
    OpError::Reject(code, reason.into())
}

impl From<Refusal> for OpError {
    fn from(r: Refusal) -> Self {
        OpError::Reject(r.code, r.reason)
    }
}

type OpResult<T> = std::result::Result<T, OpError>;

/// The seq of the running push transaction, taken only if something is written.
struct SeqAlloc {
    next: u64,
    used: bool,
}

impl SeqAlloc {
    fn take(&mut self) -> u64 {
        self.used = true;
        self.next
    }
}

struct PushCtx<'a, 'c> {
    conn: &'a Connection,
    /// The statements run for every sheet, taken once per push (see [`Hot`]).
    hot: &'a mut Hot<'c>,
    actor: &'a Principal,
    seq: &'a mut SeqAlloc,
    mutation_id: u64,
    store: &'a SqliteStore,
    cache: &'a mut BatchCache,
    /// The snapshot prepared for this mutation if its sheet is new.
    prepared: Option<&'a NewSheet>,
    /// The mutation's answers were dropped (see [`OpError::NeedWhole`]).
    stripped: bool,
}

/// The statements a push runs for each new sheet, taken from rusqlite's
/// statement cache once per push instead of once per sheet: the cache hashes
/// the SQL text to find a statement and again to put it back (~1,600
/// instructions a use, a tenth of the writer's work on a new sheet,
/// callgrind).
struct Hot<'c> {
    conn: &'c Connection,
    /// Each [`HotSql`]'s statement, once taken.
    kept: [Option<rusqlite::CachedStatement<'c>>; HotSql::ALL.len()],
}

/// Which of [`Hot`]'s statements.
#[derive(Clone, Copy)]
enum HotSql {
    Alias,
    InsertSheet,
    InsertRevision,
    Applied,
}

impl HotSql {
    const ALL: [HotSql; 4] = [
        HotSql::Alias,
        HotSql::InsertSheet,
        HotSql::InsertRevision,
        HotSql::Applied,
    ];

    fn sql(self) -> &'static str {
        match self {
            HotSql::Alias => "SELECT EXISTS (SELECT 1 FROM sheet_aliases WHERE alias_id = ?1)",
            HotSql::InsertSheet => {
                "INSERT INTO entities (kind, id, seq, round_id, product_id, owner_id, body)
                 VALUES ('sheet', ?1, ?2, ?3, ?4, ?5, ?6)"
            }
            HotSql::InsertRevision => {
                "INSERT INTO sheet_revisions (sheet_id, seq, device_id, mutation_id, body, delta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            }
            // Also the mutation's audit entry (schema 9, see `audit`).
            HotSql::Applied => {
                "INSERT INTO applied_mutations (device_id, mutation_id, body_hash, outcome, at, op)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            }
        }
    }
}

impl<'c> Hot<'c> {
    fn new(conn: &'c Connection) -> Hot<'c> {
        Hot {
            conn,
            kept: Default::default(),
        }
    }

    /// The statement, taken from the connection's cache the first time.
    fn get(&mut self, which: HotSql) -> Result<&mut rusqlite::CachedStatement<'c>> {
        let slot = &mut self.kept[which as usize];
        let stmt = match slot.take() {
            Some(s) => s,
            None => self.conn.prepare_cached(which.sql())?,
        };
        Ok(slot.insert(stmt))
    }
}

/// Reference data read once per push batch. Rounds and the roster are admin
/// data that no push operation changes, so within one batch's transaction
/// they cannot move; decisions and sheets are not kept here (products,
/// sheets and whether a product is finalized are kept longer, see
/// [`SqliteStore::product`], `sheet_cache` and [`SqliteStore::ensure_unlocked`]).
#[derive(Default)]
struct BatchCache {
    rounds: HashMap<Uuid, Arc<RoundInfo>>,
    roles: HashMap<Uuid, Option<CouncilRole>>,
}

impl BatchCache {
    fn round(&mut self, conn: &Connection, id: Uuid) -> OpResult<Arc<RoundInfo>> {
        if let Some(r) = self.rounds.get(&id) {
            return Ok(r.clone());
        }
        let r = Arc::new(load_round(conn, id)?);
        self.rounds.insert(id, r.clone());
        Ok(r)
    }

    /// The caller's role in `round` (the actor is fixed for a batch).
    fn my_role(&mut self, conn: &Connection, round: Uuid, me: Uuid) -> Result<Option<CouncilRole>> {
        if let Some(r) = self.roles.get(&round) {
            return Ok(*r);
        }
        let r = council_role(conn, round, me)?;
        self.roles.insert(round, r);
        Ok(r)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&writer)?;
        // Checkpoints run on their own thread (see `Checkpointer`).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Checkpointer::start(path)?;
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let reader = Connection::open(path)?;
            configure(&reader)?;
            // Readers stream pull pages once; a big cache per reader only
            // raised the server's peak RSS (2 MB each by default).
            reader.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
            readers.push(Mutex::new(reader));
        }
        let store = SqliteStore {
            writer: Mutex::new(writer),
            readers,
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            rubrics: Mutex::new(HashMap::new()),
            checkpointer,
            push_queue: Mutex::new(std::collections::VecDeque::new()),
            groups: std::sync::atomic::AtomicU64::new(0),
            grouped_pushes: std::sync::atomic::AtomicU64::new(0),
            group_failures: std::sync::atomic::AtomicU64::new(0),
            group_mutations: GROUP_MUTATIONS,
            sheets: Mutex::new(SheetCache::new(crate::sheet_cache::CAPACITY)),
            finalized: Mutex::new(HashMap::new()),
            products: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(PRODUCT_CACHE).expect("not zero"),
            )),
            preparing: (Mutex::new(0), std::sync::Condvar::new()),
            prepare_slots: std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        store.warm_up()?;
        Ok(store)
    }

    /// Makes at open what the first push would otherwise wait for: the
    /// compression dictionary digested and a context per core, the published
    /// rubrics parsed, the writer's per-sheet statements compiled, rayon's
    /// threads started. The first push of 100 new sheets after a start took
    /// twice as long as the next ones (tests/benches/sync.rs, N = 1,000).
    fn warm_up(&self) -> Result<()> {
        std::sync::LazyLock::force(&BODY_CDICT);
        std::sync::LazyLock::force(&BODY_DDICT);
        {
            let mut pool = lock(&BODY_CCTX);
            while pool.len() < self.prepare_slots.min(BODY_CCTX_KEPT) {
                pool.push(
                    zstd::bulk::Compressor::with_prepared_dictionary(&BODY_CDICT)
                        .map_err(|e| Error::Internal(format!("zstd: {e}")))?,
                );
            }
        }
        let writer = lock(&self.writer);
        let published: Vec<RubricRef> = writer
            .prepare("SELECT id, version FROM rubrics WHERE published = 1")?
            .query_map([], |r| {
                Ok(RubricRef {
                    id: r.get(0)?,
                    version: r.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        for r in &published {
            self.published_rubric(&writer, r)?;
        }
        for sql in HotSql::ALL.map(HotSql::sql) {
            writer.prepare_cached(sql)?;
        }
        // The newest products (as many as the writer keeps) and whether each
        // is finalized: a push of one member's sheets names a new product in
        // nearly every mutation (~0.01 ms each to read and decode).
        let products: Vec<String> = writer
            .prepare("SELECT body FROM entities WHERE kind = 'product' ORDER BY seq DESC LIMIT ?1")?
            .query_map([PRODUCT_CACHE as i64], |r| {
                r.get::<_, StoredBody>(0).map(|b| b.0)
            })?
            .collect::<rusqlite::Result<_>>()?;
        let decisions: Vec<String> = writer
            .prepare("SELECT body FROM entities WHERE kind = 'decision'")?
            .query_map([], |r| r.get::<_, StoredBody>(0).map(|b| b.0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(writer);
        let mut finalized: HashMap<Uuid, bool> = HashMap::new();
        for body in decisions {
            let d: DecisionInfo = serde_json::from_str(&body)?;
            finalized.insert(d.product_id, d.finalized);
        }
        let mut kept = lock(&self.products);
        let mut known = lock(&self.finalized);
        for body in products.iter().rev() {
            let p: ProductInfo = serde_json::from_str(body)?;
            known.insert(p.id, finalized.get(&p.id).copied().unwrap_or(false));
            kept.put(p.id, Arc::new(p));
        }
        drop((kept, known));
        rayon::current_num_threads();
        Ok(())
    }

    /// A free read connection, or (all busy) the next one in turn.
    fn read(&self) -> MutexGuard<'_, Connection> {
        for r in &self.readers {
            match r.try_lock() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        lock(&self.readers[i])
    }

    /// A published rubric, parsed once and cached (published versions never change).
    fn published_rubric(&self, conn: &Connection, r: &RubricRef) -> Result<Option<Arc<Rubric>>> {
        if let Some(hit) = lock(&self.rubrics).get(r) {
            return Ok(Some(hit.clone()));
        }
        let body: Option<String> = conn
            .prepare_cached(
                "SELECT body FROM rubrics WHERE id = ?1 AND version = ?2 AND published = 1",
            )?
            .query_row(params![r.id, r.version], |row| row.get(0))
            .optional()?;
        let Some(body) = body else { return Ok(None) };
        let rubric: Rubric = serde_json::from_str(&body)?;
        let rubric = Arc::new(rubric);
        lock(&self.rubrics).insert(r.clone(), rubric.clone());
        Ok(Some(rubric))
    }

    /// One pull page: the changes after `cursor` that `actor` may see, at
    /// most `limit` of them (never splitting one seq), each handed to `emit`
    /// in seq order as stored (see [`RowBody`]).
    fn pull_rows(
        &self,
        actor: &Principal,
        cursor: u64,
        limit: usize,
        mut emit: impl FnMut(u64, &'static str, RowBody<'_>) -> Result<()>,
    ) -> Result<RawPage> {
        let limit = limit.clamp(1, 10_000);
        let mut conn = self.read();
        let tx = conn.transaction()?;
        let vis = Visibility::load(&tx, actor)?;
        let server_seq = current_seq(&tx)?;
        if cursor > server_seq {
            // Echoing the cursor back would make a device restored against an
            // older backup skip every change up to its old cursor, silently.
            return Err(Error::CursorAhead { cursor, server_seq });
        }
        let mut emitted = 0usize;
        let mut last_seq = None;
        let mut has_more = false;
        {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, kind, round_id, product_id, owner_id, body FROM entities WHERE seq > ?1 ORDER BY seq",
            )?;
            let mut rows = stmt.query(params![cursor as i64])?;
            while let Some(row) = rows.next()? {
                let seq = row.get::<_, i64>(0)? as u64;
                if emitted >= limit && last_seq != Some(seq) {
                    has_more = true;
                    break;
                }
                let kind: String = row.get(1)?;
                let round = opt_uuid(row.get(2)?)?;
                let product = opt_uuid(row.get(3)?)?;
                let owner = opt_uuid(row.get(4)?)?;
                let body = match row.get_ref(5)? {
                    rusqlite::types::ValueRef::Text(t) => RowBody::Json(
                        std::str::from_utf8(t).map_err(|e| Error::Internal(e.to_string()))?,
                    ),
                    rusqlite::types::ValueRef::Blob(b) => RowBody::Stored(b),
                    _ => {
                        return Err(Error::Internal(
                            "a stored body is neither text nor blob".into(),
                        ));
                    }
                };
                let kind: &'static str = match kind.as_str() {
                    "user" => "user",
                    "rubric" => "rubric",
                    "round" => "round",
                    "roster" => "roster",
                    "product" => "product",
                    "participation" => "participation",
                    "sheet" => "sheet",
                    "decision" => "decision",
                    "attachment" => "attachment",
                    other => return Err(Error::Internal(format!("unknown entity kind {other}"))),
                };
                // The redacted copy of a sheet, when one is made.
                let redacted: String;
                let entity: Option<RowBody<'_>> = match kind {
                    "user" => {
                        if vis.admin || owner.is_some_and(|o| vis.users.contains(&o)) {
                            Some(body)
                        } else {
                            None
                        }
                    }
                    "rubric" => Some(body),
                    "round" | "roster" | "product" | "participation" => {
                        if vis.admin || round.is_some_and(|r| vis.rounds.contains_key(&r)) {
                            Some(body)
                        } else {
                            None
                        }
                    }
                    "sheet" => {
                        let (Some(r), Some(p), Some(o)) = (round, product, owner) else {
                            return Err(Error::Internal("sheet row without scope".into()));
                        };
                        match vis.sheet(r, p, o) {
                            SheetView::Hidden => None,
                            SheetView::Full => Some(body),
                            SheetView::Progress => {
                                let mut text = String::new();
                                body.append_to(&mut text)?;
                                let mut s: Box<SheetState> = serde_json::from_str(&text)?;
                                redact(&mut s);
                                redacted = serde_json::to_string(&s)?;
                                Some(RowBody::Json(&redacted))
                            }
                        }
                    }
                    "decision" => {
                        let (Some(r), Some(p)) = (round, product) else {
                            return Err(Error::Internal("decision row without scope".into()));
                        };
                        if vis.decision(r, p) { Some(body) } else { None }
                    }
                    "attachment" => {
                        if vis.admin || owner == Some(vis.me) {
                            Some(body)
                        } else {
                            None
                        }
                    }
                    _ => None,
                };
                if let Some(body) = entity {
                    emit(seq, kind, body)?;
                    emitted += 1;
                    last_seq = Some(seq);
                }
            }
        }
        let next_cursor = if has_more {
            last_seq.unwrap_or(cursor)
        } else {
            server_seq.max(cursor)
        };
        Ok(RawPage {
            next_cursor,
            has_more,
        })
    }

    /// What a push's mutations need of no database write (see `prepare.rs`):
    /// their hashes and the snapshots of the sheets they may create. `read`
    /// gives an item's mutation and hash.
    fn prepare<T: Sync>(
        &self,
        actor: &Principal,
        items: &[T],
        split: bool,
        one: impl Fn(&T, &Ctx<'_>) -> Result<(Option<Mutation>, Prepared)> + Sync,
    ) -> Result<Vec<(Option<Mutation>, Prepared)>> {
        // As many pushes are prepared at once as there are cores; the others
        // wait their turn holding only their text (when 500 devices push at
        // once, 500 decoded pushes and their snapshots were 50 MB more than
        // the decoded pushes alone). A second thread only when no other push
        // is being prepared: otherwise the other core is busy with that one.
        // That second thread takes no turn of its own, so up to cores + 1
        // threads prepare at once: counting it (a split push then waits for,
        // and takes, both turns) cost 500 devices pushing at once about a
        // quarter of their throughput (9,191 / 8,679 / 10,945 against
        // 13,452 / 11,596 / 12,201 sheets/s, interleaved runs of the sync
        // bench, 2026-12-03) for ~20% less peak RSS (95 against 118 MB).
        let (_preparing, others) = self.prepare_turn();
        let split = split && others == 0;
        let cx = self.prepare_ctx(actor);
        let cx: Ctx<'_> = PrepareCtx {
            owner: cx.owner,
            device: cx.device,
            rubric: &cx.rubric,
            pack: cx.pack,
        };
        prepare_all(items, split, |item| one(item, &cx))
    }

    /// Waits for a turn to prepare a push (see [`SqliteStore::prepare`]);
    /// gives it back when dropped, with how many others were preparing.
    fn prepare_turn(&self) -> (Preparing<'_>, usize) {
        let (n, turn) = &self.preparing;
        let mut n = lock(n);
        while *n >= self.prepare_slots {
            n = turn.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        (Preparing(&self.preparing), *n - 1)
    }

    /// A turn to prepare a push if no other push is being prepared, without
    /// waiting (a push that would have to wait is not streamed).
    fn only_turn(&self) -> Option<Preparing<'_>> {
        let mut n = lock(&self.preparing.0);
        (*n == 0).then(|| {
            *n = 1;
            Preparing(&self.preparing)
        })
    }

    /// What preparing a push of `actor` needs.
    fn prepare_ctx(
        &self,
        actor: &Principal,
    ) -> PrepareCtx<impl Fn(&RubricRef) -> Option<Arc<Rubric>> + Sync + '_, PackFn> {
        let rubric = |r: &RubricRef| {
            let kept = lock(&self.rubrics).get(r).cloned();
            // An error reading it is the writer's to report.
            kept.or_else(|| self.published_rubric(&self.read(), r).ok().flatten())
        };
        PrepareCtx {
            owner: actor.user.id,
            device: actor.device_id,
            rubric,
            pack: pack_body,
        }
    }

    /// A mutation of a streamed push read from its JSON text and prepared
    /// (hashed on its canonical JSON, as `push_body` hashes).
    fn prepare_text(&self, actor: &Principal, text: &str) -> Result<(Mutation, Prepared)> {
        crate::prepare::prepare_json(text, &self.prepare_ctx(actor))
    }

    /// [`SqliteStore::prepare`] of a decoded request (hashing each mutation's
    /// canonical JSON).
    fn prepare_request(&self, actor: &Principal, req: &PushRequest) -> Result<Vec<Prepared>> {
        let split = crate::prepare::worth_splitting(&req.mutations);
        let out = self.prepare(actor, &req.mutations, split, |m, cx| {
            crate::prepare::prepare_one((std::borrow::Cow::Borrowed(m), None), cx)
        })?;
        Ok(out.into_iter().map(|(_, p)| p).collect())
    }

    /// A large push when no other is being prepared: prepared from its first
    /// mutations on while `body` is still scanned for the rest, handed to
    /// the writer as soon as the scan is over, and prepared while it is
    /// written, by a helper thread and by the writer (see [`Streamed`]).
    /// The helper is one of rayon's pool threads, woken first thing, so that
    /// it is running by the time there is work for it: a thread started for
    /// each push was queued behind the one that started it in about a third
    /// of the pushes (its first chunk 2.8-4.1 ms late, the writer meanwhile
    /// preparing alone), a woken pool thread in a tenth to a third of them
    /// (`docs/sync-protocol.md`, fourth session). `None`, or a `BadRequest`:
    /// refused before anything was written; the caller asks the full decoder
    /// why.
    fn push_streamed(
        &self,
        actor: &Principal,
        body: axum::body::Bytes,
        turn: Preparing<'_>,
        started: std::time::Instant,
    ) -> Option<Result<(PushResponse, PushTiming)>> {
        let (give, take) = std::sync::mpsc::sync_channel::<Arc<Streamed>>(1);
        // `move`: a refusal below drops `give`, which lets the helper go
        // (the scope waits for it). The helper only ever blocks on `take`,
        // which is given (or dropped) before anything here waits for it.
        rayon::in_place_scope(move |sc| {
            sc.spawn(move |_| {
                // The turn is given back once every chunk is claimed:
                // waiting for the writer is not preparing.
                let _turn = turn;
                let Ok(s) = take.recv() else { return };
                let prep = |t: &str| self.prepare_text(actor, t);
                while s.fill_next(&prep) {}
            });
            // The helper starts on the first mutations while the scan looks
            // for the rest. It is gone only if it panicked; the writer then
            // prepares everything itself.
            let s = Arc::new(Streamed::new(body, MAX_BATCH_MUTATIONS));
            let _ = give.send(s.clone());
            let (protocol, n) = s.scan().ok()?;
            check_push(protocol, n).ok()?;
            // Every mutation found was recorded (the cap is the limit
            // `check_push` holds a push to); otherwise the full decoder.
            if s.len() != n {
                return None;
            }
            let read = started.elapsed();
            let r = self.enqueue(actor.clone(), Batch::Streamed(s.clone()));
            Some(r.map(|r| {
                // What the writer spent preparing, or waiting for what
                // the helper prepares, is the push's `prepare` step.
                let prepare = s.waited();
                let timing = PushTiming {
                    read,
                    prepare,
                    write: started.elapsed().saturating_sub(read + prepare),
                };
                tracing::debug!(
                    mutations = r.results.len(),
                    split_us = timing.read.as_micros() as u64,
                    prepare_us = timing.prepare.as_micros() as u64,
                    write_us = timing.write.as_micros() as u64,
                    "push timing (prepared while written)"
                );
                (r, timing)
            }))
        })
    }

    /// Queues a push for the writer and waits for its answer.
    fn enqueue(&self, actor: Principal, batch: Batch) -> Result<PushResponse> {
        let job = Arc::new(PushJob {
            work: Mutex::new(Some((actor, batch))),
            done: Mutex::new(None),
        });
        lock(&self.push_queue).push_back(job.clone());
        // Whoever holds the writer commits everything queued so far; a caller
        // that gets the writer after its push was done by another only reads
        // its answer. Holding the writer, a push not answered yet is still
        // queued (a group runs and answers entirely under the writer lock,
        // panics included); each group takes at least the oldest push.
        let mut conn = lock(&self.writer);
        loop {
            if let Some(r) = lock(&job.done).take() {
                return r;
            }
            if !lock(&self.push_queue).iter().any(|q| Arc::ptr_eq(q, &job)) {
                return Err(Error::Internal(
                    "this push was lost by the server before it was saved; send it again".into(),
                ));
            }
            self.commit_group(&mut conn);
        }
    }

    /// One push inside the caller's transaction: per-mutation savepoints,
    /// idempotency rows, outcomes, the seq counter, missing attachments.
    fn push_in<'m>(
        &self,
        tx: &Connection,
        actor: &Principal,
        n: usize,
        item: impl Fn(usize) -> Result<(&'m Mutation, &'m Prepared)>,
    ) -> Result<PushResponse> {
        let mut seq = SeqAlloc {
            next: current_seq(tx)? + 1,
            used: false,
        };
        let device = actor.device_id.to_string();
        let at = now();
        let mut cache = BatchCache::default();
        let mut hot = Hot::new(tx);
        let mut results = Vec::with_capacity(n);
        // An id above every id this device has stored, and not met earlier in
        // this push, cannot be a resend: it needs no idempotency look-up (one
        // statement less per mutation; devices number their mutations upwards,
        // so this is nearly every mutation).
        let used_below: Option<i64> = tx
            .prepare_cached("SELECT MAX(mutation_id) FROM applied_mutations WHERE device_id = ?1")?
            .query_row(params![device], |r| r.get(0))?;
        let mut met = std::collections::HashSet::with_capacity(n);
        for i in 0..n {
            let (m, prep) = item(i)?;
            let hash = prep.hash.as_str();
            // A prepared new sheet's answers may have been dropped while it
            // waited (see `push_body`): anything but that sheet's first write
            // decodes the whole mutation again from its text.
            let whole = || -> Result<std::borrow::Cow<'_, Mutation>> {
                Ok(match &prep.text {
                    Some(t) => std::borrow::Cow::Owned(serde_json::from_str(t)?),
                    None => std::borrow::Cow::Borrowed(m),
                })
            };
            // The mutation's text is only kept when it is quarantined.
            let body = || -> Result<String> { Ok(serde_json::to_string(&*whole()?)?) };
            // Seen before (a resend, or the same id twice in this batch)? The
            // writer lock makes look-then-insert safe; one write per mutation.
            let unseen = i64::try_from(m.id).is_ok_and(|id| used_below.is_none_or(|u| id > u))
                && met.insert(m.id);
            let prior: Option<(String, String)> = if unseen {
                None
            } else {
                tx.prepare_cached(
                    "SELECT body_hash, outcome FROM applied_mutations WHERE device_id = ?1 AND mutation_id = ?2",
                )?
                .query_row(params![device, m.id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
            };
            if let Some((old_hash, old_outcome)) = prior {
                let outcome = if old_hash == hash {
                    let original: Outcome = serde_json::from_str(&old_outcome)?;
                    Outcome::Duplicate {
                        original: Box::new(original.original().clone()),
                    }
                } else {
                    let reason = format!(
                        "mutation id {} was already used by this device for a different change",
                        m.id
                    );
                    quarantine_row(tx, actor, m, &body()?, RejectCode::IdReused, &reason)?;
                    Outcome::Rejected {
                        code: RejectCode::IdReused,
                        reason,
                    }
                };
                results.push(MutationResult { id: m.id, outcome });
                continue;
            }
            // A refused mutation must leave nothing behind. Answers and notes
            // (nearly every mutation) make all their checks before their first
            // write (see `SlotWrite`); the other operations run in a savepoint
            // that a refusal rolls back. A savepoint is not free: SQLite copies
            // every page it touches first (~15% of a push of new sheets).
            let savepoint = !matches!(m.op, Op::SetAnswers { .. } | Op::SetNote { .. });
            if savepoint {
                // Cached statements: SAVEPOINT/RELEASE run twice per mutation.
                tx.prepare_cached("SAVEPOINT mutation")?.execute([])?;
            }
            // First as prepared; a mutation whose answers were dropped and
            // that turns out to need them runs again whole, the ordinary way.
            // A sheet write checks everything before its first write, so the
            // first attempt has written nothing (and a refusal is then
            // quarantined with the whole mutation).
            let mut rerun: Option<Mutation> = None;
            let applied = loop {
                let (this, prepared, stripped) = match &rerun {
                    None => (m, prep.sheet.as_ref(), prep.text.is_some()),
                    Some(w) => (w, None, false),
                };
                let mut ctx = PushCtx {
                    hot: &mut hot,
                    cache: &mut cache,
                    conn: tx,
                    actor,
                    seq: &mut seq,
                    mutation_id: m.id,
                    store: self,
                    prepared,
                    stripped,
                };
                let applied = self.apply_mutation(&mut ctx, this);
                if stripped && matches!(applied, Err(OpError::Reject(..) | OpError::NeedWhole)) {
                    rerun = Some(whole()?.into_owned());
                    continue;
                }
                break applied;
            };
            if savepoint {
                if applied.is_err() {
                    tx.prepare_cached("ROLLBACK TO mutation")?.execute([])?;
                }
                tx.prepare_cached("RELEASE mutation")?.execute([])?;
            }
            let outcome = match applied {
                Ok(o) => o,
                Err(OpError::Reject(code, reason)) => {
                    quarantine_row(tx, actor, m, &body()?, code, &reason)?;
                    Outcome::Rejected { code, reason }
                }
                Err(OpError::Store(e)) => return Err(e),
                Err(OpError::NeedWhole) => {
                    return Err(Error::Internal(format!(
                        "mutation {} was applied without its answers",
                        m.id
                    )));
                }
            };
            let outcome_json = serde_json::to_string(&outcome)?;
            hot.get(HotSql::Applied)?.execute(params![
                device,
                m.id as i64,
                hash,
                outcome_json,
                at,
                op_name(&m.op)
            ])?;
            results.push(MutationResult { id: m.id, outcome });
        }
        if seq.used {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'seq'",
                params![seq.next as i64],
            )?;
        }
        let missing_attachments = missing_attachments(tx, actor.user.id)?;
        let server_seq = current_seq(tx)?;
        Ok(PushResponse {
            results,
            missing_attachments,
            server_seq,
        })
    }

    /// Group commit: runs the queued pushes (up to `group_mutations`
    /// mutations, at least one push) in one transaction with one commit (one
    /// WAL sync) for all, and answers each.
    fn commit_group(&self, conn: &mut Connection) {
        let jobs: Vec<Arc<PushJob>> = {
            let mut q = lock(&self.push_queue);
            let mut n = 0;
            let mut take = 0;
            for j in q.iter() {
                let k = lock(&j.work).as_ref().map_or(0, |(_, b)| b.len());
                if take > 0 && n + k > self.group_mutations {
                    break;
                }
                n += k;
                take += 1;
            }
            q.drain(..take).collect()
        };
        let work: Vec<(Arc<PushJob>, PushWork)> = jobs
            .into_iter()
            .filter_map(|j| {
                let w = lock(&j.work).take();
                w.map(|w| (j, w))
            })
            .collect();
        // If anything below panics, every push taken here still gets an
        // answer (an error) instead of leaving its caller waiting forever.
        let _guard = AnswerAll(&work);
        let answer = |j: &PushJob, r: Result<PushResponse>| *lock(&j.done) = Some(r);
        // No savepoint per push: an open savepoint keeps a copy of every page
        // the push touched (memory and time). A push that fails (a store error,
        // rare; a refused mutation is an answer, not a failure) is answered
        // with its error and the group is run again without it; a failed
        // BEGIN or COMMIT fails the pushes still waiting.
        let mut left: Vec<usize> = (0..work.len()).collect();
        while !left.is_empty() {
            let mut failed_at = None;
            lock(&self.sheets).discard();
            let attempt = (|| -> Result<Vec<PushResponse>> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut out = Vec::with_capacity(left.len());
                for (k, &i) in left.iter().enumerate() {
                    let (_, (actor, batch)) = &work[i];
                    let pushed = match batch {
                        Batch::Ready(req, prepared) => {
                            self.push_in(&tx, actor, req.mutations.len(), |i| {
                                Ok((&req.mutations[i], &prepared[i]))
                            })
                        }
                        Batch::Streamed(s) => {
                            let prep = |text: &str| self.prepare_text(actor, text);
                            self.push_in(&tx, actor, s.len(), |i| s.get(i, &prep))
                        }
                    };
                    match pushed {
                        Ok(r) => out.push(r),
                        Err(e) => {
                            failed_at = Some(k);
                            return Err(e);
                        }
                    }
                }
                tx.commit()?;
                Ok(out)
            })();
            self.settle_caches(attempt.is_ok());
            use std::sync::atomic::Ordering::Relaxed;
            match (attempt, failed_at) {
                (Ok(out), _) => {
                    self.checkpointer.nudge();
                    self.groups.fetch_add(1, Relaxed);
                    self.grouped_pushes.fetch_add(left.len() as u64, Relaxed);
                    for (&i, r) in left.iter().zip(out) {
                        answer(&work[i].0, Ok(r));
                    }
                    left.clear();
                }
                (Err(e), Some(k)) => {
                    // Its writes were undone with the group: the error is true.
                    // A streamed push that turns out not to decode is the
                    // device's mistake, answered with where it is wrong; the
                    // server is fine.
                    if matches!(e, Error::BadRequest(_)) {
                        tracing::debug!(error = %e, others = left.len() - 1, "a push refused inside a group commit; the others run again");
                    } else {
                        tracing::warn!(error = %e, pushes = left.len(), "a push failed inside a group commit; the others run again");
                    }
                    if left.len() > 1 {
                        self.group_failures.fetch_add(1, Relaxed);
                    }
                    answer(&work[left.remove(k)].0, Err(e));
                }
                (Err(e), None) => {
                    tracing::error!(error = %e, pushes = left.len(), "group commit could not begin or commit");
                    for &i in &left {
                        answer(
                            &work[i].0,
                            Err(Error::Internal(format!("push not saved: {e}"))),
                        );
                    }
                    left.clear();
                }
            }
        }
    }

    /// Refuses a change to a finalized product (a sheet write, a submit or
    /// reopen, a participation, a second finalize), from the writer's memory
    /// or the product's decision: a push of one member's sheets names a new
    /// product in nearly every mutation, and the decision was a look-up per
    /// sheet (~8% of the writer's work on a new one). Only the writer writes
    /// decisions (`finalize`, `release`), and what it knew is forgotten when
    /// it does (`apply_mutation`) and when a transaction is undone
    /// (`settle_caches`: a decision read inside it may have been its own
    /// write), so what is kept is what the writer's transaction sees.
    fn ensure_unlocked(&self, conn: &Connection, product: Uuid) -> OpResult<()> {
        let kept = lock(&self.finalized).get(&product).copied();
        let finalized = match kept {
            Some(f) => f,
            None => {
                let f = decision_of(conn, product)?.is_some_and(|d| d.finalized);
                lock(&self.finalized).insert(product, f);
                f
            }
        };
        if finalized {
            return Err(locked(product));
        }
        Ok(())
    }

    /// A product, from the writer's memory or the database. Products are
    /// never changed once created (nor deleted) and only the writer creates
    /// them, under the same lock, so what the writer read once stays true; a
    /// push of one member's sheets names a new product in nearly every
    /// mutation, so a cache per push missed every time (reading and decoding
    /// the product was a twentieth of a new sheet).
    fn product(&self, conn: &Connection, round: Uuid, id: Uuid) -> OpResult<Arc<ProductInfo>> {
        let kept = lock(&self.products).get(&id).cloned();
        match kept {
            Some(p) if p.round_id == round => Ok(p),
            _ => {
                let p = Arc::new(load_product(conn, round, id)?);
                lock(&self.products).put(id, p.clone());
                Ok(p)
            }
        }
    }

    /// After a writer transaction: its staged sheets enter the cache if it
    /// committed; if it was undone, they and whatever it read of decisions
    /// are forgotten.
    fn settle_caches(&self, committed: bool) {
        let mut c = lock(&self.sheets);
        if committed {
            c.commit()
        } else {
            c.discard();
            lock(&self.finalized).clear();
        }
    }

    /// Keeps up to `n` recently written sheets in the writer's memory
    /// (default `sheet_cache::CAPACITY`; 0 switches the cache off, for tests
    /// that compare both).
    pub fn with_sheet_cache(self, n: usize) -> SqliteStore {
        *lock(&self.sheets) = SheetCache::new(n);
        self
    }

    /// Sheet reads the writer served from its cache since open.
    pub fn sheet_cache_hits(&self) -> u64 {
        lock(&self.sheets).hits()
    }

    /// Caps a group commit at `n` mutations (default `GROUP_MUTATIONS`; tests
    /// use small caps to queue more pushes than one group takes).
    pub fn with_group_limit(mut self, n: usize) -> SqliteStore {
        self.group_mutations = n;
        self
    }

    /// (commits, pushes) made through [`Store::push_owned`] since open: how
    /// much group commit saved.
    pub fn group_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.groups.load(Relaxed), self.grouped_pushes.load(Relaxed))
    }

    /// Group attempts of two or more pushes undone because one push failed
    /// (each failure is answered and the rest run again).
    pub fn group_failures(&self) -> u64 {
        self.group_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn write_tx<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        self.checkpointer.nudge();
        Ok(out)
    }

    fn apply_mutation(&self, ctx: &mut PushCtx<'_, '_>, m: &Mutation) -> OpResult<Outcome> {
        let outcome = self.apply_op(ctx, m);
        // These write decisions (or try to, and are rolled back): what the
        // writer knew of decisions is forgotten.
        if matches!(m.op, Op::Finalize { .. } | Op::Release { .. }) {
            lock(&self.finalized).clear();
        }
        outcome
    }

    fn apply_op(&self, ctx: &mut PushCtx<'_, '_>, m: &Mutation) -> OpResult<Outcome> {
        match &m.op {
            Op::SetAnswers { sheet, answers } => set_answers(ctx, sheet, answers),
            Op::SetNote {
                sheet,
                note,
                base_rev,
            } => set_note(ctx, sheet, note, *base_rev),
            Op::Submit { sheet_id } => submit(ctx, *sheet_id),
            Op::Reopen { sheet_id, reason } => reopen(ctx, *sheet_id, reason),
            Op::SetParticipation {
                round_id,
                product_id,
                user_id,
                participation,
                reason,
            } => set_participation(
                ctx,
                *round_id,
                *product_id,
                *user_id,
                *participation,
                reason,
            ),
            Op::ResolveConflict {
                sheet_id,
                conflict_id,
                answer,
                note,
                base_rev,
            } => resolve_conflict(
                ctx,
                *sheet_id,
                *conflict_id,
                answer.as_ref(),
                note.as_deref(),
                *base_rev,
            ),
            Op::Finalize {
                round_id,
                product_id,
                consensus_sheet,
                expected_mean,
                note,
            } => finalize(
                ctx,
                *round_id,
                *product_id,
                *consensus_sheet,
                *expected_mean,
                note,
            ),
            Op::Release {
                round_id,
                product_id,
            } => release(ctx, *round_id, *product_id),
        }
    }
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A WAL that grew under load is cut back to this size when it starts over.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Every pushed mutation runs in a savepoint; SQLite copies each page a
    // savepoint first touches into a sub-journal, a temp file by default. In
    // memory it is bounded by one mutation's pages and saves ~20% of push time
    // (tests/benches/sync.rs). Crash safety does not depend on it: that is the WAL.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn migrate(conn: &Connection) -> Result<()> {
    loop {
        // IMMEDIATE, and the version read inside it: a second server opening
        // the same file waits, then sees the migration done instead of redoing it.
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // A negative version is not ours (or is damaged); cast, it would skip every migration.
        let done = usize::try_from(found).map_err(|_| {
            Error::Internal(format!(
                "database user_version is {found}; it is not an ocop-sync database or it is damaged"
            ))
        })?;
        let Some(sql) = MIGRATIONS.get(done) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (done + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = done + 1, "database migrated");
    }
}

// ------------------------------------------------------------------ sheet operations

fn resolve_sheet_id(conn: &Connection, id: Uuid) -> Result<Uuid> {
    let canonical: Option<String> = conn
        .prepare_cached("SELECT sheet_id FROM sheet_aliases WHERE alias_id = ?1")?
        .query_row(params![id.to_string()], |r| r.get(0))
        .optional()?;
    canonical.map_or(Ok(id), uuid_col)
}

/// [`load_sheet`] for a write: the writer's cached copy when the row has not
/// moved since that copy was committed (one statement either way; the body
/// is only read and decoded on a miss).
fn load_sheet_for_write(ctx: &PushCtx<'_, '_>, id: Uuid) -> Result<Option<SheetState>> {
    let mut cache = lock(&ctx.store.sheets);
    // The alias is resolved in the same statement (`resolve_sheet_id`): a
    // push of new sheets asks once per sheet, not twice.
    let row = ctx
        .conn
        .prepare_cached(
            "SELECT e.seq, e.body, e.id FROM entities e
             WHERE e.kind = 'sheet'
               AND e.id = COALESCE((SELECT sheet_id FROM sheet_aliases WHERE alias_id = ?1), ?1)",
        )?
        .query_row(params![id.to_string()], |r| {
            let seq = r.get::<_, i64>(0)? as u64;
            let id = Uuid::parse_str(r.get_ref(2)?.as_str()?).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            Ok(match cache.take(id, seq) {
                Some(s) => Ok(s),
                None => Err(r.get::<_, StoredBody>(1)?.0),
            })
        })
        .optional()?;
    match row {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(body)) => Ok(Some(serde_json::from_str(&body)?)),
    }
}

fn decision_of(conn: &Connection, product: Uuid) -> Result<Option<DecisionInfo>> {
    get_entity(conn, "decision", &product.to_string())
}

/// The refusal of a write to a finalized product's sheets.
fn locked(product: Uuid) -> OpError {
    reject(
        RejectCode::Locked,
        format!("product {product} is finalized by the chair; its sheets are locked"),
    )
}

fn load_round(conn: &Connection, id: Uuid) -> OpResult<RoundInfo> {
    get_entity(conn, "round", &id.to_string())?
        .ok_or_else(|| reject(RejectCode::NotFound, format!("round {id} is unknown")))
}

/// Sheet writes (and submit, reopen, resolve) in a closed round are locked:
/// the council's work for the round is over.
fn ensure_round_open(conn: &Connection, round: Uuid) -> OpResult<()> {
    if load_round(conn, round)?.status == RoundStatus::Closed {
        return Err(reject(
            RejectCode::Locked,
            format!("round {round} is closed"),
        ));
    }
    Ok(())
}

fn load_product(conn: &Connection, round: Uuid, id: Uuid) -> OpResult<ProductInfo> {
    let p: ProductInfo = get_entity(conn, "product", &id.to_string())?
        .ok_or_else(|| reject(RejectCode::NotFound, format!("product {id} is unknown")))?;
    if p.round_id != round {
        return Err(reject(
            RejectCode::NotFound,
            format!("product {id} is not in round {round}"),
        ));
    }
    Ok(p)
}

/// Whether the round's chair is recused for this product.
fn chair_recused(conn: &Connection, round: Uuid, product: Uuid) -> Result<bool> {
    let p: Option<String> = conn
        .prepare_cached(
            "SELECT p.participation FROM participations p
             JOIN roster r ON r.user_id = p.user_id AND r.round_id = ?1
             WHERE p.product_id = ?2 AND r.role = 'chair' AND r.active = 1",
        )?
        .query_row(params![round.to_string(), product.to_string()], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(p.as_deref() == Some("recused"))
}

/// The chair presides over a product; the vice-chair does when the chair is recused.
fn is_presiding(conn: &Connection, user: Uuid, round: Uuid, product: Uuid) -> Result<bool> {
    Ok(match council_role(conn, round, user)? {
        Some(role) => ocop_shared::council::presides(role, chair_recused(conn, round, product)?),
        None => false,
    })
}

fn require_presiding(
    conn: &Connection,
    actor: &Principal,
    round: Uuid,
    product: Uuid,
    what: &str,
) -> OpResult<()> {
    access::on_council(round, council_role(conn, round, actor.user.id)?)?;
    if is_presiding(conn, actor.user.id, round, product)? {
        Ok(())
    } else {
        Err(reject(
            RejectCode::Forbidden,
            format!(
                "only the chair of the round (the vice-chair when the chair is recused) can {what}"
            ),
        ))
    }
}

/// What [`sheet_for_write`] found that still has to be written, once the
/// caller has made every check of its own: the writes of a sheet operation
/// come after all its checks, so a refused one leaves nothing behind without a
/// savepoint (see `push_in`).
#[must_use]
enum SlotWrite {
    /// The sheet exists under the id the write names.
    None,
    /// A second device of the member started the same sheet offline: map its
    /// id onto the canonical sheet.
    Alias { alias: Uuid, canonical: Uuid },
    /// A new sheet: its slot is claimed by its snapshot row (schema 8).
    New,
}

impl SlotWrite {
    fn write(self, conn: &Connection) -> Result<()> {
        match self {
            SlotWrite::None => {}
            SlotWrite::Alias { alias, canonical } => {
                conn.prepare_cached(
                    "INSERT INTO sheet_aliases (alias_id, sheet_id) VALUES (?1, ?2)",
                )?
                .execute(params![alias.to_string(), canonical.to_string()])?;
            }
            // The slot is the snapshot row's (schema 8), written with it.
            SlotWrite::New => {}
        }
        Ok(())
    }
}

/// The checks of a sheet write that do not depend on the sheet: the writer
/// is a scoring member of the round's council, the round is open, the
/// product is the round's and not finalized. Gives the round and product.
fn may_write_sheets(
    ctx: &mut PushCtx<'_, '_>,
    key: &SheetKey,
) -> OpResult<(Arc<RoundInfo>, Arc<ProductInfo>)> {
    let conn = ctx.conn;
    let me = ctx.actor.user.id;
    let round = ctx.cache.round(conn, key.round_id)?;
    access::scoring_member(round.id, ctx.cache.my_role(conn, round.id, me)?)?;
    if round.status == RoundStatus::Closed {
        return Err(reject(
            RejectCode::Locked,
            format!("round {} is closed", round.id),
        ));
    }
    let product = ctx.store.product(conn, round.id, key.product_id)?;
    ctx.store.ensure_unlocked(conn, product.id)?;
    Ok((round, product))
}

/// Finds or makes (in memory) the sheet a write names; checks the writer may
/// write it. Writes nothing: the caller writes the returned [`SlotWrite`]
/// after its own checks.
fn sheet_for_write(ctx: &mut PushCtx<'_, '_>, key: &SheetKey) -> OpResult<(SheetState, SlotWrite)> {
    let conn = ctx.conn;
    let me = ctx.actor.user.id;
    let (round, product) = may_write_sheets(ctx, key)?;

    let sheet = if let Some(s) = load_sheet_for_write(ctx, key.sheet_id)? {
        if s.owner_id != me {
            return Err(reject(
                RejectCode::Forbidden,
                format!("sheet {} belongs to another council member", s.id),
            ));
        }
        if s.round_id != key.round_id || s.product_id != key.product_id {
            return Err(reject(
                RejectCode::Invalid,
                format!("sheet {} is for another round or product", s.id),
            ));
        }
        access::pinned_rubric(&s, &key.rubric)?;
        (s, SlotWrite::None)
    } else {
        let existing: Option<String> = conn
            .prepare_cached(
                "SELECT id FROM entities
                 WHERE kind = 'sheet' AND owner_id = ?3 AND round_id = ?1 AND product_id = ?2",
            )?
            .query_row(
                params![round.id.to_string(), product.id.to_string(), me.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(canonical) = existing {
            // A second device of the same member started the same sheet offline.
            let canonical = uuid_col(canonical)?;
            let s = get_entity(conn, "sheet", &canonical.to_string())?
                .ok_or_else(|| Error::Internal(format!("sheet {canonical} has no body")))?;
            access::pinned_rubric(&s, &key.rubric)?;
            (
                s,
                SlotWrite::Alias {
                    alias: key.sheet_id,
                    canonical,
                },
            )
        } else {
            if key.rubric.id != product.rubric.id {
                return Err(reject(
                    RejectCode::Invalid,
                    format!(
                        "product {} is scored on rubric {}, not {}",
                        product.id, product.rubric.id, key.rubric.id
                    ),
                ));
            }
            if ctx.store.published_rubric(conn, &key.rubric)?.is_none() {
                return Err(reject(
                    RejectCode::NotFound,
                    format!(
                        "rubric {}@{} is unknown or not published",
                        key.rubric.id, key.rubric.version
                    ),
                ));
            }
            (SheetState::empty(key, me), SlotWrite::New)
        }
    };
    // A submitted sheet is returned as is: its writers record every edit as a
    // flagged conflict (an offline edit from another device is never dropped).
    Ok(sheet)
}

trait CloneWithoutAnswers {
    fn clone_without_answers(&self) -> SheetState;
}

impl CloneWithoutAnswers for SheetState {
    /// A copy of everything but the answers (the part a revision keeps whole).
    fn clone_without_answers(&self) -> SheetState {
        SheetState {
            id: self.id,
            round_id: self.round_id,
            product_id: self.product_id,
            owner_id: self.owner_id,
            rubric: self.rubric.clone(),
            status: self.status,
            answers: BTreeMap::new(),
            note: self.note.clone(),
            note_rev: self.note_rev,
            reopen_reason: self.reopen_reason.clone(),
            revision: self.revision,
            conflicts: self.conflicts.clone(),
        }
    }
}

/// Stores a sheet: snapshot, revision row, attachment references. Takes the
/// sheet and gives back its id. `edited`: the sheet existed before this write,
/// so it is staged for the writer's cache (a sheet just created is not: most
/// are pushed whole once, and keeping them only churned memory: the server's
/// peak RSS at N = 10,000 rose from 27 to 47 MB when every new sheet was kept).
fn save_sheet(
    ctx: &mut PushCtx<'_, '_>,
    mut sheet: SheetState,
    seq: u64,
    edited: bool,
) -> Result<Uuid> {
    sheet.revision = seq;
    // One encoding serves the pull snapshot and, for a write that set every
    // answer, the revision row (the same compressed bytes).
    let packed = store_body(serde_json::to_string(&sheet)?)?;
    // The revision keeps what this write changed: every answer it set carries
    // `rev == seq` (answers are never removed), the other fields are whole.
    // An edit of one criterion stores a few hundred bytes, not the sheet again.
    // A write that set every answer (a new sheet, usually) changed the whole
    // sheet: its delta is the snapshot, already encoded.
    let delta = if sheet.answers.values().all(|a| a.rev == seq) {
        None
    } else {
        Some(store_body(serde_json::to_string(&SheetState {
            answers: sheet
                .answers
                .iter()
                .filter(|(_, a)| a.rev == seq)
                .map(|(k, a)| (k.clone(), a.clone()))
                .collect(),
            ..sheet.clone_without_answers()
        })?)?)
    };
    let hashes: BTreeSet<&String> = sheet
        .answers
        .values()
        .flat_map(|a| a.answer.attachments.iter())
        .collect();
    write_sheet_rows(ctx, &sheet, seq, &packed, delta.as_ref(), hashes, !edited)?;
    let id = sheet.id;
    if edited {
        lock(&ctx.store.sheets).stage(seq, sheet);
    }
    Ok(id)
}

/// The rows of a sheet write: its snapshot (what pull serves), its revision
/// (`delta`; `None`: the snapshot is the delta) and the photos it names.
/// `new`: the sheet did not exist, so it has no photo rows to replace.
fn write_sheet_rows<'h>(
    ctx: &mut PushCtx<'_, '_>,
    sheet: &SheetState,
    seq: u64,
    body: &rusqlite::types::Value,
    delta: Option<&rusqlite::types::Value>,
    attachments: impl IntoIterator<Item = &'h String>,
    new: bool,
) -> Result<()> {
    let conn = ctx.conn;
    let id = sheet.id.to_string();
    if !new {
        // The snapshot about to be replaced may be the sheet's first
        // revision, which is then completed first, from the sheet's first
        // revision row (an index seek; only a first revision is ever
        // incomplete, and most edits find it whole and write nothing here):
        // - no row (schema 10): the sheet was written once by a prepared
        //   first write; the snapshot becomes the row, with the write its
        //   body names;
        // - a `LAZY_REVISION` row: it gets its own copy of the snapshot.
        let first: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT rowid, delta FROM sheet_revisions WHERE sheet_id = ?1 ORDER BY seq LIMIT 1",
            )?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match first {
            None => {
                let (old, old_seq): (rusqlite::types::Value, i64) = conn
                    .prepare_cached(
                        "SELECT body, seq FROM entities WHERE kind = 'sheet' AND id = ?1",
                    )?
                    .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let origin = match &old {
                    rusqlite::types::Value::Blob(b) => crate::prepare::frame_origin(b),
                    _ => None,
                };
                let (mutation_id, device) = origin.ok_or_else(|| {
                    Error::Internal(format!(
                        "sheet {id} has no revision and its stored body names no first write"
                    ))
                })?;
                ctx.hot.get(HotSql::InsertRevision)?.execute(params![
                    id,
                    old_seq,
                    device.to_string(),
                    mutation_id as i64,
                    old,
                    1
                ])?;
            }
            Some((rowid, LAZY_REVISION)) => {
                conn.prepare_cached(
                    "UPDATE sheet_revisions SET delta = 1,
                       body = (SELECT body FROM entities WHERE kind = 'sheet' AND id = ?2)
                     WHERE rowid = ?1",
                )?
                .execute(params![rowid, id])?;
            }
            Some(_) => {}
        }
    }
    conn.prepare_cached(
        // A sheet's round, product and owner never change: setting them again
        // on an edit would rewrite their index entries for nothing.
        "INSERT INTO entities (kind, id, seq, round_id, product_id, owner_id, body)
         VALUES ('sheet', ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq, body = excluded.body",
    )?
    .execute(params![
        id,
        seq as i64,
        sheet.round_id.to_string(),
        sheet.product_id.to_string(),
        sheet.owner_id.to_string(),
        body
    ])?;
    // A new sheet written here (not prepared, see `write_prepared_sheet`,
    // which writes no revision row at all) has its snapshot as its first
    // revision: it is stored once, in the snapshot, and the revision row
    // points at it (`LAZY_REVISION`) until the sheet's next write copies it
    // over (above, in that write's transaction).
    let lazy = new && delta.is_none();
    let empty = rusqlite::types::Value::Blob(Vec::new());
    ctx.hot.get(HotSql::InsertRevision)?.execute(params![
        id,
        seq as i64,
        ctx.actor.device_id.to_string(),
        ctx.mutation_id as i64,
        if lazy { &empty } else { delta.unwrap_or(body) },
        if lazy { LAZY_REVISION } else { 1 }
    ])?;
    write_photos(ctx, &id, attachments, new)
}

/// The photos a sheet's write names (`new`: the sheet has none to replace).
fn write_photos<'h>(
    ctx: &mut PushCtx<'_, '_>,
    id: &str,
    attachments: impl IntoIterator<Item = &'h String>,
    new: bool,
) -> Result<()> {
    let conn = ctx.conn;
    if !new {
        conn.prepare_cached("DELETE FROM sheet_attachments WHERE sheet_id = ?1")?
            .execute(params![id])?;
    }
    for h in attachments {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO sheet_attachments (sheet_id, sha256) VALUES (?1, ?2)",
        )?
        .execute(params![id, h])?;
    }
    Ok(())
}

/// Refuses a write naming a photo its writer may not name (see `attachments.rs`).
fn photos_available<'h>(
    ctx: &PushCtx<'_, '_>,
    hashes: impl IntoIterator<Item = &'h String>,
) -> OpResult<()> {
    match crate::attachments::first_unavailable(ctx.conn, ctx.actor, hashes)? {
        Some(h) => Err(access::attachment_not_available(h).into()),
        None => Ok(()),
    }
}

fn is_fresh(current: Option<(u64, Uuid)>, base_rev: u64, device: Uuid) -> bool {
    match current {
        None => base_rev == 0,
        Some((rev, dev)) => rev == base_rev || dev == device,
    }
}

fn set_answers(
    ctx: &mut PushCtx<'_, '_>,
    key: &SheetKey,
    edits: &[AnswerEdit],
) -> OpResult<Outcome> {
    if let Some(prepared) = ctx.prepared
        && let Some(outcome) = write_prepared_sheet(ctx, key, prepared)?
    {
        return Ok(outcome);
    }
    let (mut sheet, slot) = sheet_for_write(ctx, key)?;
    if ctx.stripped {
        return Err(OpError::NeedWhole);
    }
    let rubric = ctx
        .store
        .published_rubric(ctx.conn, &sheet.rubric)?
        .ok_or_else(|| Error::Internal(format!("sheet {} pins a missing rubric", sheet.id)))?;
    for e in edits {
        check_answer(&rubric, &e.criterion, &e.answer)
            .map_err(|err| reject(RejectCode::Invalid, err.to_string()))?;
    }
    photos_available(ctx, edits.iter().flat_map(|e| &e.answer.attachments))?;
    // Every check passed: from here on nothing refuses.
    let edited = !matches!(slot, SlotWrite::New);
    slot.write(ctx.conn)?;
    let seq = ctx.seq.take();
    let device = ctx.actor.device_id;
    let submitted = sheet.status == SheetStatus::Submitted;
    // Which edits applied, by index: their names are only reported beside
    // a conflict (a copy of every criterion's name for nothing, otherwise).
    let mut applied = Vec::new();
    let mut criteria = Vec::new();
    let mut conflicts = Vec::new();
    // A sheet's first write with no base (nearly every new sheet) applies
    // every edit, the last of a criterion named twice winning, as the loop
    // below would: the map is built in one pass instead of 31 inserts.
    let first_write =
        sheet.answers.is_empty() && !submitted && edits.iter().all(|e| e.base_rev == 0);
    if first_write {
        sheet.answers = first_answers(edits, seq, device);
    }
    for (i, e) in edits.iter().enumerate().filter(|_| !first_write) {
        let current = sheet
            .answers
            .get(&e.criterion)
            .map(|a| (a.rev, a.device_id));
        // On a submitted sheet every edit is stale by definition: the owner
        // signed off on the values, so an edit waits as a conflict for a reopen.
        if !submitted && is_fresh(current, e.base_rev, device) {
            sheet.answers.insert(
                e.criterion.clone(),
                AnswerState {
                    answer: e.answer.clone(),
                    rev: seq,
                    device_id: device,
                },
            );
            applied.push(i);
        } else {
            let id = Uuid::now_v7();
            sheet.conflicts.push(ConflictRecord {
                id,
                field: ConflictField::Answer {
                    criterion: e.criterion.clone(),
                    theirs: e.answer.clone(),
                },
                device_id: device,
                mutation_id: ctx.mutation_id,
                base_rev: e.base_rev,
                current_rev: current.map_or(0, |c| c.0),
                seq,
                resolved: false,
            });
            criteria.push(e.criterion.clone());
            conflicts.push(id);
        }
    }
    let sheet_id = save_sheet(ctx, sheet, seq, edited)?;
    if conflicts.is_empty() {
        Ok(Outcome::Applied {
            seq,
            sheet_id: Some(sheet_id),
        })
    } else {
        Ok(Outcome::Conflict {
            seq,
            sheet_id,
            conflicts,
            criteria,
            applied: applied
                .into_iter()
                .map(|i| edits[i].criterion.clone())
                .collect(),
        })
    }
}

/// A sheet whose answers were checked and whose snapshot was encoded and
/// compressed before the writer lock (see `prepare.rs`), written as the new
/// sheet it nearly always is: its first write applies every edit (as
/// `set_answers` would), stored with its seq beside the compressed snapshot,
/// which is never made here. It is not looked for first: the snapshot row's
/// insert is the look-up, its id and its slot (member, round, product) being
/// unique, and a sheet that exists after all (`None`, nothing written) takes
/// the ordinary path, which finds it. That saves the writer two index
/// look-ups per new sheet (the id and the slot; the aliases, a small table,
/// are still asked): callgrind on the store_push example, `Store::push`
/// 523M -> 499M instructions for 2,000 new sheets and 100 edits.
fn write_prepared_sheet(
    ctx: &mut PushCtx<'_, '_>,
    key: &SheetKey,
    prepared: &NewSheet,
) -> OpResult<Option<Outcome>> {
    // The same checks, in the same order, as `sheet_for_write` makes before
    // it looks for the sheet: a refusal here is the one it would give.
    let (round, product) = may_write_sheets(ctx, key)?;
    // A rubric a new sheet may not pin: the ordinary path says why, or finds
    // the sheet (whose rubric is already pinned).
    if key.rubric.id != product.rubric.id
        || ctx.store.published_rubric(ctx.conn, &key.rubric)?.is_none()
    {
        return Ok(None);
    }
    // An id a member's second device gave the slot's sheet is an alias,
    // never a sheet of its own; the ordinary path resolves it. (Aliases are
    // few: a seek in a small table. Checked in the insert itself, as
    // `INSERT .. SELECT .. WHERE NOT EXISTS`, the insert cost twice as much.)
    let id = key.sheet_id.to_string();
    let alias: bool = ctx
        .hot
        .get(HotSql::Alias)?
        .query_row(params![id], |r| r.get(0))?;
    if alias {
        return Ok(None);
    }
    photos_available(ctx, &prepared.attachments)?;
    // The push's seq, marked used only once something is written with it.
    let seq = ctx.seq.next;
    let body = rusqlite::types::Value::Blob(crate::prepare::origin_frame(
        seq,
        ctx.mutation_id,
        ctx.actor.device_id,
        &prepared.packed,
    ));
    let inserted = ctx.hot.get(HotSql::InsertSheet)?.execute(params![
        id,
        seq as i64,
        round.id.to_string(),
        product.id.to_string(),
        ctx.actor.user.id.to_string(),
        body
    ]);
    match inserted {
        Ok(_) => {}
        // The id or the slot is taken: SQLite undid the statement, and the
        // sheet (or the member's other sheet for the slot) is found as usual.
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    let seq = ctx.seq.take();
    // No revision row: the snapshot is the sheet's one revision (schema 10).
    write_photos(ctx, &id, &prepared.attachments, true)?;
    Ok(Some(Outcome::Applied {
        seq,
        sheet_id: Some(key.sheet_id),
    }))
}

fn set_note(
    ctx: &mut PushCtx<'_, '_>,
    key: &SheetKey,
    note: &str,
    base_rev: u64,
) -> OpResult<Outcome> {
    let (mut sheet, slot) = sheet_for_write(ctx, key)?;
    let len = note.chars().count();
    if len > ocop_shared::score::MAX_NOTE_CHARS * 4 {
        return Err(reject(
            RejectCode::Invalid,
            format!(
                "the sheet note is {len} characters; the limit is {}",
                ocop_shared::score::MAX_NOTE_CHARS * 4
            ),
        ));
    }
    // Every check passed: from here on nothing refuses.
    let edited = !matches!(slot, SlotWrite::New);
    slot.write(ctx.conn)?;
    let seq = ctx.seq.take();
    let device = ctx.actor.device_id;
    // The note has no per-write device column; its last writer is found in the revisions.
    let last_writer: Option<String> = if sheet.note_rev == 0 {
        None
    } else {
        ctx.conn
            .prepare_cached(
                "SELECT device_id FROM sheet_revisions WHERE sheet_id = ?1 AND seq = ?2 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![sheet.id.to_string(), sheet.note_rev as i64], |r| r.get(0))
            .optional()?
    };
    let current = if sheet.note_rev == 0 {
        None
    } else {
        Some((
            sheet.note_rev,
            last_writer.map(uuid_col).transpose()?.unwrap_or_default(),
        ))
    };
    if sheet.status != SheetStatus::Submitted && is_fresh(current, base_rev, device) {
        sheet.note = note.to_string();
        sheet.note_rev = seq;
        let sheet_id = save_sheet(ctx, sheet, seq, edited)?;
        Ok(Outcome::Applied {
            seq,
            sheet_id: Some(sheet_id),
        })
    } else {
        let id = Uuid::now_v7();
        sheet.conflicts.push(ConflictRecord {
            id,
            field: ConflictField::Note {
                theirs: note.to_string(),
            },
            device_id: device,
            mutation_id: ctx.mutation_id,
            base_rev,
            current_rev: sheet.note_rev,
            seq,
            resolved: false,
        });
        let sheet_id = save_sheet(ctx, sheet, seq, edited)?;
        Ok(Outcome::Conflict {
            seq,
            sheet_id,
            conflicts: vec![id],
            criteria: vec!["note".into()],
            applied: vec![],
        })
    }
}

fn existing_sheet(ctx: &PushCtx<'_, '_>, id: Uuid) -> OpResult<SheetState> {
    load_sheet_for_write(ctx, id)?
        .ok_or_else(|| reject(RejectCode::NotFound, format!("sheet {id} is unknown")))
}

fn submit(ctx: &mut PushCtx<'_, '_>, sheet_id: Uuid) -> OpResult<Outcome> {
    let mut sheet = existing_sheet(ctx, sheet_id)?;
    if sheet.owner_id != ctx.actor.user.id {
        return Err(reject(
            RejectCode::Forbidden,
            "only the owner of a sheet can submit it",
        ));
    }
    let role = ctx
        .cache
        .my_role(ctx.conn, sheet.round_id, ctx.actor.user.id)?;
    access::scoring_member(sheet.round_id, role)?;
    ensure_round_open(ctx.conn, sheet.round_id)?;
    ctx.store.ensure_unlocked(ctx.conn, sheet.product_id)?;
    if sheet.status == SheetStatus::Submitted {
        return Ok(Outcome::Applied {
            seq: sheet.revision,
            sheet_id: Some(sheet.id),
        });
    }
    let round = load_round(ctx.conn, sheet.round_id)?;
    let rubric = ctx
        .store
        .published_rubric(ctx.conn, &sheet.rubric)?
        .ok_or_else(|| Error::Internal(format!("sheet {} pins a missing rubric", sheet.id)))?;
    let answers: BTreeMap<String, Answer> = sheet
        .answers
        .iter()
        .map(|(k, v)| (k.clone(), v.answer.clone()))
        .collect();
    let score = score_sheet(&rubric, &answers, round.level)
        .map_err(|e| reject(RejectCode::Invalid, e.to_string()))?;
    if !score.unanswered.is_empty() {
        return Err(reject(
            RejectCode::Invalid,
            format!(
                "{} criteria are unanswered: {}",
                score.unanswered.len(),
                score.unanswered.join(", ")
            ),
        ));
    }
    let seq = ctx.seq.take();
    sheet.status = SheetStatus::Submitted;
    let sheet_id = save_sheet(ctx, sheet, seq, true)?;
    Ok(Outcome::Applied {
        seq,
        sheet_id: Some(sheet_id),
    })
}

fn reopen(ctx: &mut PushCtx<'_, '_>, sheet_id: Uuid, reason: &str) -> OpResult<Outcome> {
    let mut sheet = existing_sheet(ctx, sheet_id)?;
    require_presiding(
        ctx.conn,
        ctx.actor,
        sheet.round_id,
        sheet.product_id,
        "reopen a sheet",
    )?;
    ensure_round_open(ctx.conn, sheet.round_id)?;
    ctx.store.ensure_unlocked(ctx.conn, sheet.product_id)?;
    if reason.trim().is_empty() {
        return Err(reject(RejectCode::Invalid, "reopening needs a reason"));
    }
    if sheet.status != SheetStatus::Submitted {
        return Err(reject(
            RejectCode::Invalid,
            format!("sheet {} is not submitted", sheet.id),
        ));
    }
    let seq = ctx.seq.take();
    sheet.status = SheetStatus::Reopened;
    sheet.reopen_reason = Some(reason.trim().to_string());
    let sheet_id = save_sheet(ctx, sheet, seq, true)?;
    Ok(Outcome::Applied {
        seq,
        sheet_id: Some(sheet_id),
    })
}

fn set_participation(
    ctx: &mut PushCtx<'_, '_>,
    round_id: Uuid,
    product_id: Uuid,
    user_id: Uuid,
    participation: Participation,
    reason: &str,
) -> OpResult<Outcome> {
    let conn = ctx.conn;
    let round = load_round(conn, round_id)?;
    let product = load_product(conn, round.id, product_id)?;
    let me = ctx.actor.user.id;
    access::on_council(round.id, ctx.cache.my_role(conn, round.id, me)?)?;
    if council_role(conn, round.id, user_id)?.is_none() {
        return Err(reject(
            RejectCode::NotFound,
            format!("user {user_id} is not on the council of round {round_id}"),
        ));
    }
    let is_chair = is_presiding(conn, me, round.id, product.id)?;
    let self_choice = me == user_id
        && matches!(
            participation,
            Participation::Abstained | Participation::Present
        );
    if !is_chair && !self_choice {
        return Err(reject(
            RejectCode::Forbidden,
            "a member may only abstain or return themselves; the chair recuses members",
        ));
    }
    ctx.store.ensure_unlocked(conn, product.id)?;
    let seq = ctx.seq.take();
    conn.prepare_cached(
        "INSERT INTO participations (product_id, user_id, participation) VALUES (?1, ?2, ?3)
         ON CONFLICT (product_id, user_id) DO UPDATE SET participation = excluded.participation",
    )?
    .execute(params![
        product.id.to_string(),
        user_id.to_string(),
        enum_str(&participation)
    ])?;
    let info = ParticipationInfo {
        round_id,
        product_id,
        user_id,
        participation,
        reason: reason.to_string(),
    };
    put_entity(conn, seq, &Entity::Participation(info), None)?;
    if council_role(conn, round.id, user_id)? == Some(CouncilRole::Chair) {
        // Who presides changed: the vice-chair's view of this product changed.
        conn.prepare_cached(
            "UPDATE entities SET seq = ?1 WHERE round_id = ?3 AND kind IN ('sheet', 'decision') AND product_id = ?2",
        )?
        .execute(params![seq as i64, product.id.to_string(), round.id.to_string()])?;
    }
    Ok(Outcome::Applied {
        seq,
        sheet_id: None,
    })
}

fn resolve_conflict(
    ctx: &mut PushCtx<'_, '_>,
    sheet_id: Uuid,
    conflict_id: Uuid,
    answer: Option<&Answer>,
    note: Option<&str>,
    base_rev: u64,
) -> OpResult<Outcome> {
    let mut sheet = existing_sheet(ctx, sheet_id)?;
    let me = ctx.actor.user.id;
    if sheet.owner_id == me {
        let role = ctx.cache.my_role(ctx.conn, sheet.round_id, me)?;
        access::scoring_member(sheet.round_id, role)?;
    } else {
        require_presiding(
            ctx.conn,
            ctx.actor,
            sheet.round_id,
            sheet.product_id,
            "resolve a conflict on another member's sheet",
        )?;
    }
    ensure_round_open(ctx.conn, sheet.round_id)?;
    ctx.store.ensure_unlocked(ctx.conn, sheet.product_id)?;
    if sheet.status == SheetStatus::Submitted {
        // The owner signed off on the current values; only a reopen changes them.
        return Err(reject(
            RejectCode::Invalid,
            format!(
                "sheet {} is submitted; the chair must reopen it before a conflict on it can be resolved",
                sheet.id
            ),
        ));
    }
    let Some(idx) = sheet.conflicts.iter().position(|c| c.id == conflict_id) else {
        return Err(reject(
            RejectCode::NotFound,
            format!("conflict {conflict_id} is not on sheet {}", sheet.id),
        ));
    };
    if sheet.conflicts[idx].resolved {
        return Err(reject(
            RejectCode::Invalid,
            format!("conflict {conflict_id} is already resolved"),
        ));
    }
    let seq = ctx.seq.take();
    let device = ctx.actor.device_id;
    match sheet.conflicts[idx].field.clone() {
        ConflictField::Answer { criterion, .. } => {
            let Some(answer) = answer else {
                return Err(reject(
                    RejectCode::Invalid,
                    "resolving an answer conflict needs the answer to keep",
                ));
            };
            let rubric = ctx
                .store
                .published_rubric(ctx.conn, &sheet.rubric)?
                .ok_or_else(|| Error::Internal("sheet pins a missing rubric".into()))?;
            check_answer(&rubric, &criterion, answer)
                .map_err(|e| reject(RejectCode::Invalid, e.to_string()))?;
            photos_available(ctx, &answer.attachments)?;
            let current = sheet.answers.get(&criterion).map_or(0, |a| a.rev);
            if current != base_rev {
                return Err(reject(
                    RejectCode::Invalid,
                    format!(
                        "criterion {criterion} changed since (revision {current}, not {base_rev}); pull and resolve again"
                    ),
                ));
            }
            sheet.answers.insert(
                criterion,
                AnswerState {
                    answer: answer.clone(),
                    rev: seq,
                    device_id: device,
                },
            );
        }
        ConflictField::Note { .. } => {
            let Some(note) = note else {
                return Err(reject(
                    RejectCode::Invalid,
                    "resolving a note conflict needs the note to keep",
                ));
            };
            if sheet.note_rev != base_rev {
                return Err(reject(
                    RejectCode::Invalid,
                    format!(
                        "the note changed since (revision {}, not {base_rev}); pull and resolve again",
                        sheet.note_rev
                    ),
                ));
            }
            sheet.note = note.to_string();
            sheet.note_rev = seq;
        }
    }
    sheet.conflicts[idx].resolved = true;
    let sheet_id = save_sheet(ctx, sheet, seq, true)?;
    Ok(Outcome::Applied {
        seq,
        sheet_id: Some(sheet_id),
    })
}

/// The sheets of one product.
///
/// Found through the round's sheets (a round has at most a few thousand): a
/// product index would take one random page write per new sheet (schema 4
/// dropped it).
fn product_sheets(conn: &Connection, round: Uuid, product: Uuid) -> Result<Vec<SheetState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM entities WHERE round_id = ?2 AND kind = 'sheet' AND product_id = ?1",
    )?;
    let rows = stmt.query_map(params![product.to_string(), round.to_string()], |r| {
        r.get::<_, StoredBody>(0).map(|b| b.0)
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::from_str(&r?)?);
    }
    Ok(out)
}

fn roster_entries(conn: &Connection, round: Uuid) -> Result<Vec<RosterEntry>> {
    let mut stmt =
        conn.prepare_cached("SELECT body FROM entities WHERE round_id = ?1 AND kind = 'roster'")?;
    let rows = stmt.query_map(params![round.to_string()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::from_str(&r?)?);
    }
    Ok(out)
}

fn finalize(
    ctx: &mut PushCtx<'_, '_>,
    round_id: Uuid,
    product_id: Uuid,
    consensus_sheet: Option<Uuid>,
    expected_mean: Option<ocop_shared::Centi>,
    note: &str,
) -> OpResult<Outcome> {
    let conn = ctx.conn;
    let round = load_round(conn, round_id)?;
    let product = load_product(conn, round.id, product_id)?;
    require_presiding(conn, ctx.actor, round.id, product.id, "finalize a product")?;
    ctx.store.ensure_unlocked(conn, product.id)?;
    let rubric = ctx
        .store
        .published_rubric(conn, &product.rubric)?
        .ok_or_else(|| {
            reject(
                RejectCode::NotFound,
                format!(
                    "rubric {}@{} is not published",
                    product.rubric.id, product.rubric.version
                ),
            )
        })?;
    let mut participation: HashMap<Uuid, Participation> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT user_id, participation FROM participations WHERE product_id = ?1",
        )?;
        let rows = stmt.query_map(params![product.id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for r in rows {
            let (u, p) = r?;
            participation.insert(uuid_col(u)?, enum_from(&p)?);
        }
    }
    let roster: Vec<Member> = roster_entries(conn, round.id)?
        .into_iter()
        .filter(|e| e.active)
        .map(|e| Member {
            user_id: e.user_id,
            name: e.full_name,
            role: e.role,
            participation: participation.get(&e.user_id).copied().unwrap_or_default(),
        })
        .collect();
    let sheets = product_sheets(conn, product.round_id, product.id)?;
    let score_of = |s: &SheetState| {
        let answers: BTreeMap<String, Answer> = s
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.answer.clone()))
            .collect();
        score_sheet(&rubric, &answers, round.level)
            .map_err(|e| reject(RejectCode::Invalid, format!("sheet {}: {e}", s.id)))
    };
    let mut scored = Vec::new();
    for s in sheets.iter().filter(|s| s.status == SheetStatus::Submitted) {
        scored.push((s.owner_id, score_of(s)?));
    }
    let consensus = match (round.council.mode, consensus_sheet) {
        (CouncilMode::Consensus, None) => {
            return Err(reject(
                RejectCode::Invalid,
                "this council scores by consensus: name the agreed sheet",
            ));
        }
        (CouncilMode::Consensus, Some(id)) => {
            let id = resolve_sheet_id(conn, id)?;
            let s = sheets.iter().find(|s| s.id == id).ok_or_else(|| {
                reject(
                    RejectCode::NotFound,
                    format!("sheet {id} is not a sheet of this product"),
                )
            })?;
            Some(score_of(s)?)
        }
        (CouncilMode::Individual, _) => None,
    };
    let member_sheets: Vec<MemberSheet<'_>> = scored
        .iter()
        .map(|(u, s)| MemberSheet {
            user_id: *u,
            score: s,
        })
        .collect();
    let result = council::aggregate(&CouncilInput {
        rubric: &rubric,
        level: round.level,
        config: &round.council,
        roster: &roster,
        sheets: &member_sheets,
        consensus: consensus.as_ref(),
    });
    if !result.quorum.met {
        return Err(reject(
            RejectCode::Invalid,
            format!(
                "quorum not met: {} of {} eligible members present, {} required{}",
                result.quorum.present,
                result.quorum.eligible,
                result.quorum.required,
                if result.quorum.chair_present {
                    ""
                } else {
                    ", chair absent"
                }
            ),
        ));
    }
    if !result.can_finalize {
        return Err(reject(
            RejectCode::Invalid,
            "the council result cannot be finalized yet",
        ));
    }
    if let Some(expected) = expected_mean
        && result.mean_total != Some(expected)
    {
        return Err(reject(
            RejectCode::Invalid,
            format!(
                "the server's mean {} differs from the expected mean {expected}",
                result
                    .mean_total
                    .map_or("(none)".to_string(), |m| m.to_string())
            ),
        ));
    }
    let seq = ctx.seq.take();
    let decision = DecisionInfo {
        round_id: round.id,
        product_id: product.id,
        finalized: true,
        released: false,
        result: Some(result),
        note: note.to_string(),
        decided_by: ctx.actor.user.id,
    };
    put_entity(conn, seq, &Entity::Decision(Box::new(decision)), None)?;
    Ok(Outcome::Applied {
        seq,
        sheet_id: None,
    })
}

fn release(ctx: &mut PushCtx<'_, '_>, round_id: Uuid, product_id: Uuid) -> OpResult<Outcome> {
    let conn = ctx.conn;
    let round = load_round(conn, round_id)?;
    let product = load_product(conn, round.id, product_id)?;
    require_presiding(conn, ctx.actor, round.id, product.id, "release results")?;
    let Some(mut decision) = decision_of(conn, product.id)?.filter(|d| d.finalized) else {
        return Err(reject(
            RejectCode::Invalid,
            format!("finalize product {} before releasing it", product.id),
        ));
    };
    let seq = ctx.seq.take();
    decision.released = true;
    put_entity(conn, seq, &Entity::Decision(Box::new(decision)), None)?;
    // Members may now read every sheet of the product: bring them past their cursors.
    conn.prepare_cached(
        "UPDATE entities SET seq = ?1 WHERE round_id = ?3 AND kind = 'sheet' AND product_id = ?2",
    )?
    .execute(params![
        seq as i64,
        product.id.to_string(),
        round.id.to_string()
    ])?;
    Ok(Outcome::Applied {
        seq,
        sheet_id: None,
    })
}

// ------------------------------------------------------------------ pull visibility

/// What one caller may see.
pub(crate) struct Visibility {
    admin: bool,
    me: Uuid,
    rounds: HashMap<Uuid, CouncilRole>,
    released: HashSet<Uuid>,
    /// Products where I am vice-chair and preside because the chair is recused.
    presiding: HashSet<Uuid>,
    /// Products I am recused from: as chair I then read them like a member
    /// (blind until release), since someone else presides.
    recused: HashSet<Uuid>,
    users: HashSet<Uuid>,
}

impl Visibility {
    pub(crate) fn load(conn: &Connection, actor: &Principal) -> Result<Visibility> {
        let me = actor.user.id;
        let mut v = Visibility {
            admin: actor.is_admin(),
            me,
            rounds: HashMap::new(),
            released: HashSet::new(),
            presiding: HashSet::new(),
            recused: HashSet::new(),
            users: HashSet::from([me]),
        };
        if v.admin {
            return Ok(v);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT round_id, role FROM roster WHERE user_id = ?1 AND active = 1",
        )?;
        let rows = stmt.query_map(params![me.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for r in rows {
            let (round, role) = r?;
            v.rounds.insert(uuid_col(round)?, enum_from(&role)?);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT product_id FROM participations WHERE user_id = ?1 AND participation = 'recused'",
        )?;
        let rows = stmt.query_map(params![me.to_string()], |r| r.get::<_, String>(0))?;
        for r in rows {
            v.recused.insert(uuid_col(r?)?);
        }
        for (round, role) in &v.rounds {
            if *role == CouncilRole::ViceChair {
                let mut stmt = conn.prepare_cached(
                    "SELECT p.product_id FROM participations p
                     JOIN roster r ON r.user_id = p.user_id AND r.round_id = ?1
                     WHERE r.role = 'chair' AND r.active = 1 AND p.participation = 'recused'",
                )?;
                let rows = stmt.query_map(params![round.to_string()], |r| r.get::<_, String>(0))?;
                for r in rows {
                    v.presiding.insert(uuid_col(r?)?);
                }
            }
            let mut stmt = conn.prepare_cached("SELECT user_id FROM roster WHERE round_id = ?1")?;
            let rows = stmt.query_map(params![round.to_string()], |r| r.get::<_, String>(0))?;
            for r in rows {
                v.users.insert(uuid_col(r?)?);
            }
            let mut stmt = conn.prepare_cached(
                "SELECT body FROM entities WHERE round_id = ?1 AND kind = 'decision'",
            )?;
            let rows = stmt.query_map(params![round.to_string()], |r| r.get::<_, String>(0))?;
            for r in rows {
                let d: DecisionInfo = serde_json::from_str(&r?)?;
                if d.released {
                    v.released.insert(d.product_id);
                }
            }
        }
        Ok(v)
    }

    /// How a sheet reads for this caller.
    pub(crate) fn sheet(&self, round: Uuid, product: Uuid, owner: Uuid) -> SheetView {
        if self.admin || owner == self.me {
            return SheetView::Full;
        }
        match self.rounds.get(&round) {
            None => SheetView::Hidden,
            Some(CouncilRole::Chair)
                if !self.recused.contains(&product) || self.released.contains(&product) =>
            {
                SheetView::Full
            }
            Some(CouncilRole::Chair) => SheetView::Hidden,
            Some(CouncilRole::Secretary) => SheetView::Progress,
            Some(CouncilRole::ViceChair | CouncilRole::Member) => {
                if self.released.contains(&product) || self.presiding.contains(&product) {
                    SheetView::Full
                } else {
                    SheetView::Hidden
                }
            }
        }
    }

    fn decision(&self, round: Uuid, product: Uuid) -> bool {
        if self.admin {
            return true;
        }
        match self.rounds.get(&round) {
            None => false,
            Some(CouncilRole::Chair) if !self.recused.contains(&product) => true,
            Some(CouncilRole::Secretary) => true,
            Some(_) => self.released.contains(&product) || self.presiding.contains(&product),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SheetView {
    Full,
    /// Status only: answers, note and conflicts removed (the secretary).
    Progress,
    Hidden,
}

/// Removes what the secretary must not read: progress is status, revision
/// and rubric only (`note_rev` would say whether a member wrote a note; at
/// 0 it is left off the wire).
pub(crate) fn redact(sheet: &mut SheetState) {
    sheet.answers.clear();
    sheet.note.clear();
    sheet.note_rev = 0;
    sheet.conflicts.clear();
    sheet.reopen_reason = None;
}

fn opt_uuid(s: Option<String>) -> Result<Option<Uuid>> {
    s.map(uuid_col).transpose()
}

// ------------------------------------------------------------------ the Store impl

impl Store for SqliteStore {
    fn ensure_admin(&self, password: Option<&str>) -> Result<Option<String>> {
        self.write_tx(|tx| {
            let admins: i64 =
                tx.query_row("SELECT COUNT(*) FROM users WHERE role = 'admin'", [], |r| {
                    r.get(0)
                })?;
            if admins > 0 {
                return Ok(None);
            }
            let (pw, generated) = match password {
                Some(p) => (p.to_string(), false),
                None => (generate_password(), true),
            };
            let user = UserInfo {
                id: Uuid::now_v7(),
                username: "admin".into(),
                full_name: "Quản trị viên".into(),
                role: AccountRole::Admin,
            };
            insert_user(tx, &user, Some(&pw))?;
            let seq = next_seq(tx)?;
            put_entity(tx, seq, &Entity::User(user.clone()), None)?;
            audit(
                tx,
                &Principal::system(),
                "create_admin",
                serde_json::json!({"user_id": user.id}),
                Some(seq),
            )?;
            Ok(generated.then_some(pw))
        })
    }

    fn install_bundled_rubrics(&self) -> Result<()> {
        for rubric in ocop_shared::bundled::scoreable() {
            let text = serde_json::to_string(&rubric)?;
            let exists: bool = self.read().query_row(
                "SELECT EXISTS (SELECT 1 FROM rubrics WHERE id = ?1 AND version = ?2)",
                params![rubric.id, rubric.version],
                |r| r.get(0),
            )?;
            if !exists {
                let sys = Principal::system();
                self.import_rubric(&sys, &text)?;
                self.publish_rubric(&sys, &rubric.id, rubric.version)?;
            }
        }
        Ok(())
    }

    fn server_seq(&self) -> Result<u64> {
        current_seq(&self.read())
    }

    fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let hash = sha256_hex(token.as_bytes());
        let conn = self.read();
        let row: Option<(String, String, String, String, String)> = conn
            .prepare_cached(
                "SELECT d.id, u.id, u.username, u.full_name, u.role FROM devices d
                 JOIN users u ON u.id = d.user_id
                 WHERE d.token_hash = ?1 AND d.revoked_at IS NULL",
            )?
            .query_row(params![hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((device, id, username, full_name, role)) = row else {
            return Ok(None);
        };
        Ok(Some(Principal {
            user: UserInfo {
                id: uuid_col(id)?,
                username,
                full_name,
                role: enum_from(&role)?,
            },
            device_id: uuid_col(device)?,
        }))
    }

    fn login(&self, req: &LoginRequest) -> Result<TokenResponse> {
        let row: Option<(String, Option<String>)> = self
            .read()
            .query_row(
                "SELECT id, password_hash FROM users WHERE username = ?1",
                // Usernames are stored lowercased; people type them as they like.
                params![req.username.trim().to_lowercase()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let wrong = || Error::Unauthorized("wrong username or password".into());
        let (id, hash) = row.ok_or_else(wrong)?;
        let hash = hash.ok_or_else(wrong)?;
        if !verify_password(&req.password, &hash) {
            return Err(wrong());
        }
        let id = uuid_col(id)?;
        self.write_tx(|tx| {
            let user = user_by_id(tx, id)?.ok_or_else(wrong)?;
            let reattached = match req.device_id {
                Some(device) => reattach_device(tx, &user, device, &req.device_name)?,
                None => None,
            };
            let reattach = reattached.is_some();
            let t = match reattached {
                Some(t) => t,
                None => create_device(tx, &user, &req.device_name)?,
            };
            let actor = Principal {
                user: user.clone(),
                device_id: t.device_id,
            };
            audit(
                tx,
                &actor,
                "login",
                serde_json::json!({"device_name": req.device_name, "reattached": reattach}),
                None,
            )?;
            Ok(t)
        })
    }

    fn enrol(&self, req: &EnrolRequest) -> Result<TokenResponse> {
        let code = normalize_code(&req.code);
        let now_secs = chrono::Utc::now().timestamp();
        self.write_tx(|tx| {
            let user: Option<String> = tx
                .query_row(
                    "UPDATE enrolment_codes SET used_at = ?1
                     WHERE code = ?2 AND used_at IS NULL AND expires_at > ?3 RETURNING user_id",
                    params![now(), code, now_secs],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(user) = user else {
                return Err(Error::Unauthorized(
                    "this enrolment code is unknown, already used or expired; ask the OCOP office for a new one".into(),
                ));
            };
            let user = user_by_id(tx, uuid_col(user)?)?
                .ok_or_else(|| Error::Internal("enrolment code of a missing user".into()))?;
            let t = create_device(tx, &user, &req.device_name)?;
            let actor = Principal {
                user: user.clone(),
                device_id: t.device_id,
            };
            audit(tx, &actor, "enrol", serde_json::json!({"device_name": req.device_name}), None)?;
            Ok(t)
        })
    }

    fn create_user(&self, actor: &Principal, req: &CreateUserRequest) -> Result<UserInfo> {
        require_admin(actor)?;
        let username = req.username.trim().to_lowercase();
        if username.is_empty()
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(Error::invalid(
                "a username is lowercase ascii letters, digits, dots, dashes or underscores",
            ));
        }
        if req.full_name.trim().is_empty() {
            return Err(Error::invalid("full_name must not be empty"));
        }
        let password_hash = req.password.as_deref().map(hash_password).transpose()?;
        self.write_tx(|tx| {
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)",
                params![username],
                |r| r.get(0),
            )?;
            if taken {
                return Err(Error::conflict(format!("username {username} is already taken")));
            }
            let user = UserInfo {
                id: Uuid::now_v7(),
                username: username.clone(),
                full_name: req.full_name.trim().to_string(),
                role: req.role,
            };
            tx.execute(
                "INSERT INTO users (id, username, full_name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![user.id.to_string(), user.username, user.full_name, enum_str(&user.role), password_hash, now()],
            )?;
            let seq = next_seq(tx)?;
            put_entity(tx, seq, &Entity::User(user.clone()), None)?;
            audit(tx, actor, "create_user", serde_json::json!({"user_id": user.id, "username": user.username}), Some(seq))?;
            Ok(user)
        })
    }

    fn list_users(&self, actor: &Principal) -> Result<Vec<UserInfo>> {
        require_admin(actor)?;
        let conn = self.read();
        let mut stmt = conn.prepare("SELECT body FROM entities WHERE kind = 'user' ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }

    fn user_by_username(&self, username: &str) -> Result<Option<UserInfo>> {
        let conn = self.read();
        let id: Option<String> = conn
            .query_row(
                "SELECT id FROM users WHERE username = ?1",
                params![username.trim().to_lowercase()],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => user_by_id(&conn, uuid_col(id)?),
            None => Ok(None),
        }
    }

    fn issue_enrolment_code(
        &self,
        actor: &Principal,
        req: &EnrolmentCodeRequest,
        server_url: &str,
    ) -> Result<EnrolmentCodeResponse> {
        require_admin(actor)?;
        let expires = chrono::Utc::now() + crate::access::enrolment_ttl(req)?;
        self.write_tx(|tx| {
            if user_by_id(tx, req.user_id)?.is_none() {
                return Err(Error::NotFound(format!("user {} is unknown", req.user_id)));
            }
            let code = generate_code();
            tx.execute(
                "INSERT INTO enrolment_codes (code, user_id, expires_at, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![normalize_code(&code), req.user_id.to_string(), expires.timestamp(), now()],
            )?;
            audit(tx, actor, "issue_enrolment_code", serde_json::json!({"user_id": req.user_id, "expires_at": expires.to_rfc3339()}), None)?;
            Ok(EnrolmentCodeResponse {
                qr_payload: format!("ocop-enrol:1?server={server_url}&code={code}"),
                code,
                expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
        })
    }

    fn list_devices(&self, actor: &Principal) -> Result<Vec<DeviceInfo>> {
        require_admin(actor)?;
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT d.id, d.user_id, u.username, d.name, d.created_at, d.revoked_at
             FROM devices d JOIN users u ON u.id = d.user_id ORDER BY d.created_at",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, user_id, username, name, created_at, revoked_at) = r?;
            out.push(DeviceInfo {
                id: uuid_col(id)?,
                user_id: uuid_col(user_id)?,
                username,
                name,
                created_at,
                revoked_at,
            });
        }
        Ok(out)
    }

    fn revoke_device(&self, actor: &Principal, device_id: Uuid) -> Result<()> {
        require_admin(actor)?;
        self.write_tx(|tx| {
            let n = tx.execute(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
                params![now(), device_id.to_string()],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("device {device_id} is unknown")));
            }
            audit(
                tx,
                actor,
                "revoke_device",
                serde_json::json!({"device_id": device_id}),
                None,
            )?;
            Ok(())
        })
    }

    fn import_rubric(&self, actor: &Principal, text: &str) -> Result<RubricImportResponse> {
        require_admin(actor)?;
        let loaded = load_rubric(text).map_err(|e| Error::Invalid {
            message: format!("the rubric is invalid: {}", e.messages().join("; ")),
            details: Some(serde_json::json!({ "issues": e.messages() })),
        })?;
        let rubric = loaded.rubric;
        if rubric.template {
            return Err(Error::invalid(
                "a template has no criteria to score; complete it before importing",
            ));
        }
        let body = serde_json::to_string(&rubric)?;
        let hash = sha256_hex(body.as_bytes());
        let warnings: Vec<_> = loaded
            .warnings
            .into_iter()
            .filter(|w| w.severity == Severity::Warning)
            .collect();
        self.write_tx(|tx| {
            let existing: Option<(String, bool)> = tx
                .query_row(
                    "SELECT body_hash, published FROM rubrics WHERE id = ?1 AND version = ?2",
                    params![rubric.id, rubric.version],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let published = match existing {
                Some((h, true)) if h != hash => {
                    return Err(Error::conflict(format!(
                        "rubric {}@{} is published and immutable; import the change as version {}",
                        rubric.id,
                        rubric.version,
                        rubric.version + 1
                    )));
                }
                Some((_, true)) => true,
                Some((_, false)) => {
                    tx.execute(
                        "UPDATE rubrics SET body = ?1, body_hash = ?2 WHERE id = ?3 AND version = ?4",
                        params![body, hash, rubric.id, rubric.version],
                    )?;
                    false
                }
                None => {
                    tx.execute(
                        "INSERT INTO rubrics (id, version, body, body_hash) VALUES (?1, ?2, ?3, ?4)",
                        params![rubric.id, rubric.version, body, hash],
                    )?;
                    false
                }
            };
            audit(tx, actor, "import_rubric", serde_json::json!({"id": rubric.id, "version": rubric.version}), None)?;
            Ok(RubricImportResponse {
                rubric: rubric.reference(),
                published,
                warnings,
            })
        })
    }

    fn publish_rubric(
        &self,
        actor: &Principal,
        id: &str,
        version: u32,
    ) -> Result<RubricImportResponse> {
        require_admin(actor)?;
        self.write_tx(|tx| {
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM rubrics WHERE id = ?1 AND version = ?2",
                    params![id, version],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(body) = body else {
                return Err(Error::NotFound(format!(
                    "rubric {id}@{version} is unknown; import it first"
                )));
            };
            let rubric: Rubric = serde_json::from_str(&body)?;
            let n = tx.execute(
                "UPDATE rubrics SET published = 1 WHERE id = ?1 AND version = ?2 AND published = 0",
                params![id, version],
            )?;
            if n == 1 {
                let seq = next_seq(tx)?;
                put_entity(tx, seq, &Entity::Rubric(Box::new(rubric.clone())), None)?;
                audit(
                    tx,
                    actor,
                    "publish_rubric",
                    serde_json::json!({"id": id, "version": version}),
                    Some(seq),
                )?;
            }
            Ok(RubricImportResponse {
                rubric: rubric.reference(),
                published: true,
                warnings: vec![],
            })
        })
    }

    fn list_rubrics(&self, actor: &Principal) -> Result<Vec<RubricSummary>> {
        require_admin(actor)?;
        let conn = self.read();
        let mut stmt = conn.prepare("SELECT body, published FROM rubrics ORDER BY id, version")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (body, published) = r?;
            let rubric: Rubric = serde_json::from_str(&body)?;
            out.push(RubricSummary {
                id: rubric.id,
                version: rubric.version,
                title_vi: rubric.title_vi,
                published,
            });
        }
        Ok(out)
    }

    fn create_round(&self, actor: &Principal, req: &CreateRoundRequest) -> Result<RoundInfo> {
        require_admin(actor)?;
        for (name, d) in [("starts_on", &req.starts_on), ("ends_on", &req.ends_on)] {
            if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
                return Err(Error::invalid(format!(
                    "{name} must be a date like 2026-11-28, not {d:?}"
                )));
            }
        }
        if req.ends_on < req.starts_on {
            return Err(Error::invalid("ends_on is before starts_on"));
        }
        if req.name.trim().is_empty() {
            return Err(Error::invalid("name must not be empty"));
        }
        let c = &req.council;
        if c.quorum_denominator == 0 || c.quorum_numerator > c.quorum_denominator {
            return Err(Error::invalid("quorum must be a fraction between 0 and 1"));
        }
        self.write_tx(|tx| {
            let round = RoundInfo {
                id: Uuid::now_v7(),
                name: req.name.trim().to_string(),
                level: req.level,
                province: req.province.clone(),
                starts_on: req.starts_on.clone(),
                ends_on: req.ends_on.clone(),
                status: RoundStatus::Open,
                council: req.council.clone(),
            };
            tx.execute(
                "INSERT INTO rounds (id) VALUES (?1)",
                params![round.id.to_string()],
            )?;
            let seq = next_seq(tx)?;
            put_entity(tx, seq, &Entity::Round(round.clone()), None)?;
            audit(
                tx,
                actor,
                "create_round",
                serde_json::json!({"round_id": round.id, "name": round.name}),
                Some(seq),
            )?;
            Ok(round)
        })
    }

    fn list_rounds(&self, actor: &Principal) -> Result<Vec<RoundInfo>> {
        require_admin(actor)?;
        let conn = self.read();
        let mut stmt =
            conn.prepare("SELECT body FROM entities WHERE kind = 'round' ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }

    fn set_round_status(
        &self,
        actor: &Principal,
        round_id: Uuid,
        status: RoundStatus,
    ) -> Result<RoundInfo> {
        require_admin(actor)?;
        self.write_tx(|tx| {
            let mut round: RoundInfo = get_entity(tx, "round", &round_id.to_string())?
                .ok_or_else(|| Error::NotFound(format!("round {round_id} is unknown")))?;
            if round.status == status {
                return Ok(round);
            }
            round.status = status;
            let seq = next_seq(tx)?;
            put_entity(tx, seq, &Entity::Round(round.clone()), None)?;
            audit(
                tx,
                actor,
                "set_round_status",
                serde_json::json!({"round_id": round.id, "status": status}),
                Some(seq),
            )?;
            Ok(round)
        })
    }

    fn set_roster(
        &self,
        actor: &Principal,
        round_id: Uuid,
        req: &SetRosterRequest,
    ) -> Result<Vec<RosterEntry>> {
        require_admin(actor)?;
        let chairs = req
            .members
            .iter()
            .filter(|m| m.role == CouncilRole::Chair)
            .count();
        if chairs > 1 {
            return Err(Error::invalid("a council has at most one chair"));
        }
        let mut seen = HashSet::new();
        for m in &req.members {
            if !seen.insert(m.user_id) {
                return Err(Error::invalid(format!(
                    "user {} is listed twice",
                    m.user_id
                )));
            }
        }
        self.write_tx(|tx| {
            let round: RoundInfo = get_entity(tx, "round", &round_id.to_string())?
                .ok_or_else(|| Error::NotFound(format!("round {round_id} is unknown")))?;
            let seq = next_seq(tx)?;
            // Everyone currently on the roster becomes inactive unless listed again.
            let mut entries: BTreeMap<Uuid, RosterEntry> = roster_entries(tx, round.id)?
                .into_iter()
                .map(|mut e| {
                    e.active = false;
                    (e.user_id, e)
                })
                .collect();
            for m in &req.members {
                let user = user_by_id(tx, m.user_id)?
                    .ok_or_else(|| Error::NotFound(format!("user {} is unknown", m.user_id)))?;
                if user.role != AccountRole::Assessor {
                    return Err(Error::invalid(format!("{} is not an assessor account", user.username)));
                }
                entries.insert(
                    user.id,
                    RosterEntry {
                        round_id: round.id,
                        user_id: user.id,
                        full_name: user.full_name.clone(),
                        role: m.role,
                        active: true,
                    },
                );
            }
            for e in entries.values() {
                tx.execute(
                    "INSERT INTO roster (round_id, user_id, role, active) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (round_id, user_id) DO UPDATE SET role = excluded.role, active = excluded.active",
                    params![round.id.to_string(), e.user_id.to_string(), enum_str(&e.role), e.active],
                )?;
                put_entity(tx, seq, &Entity::Roster(e.clone()), None)?;
                // New members need the users of their round, so restamp them.
                tx.execute(
                    "UPDATE entities SET seq = ?1 WHERE kind = 'user' AND id = ?2",
                    params![seq as i64, e.user_id.to_string()],
                )?;
            }
            // ... and the round's reference data and decisions (visibility changed).
            tx.execute(
                "UPDATE entities SET seq = ?1 WHERE round_id = ?2 AND kind IN ('round', 'product', 'participation', 'decision', 'sheet')",
                params![seq as i64, round.id.to_string()],
            )?;
            audit(tx, actor, "set_roster", serde_json::json!({"round_id": round.id, "members": req.members.len()}), Some(seq))?;
            Ok(entries.into_values().collect())
        })
    }

    fn create_product(&self, actor: &Principal, req: &CreateProductRequest) -> Result<ProductInfo> {
        require_admin(actor)?;
        if req.name.trim().is_empty() || req.code.trim().is_empty() {
            return Err(Error::invalid("a product needs a code and a name"));
        }
        self.write_tx(|tx| {
            if get_entity::<RoundInfo>(tx, "round", &req.round_id.to_string())?.is_none() {
                return Err(Error::NotFound(format!(
                    "round {} is unknown",
                    req.round_id
                )));
            }
            if self.published_rubric(tx, &req.rubric)?.is_none() {
                return Err(Error::invalid(format!(
                    "rubric {}@{} is unknown or not published",
                    req.rubric.id, req.rubric.version
                )));
            }
            let p = ProductInfo {
                id: Uuid::now_v7(),
                round_id: req.round_id,
                code: req.code.trim().to_string(),
                name: req.name.trim().to_string(),
                producer: req.producer.clone(),
                commune: req.commune.clone(),
                district: req.district.clone(),
                province: req.province.clone(),
                group: req.group.clone(),
                subgroup: req.subgroup.clone(),
                rubric: req.rubric.clone(),
            };
            tx.execute(
                "INSERT INTO products (id, round_id) VALUES (?1, ?2)",
                params![p.id.to_string(), p.round_id.to_string()],
            )?;
            let seq = next_seq(tx)?;
            put_entity(tx, seq, &Entity::Product(p.clone()), None)?;
            audit(
                tx,
                actor,
                "create_product",
                serde_json::json!({"product_id": p.id, "name": p.name}),
                Some(seq),
            )?;
            Ok(p)
        })
    }

    fn quarantine(&self, actor: &Principal) -> Result<Vec<QuarantineEntry>> {
        require_admin(actor)?;
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT id, at, user_id, device_id, mutation_id, mutation, code, reason FROM quarantine ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, at, user, device, mid, mutation, code, reason) = r?;
            out.push(QuarantineEntry {
                id,
                at,
                user_id: uuid_col(user)?,
                device_id: uuid_col(device)?,
                mutation_id: mid as u64,
                mutation: serde_json::from_str(&mutation)?,
                code: enum_from(&code)?,
                reason,
            });
        }
        Ok(out)
    }

    fn audit(&self, actor: &Principal, limit: usize) -> Result<Vec<AuditEntry>> {
        require_admin(actor)?;
        let conn = self.read();
        // The newest `limit` of each kind of entry, then merged newest first:
        // `audit` rows (everything but pushed mutations, and pushes before
        // schema 9) and pushed mutations' idempotency rows (schema 9).
        let mut stmt = conn.prepare(
            "SELECT id, at, user_id, device_id, action, detail, seq FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        type Written = (i64, String, String, String, String, String, Option<i64>);
        let rows = stmt.query_map(params![limit as i64], |r| Written::try_from(r))?;
        let mut written = Vec::new();
        for r in rows {
            let (id, at, user, device, action, detail, seq) = r?;
            written.push(AuditEntry {
                id,
                at,
                user_id: uuid_col(user)?,
                device_id: uuid_col(device)?,
                action,
                detail: serde_json::from_str(&detail)?,
                seq: seq.map(|s| s as u64),
            });
        }
        let mut stmt = conn.prepare(
            "SELECT m.rowid, m.at, d.user_id, m.device_id, m.op, m.mutation_id, m.outcome
             FROM applied_mutations m JOIN devices d ON d.id = m.device_id
             WHERE m.op IS NOT NULL ORDER BY m.rowid DESC LIMIT ?1",
        )?;
        type Pushed = (i64, String, String, String, String, i64, String);
        let rows = stmt.query_map(params![limit as i64], |r| Pushed::try_from(r))?;
        let mut pushed = Vec::new();
        for r in rows {
            let (rowid, at, user, device, op, mutation_id, outcome) = r?;
            let outcome: Outcome = serde_json::from_str(&outcome)?;
            let (status, seq) = match &outcome {
                Outcome::Applied { seq, .. } | Outcome::Conflict { seq, .. } => {
                    ("applied", Some(*seq))
                }
                Outcome::Rejected { .. } => ("rejected", None),
                Outcome::Duplicate { .. } => ("duplicate", None),
            };
            pushed.push(AuditEntry {
                // Below zero: apart from the `audit` table's ids.
                id: -rowid,
                at,
                user_id: uuid_col(user)?,
                device_id: uuid_col(device)?,
                action: format!("push:{op}"),
                detail: serde_json::json!({
                    "mutation_id": mutation_id as u64,
                    "outcome": outcome,
                    "status": status,
                }),
                seq,
            });
        }
        // Both lists are newest first; times are RFC 3339 in UTC with
        // milliseconds, so they order as text.
        let mut out = Vec::with_capacity(limit.min(written.len() + pushed.len()));
        let (mut w, mut p) = (
            written.into_iter().peekable(),
            pushed.into_iter().peekable(),
        );
        while out.len() < limit {
            let take_written = match (w.peek(), p.peek()) {
                (Some(a), Some(b)) => a.at >= b.at,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            out.extend(if take_written { w.next() } else { p.next() });
        }
        Ok(out)
    }

    fn export_round(&self, actor: &Principal, round_id: Uuid) -> Result<serde_json::Value> {
        require_admin(actor)?;
        let conn = self.read();
        let round: RoundInfo = get_entity(&conn, "round", &round_id.to_string())?
            .ok_or_else(|| Error::NotFound(format!("round {round_id} is unknown")))?;
        let mut by_kind: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        let mut stmt = conn.prepare(
            "SELECT kind, body FROM entities WHERE round_id = ?1 AND kind IN ('roster', 'product', 'participation', 'sheet', 'decision') ORDER BY kind, id",
        )?;
        let rows = stmt.query_map(params![round_id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, StoredBody>(1)?.0))
        })?;
        for r in rows {
            let (kind, body) = r?;
            by_kind
                .entry(kind)
                .or_default()
                .push(serde_json::from_str(&body)?);
        }
        let mut take = |k: &str| by_kind.remove(k).unwrap_or_default();
        Ok(serde_json::json!({
            "protocol": PROTOCOL_VERSION,
            "exported_at": now(),
            "round": round,
            "roster": take("roster"),
            "products": take("product"),
            "participations": take("participation"),
            "decisions": take("decision"),
            "sheets": take("sheet"),
        }))
    }

    fn push(&self, actor: &Principal, req: &PushRequest) -> Result<PushResponse> {
        check_push(req.protocol, req.mutations.len())?;
        let prepared = self.prepare_request(actor, req)?;
        let mut conn = lock(&self.writer);
        lock(&self.sheets).discard();
        let done = (|| -> Result<PushResponse> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let resp = self.push_in(&tx, actor, req.mutations.len(), |i| {
                Ok((&req.mutations[i], &prepared[i]))
            })?;
            tx.commit()?;
            Ok(resp)
        })();
        self.settle_caches(done.is_ok());
        let resp = done?;
        self.checkpointer.nudge();
        Ok(resp)
    }

    fn push_owned(&self, actor: Principal, req: PushRequest) -> Result<PushResponse> {
        check_push(req.protocol, req.mutations.len())?;
        // Prepared before queueing: on this thread, while the writer works.
        let prepared = self.prepare_request(&actor, &req)?;
        self.enqueue(actor, Batch::Ready(req, prepared))
    }

    /// Decodes the push on two threads when it is large (each mutation apart:
    /// the body is first split into its mutations' texts), with the rest of
    /// what is prepared before the writer lock.
    fn push_body(
        &self,
        actor: Principal,
        body: axum::body::Bytes,
    ) -> Result<(PushResponse, PushTiming)> {
        // Anything this does not read is refused by the full decoder, with
        // the path of what is wrong (or, should it read, pushed as decoded).
        // The whole body decoded at once: for a push this cannot take, with
        // the error a decoded push gets (a malformed mutation named first,
        // then the protocol, then the size).
        let started = std::time::Instant::now();
        let whole = |actor| crate::store::push_decoded(self, actor, &body, started);
        if body.len() >= crate::prepare::SPLIT_AT_BYTES
            && let Some(turn) = self.only_turn()
        {
            return match self.push_streamed(&actor, body.clone(), turn, started) {
                Some(Ok(done)) => Ok(done),
                // Refused before anything was written (see
                // `push_streamed`): the full decoder's error.
                None | Some(Err(Error::BadRequest(_))) => whole(actor),
                Some(Err(e)) => Err(e),
            };
        }
        // Split as a streamed push is (see `split_push`); each mutation is
        // then parsed strictly when it is prepared.
        let mut ranges = Vec::new();
        let Ok((protocol, n)) = ocop_shared::split::split_push(&body, |r| ranges.push(r)) else {
            return whole(actor);
        };
        if check_push(protocol, n).is_err() {
            // Refused before anything is prepared.
            return whole(actor);
        }
        let Ok(texts) = ranges
            .into_iter()
            .map(|r| std::str::from_utf8(&body[r]))
            .collect::<std::result::Result<Vec<&str>, _>>()
        else {
            return whole(actor);
        };
        let split_in = started.elapsed();
        let split = body.len() >= crate::prepare::SPLIT_AT_BYTES;
        // Each mutation read from its text as `prepare_json` reads it: a new
        // sheet's answers stay in the text while it waits for the writer.
        let read =
            |m: &&str, cx: &Ctx<'_>| crate::prepare::prepare_json(m, cx).map(|(m, p)| (Some(m), p));
        let prepared = match self.prepare(&actor, &texts, split, read) {
            Ok(p) => p,
            // A mutation that does not decode: the full decoder's error.
            Err(Error::BadRequest(_)) => return whole(actor),
            Err(e) => return Err(e),
        };
        let prepared_in = started.elapsed();
        let (mutations, preps) = prepared
            .into_iter()
            .map(|(m, p)| {
                m.map(|m| (m, p))
                    .ok_or_else(|| Error::Internal("a decoded mutation went missing".into()))
            })
            .collect::<Result<(Vec<_>, Vec<_>)>>()?;
        drop(texts);
        drop(body);
        let req = PushRequest {
            protocol,
            mutations,
        };
        let r = self.enqueue(actor, Batch::Ready(req, preps))?;
        let timing = PushTiming {
            read: split_in,
            prepare: prepared_in - split_in,
            write: started.elapsed() - prepared_in,
        };
        // Where a push's time went (RUST_LOG=ocop_sync_server=debug; also in
        // the response's Server-Timing header): read into its mutations'
        // texts, prepared, then waiting for and in the writer (see
        // `docs/sync-protocol.md`, "Measured performance").
        tracing::debug!(
            mutations = n,
            split_us = timing.read.as_micros() as u64,
            prepare_us = timing.prepare.as_micros() as u64,
            write_us = timing.write.as_micros() as u64,
            "push timing"
        );
        Ok((r, timing))
    }

    fn pull(&self, actor: &Principal, cursor: u64, limit: usize) -> Result<PullResponse> {
        let mut changes = Vec::new();
        let mut text = String::new();
        let page = self.pull_rows(actor, cursor, limit, |seq, kind, body| {
            text.clear();
            body.append_to(&mut text)?;
            changes.push(Change {
                seq,
                entity: entity_from(kind, &text)?,
            });
            Ok(())
        })?;
        Ok(PullResponse {
            changes,
            next_cursor: page.next_cursor,
            has_more: page.has_more,
        })
    }

    fn pull_json(&self, actor: &Principal, cursor: u64, limit: usize) -> Result<PageJson> {
        // The stored bodies are exactly the JSON of each entity's payload, so a
        // page is spliced, not parsed and re-encoded: the same bytes
        // `serde_json::to_string(&PullResponse)` gives (tested), at a fraction
        // of the cost.
        use std::fmt::Write as _;
        let mut out = String::from("{\"changes\":[");
        let mut first = true;
        let page = self.pull_rows(actor, cursor, limit, |seq, kind, body| {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{{\"seq\":{seq},\"entity\":{{\"{kind}\":");
            body.append_to(&mut out)?;
            out.push_str("}}");
            Ok(())
        })?;
        let _ = write!(
            out,
            "],\"next_cursor\":{},\"has_more\":{}}}",
            page.next_cursor, page.has_more
        );
        Ok(PageJson {
            json: out,
            next_cursor: page.next_cursor,
            has_more: page.has_more,
        })
    }

    fn attachment(&self, sha256: &str) -> Result<Option<AttachmentMeta>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                "SELECT sha256, size, content_type, received FROM attachments WHERE sha256 = ?1",
                params![sha256],
                |r| {
                    Ok(AttachmentMeta {
                        sha256: r.get(0)?,
                        size: r.get::<_, i64>(1)? as u64,
                        content_type: r.get(2)?,
                        received: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()?)
    }

    fn record_attachment(&self, actor: &Principal, meta: &AttachmentMeta) -> Result<()> {
        self.write_tx(|tx| {
            tx.execute(
                "INSERT INTO attachments (sha256, size, received, content_type, uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, received = excluded.received, content_type = excluded.content_type",
                params![meta.sha256, meta.size as i64, meta.received as i64, meta.content_type, actor.user.id.to_string()],
            )?;
            if meta.received == meta.size {
                let seq = next_seq(tx)?;
                let uploader: String = tx.query_row(
                    "SELECT uploaded_by FROM attachments WHERE sha256 = ?1",
                    params![meta.sha256],
                    |r| r.get(0),
                )?;
                put_entity(tx, seq, &Entity::Attachment(meta.clone()), Some(uuid_col(uploader)?))?;
                audit(tx, actor, "upload_attachment", serde_json::json!({"sha256": meta.sha256, "size": meta.size}), Some(seq))?;
            }
            Ok(())
        })
    }

    fn discard_attachment(&self, sha256: &str) -> Result<()> {
        self.write_tx(|tx| {
            tx.execute("DELETE FROM attachments WHERE sha256 = ?1", params![sha256])?;
            Ok(())
        })
    }

    fn sheet_revisions(&self, actor: &Principal, sheet_id: Uuid) -> Result<Vec<SheetState>> {
        let conn = self.read();
        let id = resolve_sheet_id(&conn, sheet_id)?;
        let Some(current) = get_entity::<SheetState>(&conn, "sheet", &id.to_string())? else {
            return Err(Error::NotFound(format!("sheet {sheet_id} is unknown")));
        };
        let vis = Visibility::load(&conn, actor)?;
        let view = vis.sheet(current.round_id, current.product_id, current.owner_id);
        if view == SheetView::Hidden {
            return Err(Error::NotFound(format!("sheet {sheet_id} is unknown")));
        }
        // A lazy revision's body is the snapshot (see `write_sheet_rows`).
        let mut stmt = conn.prepare(
            "SELECT CASE WHEN r.delta = 2 THEN e.body ELSE r.body END, r.delta
             FROM sheet_revisions r LEFT JOIN entities e ON e.kind = 'sheet' AND e.id = r.sheet_id
             WHERE r.sheet_id = ?1 ORDER BY r.id",
        )?;
        let rows = stmt.query_map(params![id.to_string()], |r| {
            Ok((r.get::<_, StoredBody>(0)?.0, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        let mut answers = BTreeMap::new();
        let mut rows = rows.peekable();
        if rows.peek().is_none() {
            // Written once (schema 10): its one revision is its snapshot.
            let mut s = current;
            if view == SheetView::Progress {
                redact(&mut s);
            }
            return Ok(vec![s]);
        }
        for r in rows {
            let (body, delta) = r?;
            let mut s: SheetState = serde_json::from_str(&body)?;
            // A delta row carries the answers it changed; fold them over the
            // answers so far. A whole row (delta = 0) replaces them.
            if delta == 0 {
                answers = std::mem::take(&mut s.answers);
            } else {
                answers.extend(std::mem::take(&mut s.answers));
            }
            s.answers = answers.clone();
            if view == SheetView::Progress {
                redact(&mut s);
            }
            out.push(s);
        }
        Ok(out)
    }

    fn table_counts(&self) -> Result<BTreeMap<String, u64>> {
        const TABLES: &[&str] = &[
            "users",
            "devices",
            "enrolment_codes",
            "rubrics",
            "rounds",
            "roster",
            "products",
            "participations",
            "sheets",
            "sheet_aliases",
            "sheet_revisions",
            "sheet_attachments",
            "attachments",
            "applied_mutations",
            "quarantine",
            "audit",
            "entities",
        ];
        let conn = self.read();
        let mut out = BTreeMap::new();
        for t in TABLES {
            // A sheet's slot is its snapshot row (schema 8).
            let from = match *t {
                "sheets" => "entities WHERE kind = 'sheet'",
                t => t,
            };
            let n: i64 =
                conn.query_row(&format!("SELECT COUNT(*) FROM {from}"), [], |r| r.get(0))?;
            out.insert((*t).to_string(), n as u64);
        }
        Ok(out)
    }

    fn can_read_attachment(&self, actor: &Principal, sha256: &str) -> Result<bool> {
        crate::attachments::may_read(&self.read(), actor, sha256)
    }
}

fn insert_user(conn: &Connection, user: &UserInfo, password: Option<&str>) -> Result<()> {
    let hash = password.map(hash_password).transpose()?;
    conn.execute(
        "INSERT INTO users (id, username, full_name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![user.id.to_string(), user.username, user.full_name, enum_str(&user.role), hash, now()],
    )?;
    Ok(())
}

fn quarantine_row(
    conn: &Connection,
    actor: &Principal,
    m: &Mutation,
    body: &str,
    code: RejectCode,
    reason: &str,
) -> Result<()> {
    tracing::info!(device = %actor.device_id, mutation = m.id, ?code, reason, "mutation quarantined");
    conn.prepare_cached(
        "INSERT INTO quarantine (at, user_id, device_id, mutation_id, mutation, code, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        now(),
        actor.user.id.to_string(),
        actor.device_id.to_string(),
        m.id as i64,
        body,
        enum_str(&code),
        reason
    ])?;
    Ok(())
}

fn missing_attachments(conn: &Connection, owner: Uuid) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT sa.sha256 FROM sheet_attachments sa
         JOIN entities s ON s.kind = 'sheet' AND s.id = sa.sheet_id
         LEFT JOIN attachments a ON a.sha256 = sa.sha256
         WHERE s.owner_id = ?1 AND (a.sha256 IS NULL OR a.received < a.size)
         ORDER BY sa.sha256",
    )?;
    let rows = stmt.query_map(params![owner.to_string()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::SetAnswers { .. } => "set_answers",
        Op::SetNote { .. } => "set_note",
        Op::Submit { .. } => "submit",
        Op::Reopen { .. } => "reopen",
        Op::SetParticipation { .. } => "set_participation",
        Op::ResolveConflict { .. } => "resolve_conflict",
        Op::Finalize { .. } => "finalize",
        Op::Release { .. } => "release",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_version(conn: &Connection, v: usize) {
        for sql in &MIGRATIONS[..v] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", v as i64).unwrap();
    }

    #[test]
    fn schema_3_sheet_slots_survive_every_migration_and_stay_unique_on_their_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("v3.sqlite3")).unwrap();
        at_version(&conn, 3);
        // Sheets as a schema-3 server wrote them: a slot row and its snapshot.
        let (round, owner) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
        let products: Vec<String> = (0..3).map(|_| Uuid::now_v7().to_string()).collect();
        for (k, p) in products.iter().enumerate() {
            let id = Uuid::now_v7().to_string();
            conn.execute(
                "INSERT INTO sheets (id, round_id, product_id, owner_id) VALUES (?1, ?2, ?3, ?4)",
                params![id, round, p, owner],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO entities (kind, id, seq, round_id, product_id, owner_id, body)
                 VALUES ('sheet', ?1, ?2, ?3, ?4, ?5, '{}')",
                params![id, k as i64 + 1, round, p, owner],
            )
            .unwrap();
        }
        let slots = |conn: &Connection, from: &str| -> Vec<(String, String, String, String)> {
            conn.prepare(&format!(
                "SELECT id, round_id, product_id, owner_id FROM {from} ORDER BY id"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
        };
        let before = slots(&conn, "sheets");

        migrate(&conn).unwrap();

        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(
            slots(&conn, "entities WHERE kind = 'sheet'"),
            before,
            "every slot kept"
        );
        // A slot is still unique: a second sheet for the same member and product is refused.
        let dup = conn.execute(
            "INSERT INTO entities (kind, id, seq, round_id, product_id, owner_id, body)
             VALUES ('sheet', ?1, 9, ?2, ?3, ?4, '{}')",
            params![Uuid::now_v7().to_string(), round, products[0], owner],
        );
        assert!(dup.is_err(), "duplicate slot accepted");
        // The slot lookup and the owner lookup use the owner-first index.
        for sql in [
            "SELECT id FROM entities WHERE kind = 'sheet' AND owner_id = ?3 AND round_id = ?1 AND product_id = ?2",
            "SELECT rowid FROM entities WHERE kind = 'sheet' AND owner_id = ?3",
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(params![round, products[0], owner], |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert!(
                plan.iter().any(|l| l.contains("entities_sheet_slot")),
                "{sql}: {plan:?}"
            );
        }
        let gone: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE name IN ('sheets', 'sheets_product', 'sheets_owner', 'entities_product')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            gone.is_empty(),
            "dropped tables and indexes remain: {gone:?}"
        );
    }

    #[test]
    fn a_packed_body_reads_back_as_its_json_and_text_bodies_read_as_is() {
        let json = r#"{"id":"x","note":"Hồ sơ đầy đủ, mẫu 7-3"}"#;
        let packed = pack_body(json.as_bytes()).unwrap();
        assert!(packed.len() < json.len() + 32);
        let conn = Connection::open_in_memory().unwrap();
        let read = |v: &dyn rusqlite::ToSql| -> String {
            conn.query_row("SELECT ?1", [v], |r| r.get::<_, StoredBody>(0))
                .unwrap()
                .0
        };
        assert_eq!(read(&packed), json);
        assert_eq!(read(&json), json);
        // A damaged blob is an error, not a panic or a huge allocation.
        let mut bad = packed.clone();
        bad.truncate(6);
        assert!(
            conn.query_row("SELECT ?1", [&bad], |r| r.get::<_, StoredBody>(0))
                .is_err()
        );
    }

    /// Bodies are compressed with the dictionary (its id in the frame) and
    /// come out smaller than without; bodies written before it (no
    /// dictionary) still read; a frame naming a dictionary this server does
    /// not have is an error that says so.
    #[test]
    fn bodies_use_the_dictionary_and_bodies_without_one_still_read() {
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_dict(BODY_DICT).map(u32::from),
            Some(BODY_DICT_ID),
            "the dictionary file was trained with BODY_DICT_ID"
        );
        let sheet = (0..31)
            .map(|k| format!(r#""1.{k}":{{"answer":{{"option":"b","note":"đạt yêu cầu {k}"}},"rev":{k},"d":0}}"#))
            .collect::<Vec<_>>()
            .join(",");
        let json =
            format!(r#"{{"answers":{{"devices":[],"criteria":{{{sheet}}}}},"status":"draft"}}"#);
        let packed = pack_body(json.as_bytes()).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&packed).map(u32::from),
            Some(BODY_DICT_ID)
        );
        let plain = zstd::bulk::compress(json.as_bytes(), BODY_ZSTD_LEVEL).unwrap();
        assert!(
            packed.len() < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        assert_eq!(unpack_body(&packed).unwrap(), json.as_bytes());
        assert_eq!(unpack_body(&plain).unwrap(), json.as_bytes());
        // The same frame naming another dictionary: its header's 4-byte
        // dictionary id (after the magic, the descriptor and, when the frame
        // is not single-segment, the window byte) changed.
        let fhd = packed[4];
        assert_eq!(fhd & 3, 3, "a 4-byte dictionary id");
        let at = 5 + usize::from(fhd & 0x20 == 0);
        let mut foreign = packed.clone();
        foreign[at..at + 4].copy_from_slice(&(BODY_DICT_ID + 1).to_le_bytes());
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&foreign).map(u32::from),
            Some(BODY_DICT_ID + 1)
        );
        let err = unpack_body(&foreign).unwrap_err().to_string();
        assert!(err.contains("dictionary"), "{err}");
    }
}
