//! The storage seam: everything the HTTP layer asks of the database.
//!
//! [`Store`] is deliberately narrow and synchronous; the HTTP layer calls it
//! from `tokio::task::spawn_blocking`. The only implementation is
//! [`crate::sqlite::SqliteStore`]; a PostgreSQL one would implement the same
//! trait. Permission checks live *behind* the trait, so every backend enforces
//! them the same way and the story test can drive the trait directly.

use std::collections::BTreeMap;

use ocop_shared::wire::{
    AccountRole, AttachmentMeta, CreateProductRequest, CreateRoundRequest, CreateUserRequest,
    EnrolRequest, EnrolmentCodeRequest, EnrolmentCodeResponse, LoginRequest, ProductInfo,
    PullResponse, PushRequest, PushResponse, RosterEntry, RoundInfo, RoundStatus,
    RubricImportResponse, SetRosterRequest, SheetState, TokenResponse, UserInfo,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;

/// Who is calling: the user and the device their token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: UserInfo,
    pub device_id: Uuid,
}

impl Principal {
    /// The server itself acting as admin (command line tools, demo seeding).
    pub fn system() -> Principal {
        Principal {
            user: UserInfo {
                id: Uuid::nil(),
                username: "system".into(),
                full_name: "system".into(),
                role: AccountRole::Admin,
            },
            device_id: Uuid::nil(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == AccountRole::Admin
    }
}

/// A device as the admin sees it (`GET /api/v1/admin/devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub name: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A rubric version held by the server (`GET /api/v1/admin/rubrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RubricSummary {
    pub id: String,
    pub version: u32,
    pub title_vi: String,
    pub published: bool,
}

/// A mutation the server refused, kept for an admin to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub at: String,
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub mutation_id: u64,
    /// The mutation exactly as received.
    pub mutation: serde_json::Value,
    pub code: ocop_shared::wire::RejectCode,
    pub reason: String,
}

/// One write: who, from which device, when, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unique in the log: above zero for an audit row, below zero for a
    /// pushed mutation (its idempotency row, since schema 9).
    pub id: i64,
    pub at: String,
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub action: String,
    pub detail: serde_json::Value,
    /// Server seq of the write, when it changed synced data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The storage seam. All methods are blocking.
