//! The sync engine: executes what [`crate::plan`] decides. Push the outbox in
//! batches, apply each batch's outcomes in one transaction, pull pages since
//! the cursor and apply each page (cursor included) in one transaction, then
//! re-lay pending local edits over what was pulled.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ocop_shared::wire::{
    DEFAULT_PULL_LIMIT, Entity, MAX_BATCH_MUTATIONS, Mutation, Op, Outcome, PullResponse,
    PushResponse, SheetState,
};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use sha2::Digest;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::device::{Device, Session, count, meta_get, meta_set, now, refresh, server};
use crate::error::{Error, Result};
use crate::model::{self, DECISION, PARTICIPATION, SHEET};
use crate::net::{self, Api, PullStart};
use crate::plan::{self, Failure, Next, Pending, PushRefusal};
use crate::status::{self, Phase, Progress, SyncState};
use ocop_shared::wire::{DecisionInfo, ParticipationInfo};

/// What one `sync_now` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Mutations acknowledged (applied, duplicate or conflict).
    pub acknowledged: u64,
    pub conflicts: u64,
    pub rejected: u64,
    pub push_requests: u64,
    pub pulled_changes: u64,
    pub pull_requests: u64,
    pub attachments_uploaded: u64,
    /// Other members' photos fetched for sheets this device can see.
    pub attachments_downloaded: u64,
    /// The server was behind this device's cursor (restored from a backup),
    /// so everything was pulled again from 0.
    pub pull_restarted: bool,
}

enum Stop {
    Net(Failure),
    /// The server cannot understand this app's push as a whole.
    Incompatible {
        status: u16,
        message: String,
    },
    Local(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Local(e)
    }
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Self {
        Stop::Local(e.into())
    }
}

impl From<serde_json::Error> for Stop {
    fn from(e: serde_json::Error) -> Self {
        Stop::Local(e.into())
    }
}

impl Device {
    /// Pushes the outbox, uploads photos, pulls what changed. Safe to call at
    /// any time; concurrent calls wait for each other.
    pub async fn sync_now(&self) -> Result<SyncReport> {
        let _one_at_a_time = self.gate.lock().await;
        let (api, session, generation) = self.api()?;
        {
            let mut l = self.live();
            l.syncing = true;
            l.progress = None;
        }
        let mut report = SyncReport::default();
        let r = self
            .sync_inner(&api, &session, generation, &mut report)
            .await;
        {
            let mut l = self.live();
            l.syncing = false;
            l.progress = None;
        }
        let fail = |words: status::Words, state: SyncState| {
            let mut l = self.live();
            l.last_error = Some(words);
            l.error_state = Some(state);
        };
        match r {
            Ok(()) => {
                let mut l = self.live();
                l.last_error = None;
                l.error_state = None;
                Ok(report)
            }
            // Signed out or someone else signed in meanwhile: nothing to report
            // to the new session, and nothing of the old one was written.
            Err(Stop::Local(Error::SessionChanged)) => Err(Error::SessionChanged),
            Err(Stop::Net(Failure::Unauthorized)) => {
                // Keep the token row and every local change: only a new sign-in helps.
                let c = self.conn();
                if self.generation() == generation {
                    meta_set(&c, "need_sign_in", "1")?;
                }
                Err(Error::SignInAgain)
            }
            Err(Stop::Net(Failure::Transient(m))) => {
                fail(status::offline_words(&m), SyncState::Offline);
                Err(Error::Offline(m))
            }
            Err(Stop::Net(Failure::CursorAhead { server_seq })) => {
                let message = format!("the server is behind this device (at {server_seq})");
                fail(status::refused_words(&message), SyncState::Failed);
                Err(Error::Refused(message))
            }
            Err(Stop::Net(Failure::Permanent { status, message })) => {
                fail(
                    status::refused_words(&format!("http {status}: {message}")),
                    SyncState::Failed,
                );
                Err(Error::Refused(message))
            }
            Err(Stop::Incompatible { status, message }) => {
                let detail = format!("http {status}: {message}");
                fail(status::update_app_words(&detail), SyncState::UpdateApp);
                Err(Error::Incompatible(detail))
            }
            Err(Stop::Local(e)) => {
                fail(
                    status::Words::new(
                        format!("Lỗi lưu trữ trên máy: {e}"),
                        format!("local storage error: {e}"),
                    ),
                    SyncState::Failed,
                );
                Err(e)
            }
        }
    }

