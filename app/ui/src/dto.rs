//! What the shell's commands answer, as the UI reads it. The scoring types
//! come from `ocop-shared` itself; these are the device core's own views
//! (`ocop_app::{ProductItem, SheetView, SyncStatus, …}`), read back from
//! their JSON because the core (SQLite, HTTP) cannot be built for wasm.

use ocop_shared::score::SheetScore;
use ocop_shared::wire::{Answer, DecisionInfo, ProductInfo, SheetState, SheetStatus, UserInfo};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A command's failure: `{code, message, message_vi}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub message_vi: String,
}

impl ApiError {
    pub fn local(code: &str, en: impl Into<String>, vi: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: en.into(),
            message_vi: vi.into(),
        }
    }

    pub fn text(&self, lang: crate::i18n::Lang) -> &str {
        match lang {
            crate::i18n::Lang::Vi if !self.message_vi.is_empty() => &self.message_vi,
            _ => &self.message,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    pub server_url: String,
    pub device_id: Uuid,
    pub user: UserInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Defaults {
    pub server_url: String,
    pub device_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProductItem {
    pub product: ProductInfo,
    pub my_status: Option<SheetStatus>,
    pub answered: usize,
    pub criteria: usize,
    pub decision: Option<DecisionInfo>,
    #[serde(default)]
    pub unsynced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SheetView {
    pub product: ProductInfo,
    pub sheet: SheetState,
    pub pending: Vec<String>,
    pub score: SheetScore,
    pub conflicts: Vec<ConflictView>,
    pub editable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConflictView {
    pub sheet_id: Uuid,
    pub product_id: Uuid,
    pub conflict_id: Uuid,
    pub criterion: Option<String>,
    pub current: Answer,
    pub current_rev: u64,
    pub other: Answer,
    pub other_device: Uuid,
    pub other_is_mine: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AttentionItem {
    pub mutation_id: u64,
    pub code: String,
    pub reason: String,
    pub at: String,
    pub photo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Words {
    pub vi: String,
    pub en: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    SignedOut,
    UpToDate,
    Pending,
    Syncing,
    Offline,
    SignInAgain,
    UpdateApp,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Progress {
    pub phase: String,
    pub done: u64,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SyncStatus {
    pub state: SyncState,
    pub pending: u64,
    pub needs_attention: u64,
    pub conflicts: u64,
    pub last_success: Option<String>,
    pub progress: Option<Progress>,
    pub last_error: Option<Words>,
}

/// Which side of a conflict to keep (`ocop_app::Keep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "keep", content = "value")]
pub enum Keep {
    Current,
    Other,
}
