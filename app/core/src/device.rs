//! The device: one local SQLite file plus the API a UI calls. Every user
//! action is one committed transaction that changes the local view *and*
//! appends its mutation to the outbox, so a killed app loses nothing it showed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ocop_shared::council::{
    self, CouncilInput, CouncilMode, CouncilResult, Member, MemberSheet, Participation,
};
use ocop_shared::rubric::Rubric;
use ocop_shared::score::{self, SheetScore};
use ocop_shared::wire::{
    Answer, AnswerEdit, ConflictField, CouncilRole, DecisionInfo, EnrolRequest, LoginRequest,
    Mutation, Op, ParticipationInfo, ProductInfo, RosterEntry, RoundInfo, SheetKey, SheetState,
    SheetStatus, UserInfo, paths,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::db;
use crate::error::{Error, Result};
use crate::model::{self, DECISION, PARTICIPATION, SHEET};
use crate::net::{self, Api, Token};
use crate::plan::Failure;
use crate::status::{Live, SyncState, SyncStatus};

pub(crate) const DB_FILE: &str = "ocop.sqlite";

/// Who this device is signed in as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub server_url: String,
    pub device_id: Uuid,
    pub user: UserInfo,
    #[serde(skip)]
    pub(crate) token: String,
}

/// One sheet as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SheetView {
    pub product: ProductInfo,
    /// `id` is nil while nothing has been answered yet.
    pub sheet: SheetState,
    /// Criteria whose latest edit has not reached the server.
    pub pending: Vec<String>,
    pub score: SheetScore,
    pub conflicts: Vec<ConflictView>,
    /// False once submitted or once the chair finalized the product.
    pub editable: bool,
}

/// A conflict with both versions side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictView {
    pub sheet_id: Uuid,
    /// The sheet's product: its rubric gives the options' words.
    pub product_id: Uuid,
    pub conflict_id: Uuid,
    /// `None` for a conflict on the sheet's general note.
    pub criterion: Option<String>,
    /// The value the server kept (current).
    pub current: Answer,
    pub current_rev: u64,
    /// The write that arrived with a stale base and was set aside.
    pub other: Answer,
    pub other_device: Uuid,
    /// Whether the set-aside write came from this device.
    pub other_is_mine: bool,
}

/// Which side of a conflict to keep.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case", tag = "keep", content = "value")]
pub enum Keep {
    Current,
    Other,
    Custom(Answer),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductItem {
    pub product: ProductInfo,
    pub my_status: Option<SheetStatus>,
    pub answered: usize,
    pub criteria: usize,
    pub decision: Option<DecisionInfo>,
    /// This user's sheet has changes that have not reached the server.
    pub unsynced: bool,
}

/// Something that did not reach the server and never will on its own: a
/// mutation the server rejected, an outbox row that no longer decodes, or a
/// photo the server refused. [`Device::retry_attention`] sends it again,
/// [`Device::dismiss_attention`] lets it go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttentionItem {
    /// The item's id (for a mutation, its mutation id).
    pub mutation_id: u64,
    /// `None` for a photo, or for a stored mutation that no longer decodes.
    pub mutation: Option<Mutation>,
    /// The stored text of a mutation that no longer decodes.
    pub raw: Option<String>,
    /// The SHA-256 of a photo the server refused.
    pub photo: Option<String>,
    pub code: String,
    pub reason: String,
    pub at: String,
}

pub struct Device {
    pub(crate) dir: PathBuf,
    pub(crate) db: Mutex<Connection>,
    pub(crate) http: reqwest::Client,
    pub(crate) live: Mutex<Live>,
    /// Woken on every local edit and by `nudge` (network came back).
    pub(crate) wake: Arc<Notify>,
    /// One sync at a time.
    pub(crate) gate: tokio::sync::Mutex<()>,
    /// Seconds the device clock is off by (tests of wrong phone clocks).
    pub(crate) clock_skew: std::sync::atomic::AtomicI64,
    /// Bumped by sign-in and sign-out under the database lock; a sync writes
    /// only while it still equals the value it started with, so a sync of
    /// the previous user can never write into the next user's data.
    pub(crate) session_generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("dir", &self.dir).finish()
    }
}

