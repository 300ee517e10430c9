//! Sync wire types: what the app and the sync server say to each other.
//!
//! Declared once, here, and frozen by golden JSON tests (`shared/tests/golden_wire.rs`):
//! a change to any shape below is a protocol change. The protocol is described
//! in `docs/sync-protocol.md`.
//!
//! Key rules the types encode:
//! - ids of sheets are made on the device (UUIDv7); the server maps a second
//!   sheet id for the same (round, product, member) onto the first one and
//!   answers with the canonical id;
//! - every mutation carries a device-monotonic `id`; `(device, id)` is unique
//!   on the server, so a resend returns the original outcome;
//! - answers are versioned per criterion: `base_rev` names the revision the
//!   device last saw (0 = never set). A stale base is a *conflict*, stored and
//!   flagged, never dropped and never silently winning;
//! - device clocks are metadata only (`client_time`); ordering is the server `seq`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::council::{CouncilConfig, CouncilResult, Participation};
use crate::fixed::Centi;
use crate::rubric::{Rubric, RubricRef};

/// Bumped on any incompatible change to the shapes in this module.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most mutations a client sends in one push.
pub const MAX_BATCH_MUTATIONS: usize = 500;

/// Largest request body the server accepts (push batches and JSON admin calls).
/// 500 mutations of a full 31-criterion sheet with notes are about 1.6 MB.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Largest attachment (a photo of evidence).
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;

/// Default number of changes per pull page (a page may exceed it to keep one
/// server transaction whole). 500 full sheets are ~2 MB of JSON: pages of 1,000
/// pulled no faster and raised the server's peak RSS by ~8 MB
/// (`cargo bench -p ocop-tests --bench sync`).
pub const DEFAULT_PULL_LIMIT: usize = 500;

/// HTTP paths, relative to the server base URL.
pub mod paths {
    pub const HEALTH: &str = "/api/v1/health";
    pub const OPENAPI: &str = "/api/v1/openapi.json";
    pub const LOGIN: &str = "/api/v1/auth/login";
    pub const ENROL: &str = "/api/v1/auth/enrol";
    pub const ME: &str = "/api/v1/auth/me";
    pub const PUSH: &str = "/api/v1/sync/push";
    pub const PULL: &str = "/api/v1/sync/pull";
    /// `PUT`/`HEAD`/`GET` `/api/v1/attachments/{sha256}`.
    pub const ATTACHMENTS: &str = "/api/v1/attachments";
    pub const ADMIN_USERS: &str = "/api/v1/admin/users";
    pub const ADMIN_ENROLMENT_CODES: &str = "/api/v1/admin/enrolment-codes";
    /// `POST /api/v1/admin/devices/{id}/revoke`.
    pub const ADMIN_DEVICES: &str = "/api/v1/admin/devices";
    pub const ADMIN_RUBRICS: &str = "/api/v1/admin/rubrics";
    pub const ADMIN_ROUNDS: &str = "/api/v1/admin/rounds";
    pub const ADMIN_PRODUCTS: &str = "/api/v1/admin/products";
    pub const ADMIN_QUARANTINE: &str = "/api/v1/admin/quarantine";
    pub const ADMIN_AUDIT: &str = "/api/v1/admin/audit";
    pub const ADMIN_EXPORT: &str = "/api/v1/admin/export";
}

/// Response headers of `GET` [`paths::PULL`]: the page's `next_cursor` and
/// `has_more`, equal to the fields in its body, sent before the body so a
/// device can ask for the next page while it decodes and stores this one.
/// The body stays the truth: a device that prefetched with a header value
/// the body contradicts throws the prefetched page away.
pub mod pull_headers {
    pub const NEXT_CURSOR: &str = "x-ocop-next-cursor";
    pub const HAS_MORE: &str = "x-ocop-has-more";

    /// The next page's cursor from the two header values, when they say
    /// there is more; `None` when a header is missing or not what the server
    /// sends (an older server, a proxy): the client then waits for the body.
    pub fn next_page(has_more: Option<&str>, next_cursor: Option<&str>) -> Option<u64> {
        let cursor = next_cursor?.parse().ok()?;
        (has_more? == "true").then_some(cursor)
    }
}

// ---------------------------------------------------------------- errors