pub trait Store: Send + Sync + 'static {
    // ---- bootstrap
    /// Creates the `admin` account when there is no admin yet. Returns the
    /// generated password when none was given and an account was created.
    fn ensure_admin(&self, password: Option<&str>) -> Result<Option<String>>;
    /// Installs and publishes the bundled scoreable rubrics that are missing.
    fn install_bundled_rubrics(&self) -> Result<()>;
    /// The latest server seq.
    fn server_seq(&self) -> Result<u64>;

    // ---- auth
    /// The principal of a bearer token, or `None` (unknown or revoked).
    fn authenticate(&self, token: &str) -> Result<Option<Principal>>;
    fn login(&self, req: &LoginRequest) -> Result<TokenResponse>;
    fn enrol(&self, req: &EnrolRequest) -> Result<TokenResponse>;

    // ---- admin
    fn create_user(&self, actor: &Principal, req: &CreateUserRequest) -> Result<UserInfo>;
    fn list_users(&self, actor: &Principal) -> Result<Vec<UserInfo>>;
    fn user_by_username(&self, username: &str) -> Result<Option<UserInfo>>;
    /// `server_url` goes into the QR payload.
    fn issue_enrolment_code(
        &self,
        actor: &Principal,
        req: &EnrolmentCodeRequest,
        server_url: &str,
    ) -> Result<EnrolmentCodeResponse>;
    fn list_devices(&self, actor: &Principal) -> Result<Vec<DeviceInfo>>;
    fn revoke_device(&self, actor: &Principal, device_id: Uuid) -> Result<()>;
    /// Validates and stores a rubric version (unpublished unless it is
    /// already published with the identical body).
    fn import_rubric(&self, actor: &Principal, text: &str) -> Result<RubricImportResponse>;
    fn publish_rubric(
        &self,
        actor: &Principal,
        id: &str,
        version: u32,
    ) -> Result<RubricImportResponse>;
    fn list_rubrics(&self, actor: &Principal) -> Result<Vec<RubricSummary>>;
    fn create_round(&self, actor: &Principal, req: &CreateRoundRequest) -> Result<RoundInfo>;
    fn list_rounds(&self, actor: &Principal) -> Result<Vec<RoundInfo>>;
    /// Opens or closes a round; sheet writes in a closed round are `locked`.
    fn set_round_status(
        &self,
        actor: &Principal,
        round_id: Uuid,
        status: RoundStatus,
    ) -> Result<RoundInfo>;
    fn set_roster(
        &self,
        actor: &Principal,
        round_id: Uuid,
        req: &SetRosterRequest,
    ) -> Result<Vec<RosterEntry>>;
    fn create_product(&self, actor: &Principal, req: &CreateProductRequest) -> Result<ProductInfo>;
    fn quarantine(&self, actor: &Principal) -> Result<Vec<QuarantineEntry>>;
    fn audit(&self, actor: &Principal, limit: usize) -> Result<Vec<AuditEntry>>;
    /// A round with its products, decisions and every sheet, as JSON.
    fn export_round(&self, actor: &Principal, round_id: Uuid) -> Result<serde_json::Value>;

    // ---- sync
    fn push(&self, actor: &Principal, req: &PushRequest) -> Result<PushResponse>;
    /// [`Store::push`] for a caller that hands the request over (the HTTP
    /// handler): a backend may then commit pushes that arrive together in one
    /// transaction (group commit). Same outcomes as `push`.
    fn push_owned(&self, actor: Principal, req: PushRequest) -> Result<PushResponse> {
        self.push(&actor, &req)
    }
    /// [`Store::push_owned`] of a request body as it came: a backend may
    /// decode it on several threads. A body that does not decode is refused
    /// as [`crate::body::decode`] refuses it.
    /// Also says where the push's time went ([`PushTiming`]).
    fn push_body(
        &self,
        actor: Principal,
        body: axum::body::Bytes,
    ) -> Result<(PushResponse, PushTiming)> {
        push_decoded(self, actor, &body, std::time::Instant::now())
    }
    fn pull(&self, actor: &Principal, cursor: u64, limit: usize) -> Result<PullResponse>;
    /// [`Store::pull`] encoded as JSON (what the HTTP layer sends), with the
    /// page's cursor outside the JSON too (the HTTP layer sends it as headers
    /// so a device can ask for the next page before decoding this one).
    /// Backends that keep entity JSON can splice it instead of re-encoding.
    fn pull_json(&self, actor: &Principal, cursor: u64, limit: usize) -> Result<PageJson> {
        let page = self.pull(actor, cursor, limit)?;
        Ok(PageJson {
            json: serde_json::to_string(&page)?,
            next_cursor: page.next_cursor,
            has_more: page.has_more,
        })
    }

    // ---- attachments (bytes live in files; the store keeps metadata)
    fn attachment(&self, sha256: &str) -> Result<Option<AttachmentMeta>>;
    /// Records upload progress (and completion when `received == size`).
    fn record_attachment(&self, actor: &Principal, meta: &AttachmentMeta) -> Result<()>;
    /// Forgets an upload that failed verification.
    fn discard_attachment(&self, sha256: &str) -> Result<()>;
    /// Whether the caller may download an attachment (or ask about its
    /// upload): admin, the uploader, or someone who may read in full a sheet
    /// of the uploader that references it (see `attachments.rs`).
    fn can_read_attachment(&self, actor: &Principal, sha256: &str) -> Result<bool>;

    // ---- inspection
    /// Every accepted revision of a sheet (the whole sheet after each write),
    /// oldest first, as the caller may see it.
    fn sheet_revisions(&self, actor: &Principal, sheet_id: Uuid) -> Result<Vec<SheetState>>;
    /// Row count of every table (tests check "the database is unchanged").
    fn table_counts(&self) -> Result<BTreeMap<String, u64>>;
}

/// A push body decoded whole, then [`Store::push_owned`], timed from
/// `started`: what [`Store::push_body`] does for a backend that prepares
/// nothing, and the fallback of one that does.
pub(crate) fn push_decoded<S: Store + ?Sized>(
    store: &S,
    actor: Principal,
    body: &[u8],
    started: std::time::Instant,
) -> Result<(PushResponse, PushTiming)> {
    let req: PushRequest = crate::body::decode(body)?;
    let read = started.elapsed();
    let resp = store.push_owned(actor, req)?;
    Ok((
        resp,
        PushTiming {
            read,
            prepare: std::time::Duration::ZERO,
            write: started.elapsed() - read,
        },
    ))
}

/// Where one push's time went inside the store, in the order it is spent;
/// the HTTP layer sends it as a `Server-Timing` header (the sync benchmark
/// reads it to say which step of a push is slow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushTiming {
    /// Reading the body into its mutations.
    pub read: std::time::Duration,
    /// Work done before the writer (zero for a backend that does none); for
    /// a push prepared while it is written, the time the writer spent
    /// preparing its mutations or waiting for them.
    pub prepare: std::time::Duration,
    /// Waiting for the writer and writing, commit included (less `prepare`
    /// when the two overlap).
    pub write: std::time::Duration,
}

/// A pull page as JSON (a [`PullResponse`]) and the two fields of it that the
/// HTTP layer also sends as headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageJson {
    pub json: String,
    pub next_cursor: u64,
    pub has_more: bool,
}