    /// Pulls without pushing first: what happens when a pull runs while a
    /// tap is still queued (a tap during a sync). For tests.
    #[doc(hidden)]
    #[cfg(feature = "testing")]
    pub async fn pull_now(&self) -> Result<SyncReport> {
        let _one_at_a_time = self.gate.lock().await;
        let (api, session, g) = self.api()?;
        let mut report = SyncReport::default();
        match self.pull_all(&api, &session, g, &mut report).await {
            Ok(()) => Ok(report),
            Err(Stop::Local(e)) => Err(e),
            Err(Stop::Net(f)) => Err(Error::Offline(format!("{f:?}"))),
            Err(Stop::Incompatible { message, .. }) => Err(Error::Incompatible(message)),
        }
    }

    fn progress(&self, phase: Phase, done: u64, total: Option<u64>) {
        self.live().progress = Some(Progress { phase, done, total });
    }

    async fn sync_inner(
        &self,
        api: &Api,
        s: &Session,
        g: u64,
        report: &mut SyncReport,
    ) -> Result<(), Stop> {
        let missing = self.push_all(api, s, g, report).await?;
        self.pull_all(api, s, g, report).await?;
        // Text is in sync now: photos going up or down must not hide that.
        {
            let c = self.conn();
            self.same_session(g)?;
            meta_set(
                &c,
                "last_success",
                &crate::device::with_clock(self.skew(), now),
            )?;
        }
        let up = self.upload_attachments(api, g, &missing, report).await;
        let down = self.download_attachments(api, g, report).await;
        up?;
        down
    }

    /// Whether the session this sync started with is still the signed-in
    /// one. Called with the database lock held, inside the transaction that
    /// writes, so sign-out and sign-in (which bump the generation under the
    /// same lock) can never interleave with a write of the old session.
    pub(crate) fn same_session(&self, g: u64) -> Result<()> {
        if self.generation() == g {
            Ok(())
        } else {
            Err(Error::SessionChanged)
        }
    }