/// The one error shape of every failed HTTP call, malformed JSON included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine code, see [`ErrorCode`].
    pub code: ErrorCode,
    /// Lowercase, says what is wrong and how to fix it.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON or request.
    BadRequest,
    /// 401: no token, unknown or revoked token, wrong password. Never means "discard data".
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404
    NotFound,
    /// 405: the path exists but not with this method; the message (and the
    /// `Allow` header) lists the methods it answers.
    MethodNotAllowed,
    /// 409: state conflict (e.g. a username already taken).
    Conflict,
    /// 409: a pull's cursor is past everything the server has written (the
    /// server was restored from an older backup). `details.server_seq` says
    /// where the server is; pull again from cursor 0 and keep the outbox.
    CursorAhead,
    /// 413: body over the limit; the message says the limit.
    PayloadTooLarge,
    /// 414: the URI (path and query) is longer than the server reads.
    UriTooLong,
    /// 415: a `Content-Encoding` the server cannot decode (it reads gzip and zstd).
    UnsupportedMediaType,
    /// 422: well-formed but invalid (e.g. a rubric that fails validation).
    Unprocessable,
    /// 429: too many attempts (login).
    RateLimited,
    /// 500: logged on the server; no internals are sent.
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::CursorAhead => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UriTooLong => 414,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Unprocessable => 422,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether a client should retry the same request later unchanged.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::Internal)
    }
}

// ---------------------------------------------------------------- auth

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// Provincial OCOP office: sets up rubrics, rounds, councils, products.
    Admin,
    /// A council member; the council role (chair, member, secretary) is per round.
    Assessor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub role: AccountRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    pub device_name: String,
    /// Signing in again on a device that had a token (after a 401): the
    /// server re-attaches this device id (if it is the same user's) so that
    /// mutations resent after the new sign-in are recognised as duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The short single-use code an admin issued (case and dashes ignored).
    pub code: String,
    pub device_name: String,
}

/// A long-lived, revocable device token; sent as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
    pub device_id: Uuid,
    pub user: UserInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUserRequest {
    pub username: String,
    pub full_name: String,
    pub role: AccountRole,
    /// Optional: assessors usually enrol by code and never type a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The longest an enrolment code may live: 30 days. A longer `ttl_minutes`
/// is refused with 400 (a code is a one-time password for the account).
pub const MAX_ENROLMENT_TTL_MINUTES: u32 = 30 * 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCodeRequest {
    pub user_id: Uuid,
    /// Minutes until the code expires (default 1440 = one day, at most
    /// [`MAX_ENROLMENT_TTL_MINUTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCodeResponse {
    /// e.g. `K7QP-M2XD`: short, single-use.
    pub code: String,
    /// RFC 3339, server clock.
    pub expires_at: String,
    /// Text to render as a QR code: `ocop-enrol:1?server=<url>&code=<code>`.
    pub qr_payload: String,
}

// ---------------------------------------------------------------- reference data

/// The level a round is held at (1489/QĐ-TTg: commune pre-assesses, province
/// recognises 3★/4★, central recognises 5★).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Commune,
    Province,
    Central,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundInfo {
    pub id: Uuid,
    pub name: String,
    pub level: Level,
    pub province: String,
    /// `YYYY-MM-DD`.
    pub starts_on: String,
    pub ends_on: String,
    pub status: RoundStatus,
    pub council: CouncilConfig,
}

/// A council role within one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouncilRole {
    Chair,
    ViceChair,
    Member,
    /// Keeps the minutes; never scores.
    Secretary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub round_id: Uuid,
    pub user_id: Uuid,
    pub full_name: String,
    pub role: CouncilRole,
    /// false once removed from the council (kept for the audit trail).
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInfo {
    pub id: Uuid,
    pub round_id: Uuid,
    /// Short code shown on the sheet, e.g. "SP-07" (may be a blind code).
    pub code: String,
    pub name: String,
    pub producer: String,
    pub commune: String,
    pub district: String,
    pub province: String,
    pub group: String,
    pub subgroup: String,
    pub rubric: RubricRef,
}

/// A member abstaining (own choice) or recused (chair's decision) for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipationInfo {
    pub round_id: Uuid,
    pub product_id: Uuid,
    pub user_id: Uuid,
    pub participation: Participation,
    #[serde(default)]
    pub reason: String,
}

