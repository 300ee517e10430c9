//! What the UI shows about syncing: counts, last success, progress, last error
//! in Vietnamese first and English second.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Words {
    pub vi: String,
    pub en: String,
}

impl Words {
    pub fn new(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Words {
            vi: vi.into(),
            en: en.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Uploading,
    Attachments,
    Downloading,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    /// Unknown while downloading (the server does not say how much is left).
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Not enrolled / signed in.
    SignedOut,
    /// Everything sent and fetched as of `last_success`.
    UpToDate,
    /// Local changes wait for the next sync.
    Pending,
    Syncing,
    /// The last attempt failed for a reason worth retrying; it will retry.
    Offline,
    /// The server refused the token: sign in again (nothing was deleted).
    SignInAgain,
    /// The server cannot understand this app's requests: update the app
    /// (the outbox is kept and goes up after the update).
    UpdateApp,
    /// The server refused a request for good, or local storage failed:
    /// retrying alone is unlikely to help; `last_error` says what happened.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    pub state: SyncState,
    /// Mutations not yet acknowledged by the server.
    pub pending: u64,
    /// Mutations the server rejected for good; see `Device::needs_attention`.
    pub needs_attention: u64,
    /// Unresolved conflicts on sheets this device can see.
    pub conflicts: u64,
    /// RFC 3339, device clock.
    pub last_success: Option<String>,
    pub progress: Option<Progress>,
    pub last_error: Option<Words>,
}

/// In-memory part of the status (the counts come from the database).
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub syncing: bool,
    pub progress: Option<Progress>,
    pub last_error: Option<Words>,
    /// Which state `last_error` puts the device in (`Offline` when retrying helps).
    pub error_state: Option<SyncState>,
}

pub(crate) fn update_app_words(detail: &str) -> Words {
    Words::new(
        format!(
            "Ứng dụng và máy chủ không còn tương thích: hãy cập nhật ứng dụng (dữ liệu chưa gửi vẫn được giữ) ({detail})"
        ),
        format!(
            "the app and the server are incompatible: update the app (unsent work is kept) ({detail})"
        ),
    )
}

pub(crate) fn offline_words(detail: &str) -> Words {
    Words::new(
        format!("Không kết nối được máy chủ, sẽ thử lại tự động ({detail})"),
        format!("cannot reach the server, will retry automatically ({detail})"),
    )
}

pub(crate) fn sign_in_words() -> Words {
    Words::new(
        "Máy chủ không còn chấp nhận thiết bị này: hãy đăng nhập lại (dữ liệu chưa gửi vẫn được giữ)",
        "the server no longer accepts this device: sign in again (unsent work is kept)",
    )
}

pub(crate) fn refused_words(detail: &str) -> Words {
    Words::new(
        format!("Máy chủ từ chối yêu cầu ({detail})"),
        format!("the server refused the request ({detail})"),
    )
}