thread_local! {
    /// The clock skew of the device whose write runs on this thread (see
    /// [`Device::set_clock_skew`]); set for the span of one local write.
    static SKEW_SECONDS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// The device clock, RFC 3339. Only ever metadata: nothing is ordered by it.
pub(crate) fn now() -> String {
    let skew = SKEW_SECONDS.with(|s| s.get());
    (chrono::Utc::now() + chrono::Duration::seconds(skew))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs `f` with `now()` reading this device's (possibly wrong) clock.
pub(crate) fn with_clock<T>(skew: i64, f: impl FnOnce() -> T) -> T {
    let prev = SKEW_SECONDS.with(|s| s.replace(skew));
    let out = f();
    SKEW_SECONDS.with(|s| s.set(prev));
    out
}

pub(crate) fn meta_get(c: &Connection, key: &str) -> Result<Option<String>> {
    Ok(
        c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?,
    )
}

pub(crate) fn meta_set(c: &Connection, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub(crate) fn meta_del(c: &Connection, key: &str) -> Result<()> {
    c.execute("DELETE FROM meta WHERE key = ?1", [key])?;
    Ok(())
}

pub(crate) fn session_of(c: &Connection) -> Result<Option<Session>> {
    let (Some(url), Some(token), Some(dev), Some(user)) = (
        meta_get(c, "server_url")?,
        meta_get(c, "token")?,
        meta_get(c, "device_id")?,
        meta_get(c, "user")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Session {
        server_url: url,
        token,
        device_id: dev
            .parse()
            .map_err(|_| Error::Storage("bad device id".into()))?,
        user: serde_json::from_str(&user)?,
    }))
}

pub(crate) fn local<T: DeserializeOwned>(
    c: &Connection,
    kind: &str,
    key: &str,
) -> Result<Option<T>> {
    let s: Option<String> = c
        .query_row(
            "SELECT local_json FROM entities WHERE kind = ?1 AND key = ?2",
            params![kind, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match s {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

pub(crate) fn server<T: DeserializeOwned>(
    c: &Connection,
    kind: &str,
    key: &str,
) -> Result<Option<T>> {
    let s: Option<Option<String>> = c
        .query_row(
            "SELECT server_json FROM entities WHERE kind = ?1 AND key = ?2",
            params![kind, key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match s.flatten() {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

fn all_local<T: DeserializeOwned>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(serde_json::from_str(&r?)?);
    }
    Ok(out)
}

/// The entity's unacknowledged mutations, oldest first. A row that no longer
/// decodes is skipped (the next push sets it aside): it must not make the
/// sheet unreadable or uneditable.
pub(crate) fn pending_for(c: &Connection, kind: &str, key: &str) -> Result<Vec<Mutation>> {
    let mut st = c.prepare_cached(
        "SELECT body FROM outbox WHERE entity_kind = ?1 AND entity_key = ?2 ORDER BY id",
    )?;
    let rows = st.query_map(params![kind, key], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        if let Ok(m) = serde_json::from_str(&r?) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Work on this device that has not reached the server: queued mutations,
/// photos not uploaded yet, and items waiting in "needs attention".
pub(crate) fn unsynced(c: &Connection) -> Result<u64> {
    count(
        c,
        "SELECT (SELECT COUNT(*) FROM outbox)
              + (SELECT COUNT(*) FROM attachments WHERE uploaded = 0)
              + (SELECT COUNT(*) FROM attention)",
    )
}

pub(crate) fn count(c: &Connection, sql: &str) -> Result<u64> {
    Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
}

/// Appends a mutation with the next device-monotonic id. Answer edits are
/// coalesced into the newest outbox row when it is an unsent answer edit of
/// the same sheet: the order of mutations is unchanged (it is the last one),
/// ids stay monotonic, and a sheet typed offline goes up as one mutation
/// instead of thirty.
pub(crate) fn enqueue(tx: &Transaction<'_>, kind: &str, key: &str, op: Op) -> Result<u64> {
    if let Op::SetAnswers { sheet, answers } = &op {
        let last: Option<(i64, String, String, String, i64)> = tx
            .query_row(
                "SELECT id, entity_kind, entity_key, body, sent FROM outbox ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        if let Some((id, k, ky, body, 0)) = last
            && k == kind
            && ky == key
            && let Ok(mut m) = serde_json::from_str::<Mutation>(&body)
            && let Op::SetAnswers {
                sheet: s0,
                answers: a0,
            } = &mut m.op
            && s0 == sheet
        {
            {
                for e in answers {
                    // The newer value wins, but the base revision stays the
                    // older edit's: that is the server value the user built
                    // on. Taking the newer base (possibly a value another
                    // device wrote, pulled in between) would overwrite that
                    // value silently instead of flagging a conflict.
                    match a0.iter_mut().find(|x| x.criterion == e.criterion) {
                        Some(x) => {
                            let base = x.base_rev;
                            *x = e.clone();
                            x.base_rev = base;
                        }
                        None => a0.push(e.clone()),
                    }
                }
                m.client_time = Some(now());
                tx.execute(
                    "UPDATE outbox SET body = ?1 WHERE id = ?2 AND sent = 0",
                    params![serde_json::to_string(&m)?, id],
                )?;
                return Ok(id as u64);
            }
        }
    }
    let id: u64 = meta_get(tx, "next_mutation_id")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    meta_set(tx, "next_mutation_id", &(id + 1).to_string())?;
    let at = now();
    let m = Mutation {
        id,
        client_time: Some(at.clone()),
        op,
    };
    tx.execute(
        "INSERT INTO outbox(id, entity_kind, entity_key, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id as i64, kind, key, serde_json::to_string(&m)?, at],
    )?;
    Ok(id)
}

/// Recomputes the local view of one overlayable entity from its server
/// snapshot and its pending mutations.
pub(crate) fn refresh(c: &Connection, kind: &str, key: &str, me: Uuid, device: Uuid) -> Result<()> {
    let pending = pending_for(c, kind, key)?;
    let (json, id, round, product, owner, conflicts) = match kind {
        SHEET => {
            let owner: Uuid = key
                .rsplit('/')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(me);
            let v = model::sheet_view(server(c, kind, key)?, owner, &pending, device);
            match v {
                None => (None, None, None, None, None, 0),
                Some(s) => (
                    Some(serde_json::to_string(&s)?),
                    Some(s.id.to_string()),
                    Some(s.round_id),
                    Some(s.product_id),
                    Some(s.owner_id),
                    s.conflicts.iter().filter(|c| !c.resolved).count() as i64,
                ),
            }
        }
        PARTICIPATION => {
            let v: Option<ParticipationInfo> =
                model::participation_view(server(c, kind, key)?, &pending);
            match v {
                None => (None, None, None, None, None, 0),
                Some(p) => (
                    Some(serde_json::to_string(&p)?),
                    None,
                    Some(p.round_id),
                    Some(p.product_id),
                    Some(p.user_id),
                    0,
                ),
            }
        }
        DECISION => {
            let prev: Option<DecisionInfo> = local(c, kind, key)?;
            match model::decision_view(server(c, kind, key)?, prev, &pending, me) {
                None => (None, None, None, None, None, 0),
                Some(d) => (
                    Some(serde_json::to_string(&d)?),
                    None,
                    Some(d.round_id),
                    Some(d.product_id),
                    None,
                    0,
                ),
            }
        }
        _ => return Ok(()),
    };
    match json {
        None => {
            c.execute(
                "DELETE FROM entities WHERE kind = ?1 AND key = ?2 AND server_json IS NULL",
                params![kind, key],
            )?;
        }
        Some(j) => {
            c.execute(
                "INSERT INTO entities(kind, key, id, round_id, product_id, owner_id, local_json, open_conflicts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(kind, key) DO UPDATE SET id = excluded.id, local_json = excluded.local_json,
                   open_conflicts = excluded.open_conflicts",
                params![
                    kind,
                    key,
                    id,
                    round.map(|u| u.to_string()),
                    product.map(|u| u.to_string()),
                    owner.map(|u| u.to_string()),
                    j,
                    conflicts
                ],
            )?;
        }
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock must not brick the device: the database
    // itself is transactional, so the guarded value is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Device {
    /// Opens (or creates) the device's data directory and database.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Device> {
        let dir = data_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(dir.join("attachments"))?;
        let conn = db::open(&dir.join(DB_FILE))?;
        Ok(Device {
            dir,
            db: Mutex::new(conn),
            http: net::client(),
            live: Mutex::new(Live::default()),
            wake: Arc::new(Notify::new()),
            gate: tokio::sync::Mutex::new(()),
            clock_skew: std::sync::atomic::AtomicI64::new(0),
            session_generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.db)
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, Live> {
        lock(&self.live)
    }

    /// Makes this device's clock wrong by `seconds` (negative: behind), as
    /// phones' clocks often are. Device time is metadata only (`client_time`,
    /// "last synced"); ordering and conflicts use server revisions, so a
    /// skewed or jumping clock changes no outcome. Used by fault tests.
    #[cfg(feature = "testing")]
    pub fn set_clock_skew(&self, seconds: i64) {
        self.clock_skew
            .store(seconds, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.session_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Called with the database lock held, by sign-in and sign-out.
    fn new_generation(&self) {
        self.session_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn skew(&self) -> i64 {
        self.clock_skew.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Tells a running [`crate::SyncLoop`] to sync now (network came back, app resumed).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    pub fn session(&self) -> Result<Option<Session>> {
        session_of(&self.conn())
    }

    fn need_session(c: &Connection) -> Result<Session> {
        session_of(c)?.ok_or(Error::NotSignedIn)
    }

    // ------------------------------------------------------------ sign-in

    /// Exchanges a single-use enrolment code for a device token.
    pub async fn enrol(&self, server_url: &str, code: &str, device_name: &str) -> Result<UserInfo> {
        let api = self.anon(server_url);
        let t: Token = api
            .post(
                paths::ENROL,
                &EnrolRequest {
                    code: code.to_string(),
                    device_name: device_name.to_string(),
                },
            )
            .await
            .map_err(|f| auth_error(f, Error::WrongCode))?;
        self.adopt(server_url, t)
    }

    /// Signs in with a username and password (chairs' laptops, or after a 401).
    pub async fn login(
        &self,
        server_url: &str,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<UserInfo> {
        let api = self.anon(server_url);
        // Signing in again on the same server while a session is stored
        // (after a 401): name the device id used before, so the server
        // re-attaches it and mutations resent from the outbox stay duplicates
        // of what it already applied. The server checks the id is this user's.
        let device_id = {
            let c = self.conn();
            match session_of(&c)? {
                Some(s) if s.server_url == server_url.trim_end_matches('/') => Some(s.device_id),
                _ => None,
            }
        };
        let req = |device_id| LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
            device_name: device_name.to_string(),
            device_id,
        };
        let t: Token = match api.post(paths::LOGIN, &req(device_id)).await {
            // The old device id was revoked by an admin (a password must not
            // revive it): sign in as a new device instead. A wrong password
            // fails the same way again.
            Err(Failure::Unauthorized) if device_id.is_some() => {
                api.post(paths::LOGIN, &req(None)).await
            }
            r => r,
        }
        .map_err(|f| auth_error(f, Error::WrongPassword))?;
        self.adopt(server_url, t)
    }

    fn anon(&self, server_url: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: server_url.trim_end_matches('/').to_string(),
            token: None,
        }
    }

    fn adopt(&self, server_url: &str, t: Token) -> Result<UserInfo> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let prev: Option<UserInfo> = match meta_get(&tx, "last_user")? {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        };
        let prev_url = meta_get(&tx, "last_server_url")?;
        let other_user = prev.as_ref().is_some_and(|p| p.id != t.user.id)
            || prev_url
                .as_deref()
                .is_some_and(|u| u != server_url.trim_end_matches('/'));
        if other_user {
            let pending = unsynced(&tx)?;
            if pending > 0 {
                // Someone else's unsent work is on this device: never drop it silently.
                return Err(Error::UnsyncedWork { pending });
            }
            wipe(&tx)?;
        }
        // A sync still running for the previous session must not write from here on.
        self.new_generation();
        let url = server_url.trim_end_matches('/');
        meta_set(&tx, "server_url", url)?;
        meta_set(&tx, "last_server_url", url)?;
        meta_set(&tx, "token", &t.token)?;
        meta_set(&tx, "device_id", &t.device_id.to_string())?;
        meta_set(&tx, "user", &serde_json::to_string(&t.user)?)?;
        meta_set(&tx, "last_user", &serde_json::to_string(&t.user)?)?;
        meta_del(&tx, "need_sign_in")?;
        tx.commit()?;
        drop(c);
        if other_user {
            self.wipe_files();
        }
        {
            let mut l = self.live();
            l.last_error = None;
            l.error_state = None;
        }
        self.nudge();
        Ok(t.user)
    }

    /// Forgets the token and this user's data, photos included. Refuses
    /// while anything has not reached the server (mutations, photos, items
    /// in "needs attention") unless `force`, and says how many would be lost.
    /// A sync running meanwhile stops writing (see the session generation).
    pub fn sign_out(&self, force: bool) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pending = unsynced(&tx)?;
        if pending > 0 && !force {
            return Err(Error::UnsyncedWork { pending });
        }
        for k in ["token", "device_id", "user", "server_url", "need_sign_in"] {
            meta_del(&tx, k)?;
        }
        wipe(&tx)?;
        meta_del(&tx, "last_user")?;
        meta_del(&tx, "last_server_url")?;
        self.new_generation();
        tx.commit()?;
        drop(c);
        self.wipe_files();
        {
            let mut l = self.live();
            l.last_error = None;
            l.error_state = None;
            l.progress = None;
        }
        Ok(())
    }

    /// Removes every stored photo file (after the rows went in a committed wipe).
    fn wipe_files(&self) {
        if let Ok(rd) = std::fs::read_dir(self.dir.join("attachments")) {
            for e in rd.flatten() {
                // Best effort: a file left behind is unreferenced and never uploaded.
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    // ------------------------------------------------------------ reading

    pub fn rounds(&self) -> Result<Vec<RoundInfo>> {
        all_local(
            &self.conn(),
            "SELECT local_json FROM entities WHERE kind = 'round' ORDER BY key",
            [],
        )
    }

    /// This user's council role in a round, if any.
    pub fn my_role(&self, round: Uuid) -> Result<Option<CouncilRole>> {
        let c = self.conn();
        let s = Self::need_session(&c)?;
        let r: Option<RosterEntry> = local(&c, "roster", &format!("{round}/{}", s.user.id))?;
        Ok(r.filter(|r| r.active).map(|r| r.role))
    }

    /// The round's council as this device knows it (active members only), by role then name.
    pub fn roster(&self, round: Uuid) -> Result<Vec<RosterEntry>> {
        let mut r: Vec<RosterEntry> = all_local(
            &self.conn(),
            "SELECT local_json FROM entities WHERE kind = 'roster' AND round_id = ?1",
            [round.to_string()],
        )?;
        r.retain(|x| x.active);
        r.sort_by(|a, b| (a.role, &a.full_name).cmp(&(b.role, &b.full_name)));
        Ok(r)
    }

    pub fn list_products(&self, round: Uuid) -> Result<Vec<ProductItem>> {
        let c = self.conn();
        let s = Self::need_session(&c)?;
        let mut products: Vec<ProductInfo> = all_local(
            &c,
            "SELECT local_json FROM entities WHERE kind = 'product' AND round_id = ?1",
            [round.to_string()],
        )?;
        products.sort_by(|a, b| a.code.cmp(&b.code));
        let mut out = Vec::with_capacity(products.len());
        for p in products {
            let key = model::sheet_key(p.round_id, p.id, s.user.id);
            let sheet: Option<SheetState> = local(&c, SHEET, &key)?;
            let unsynced = c.query_row(
                "SELECT EXISTS(SELECT 1 FROM outbox WHERE entity_kind = ?1 AND entity_key = ?2)",
                params![SHEET, key],
                |r| r.get::<_, bool>(0),
            )?;
            let rubric: Option<Rubric> = local(
                &c,
                "rubric",
                &model::rubric_key(&p.rubric.id, p.rubric.version),
            )?;
            let decision = local(&c, DECISION, &model::decision_key(p.round_id, p.id))?;
            out.push(ProductItem {
                my_status: sheet.as_ref().map(|s| s.status),
                answered: sheet.as_ref().map_or(0, |s| {
                    s.answers
                        .values()
                        .filter(|a| a.answer.option.is_some())
                        .count()
                }),
                criteria: rubric.map_or(0, |r| r.criterion_count()),
                decision,
                unsynced,
                product: p,
            });
        }
        Ok(out)
    }

    /// The score sheet template a product is scored on.
    pub fn rubric(&self, product: Uuid) -> Result<Rubric> {
        let c = self.conn();
        let p = Self::product(&c, product)?;
        Self::rubric_of(&c, &p)
    }

    fn product(c: &Connection, product: Uuid) -> Result<ProductInfo> {
        local(c, "product", &product.to_string())?
            .ok_or_else(|| Error::not_found("product", product))
    }

    fn rubric_of(c: &Connection, p: &ProductInfo) -> Result<Rubric> {
        local(
            c,
            "rubric",
            &model::rubric_key(&p.rubric.id, p.rubric.version),
        )?
        .ok_or_else(|| {
            Error::not_found("rubric", model::rubric_key(&p.rubric.id, p.rubric.version))
        })
    }

    fn round(c: &Connection, round: Uuid) -> Result<RoundInfo> {
        local(c, "round", &round.to_string())?.ok_or_else(|| Error::not_found("round", round))
    }

    fn decision(c: &Connection, p: &ProductInfo) -> Result<Option<DecisionInfo>> {
        local(c, DECISION, &model::decision_key(p.round_id, p.id))
    }

    /// This user's sheet for a product, with its score and conflicts.
    pub fn sheet(&self, product: Uuid) -> Result<SheetView> {
        let c = self.conn();
        let s = Self::need_session(&c)?;
        self.sheet_view(&c, &s, product, s.user.id)
    }

    /// Another member's sheet (chairs, or anyone once results are released).
    pub fn sheet_of(&self, product: Uuid, owner: Uuid) -> Result<SheetView> {
        let c = self.conn();
        let s = Self::need_session(&c)?;
        self.sheet_view(&c, &s, product, owner)
    }

    fn sheet_view(
        &self,
        c: &Connection,
        s: &Session,
        product: Uuid,
        owner: Uuid,
    ) -> Result<SheetView> {
        let p = Self::product(c, product)?;
        let rubric = Self::rubric_of(c, &p)?;
        let round = Self::round(c, p.round_id)?;
        let key = model::sheet_key(p.round_id, p.id, owner);
        let sheet: SheetState = local(c, SHEET, &key)?.unwrap_or_else(|| {
            SheetState::empty(
                &SheetKey {
                    sheet_id: Uuid::nil(),
                    round_id: p.round_id,
                    product_id: p.id,
                    rubric: p.rubric.clone(),
                },
                owner,
            )
        });
        let pending = pending_for(c, SHEET, &key)?;
        let answers: BTreeMap<String, Answer> = sheet
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.answer.clone()))
            .collect();
        let score = score::score_sheet(&rubric, &answers, round.level)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let finalized = Self::decision(c, &p)?.is_some_and(|d| d.finalized);
        let conflicts = conflict_views(&sheet, s.device_id);
        Ok(SheetView {
            editable: owner == s.user.id && sheet.status != SheetStatus::Submitted && !finalized,
            pending: model::pending_criteria(&pending).into_iter().collect(),
            product: p,
            sheet,
            score,
            conflicts,
        })
    }

    /// Every sheet of a product this device can see (a chair sees the council's).
    pub fn sheets_of_product(&self, product: Uuid) -> Result<Vec<SheetState>> {
        all_local(
            &self.conn(),
            "SELECT local_json FROM entities WHERE kind = 'sheet' AND product_id = ?1 ORDER BY owner_id",
            [product.to_string()],
        )
    }

    pub fn participations(&self, product: Uuid) -> Result<Vec<ParticipationInfo>> {
        all_local(
            &self.conn(),
            "SELECT local_json FROM entities WHERE kind = 'participation' AND product_id = ?1",
            [product.to_string()],
        )
    }

    pub fn decision_of(&self, product: Uuid) -> Result<Option<DecisionInfo>> {
        let c = self.conn();
        let p = Self::product(&c, product)?;
        Self::decision(&c, &p)
    }

    /// What the server rejected for good or could not be sent, with the reason.
    pub fn needs_attention(&self) -> Result<Vec<AttentionItem>> {
        let c = self.conn();
        let mut st =
            c.prepare("SELECT id, body, code, reason, at, kind, photo FROM attention ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (id, body, code, reason, at, kind, photo) = r?;
            let mutation = if kind == "photo" {
                None
            } else {
                serde_json::from_str(&body).ok()
            };
            out.push(AttentionItem {
                mutation_id: id as u64,
                raw: (kind != "photo" && mutation.is_none()).then_some(body),
                mutation,
                photo,
                code,
                reason,
                at,
            });
        }
        Ok(out)
    }

    /// The user has read an item in "needs attention" and lets it go (for a
    /// photo: it is no longer offered for upload).
    pub fn dismiss_attention(&self, mutation_id: u64) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let photo: Option<Option<String>> = tx
            .query_row(
                "SELECT photo FROM attention WHERE id = ?1",
                [mutation_id as i64],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(Some(sha)) = photo {
            tx.execute("DELETE FROM attachments WHERE sha256 = ?1", [sha])?;
        }
        tx.execute("DELETE FROM attention WHERE id = ?1", [mutation_id as i64])?;
        tx.commit()?;
        Ok(())
    }

    /// Sends an item of "needs attention" again: a mutation is queued anew
    /// under a new mutation id (the server remembers the old id's answer, so
    /// resending it under that id would only repeat the rejection); a photo
    /// is offered for upload again. Returns the new mutation id, if any.
    pub fn retry_attention(&self, mutation_id: u64) -> Result<Option<u64>> {
        self.write(|tx, s| {
            type Row = (String, String, Option<String>, Option<String>, Option<String>);
            let row: Option<Row> = tx
                .query_row(
                    "SELECT kind, body, entity_kind, entity_key, photo FROM attention WHERE id = ?1",
                    [mutation_id as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let (kind, body, ek, ekey, photo) =
                row.ok_or_else(|| Error::not_found("attention item", mutation_id))?;
            if kind == "photo" {
                tx.execute(
                    "UPDATE attachments SET failed = 0, uploaded = 0 WHERE sha256 = ?1",
                    [photo],
                )?;
                tx.execute("DELETE FROM attention WHERE id = ?1", [mutation_id as i64])?;
                return Ok(None);
            }
            let m: Mutation = serde_json::from_str(&body).map_err(|_| {
                Error::Invalid(
                    "this change can no longer be read by the app; it can only be dismissed"
                        .into(),
                )
            })?;
            let (k, key) = match (ek, ekey) {
                (Some(k), Some(key)) => (k, key),
                _ => place_of(tx, s, &m.op)?,
            };
            tx.execute("DELETE FROM attention WHERE id = ?1", [mutation_id as i64])?;
            let id = enqueue(tx, &k, &key, m.op)?;
            refresh(tx, &k, &key, s.user.id, s.device_id)?;
            Ok(Some(id))
        })
    }

    /// Unresolved conflicts on every sheet this device can see.
    pub fn conflicts(&self) -> Result<Vec<ConflictView>> {
        let c = self.conn();
        let s = Self::need_session(&c)?;
        let sheets: Vec<SheetState> = all_local(
            &c,
            "SELECT local_json FROM entities WHERE kind = 'sheet' AND open_conflicts > 0",
            [],
        )?;
        Ok(sheets
            .iter()
            .flat_map(|x| conflict_views(x, s.device_id))
            .collect())
    }

    pub fn status(&self) -> Result<SyncStatus> {
        let c = self.conn();
        let signed_in = session_of(&c)?.is_some();
        let pending = count(&c, "SELECT COUNT(*) FROM outbox")?;
        let needs_attention = count(&c, "SELECT COUNT(*) FROM attention")?;
        let conflicts = count(
            &c,
            "SELECT COALESCE(SUM(open_conflicts), 0) FROM entities WHERE kind = 'sheet'",
        )?;
        let last_success = meta_get(&c, "last_success")?;
        let need_sign_in = meta_get(&c, "need_sign_in")?.is_some();
        drop(c);
        let live = self.live();
        let state = if !signed_in {
            SyncState::SignedOut
        } else if need_sign_in {
            SyncState::SignInAgain
        } else if live.syncing {
            SyncState::Syncing
        } else if live.last_error.is_some() {
            live.error_state.unwrap_or(SyncState::Offline)
        } else if pending > 0 {
            SyncState::Pending
        } else {
            SyncState::UpToDate
        };
        Ok(SyncStatus {
            state,
            pending,
            needs_attention,
            conflicts,
            last_success,
            progress: live.progress.clone(),
            last_error: if need_sign_in {
                Some(crate::status::sign_in_words())
            } else {
                live.last_error.clone()
            },
        })
    }

    // ------------------------------------------------------------ writing

    /// Runs one local action as one immediate transaction and wakes the sync loop.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>, &Session) -> Result<T>) -> Result<T> {
        let mut c = self.conn();
        let s = Self::need_session(&c)?;
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = with_clock(self.skew(), || f(&tx, &s))?;
        tx.commit()?;
        drop(c);
        self.wake.notify_one();
        Ok(out)
    }

    /// Changes one criterion's answer of this user's sheet.
    fn edit_answer(
        &self,
        product: Uuid,
        criterion: &str,
        f: impl FnOnce(&mut Answer),
    ) -> Result<()> {
        self.edit_answer_with(product, criterion, f, |_| Ok(()))
    }

    /// [`Self::edit_answer`] with `before` run first in the same transaction.
    fn edit_answer_with(
        &self,
        product: Uuid,
        criterion: &str,
        f: impl FnOnce(&mut Answer),
        before: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<()> {
        self.write(|tx, s| {
            before(tx)?;
            let p = Self::product(tx, product)?;
            let rubric = Self::rubric_of(tx, &p)?;
            let (key, sheet) = Self::my_editable_sheet(tx, s, &p)?;
            let mut answer = sheet
                .as_ref()
                .and_then(|x| x.answers.get(criterion))
                .map(|a| a.answer.clone())
                .unwrap_or_default();
            f(&mut answer);
            score::check_answer(&rubric, criterion, &answer)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            // While an earlier edit of this criterion is unacknowledged, keep
            // its base: the user is still editing on top of the server value
            // that edit saw. A pull may meanwhile have brought another
            // device's value into the snapshot; basing on that would
            // overwrite it without the server ever flagging a conflict.
            let pending_base = pending_for(tx, SHEET, &key)?
                .iter()
                .find_map(|m| match &m.op {
                    Op::SetAnswers { answers, .. } => answers
                        .iter()
                        .find(|e| e.criterion == criterion)
                        .map(|e| e.base_rev),
                    _ => None,
                });
            let base_rev = match pending_base {
                Some(b) => b,
                None => server::<SheetState>(tx, SHEET, &key)?
                    .and_then(|x| x.answers.get(criterion).map(|a| a.rev))
                    .unwrap_or(0),
            };
            let sheet_id = sheet.map_or_else(Uuid::now_v7, |x| x.id);
            enqueue(
                tx,
                SHEET,
                &key,
                Op::SetAnswers {
                    sheet: SheetKey {
                        sheet_id,
                        round_id: p.round_id,
                        product_id: p.id,
                        rubric: p.rubric.clone(),
                    },
                    answers: vec![AnswerEdit {
                        criterion: criterion.to_string(),
                        answer,
                        base_rev,
                    }],
                },
            )?;
            refresh(tx, SHEET, &key, s.user.id, s.device_id)
        })
    }

    fn my_editable_sheet(
        c: &Connection,
        s: &Session,
        p: &ProductInfo,
    ) -> Result<(String, Option<SheetState>)> {
        if Self::decision(c, p)?.is_some_and(|d| d.finalized) {
            return Err(Error::Invalid(format!(
                "product {} is finalized by the chair; its sheets are locked",
                p.code
            )));
        }
        let key = model::sheet_key(p.round_id, p.id, s.user.id);
        let sheet: Option<SheetState> = local(c, SHEET, &key)?;
        if sheet
            .as_ref()
            .is_some_and(|x| x.status == SheetStatus::Submitted)
        {
            return Err(Error::Invalid(format!(
                "the sheet for {} is submitted; the chair must reopen it before it can change",
                p.code
            )));
        }
        Ok((key, sheet))
    }

    /// Picks an option (`None` clears it). Committed before returning.
    pub fn set_answer(&self, product: Uuid, criterion: &str, option: Option<&str>) -> Result<()> {
        self.edit_answer(product, criterion, |a| {
            a.option = option.map(str::to_string)
        })
    }

    /// Raises or lowers a criterion's knock-out.
    pub fn set_knockout(&self, product: Uuid, criterion: &str, raised: bool) -> Result<()> {
        self.edit_answer(product, criterion, |a| a.knockout = raised)
    }

    /// A note on one criterion.
    pub fn set_answer_note(&self, product: Uuid, criterion: &str, note: &str) -> Result<()> {
        self.edit_answer(product, criterion, |a| a.note = note.to_string())
    }

    /// The sheet's general note.
    pub fn set_note(&self, product: Uuid, note: &str) -> Result<()> {
        self.write(|tx, s| {
            let p = Self::product(tx, product)?;
            let (key, sheet) = Self::my_editable_sheet(tx, s, &p)?;
            // As for answers: an unacknowledged note edit fixes the base.
            let pending_base = pending_for(tx, SHEET, &key)?
                .iter()
                .find_map(|m| match &m.op {
                    Op::SetNote { base_rev, .. } => Some(*base_rev),
                    _ => None,
                });
            let base_rev = match pending_base {
                Some(b) => b,
                None => server::<SheetState>(tx, SHEET, &key)?.map_or(0, |x| x.note_rev),
            };
            enqueue(
                tx,
                SHEET,
                &key,
                Op::SetNote {
                    sheet: SheetKey {
                        sheet_id: sheet.map_or_else(Uuid::now_v7, |x| x.id),
                        round_id: p.round_id,
                        product_id: p.id,
                        rubric: p.rubric.clone(),
                    },
                    note: note.to_string(),
                    base_rev,
                },
            )?;
            refresh(tx, SHEET, &key, s.user.id, s.device_id)
        })
    }

    /// Stores a photo content-addressed in the data dir, attaches it to a
    /// criterion, and returns its SHA-256. The bytes go up separately from the
    /// sheet so text never waits behind photos.
    pub fn add_attachment(
        &self,
        product: Uuid,
        criterion: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<String> {
        if bytes.len() as u64 > ocop_shared::wire::MAX_ATTACHMENT_BYTES {
            return Err(Error::Invalid(format!(
                "the photo is {} bytes; the limit is {} bytes",
                bytes.len(),
                ocop_shared::wire::MAX_ATTACHMENT_BYTES
            )));
        }
        let sha = hex::encode(Sha256::digest(bytes));
        let path = self.attachment_path(&sha);
        if !path.exists() {
            // Write then rename: a crash never leaves a truncated file under a valid hash.
            let tmp = path.with_extension("part");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        let h = sha.clone();
        let size = bytes.len() as i64;
        // The photo row and the answer naming it commit together: neither
        // an upload of a photo no answer uses nor an answer whose photo is
        // never uploaded.
        self.edit_answer_with(
            product,
            criterion,
            |a| {
                if !a.attachments.contains(&h) {
                    a.attachments.push(h);
                }
            },
            |tx| {
                tx.execute(
                    "INSERT INTO attachments(sha256, size, content_type, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(sha256) DO UPDATE SET failed = 0",
                    params![sha, size, content_type, now()],
                )?;
                Ok(())
            },
        )?;
        Ok(sha)
    }

    /// A photo as the camera or the file picker gave it: decoded, turned
    /// upright (EXIF orientation), shrunk to at most
    /// [`crate::photo::MAX_EDGE`] px on the long edge and stored as JPEG
    /// (which drops every EXIF field, GPS included), then attached as
    /// [`Self::add_attachment`] does. Returns its SHA-256.
    pub fn add_photo(&self, product: Uuid, criterion: &str, original: &[u8]) -> Result<String> {
        let jpeg = crate::photo::prepare(original)?;
        self.add_attachment(product, criterion, &jpeg, "image/jpeg")
    }

    /// The bytes of a stored photo (this device's, or one downloaded).
    pub fn photo(&self, sha256: &str) -> Result<Vec<u8>> {
        if !ocop_shared::score::is_sha256_hex(sha256) {
            return Err(Error::Invalid(format!("{sha256:?} is not a photo id")));
        }
        std::fs::read(self.attachment_path(sha256)).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::not_found("photo", sha256),
            _ => e.into(),
        })
    }

    pub fn attachment_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("attachments").join(sha256)
    }

    /// Submits this user's sheet; every criterion must be answered.
    pub fn submit(&self, product: Uuid) -> Result<()> {
        let view = self.sheet(product)?;
        if !view.score.complete() {
            return Err(Error::Invalid(format!(
                "{} criteria are not answered yet: {}",
                view.score.unanswered.len(),
                view.score.unanswered.join(", ")
            )));
        }
        self.write(|tx, s| {
            let p = Self::product(tx, product)?;
            let (key, sheet) = Self::my_editable_sheet(tx, s, &p)?;
            let sheet = sheet.ok_or_else(|| Error::Invalid("nothing to submit".into()))?;
            enqueue(tx, SHEET, &key, Op::Submit { sheet_id: sheet.id })?;
            refresh(tx, SHEET, &key, s.user.id, s.device_id)
        })
    }

    /// Whether this user presides over `p`'s council: the chair, or the
    /// vice-chair when the chair is recused from `p` (`ocop_shared::council::presides`,
    /// the server's rule too).
    fn presides(c: &Connection, s: &Session, p: &ProductInfo) -> Result<bool> {
        let roster: Vec<RosterEntry> = all_local(
            c,
            "SELECT local_json FROM entities WHERE kind = 'roster' AND round_id = ?1",
            [p.round_id.to_string()],
        )?;
        let Some(me) = roster.iter().find(|r| r.active && r.user_id == s.user.id) else {
            return Ok(false);
        };
        let mut chair_recused = false;
        for r in roster
            .iter()
            .filter(|r| r.active && r.role == CouncilRole::Chair)
        {
            let part: Option<ParticipationInfo> = local(
                c,
                PARTICIPATION,
                &model::participation_key(p.round_id, p.id, r.user_id),
            )?;
            chair_recused |= part.is_some_and(|x| x.participation == Participation::Recused);
        }
        Ok(council::presides(me.role, chair_recused))
    }

    fn require_chair(c: &Connection, s: &Session, p: &ProductInfo) -> Result<()> {
        if Self::presides(c, s, p)? {
            Ok(())
        } else {
            Err(Error::NotAllowed(
                "only the member presiding over this product's council (the chair, or the vice-chair when the chair is recused) can do this".into(),
            ))
        }
    }

    /// Whether this user may finalize, reopen, release and recuse for a product.
    pub fn can_preside(&self, product: Uuid) -> Result<bool> {
        let c = self.conn();
        let s = Self::need_session(&c)?;
        let p = Self::product(&c, product)?;
        Self::presides(&c, &s, &p)
    }

    /// Chair: reopens a member's submitted sheet, with a reason.
    pub fn reopen(&self, product: Uuid, owner: Uuid, reason: &str) -> Result<()> {
        self.write(|tx, s| {
            let p = Self::product(tx, product)?;
            Self::require_chair(tx, s, &p)?;
            let key = model::sheet_key(p.round_id, p.id, owner);
            let sheet: SheetState =
                local(tx, SHEET, &key)?.ok_or_else(|| Error::not_found("sheet", &key))?;
            enqueue(
                tx,
                SHEET,
                &key,
                Op::Reopen {
                    sheet_id: sheet.id,
                    reason: reason.to_string(),
                },
            )?;
            refresh(tx, SHEET, &key, s.user.id, s.device_id)
        })
    }

    /// A member abstains (own choice) or the chair recuses a member.
    pub fn set_participation(
        &self,
        product: Uuid,
        user: Uuid,
        participation: Participation,
        reason: &str,
    ) -> Result<()> {
        self.write(|tx, s| {
            let p = Self::product(tx, product)?;
            if user != s.user.id {
                Self::require_chair(tx, s, &p)?;
            }
            let key = model::participation_key(p.round_id, p.id, user);
            enqueue(
                tx,
                PARTICIPATION,
                &key,
                Op::SetParticipation {
                    round_id: p.round_id,
                    product_id: p.id,
                    user_id: user,
                    participation,
                    reason: reason.to_string(),
                },
            )?;
            refresh(tx, PARTICIPATION, &key, s.user.id, s.device_id)
        })
    }

    /// The council result from the sheets this device holds, pending local
    /// edits included; computed by the same code as the server's.
    pub fn council_result(&self, product: Uuid) -> Result<CouncilResult> {
        council_result(&self.conn(), product, None)
    }

    /// Consensus mode: the result given by the one agreed sheet.
    pub fn council_result_consensus(
        &self,
        product: Uuid,
        agreed_sheet: Uuid,
    ) -> Result<CouncilResult> {
        council_result(&self.conn(), product, Some(agreed_sheet))
    }

    /// Chair: finalizes a product with the mean computed here; the server
    /// refuses if its own computation differs.
    pub fn finalize(&self, product: Uuid, note: &str) -> Result<CouncilResult> {
        self.finalize_with(product, None, note)
    }

    /// Chair, consensus mode: finalizes with the one agreed sheet.
    pub fn finalize_consensus(
        &self,
        product: Uuid,
        agreed_sheet: Uuid,
        note: &str,
    ) -> Result<CouncilResult> {
        self.finalize_with(product, Some(agreed_sheet), note)
    }

    fn finalize_with(
        &self,
        product: Uuid,
        consensus_sheet: Option<Uuid>,
        note: &str,
    ) -> Result<CouncilResult> {
        self.write(|tx, s| {
            let p = Self::product(tx, product)?;
            Self::require_chair(tx, s, &p)?;
            let result = council_result(tx, product, consensus_sheet)?;
            if !result.can_finalize {
                return Err(Error::Invalid(format!(
                    "cannot finalize {}: quorum {} of {} required (chair present: {})",
                    p.code,
                    result.quorum.present,
                    result.quorum.required,
                    result.quorum.chair_present
                )));
            }
            let key = model::decision_key(p.round_id, p.id);
            enqueue(
                tx,
                DECISION,
                &key,
                Op::Finalize {
                    round_id: p.round_id,
                    product_id: p.id,
                    consensus_sheet,
                    expected_mean: result.mean_total,
                    note: note.to_string(),
                },
            )?;
            refresh(tx, DECISION, &key, s.user.id, s.device_id)?;
            // Show the locally computed result until the server's arrives.
            if let Some(mut d) = local::<DecisionInfo>(tx, DECISION, &key)?
                && d.result.is_none()
            {
                d.result = Some(result.clone());
                tx.execute(
                    "UPDATE entities SET local_json = ?1 WHERE kind = ?2 AND key = ?3",
                    params![serde_json::to_string(&d)?, DECISION, key],
                )?;
            }
            Ok(result)
        })
    }

    /// Chair: releases a finalized product's results to the members.
    pub fn release(&self, product: Uuid) -> Result<()> {
        self.write(|tx, s| {
            let p = Self::product(tx, product)?;
            Self::require_chair(tx, s, &p)?;
            let key = model::decision_key(p.round_id, p.id);
            enqueue(
                tx,
                DECISION,
                &key,
                Op::Release {
                    round_id: p.round_id,
                    product_id: p.id,
                },
            )?;
            refresh(tx, DECISION, &key, s.user.id, s.device_id)
        })
    }

    /// Settles a conflict by keeping one version (or a new value).
    pub fn resolve_conflict(&self, sheet_id: Uuid, conflict_id: Uuid, keep: Keep) -> Result<()> {
        self.write(|tx, s| {
            let (key, json): (String, String) = tx
                .query_row(
                    "SELECT key, local_json FROM entities WHERE kind = 'sheet' AND id = ?1",
                    [sheet_id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| Error::not_found("sheet", sheet_id))?;
            let sheet: SheetState = serde_json::from_str(&json)?;
            let cv = conflict_views(&sheet, s.device_id)
                .into_iter()
                .find(|c| c.conflict_id == conflict_id)
                .ok_or_else(|| Error::not_found("conflict", conflict_id))?;
            let value = match keep {
                Keep::Current => cv.current.clone(),
                Keep::Other => cv.other.clone(),
                Keep::Custom(a) => a,
            };
            let (answer, note) = match &cv.criterion {
                Some(_) => (Some(value), None),
                None => (None, Some(value.note)),
            };
            enqueue(
                tx,
                SHEET,
                &key,
                Op::ResolveConflict {
                    sheet_id: sheet.id,
                    conflict_id,
                    answer,
                    note,
                    base_rev: cv.current_rev,
                },
            )?;
            refresh(tx, SHEET, &key, s.user.id, s.device_id)
        })
    }

    /// The API of the signed-in session, the session, and its generation.
    pub(crate) fn api(&self) -> Result<(Api, Session, u64)> {
        let c = self.conn();
        let g = self.generation();
        let s = Self::need_session(&c)?;
        if meta_get(&c, "need_sign_in")?.is_some() {
            return Err(Error::SignInAgain);
        }
        Ok((
            Api {
                http: self.http.clone(),
                base: s.server_url.clone(),
                token: Some(s.token.clone()),
            },
            s,
            g,
        ))
    }
}

/// A failed enrolment or sign-in; `refused` says what a 401 means for it.
fn auth_error(f: Failure, refused: Error) -> Error {
    match f {
        Failure::Transient(m) => Error::Offline(m),
        Failure::Unauthorized => refused,
        Failure::Permanent { message, .. } => Error::Refused(message),
        Failure::CursorAhead { server_seq } => Error::Refused(format!(
            "the server is behind this device (at {server_seq})"
        )),
    }
}

/// Drops everything that belongs to the signed-in user (not the mutation counter).
fn wipe(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "DELETE FROM entities; DELETE FROM outbox; DELETE FROM attention; DELETE FROM attachments;
         DELETE FROM meta WHERE key IN ('cursor', 'last_success');",
    )?;
    Ok(())
}

/// The outbox entity a mutation changes (for attention rows stored before
/// they recorded it).
fn place_of(c: &Connection, s: &Session, op: &Op) -> Result<(String, String)> {
    let by_id = |id: Uuid| -> Result<(String, String)> {
        let key: Option<String> = c
            .query_row(
                "SELECT key FROM entities WHERE kind = 'sheet' AND id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        key.map(|k| (SHEET.to_string(), k))
            .ok_or_else(|| Error::not_found("sheet", id))
    };
    Ok(match op {
        Op::SetAnswers { sheet, .. } | Op::SetNote { sheet, .. } => (
            SHEET.into(),
            model::sheet_key(sheet.round_id, sheet.product_id, s.user.id),
        ),
        Op::SetParticipation {
            round_id,
            product_id,
            user_id,
            ..
        } => (
            PARTICIPATION.into(),
            model::participation_key(*round_id, *product_id, *user_id),
        ),
        Op::Finalize {
            round_id,
            product_id,
            ..
        }
        | Op::Release {
            round_id,
            product_id,
        } => (DECISION.into(), model::decision_key(*round_id, *product_id)),
        Op::Submit { sheet_id }
        | Op::Reopen { sheet_id, .. }
        | Op::ResolveConflict { sheet_id, .. } => by_id(*sheet_id)?,
        #[allow(unreachable_patterns)]
        _ => return Err(Error::Invalid("this change cannot be sent again".into())),
    })
}

fn conflict_views(sheet: &SheetState, device: Uuid) -> Vec<ConflictView> {
    sheet
        .conflicts
        .iter()
        .filter(|c| !c.resolved)
        .map(|c| {
            let (criterion, current, current_rev, other) = match &c.field {
                ConflictField::Answer { criterion, theirs } => {
                    let cur = sheet.answers.get(criterion);
                    (
                        Some(criterion.clone()),
                        cur.map(|a| a.answer.clone()).unwrap_or_default(),
                        cur.map_or(0, |a| a.rev),
                        theirs.clone(),
                    )
                }
                ConflictField::Note { theirs } => (
                    None,
                    Answer {
                        note: sheet.note.clone(),
                        ..Default::default()
                    },
                    sheet.note_rev,
                    Answer {
                        note: theirs.clone(),
                        ..Default::default()
                    },
                ),
            };
            ConflictView {
                sheet_id: sheet.id,
                product_id: sheet.product_id,
                conflict_id: c.id,
                criterion,
                current,
                current_rev,
                other,
                other_device: c.device_id,
                other_is_mine: c.device_id == device,
            }
        })
        .collect()
}

pub(crate) fn council_result(
    c: &Connection,
    product: Uuid,
    consensus: Option<Uuid>,
) -> Result<CouncilResult> {
    let p = Device::product(c, product)?;
    let rubric = Device::rubric_of(c, &p)?;
    let round = Device::round(c, p.round_id)?;
    let roster: Vec<RosterEntry> = all_local(
        c,
        "SELECT local_json FROM entities WHERE kind = 'roster' AND round_id = ?1",
        [p.round_id.to_string()],
    )?;
    let parts: Vec<ParticipationInfo> = all_local(
        c,
        "SELECT local_json FROM entities WHERE kind = 'participation' AND product_id = ?1",
        [p.id.to_string()],
    )?;
    let members: Vec<Member> = roster
        .iter()
        .filter(|r| r.active)
        .map(|r| Member {
            user_id: r.user_id,
            name: r.full_name.clone(),
            role: r.role,
            participation: parts
                .iter()
                .find(|x| x.user_id == r.user_id)
                .map_or(Participation::Present, |x| x.participation),
        })
        .collect();
    let sheets: Vec<SheetState> = all_local(
        c,
        "SELECT local_json FROM entities WHERE kind = 'sheet' AND product_id = ?1",
        [p.id.to_string()],
    )?;
    let mut scored = Vec::new();
    for s in sheets.iter().filter(|s| s.status == SheetStatus::Submitted) {
        let answers: BTreeMap<String, Answer> = s
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.answer.clone()))
            .collect();
        // A sheet that no longer fits its rubric is left out rather than
        // breaking the whole council view; the server quarantines such writes.
        if let Ok(sc) = score::score_sheet(&rubric, &answers, round.level) {
            scored.push((s.owner_id, sc));
        }
    }
    let member_sheets: Vec<MemberSheet<'_>> = scored
        .iter()
        .map(|(u, sc)| MemberSheet {
            user_id: *u,
            score: sc,
        })
        .collect();
    let agreed = match (round.council.mode, consensus) {
        (CouncilMode::Consensus, Some(id)) => {
            let s = sheets
                .iter()
                .find(|s| s.id == id)
                .ok_or_else(|| Error::not_found("sheet", id))?;
            let answers: BTreeMap<String, Answer> = s
                .answers
                .iter()
                .map(|(k, v)| (k.clone(), v.answer.clone()))
                .collect();
            Some(
                score::score_sheet(&rubric, &answers, round.level)
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            )
        }
        _ => None,
    };
    Ok(council::aggregate(&CouncilInput {
        rubric: &rubric,
        level: round.level,
        config: &round.council,
        roster: &members,
        sheets: &member_sheets,
        consensus: agreed.as_ref(),
    }))
}