// ---------------------------------------------------------------- sheets

/// One criterion's answer as the assessor gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Answer {
    /// The chosen option id; `None` clears the answer.
    #[serde(default)]
    pub option: Option<String>,
    /// The assessor raised this criterion's knock-out.
    #[serde(default, skip_serializing_if = "is_false")]
    pub knockout: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// SHA-256 (lowercase hex) of evidence photos, uploaded separately.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An answer as stored on the server, with its revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerState {
    pub answer: Answer,
    /// Server `seq` of the write that set this value.
    pub rev: u64,
    /// Device that wrote it.
    pub device_id: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SheetStatus {
    Draft,
    Submitted,
    /// Reopened by the chair with a reason; editable again, then resubmitted.
    Reopened,
}

/// What a conflicting write was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum ConflictField {
    Answer { criterion: String, theirs: Answer },
    Note { theirs: String },
}

/// A write that arrived with a stale base: kept, flagged, shown to the owner
/// and the chair until someone resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    pub id: Uuid,
    #[serde(flatten)]
    pub field: ConflictField,
    pub device_id: Uuid,
    pub mutation_id: u64,
    /// The revision the device based its write on.
    pub base_rev: u64,
    /// The revision that was current when it arrived.
    pub current_rev: u64,
    /// Server `seq` at which it was recorded.
    pub seq: u64,
    pub resolved: bool,
}

/// The whole state of one score sheet (one member × one product × one round).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetState {
    pub id: Uuid,
    pub round_id: Uuid,
    pub product_id: Uuid,
    pub owner_id: Uuid,
    pub rubric: RubricRef,
    pub status: SheetStatus,
    /// Criterion code → answer. On the wire: `{"devices": [ids], "criteria":
    /// {code: {"answer", "rev", "d"}}}` where `d` indexes `devices` (see
    /// [`compact_answers`]); the older shape `{code: {"answer", "rev",
    /// "device_id"}}` is still read.
    #[serde(with = "compact_answers")]
    pub answers: BTreeMap<String, AnswerState>,
    #[serde(default)]
    pub note: String,
    /// Server `seq` of the note's last write; 0 (never written) is left off
    /// the wire. A progress view (the secretary's) always has 0 here, so it
    /// does not show whether a member wrote a note.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub note_rev: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopen_reason: Option<String>,
    /// Server `seq` of the last change to this sheet.
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictRecord>,
}

impl SheetState {
    /// A sheet nobody has written yet: the slot's ids, the pinned rubric,
    /// nothing answered (what a first write starts from, on the device and
    /// on the server).
    pub fn empty(key: &SheetKey, owner: Uuid) -> SheetState {
        SheetState {
            id: key.sheet_id,
            round_id: key.round_id,
            product_id: key.product_id,
            owner_id: owner,
            rubric: key.rubric.clone(),
            status: SheetStatus::Draft,
            answers: BTreeMap::new(),
            note: String::new(),
            note_rev: 0,
            reopen_reason: None,
            revision: 0,
            conflicts: Vec::new(),
        }
    }
}

/// The chair's decision on one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionInfo {
    pub round_id: Uuid,
    pub product_id: Uuid,
    /// Finalized: the product's sheets are locked.
    pub finalized: bool,
    /// Released: members may now read every sheet of this product.
    pub released: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CouncilResult>,
    #[serde(default)]
    pub note: String,
    pub decided_by: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    /// Bytes the server holds; equal to `size` once complete.
    pub received: u64,
}

// ---------------------------------------------------------------- push

/// Where a sheet lives; sent with every sheet write so the first write creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetKey {
    pub sheet_id: Uuid,
    pub round_id: Uuid,
    pub product_id: Uuid,
    pub rubric: RubricRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerEdit {
    pub criterion: String,
    pub answer: Answer,
    /// The revision of this criterion's answer the device last saw (0 = none).
    pub base_rev: u64,
}