    async fn push_all(
        &self,
        api: &Api,
        s: &Session,
        g: u64,
        report: &mut SyncReport,
    ) -> Result<Vec<String>, Stop> {
        let total = count(&self.conn(), "SELECT COUNT(*) FROM outbox")?;
        let mut done = 0u64;
        let mut limit = MAX_BATCH_MUTATIONS;
        let mut missing = Vec::new();
        loop {
            self.progress(Phase::Uploading, done, Some(total.max(done)));
            // Choosing the batch and marking it sent is one locked step, so a
            // tap cannot coalesce into a row between being read and being sent.
            let batch: Vec<(u64, String)> = {
                let mut c = self.conn();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                self.same_session(g)?;
                let rows: Vec<(u64, String)> = {
                    let mut st =
                        tx.prepare_cached("SELECT id, body FROM outbox ORDER BY id LIMIT ?1")?;
                    st.query_map([MAX_BATCH_MUTATIONS as i64], |r| {
                        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?
                };
                let plan: Vec<Pending> = rows
                    .iter()
                    .map(|(id, b)| Pending {
                        id: *id,
                        bytes: b.len(),
                    })
                    .collect();
                let n = plan::next_batch(&plan, limit);
                if let Some((last, _)) = rows.get(n.wrapping_sub(1)) {
                    // From here on these bodies may reach the server: never rewrite them.
                    tx.execute(
                        "UPDATE outbox SET sent = 1 WHERE id <= ?1 AND sent = 0",
                        [*last as i64],
                    )?;
                }
                tx.commit()?;
                rows.into_iter().take(n).collect()
            };
            if batch.is_empty() {
                return Ok(missing);
            }
            // A row that no longer decodes (damaged, or written in a format
            // this build cannot read) is set aside with its raw text: it must
            // not block every mutation queued after it.
            let mut mutations: Vec<Mutation> = Vec::with_capacity(batch.len());
            let mut unreadable = Vec::new();
            for (id, b) in &batch {
                match serde_json::from_str(b) {
                    Ok(m) => mutations.push(m),
                    Err(e) => unreadable.push((*id, e.to_string())),
                }
            }
            if !unreadable.is_empty() {
                self.set_aside_unreadable(s, g, &unreadable)?;
                report.rejected += unreadable.len() as u64;
                done += unreadable.len() as u64;
            }
            let n = mutations.len();
            if n == 0 {
                continue;
            }
            report.push_requests += 1;
            match api.push(&net::push_request(mutations.clone())).await {
                Ok(resp) => {
                    check_answers(&mutations, &resp).map_err(Stop::Net)?;
                    self.apply_push(s, g, &mutations, &resp, report)?;
                    missing.extend(resp.missing_attachments.iter().cloned());
                    done += n as u64;
                }
                Err(Failure::Permanent { status, message }) => {
                    match plan::on_push_refusal(status, n) {
                        // Too large: narrow it down to the one mutation at fault.
                        PushRefusal::Halve(k) => limit = k,
                        PushRefusal::SetAside => {
                            self.set_aside(
                                s,
                                g,
                                &mutations[0],
                                &format!("http_{status}"),
                                &message,
                            )?;
                            report.rejected += 1;
                            done += 1;
                            limit = MAX_BATCH_MUTATIONS;
                        }
                        PushRefusal::Incompatible => {
                            return Err(Stop::Incompatible { status, message });
                        }
                        PushRefusal::Retry => {
                            return Err(Stop::Net(Failure::Transient(format!(
                                "http {status}: {message}"
                            ))));
                        }
                    }
                }
                Err(e) => return Err(Stop::Net(e)),
            }
        }
    }

    /// Moves a mutation from the outbox to "needs attention" and drops its
    /// effect from the local view.
    fn set_aside(&self, s: &Session, g: u64, m: &Mutation, code: &str, reason: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.same_session(g)?;
        let touched = set_aside_tx(&tx, m, code, reason)?;
        if let Some((k, key)) = touched {
            refresh(&tx, &k, &key, s.user.id, s.device_id)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Moves outbox rows that do not decode to "needs attention", raw text kept.
    fn set_aside_unreadable(&self, s: &Session, g: u64, rows: &[(u64, String)]) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.same_session(g)?;
        let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
        for (id, err) in rows {
            let row: Option<(String, String, String)> = tx
                .query_row(
                    "SELECT entity_kind, entity_key, body FROM outbox WHERE id = ?1",
                    [*id as i64],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((kind, key, body)) = row else {
                continue;
            };
            tx.execute(
                "INSERT OR REPLACE INTO attention(id, body, code, reason, at, kind, entity_kind, entity_key)
                 VALUES (?1, ?2, 'unreadable', ?3, ?4, 'unreadable', ?5, ?6)",
                params![*id as i64, body, err, now(), kind, key],
            )?;
            tx.execute("DELETE FROM outbox WHERE id = ?1", [*id as i64])?;
            touched.insert((kind, key));
        }
        for (k, key) in &touched {
            refresh(&tx, k, key, s.user.id, s.device_id)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn apply_push(
        &self,
        s: &Session,
        g: u64,
        ms: &[Mutation],
        resp: &PushResponse,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.same_session(g)?;
        let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
        for (m, r) in ms.iter().zip(&resp.results) {
            match r.outcome.original() {
                Outcome::Applied { seq, sheet_id } => {
                    if let Some(t) = ack(&tx, s, m, *seq, *sheet_id, None)? {
                        touched.insert(t);
                    }
                    report.acknowledged += 1;
                }
                Outcome::Conflict {
                    seq,
                    sheet_id,
                    applied,
                    ..
                } => {
                    if let Some(t) = ack(&tx, s, m, *seq, Some(*sheet_id), Some(applied))? {
                        touched.insert(t);
                    }
                    report.acknowledged += 1;
                    report.conflicts += 1;
                }
                Outcome::Rejected { code, reason } => {
                    let code = serde_json::to_value(code)?
                        .as_str()
                        .unwrap_or("rejected")
                        .to_string();
                    if let Some(t) = set_aside_tx(&tx, m, &code, reason)? {
                        touched.insert(t);
                    }
                    report.rejected += 1;
                }
                // `original()` never returns a duplicate.
                Outcome::Duplicate { .. } => {}
            }
        }
        for (k, key) in &touched {
            refresh(&tx, k, key, s.user.id, s.device_id)?;
        }
        tx.commit()?;
        Ok(())
    }

    async fn pull_all(
        &self,
        api: &Api,
        s: &Session,
        g: u64,
        report: &mut SyncReport,
    ) -> Result<(), Stop> {
        let mut cursor: u64 = meta_get(&self.conn(), "cursor")?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        // One page ahead: as soon as a page's headers name the next cursor,
        // the next page is asked for, so the server prepares it, and this
        // device decodes it on its own task, while this one is decoded and
        // stored. The body decides: a prefetch for a cursor the body does not
        // confirm is dropped and asked for again.
        let mut ahead: Option<(u64, Prefetch)> = None;
        let mut restarted = false;
        loop {
            self.progress(Phase::Downloading, report.pulled_changes, None);
            report.pull_requests += 1;
            let mut current = match ahead.take() {
                Some((c, p)) if c == cursor => p,
                _ => Prefetch::start(api, cursor),
            };
            ahead = current
                .next_hint()
                .await
                .filter(|&c| c > cursor)
                .map(|c| (c, Prefetch::start(api, c)));
            let page = match current.page().await {
                // The server was restored from an older backup: what it has
                // now is all that counts, so read it all again. The outbox
                // stays; it is pushed again and the server decides.
                Err(Failure::CursorAhead { server_seq }) if cursor > 0 && !restarted => {
                    tracing::warn!(
                        cursor,
                        server_seq,
                        "the server is behind this device's cursor; pulling from 0"
                    );
                    restarted = true;
                    report.pull_restarted = true;
                    cursor = 0;
                    ahead = None;
                    meta_set(&self.conn(), "cursor", "0")?;
                    continue;
                }
                r => r.map_err(Stop::Net)?,
            };
            if page.has_more && page.next_cursor <= cursor {
                return Err(Stop::Net(Failure::Transient(
                    "the server's pull cursor did not advance".into(),
                )));
            }
            self.apply_page(s, g, &page)?;
            report.pulled_changes += page.changes.len() as u64;
            cursor = page.next_cursor;
            if !page.has_more {
                return Ok(());
            }
        }
    }

    /// One page, one transaction: entities upserted, pending edits re-laid,
    /// cursor advanced — all or nothing.
    fn apply_page(&self, s: &Session, g: u64, page: &PullResponse) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.same_session(g)?;
        let mut touched: BTreeSet<(&'static str, String)> = BTreeSet::new();
        for ch in &page.changes {
            let p = model::place(&ch.entity);
            if let Entity::Sheet(sheet) = &ch.entity {
                // A slot this device created under another id: adopt the server's.
                let old: Option<Option<String>> = tx
                    .query_row(
                        "SELECT id FROM entities WHERE kind = 'sheet' AND key = ?1",
                        [&p.key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(Some(old)) = old
                    && let Ok(old) = old.parse::<Uuid>()
                    && old != sheet.id
                {
                    rekey(&tx, &p.key, old, sheet.id)?;
                }
            }
            let json = data_json(&ch.entity)?;
            tx.execute(
                "INSERT INTO entities(kind, key, id, round_id, product_id, owner_id, seq, server_json, local_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT(kind, key) DO UPDATE SET id = excluded.id, seq = excluded.seq,
                   server_json = excluded.server_json, local_json = excluded.local_json,
                   round_id = excluded.round_id, product_id = excluded.product_id, owner_id = excluded.owner_id",
                params![
                    p.kind,
                    p.key,
                    p.id,
                    p.round.map(|u| u.to_string()),
                    p.product.map(|u| u.to_string()),
                    p.owner.map(|u| u.to_string()),
                    ch.seq as i64,
                    json
                ],
            )?;
            if matches!(p.kind, SHEET | PARTICIPATION | DECISION) {
                touched.insert((p.kind, p.key));
            }
        }
        for (k, key) in &touched {
            refresh(&tx, k, key, s.user.id, s.device_id)?;
        }
        meta_set(&tx, "cursor", &page.next_cursor.to_string())?;
        tx.commit()?;
        Ok(())
    }

    async fn upload_attachments(
        &self,
        api: &Api,
        g: u64,
        missing: &[String],
        report: &mut SyncReport,
    ) -> Result<(), Stop> {
        {
            let c = self.conn();
            self.same_session(g)?;
            for m in missing {
                c.execute("UPDATE attachments SET uploaded = 0 WHERE sha256 = ?1", [m])?;
            }
        }
        let todo: Vec<(String, String)> = {
            let c = self.conn();
            let mut st = c.prepare(
                "SELECT sha256, content_type FROM attachments WHERE uploaded = 0 AND failed = 0",
            )?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let total = todo.len() as u64;
        for (i, (sha, ct)) in todo.into_iter().enumerate() {
            self.progress(Phase::Attachments, i as u64, Some(total));
            let bytes = match std::fs::read(self.attachment_path(&sha)) {
                Ok(b) => b,
                Err(e) => {
                    self.photo_failed(g, &sha, "file_missing", &e.to_string())?;
                    continue;
                }
            };
            match api.put_attachment(&sha, &ct, bytes).await {
                Ok(()) => {
                    let c = self.conn();
                    self.same_session(g)?;
                    c.execute(
                        "UPDATE attachments SET uploaded = 1 WHERE sha256 = ?1",
                        [&sha],
                    )?;
                    report.attachments_uploaded += 1;
                }
                // A photo the server will never take must not stop text from
                // syncing, nor vanish unnoticed: it is listed in "needs attention".
                Err(Failure::Permanent { status, message }) => {
                    self.photo_failed(g, &sha, &format!("http_{status}"), &message)?;
                }
                Err(e) => return Err(Stop::Net(e)),
            }
        }
        Ok(())
    }

    /// Marks a photo as refused for good and lists it in "needs attention"
    /// (under an id from the mutation counter, so it never collides).
    fn photo_failed(&self, g: u64, sha: &str, code: &str, reason: &str) -> Result<()> {
        let mut c = self.conn();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.same_session(g)?;
        tx.execute("UPDATE attachments SET failed = 1 WHERE sha256 = ?1", [sha])?;
        let id: u64 = meta_get(&tx, "next_mutation_id")?
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        meta_set(&tx, "next_mutation_id", &(id + 1).to_string())?;
        tx.execute(
            "INSERT INTO attention(id, body, code, reason, at, kind, photo) VALUES (?1, '', ?2, ?3, ?4, 'photo', ?5)",
            params![id as i64, code, reason, now(), sha],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Fetches photos that sheets this device can see refer to but that are
    /// not on this device (other members' evidence, for a chair). Best effort:
    /// a photo that fails is tried again at the next sync.
    async fn download_attachments(
        &self,
        api: &Api,
        g: u64,
        report: &mut SyncReport,
    ) -> Result<(), Stop> {
        let wanted: BTreeSet<String> = {
            let c = self.conn();
            // A cheap filter first: only sheets with a non-empty attachment list are parsed.
            let mut st = c.prepare(
                "SELECT local_json FROM entities WHERE kind = 'sheet' AND local_json LIKE '%\"attachments\":[\"%'",
            )?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = BTreeSet::new();
            for r in rows {
                let sheet: SheetState = serde_json::from_str(&r?)?;
                for a in sheet.answers.values() {
                    out.extend(a.answer.attachments.iter().cloned());
                }
            }
            out
        };
        let mut first_failure = None;
        for sha in wanted {
            if !is_sha256(&sha) || self.attachment_path(&sha).exists() {
                continue;
            }
            match api.get_attachment(&sha).await {
                Ok(bytes) => {
                    // Content-addressed: bytes that do not hash to their name are not kept.
                    if hex::encode(sha2::Sha256::digest(&bytes)) != sha {
                        first_failure.get_or_insert(Failure::Transient(format!(
                            "photo {sha} arrived damaged"
                        )));
                        continue;
                    }
                    let c = self.conn();
                    self.same_session(g)?;
                    let path = self.attachment_path(&sha);
                    let tmp = path.with_extension("part");
                    std::fs::write(&tmp, &bytes).map_err(Error::from)?;
                    std::fs::rename(&tmp, &path).map_err(Error::from)?;
                    c.execute(
                        "INSERT OR IGNORE INTO attachments(sha256, size, content_type, uploaded, created_at)
                         VALUES (?1, ?2, 'application/octet-stream', 1, ?3)",
                        params![sha, bytes.len() as i64, now()],
                    )?;
                    report.attachments_downloaded += 1;
                }
                Err(Failure::Unauthorized) => return Err(Stop::Net(Failure::Unauthorized)),
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
        match first_failure {
            // A photo the server does not have (yet) is not worth an error banner.
            None | Some(Failure::Permanent { .. }) => Ok(()),
            Some(e) => Err(Stop::Net(e)),
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The push answer must be one result per mutation, in order; anything else
/// is not an acknowledgement of anything.
fn check_answers(ms: &[Mutation], resp: &PushResponse) -> Result<(), Failure> {
    let ok =
        ms.len() == resp.results.len() && ms.iter().zip(&resp.results).all(|(m, r)| m.id == r.id);
    if ok {
        Ok(())
    } else {
        Err(Failure::Transient(format!(
            "the server answered {} results for {} mutations",
            resp.results.len(),
            ms.len()
        )))
    }
}

fn entity_of(tx: &Transaction<'_>, id: u64) -> Result<Option<(String, String)>> {
    Ok(tx
        .query_row(
            "SELECT entity_kind, entity_key FROM outbox WHERE id = ?1",
            [id as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn set_aside_tx(
    tx: &Transaction<'_>,
    m: &Mutation,
    code: &str,
    reason: &str,
) -> Result<Option<(String, String)>> {
    let e = entity_of(tx, m.id)?;
    tx.execute(
        "INSERT OR REPLACE INTO attention(id, body, code, reason, at, kind, entity_kind, entity_key)
         VALUES (?1, ?2, ?3, ?4, ?5, 'mutation', ?6, ?7)",
        params![
            m.id as i64,
            serde_json::to_string(m)?,
            code,
            reason,
            now(),
            e.as_ref().map(|x| &x.0),
            e.as_ref().map(|x| &x.1)
        ],
    )?;
    tx.execute("DELETE FROM outbox WHERE id = ?1", [m.id as i64])?;
    Ok(e)
}

/// Removes an acknowledged mutation and folds what it did into the server
/// snapshot, so the next edit names the right base revision even before the
/// next pull, and the local view keeps showing what the server accepted
/// (a reopen, a decision, an abstention) until a pull replaces it.
/// `applied`: for a conflict outcome, the criteria that did apply.
fn ack(
    tx: &Transaction<'_>,
    s: &Session,
    m: &Mutation,
    seq: u64,
    canonical: Option<Uuid>,
    applied: Option<&Vec<String>>,
) -> Result<Option<(String, String)>> {
    let Some((kind, key)) = entity_of(tx, m.id)? else {
        return Ok(None);
    };
    tx.execute("DELETE FROM outbox WHERE id = ?1", [m.id as i64])?;
    // Conflict outcomes only come from answer and note edits.
    let folds = applied.is_none();
    if kind == PARTICIPATION && folds {
        let v = model::participation_view(
            server::<ParticipationInfo>(tx, &kind, &key)?,
            std::slice::from_ref(m),
        );
        set_snapshot(tx, &kind, &key, v.as_ref())?;
        return Ok(Some((kind, key)));
    }
    if kind == DECISION && folds {
        let prev: Option<DecisionInfo> = crate::device::local(tx, &kind, &key)?;
        let v = model::decision_view(
            server::<DecisionInfo>(tx, &kind, &key)?,
            prev,
            std::slice::from_ref(m),
            s.user.id,
        );
        set_snapshot(tx, &kind, &key, v.as_ref())?;
        return Ok(Some((kind, key)));
    }
    if kind != SHEET {
        return Ok(Some((kind, key)));
    }
    if let (Some(new), Some(old)) = (canonical, model::sheet_of(&m.op))
        && new != old
    {
        rekey(tx, &key, old, new)?;
    }
    let stored: Option<Option<String>> = tx
        .query_row(
            "SELECT server_json FROM entities WHERE kind = 'sheet' AND key = ?1",
            [&key],
            |r| r.get(0),
        )
        .optional()?;
    let mut snap: Option<SheetState> = match stored.flatten() {
        Some(j) => Some(serde_json::from_str(&j)?),
        None => None,
    };
    model::apply_sheet_op(
        &mut snap,
        &m.op,
        s.user.id,
        s.device_id,
        model::Stamp::Acked {
            seq,
            applied: applied.map(Vec::as_slice),
        },
    );
    if let (Some(sn), Some(c), Op::SetAnswers { .. }) = (snap.as_mut(), canonical, &m.op) {
        sn.id = c;
    }
    if let Some(sn) = snap {
        tx.execute(
            "UPDATE entities SET server_json = ?1 WHERE kind = 'sheet' AND key = ?2",
            params![serde_json::to_string(&sn)?, key],
        )?;
    }
    Ok(Some((kind, key)))
}

/// Replaces a participation's or decision's server snapshot with what the
/// server just acknowledged (a pull brings the authoritative one later).
fn set_snapshot<T: Serialize>(
    tx: &Transaction<'_>,
    kind: &str,
    key: &str,
    v: Option<&T>,
) -> Result<()> {
    if let Some(v) = v {
        tx.execute(
            "UPDATE entities SET server_json = ?1 WHERE kind = ?2 AND key = ?3",
            params![serde_json::to_string(v)?, kind, key],
        )?;
    }
    Ok(())
}

/// The server mapped this slot's sheet onto `new`: follow it locally, and in
/// every mutation that has not possibly been sent yet.
fn rekey(tx: &Transaction<'_>, key: &str, old: Uuid, new: Uuid) -> Result<()> {
    tx.execute(
        "UPDATE entities SET id = ?1 WHERE kind = 'sheet' AND key = ?2",
        params![new.to_string(), key],
    )?;
    let rows: Vec<(i64, String)> = {
        let mut st = tx.prepare(
            "SELECT id, body FROM outbox WHERE entity_kind = 'sheet' AND entity_key = ?1 AND sent = 0",
        )?;
        st.query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (id, body) in rows {
        // An unreadable row is set aside at the next push; it cannot be re-keyed.
        let Ok(mut m) = serde_json::from_str::<Mutation>(&body) else {
            continue;
        };
        model::rekey_op(&mut m.op, old, new);
        tx.execute(
            "UPDATE outbox SET body = ?1 WHERE id = ?2",
            params![serde_json::to_string(&m)?, id],
        )?;
    }
    Ok(())
}

fn data_json(e: &Entity) -> serde_json::Result<String> {
    match e {
        Entity::User(x) => serde_json::to_string(x),
        Entity::Rubric(x) => serde_json::to_string(x),
        Entity::Round(x) => serde_json::to_string(x),
        Entity::Roster(x) => serde_json::to_string(x),
        Entity::Product(x) => serde_json::to_string(x),
        Entity::Participation(x) => serde_json::to_string(x),
        Entity::Sheet(x) => serde_json::to_string(x),
        Entity::Decision(x) => serde_json::to_string(x),
        Entity::Attachment(x) => serde_json::to_string(x),
    }
}

/// Timing of the background loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// Sync this often when nothing happens.
    pub idle: Duration,
    /// After a nudge (an edit), wait this long so a burst of taps goes in one push.
    pub debounce: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            idle: plan::IDLE_INTERVAL,
            debounce: Duration::from_millis(1500),
        }
    }
}

/// Background sync: wakes on a timer, on every local edit, and on
/// [`Device::nudge`] (connectivity came back), retrying with backoff and jitter.
pub struct SyncLoop {
    task: JoinHandle<()>,
    device: Arc<Device>,
}

impl std::fmt::Debug for SyncLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncLoop").finish_non_exhaustive()
    }
}

impl SyncLoop {
    /// Must be called inside a tokio runtime.
    pub fn spawn(device: Arc<Device>, cfg: LoopConfig) -> SyncLoop {
        let d = device.clone();
        let task = tokio::spawn(async move {
            let wake = d.wake.clone();
            let mut attempt = 0u32;
            loop {
                let outcome = match d.sync_now().await {
                    Ok(_) => {
                        attempt = 0;
                        Ok(())
                    }
                    Err(Error::SignInAgain | Error::NotSignedIn) => Err(Failure::Unauthorized),
                    Err(e) => {
                        attempt = attempt.saturating_add(1);
                        Err(Failure::Transient(e.to_string()))
                    }
                };
                let wait = match plan::after_attempt(&outcome, attempt, rand::random::<f64>()) {
                    Next::Idle(d) => Some(d.min(cfg.idle)),
                    Next::Retry(d) => Some(d),
                    Next::WaitForUser => None,
                };
                match wait {
                    Some(w) => {
                        tokio::select! {
                            _ = tokio::time::sleep(w) => {}
                            _ = wake.notified() => tokio::time::sleep(cfg.debounce).await,
                        }
                    }
                    None => {
                        wake.notified().await;
                    }
                }
            }
        });
        SyncLoop { task, device }
    }

    /// Connectivity changed or the app came to the foreground: sync soon.
    pub fn nudge(&self) {
        self.device.nudge();
    }

    /// Stops the loop. Safe at any point: every database write is its own
    /// transaction and unacknowledged mutations stay in the outbox.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// A pull page in flight on its own task: the request, then the next
/// cursor its headers name (told at once, so the page after it can be asked
/// for), then its body read and decoded. Dropping it (an error, a sign-out,
/// a cursor the body did not confirm) aborts it.
struct Prefetch {
    hint: Option<tokio::sync::oneshot::Receiver<Option<u64>>>,
    task: JoinHandle<Result<PullResponse, Failure>>,
}

impl Prefetch {
    fn start(api: &Api, cursor: u64) -> Prefetch {
        let api = api.clone();
        let (tell, hint) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let started: PullStart = match api.pull_start(cursor, DEFAULT_PULL_LIMIT).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tell.send(None);
                    return Err(e);
                }
            };
            let _ = tell.send(started.next());
            started.page().await
        });
        Prefetch {
            hint: Some(hint),
            task,
        }
    }

    /// The next page's cursor, once this page's headers are in (`None`:
    /// they name none, or the request failed: the page says why).
    async fn next_hint(&mut self) -> Option<u64> {
        match self.hint.take() {
            Some(h) => h.await.ok().flatten(),
            None => None,
        }
    }

    async fn page(mut self) -> Result<PullResponse, Failure> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(Failure::Transient(format!("the page request stopped: {e}"))),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