/// What a mutation does. Externally tagged (`{"set_answers": {...}}`) so a
/// decoder never buffers a whole sheet to find its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Create the sheet if needed, then set answers of some criteria.
    SetAnswers {
        sheet: SheetKey,
        answers: Vec<AnswerEdit>,
    },
    /// The sheet's general note.
    SetNote {
        sheet: SheetKey,
        note: String,
        base_rev: u64,
    },
    /// Owner submits (every criterion must be answered).
    Submit { sheet_id: Uuid },
    /// Chair reopens a submitted sheet, with a reason.
    Reopen { sheet_id: Uuid, reason: String },
    /// Member abstains (self) or chair recuses a member, for one product.
    SetParticipation {
        round_id: Uuid,
        product_id: Uuid,
        user_id: Uuid,
        participation: Participation,
        #[serde(default)]
        reason: String,
    },
    /// Owner or chair settles a conflict by writing the value to keep.
    ResolveConflict {
        sheet_id: Uuid,
        conflict_id: Uuid,
        /// For answer conflicts; ignored for note conflicts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<Answer>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Current revision of the field as the device saw it.
        base_rev: u64,
    },
    /// Chair finalizes a product: computes the council result and locks its sheets.
    Finalize {
        round_id: Uuid,
        product_id: Uuid,
        /// Consensus mode: the one agreed sheet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consensus_sheet: Option<Uuid>,
        /// The mean the chair's device computed; the server refuses to
        /// finalize if its own computation differs (the minutes must match).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_mean: Option<Centi>,
        #[serde(default)]
        note: String,
    },
    /// Chair releases a product's results to the members.
    Release { round_id: Uuid, product_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mutation {
    /// Device-monotonic id, starting at 1.
    pub id: u64,
    /// Device clock, RFC 3339; metadata only, never used for ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_time: Option<String>,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub protocol: u32,
    pub mutations: Vec<Mutation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// Not allowed for this user (someone else's sheet, not on the council, ...).
    Forbidden,
    /// Fails validation (unknown criterion, option out of range, ...).
    Invalid,
    /// The product is finalized by the chair; its sheets are locked.
    Locked,
    /// Refers to an unknown round, product, sheet or rubric.
    NotFound,
    /// The same mutation id was sent before with a different body.
    IdReused,
}

/// The outcome of one mutation. Exactly one per mutation, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Applied {
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sheet_id: Option<Uuid>,
    },
    /// Sent before: the original outcome.
    Duplicate { original: Box<Outcome> },
    /// Some fields had a stale base: those are stored as flagged conflicts;
    /// the others (listed in `applied`) were applied.
    Conflict {
        seq: u64,
        sheet_id: Uuid,
        conflicts: Vec<Uuid>,
        criteria: Vec<String>,
        applied: Vec<String>,
    },
    /// Permanently refused; stored in the server's quarantine. Never blocks
    /// later mutations.
    Rejected { code: RejectCode, reason: String },
}

impl Outcome {
    /// The outcome after unwrapping a duplicate.
    pub fn original(&self) -> &Outcome {
        match self {
            Outcome::Duplicate { original } => original.original(),
            o => o,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationResult {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
    /// Attachments referenced by this device's sheets that the server lacks.
    #[serde(default)]
    pub missing_attachments: Vec<String>,
    /// Latest server `seq`; a client with this cursor has nothing to pull.
    pub server_seq: u64,
}

// ---------------------------------------------------------------- pull

/// One entity as of a server `seq`; the client upserts it by id.
/// Externally tagged (`{"sheet": {...}}`): decoded without buffering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    User(UserInfo),
    Rubric(Box<Rubric>),
    Round(RoundInfo),
    Roster(RosterEntry),
    Product(ProductInfo),
    Participation(ParticipationInfo),
    Sheet(Box<SheetState>),
    Decision(Box<DecisionInfo>),
    Attachment(AttachmentMeta),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub entity: Entity,
}

/// `GET /api/v1/sync/pull?cursor=N&limit=M`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    /// Pass back as `cursor`; advance it only after storing `changes` durably.
    pub next_cursor: u64,
    pub has_more: bool,
}

// ---------------------------------------------------------------- admin setup

/// `POST /api/v1/admin/rounds` → [`RoundInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoundRequest {
    pub name: String,
    pub level: Level,
    pub province: String,
    pub starts_on: String,
    pub ends_on: String,
    #[serde(default)]
    pub council: CouncilConfig,
}

/// One line of `PUT /api/v1/admin/rounds/{id}/roster` (the whole roster) → `Vec<RosterEntry>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterLine {
    pub user_id: Uuid,
    pub role: CouncilRole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRosterRequest {
    pub members: Vec<RosterLine>,
}

/// `POST /api/v1/admin/products` → [`ProductInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateProductRequest {
    pub round_id: Uuid,
    pub code: String,
    pub name: String,
    pub producer: String,
    pub commune: String,
    pub district: String,
    pub province: String,
    pub group: String,
    pub subgroup: String,
    pub rubric: RubricRef,
}

/// `POST /api/v1/admin/rubrics` (body: a rubric file) → this; publishing is
/// `POST /api/v1/admin/rubrics/{id}/{version}/publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RubricImportResponse {
    pub rubric: RubricRef,
    pub published: bool,
    pub warnings: Vec<crate::validate::Issue>,
}

/// The answers of a sheet with each writing device named once: a full sheet
/// repeated the same 36-character device id on all 31 answers (~1.5 KB of a
/// ~4 KB snapshot), paid for in every snapshot stored, pulled and parsed.
pub mod compact_answers {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{Error as _, MapAccess, Visitor};
    use serde::ser::{SerializeMap, SerializeStruct};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use uuid::Uuid;

    use super::{Answer, AnswerState};

    pub fn serialize<S: Serializer>(
        answers: &BTreeMap<String, AnswerState>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        // Devices in order of first appearance (one or two, nearly always).
        let mut devices: Vec<&Uuid> = Vec::new();
        for a in answers.values() {
            if !devices.contains(&&a.device_id) {
                devices.push(&a.device_id);
            }
        }
        struct Criteria<'a>(&'a BTreeMap<String, AnswerState>, &'a [&'a Uuid]);
        impl Serialize for Criteria<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (code, a) in self.0 {
                    let d = self.1.iter().position(|x| **x == a.device_id).unwrap_or(0);
                    m.serialize_entry(
                        code,
                        &Compact {
                            answer: &a.answer,
                            rev: a.rev,
                            d,
                        },
                    )?;
                }
                m.end()
            }
        }
        #[derive(Serialize)]
        struct Compact<'a> {
            answer: &'a Answer,
            rev: u64,
            d: usize,
        }
        let mut st = s.serialize_struct("Answers", 2)?;
        st.serialize_field("devices", &devices)?;
        st.serialize_field("criteria", &Criteria(answers, &devices))?;
        st.end()
    }

    #[derive(Deserialize)]
    struct CompactOwned {
        answer: Answer,
        rev: u64,
        d: usize,
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, AnswerState>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BTreeMap<String, AnswerState>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("answers: {\"devices\": [...], \"criteria\": {...}} or {code: answer}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut devices: Option<Vec<Uuid>> = None;
                let mut criteria: Option<BTreeMap<String, CompactOwned>> = None;
                let mut old = BTreeMap::new();
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "devices" if devices.is_none() => devices = Some(m.next_value()?),
                        "criteria" if criteria.is_none() => criteria = Some(m.next_value()?),
                        "devices" | "criteria" => {
                            return Err(A::Error::custom(format!("answers: {k:?} given twice")));
                        }
                        _ => {
                            let a: AnswerState = m.next_value()?;
                            old.insert(k, a);
                        }
                    }
                }
                match (devices, criteria) {
                    (None, None) => Ok(old),
                    (Some(devices), Some(criteria)) if old.is_empty() => criteria
                        .into_iter()
                        .map(|(code, c)| {
                            let device_id = *devices.get(c.d).ok_or_else(|| {
                                A::Error::custom(format!(
                                    "answers: criterion {code:?} names device {} of {}",
                                    c.d,
                                    devices.len()
                                ))
                            })?;
                            Ok((
                                code,
                                AnswerState {
                                    answer: c.answer,
                                    rev: c.rev,
                                    device_id,
                                },
                            ))
                        })
                        .collect(),
                    _ => Err(A::Error::custom(
                        "answers: expected both \"devices\" and \"criteria\" and nothing else, or criterion codes",
                    )),
                }
            }
        }
        d.deserialize_map(V)
    }
}
