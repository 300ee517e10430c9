//! The one error type of the device API. It serializes as
//! `{code, message, message_vi}`: a UI branches on `code` and shows the
//! message in the user's language (English `message`, Vietnamese `message_vi`).

use serde::Serialize;
use serde::ser::SerializeStruct;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No server, token or device id stored yet: enrol or sign in first.
    #[error("this device is not signed in; enrol it with a code or sign in")]
    NotSignedIn,
    /// The server refused the stored token (401). Local data and the outbox are kept.
    #[error("the server no longer accepts this device; sign in again (nothing was deleted)")]
    SignInAgain,
    /// Sign-out or a change of user would lose work that never reached the server.
    #[error(
        "{pending} changes have not reached the server yet; sign out anyway only if losing them is acceptable"
    )]
    UnsyncedWork { pending: u64 },
    /// The database file was written by a newer version of the app.
    #[error(
        "the local database has schema version {found}, newer than this app understands ({supported}); update the app"
    )]
    DatabaseTooNew { found: i64, supported: i64 },
    #[error("unknown {what} {id}")]
    NotFound { what: &'static str, id: String },
    /// The input does not fit the rubric or the state of the sheet.
    #[error("{0}")]
    Invalid(String),
    /// The local user's council role does not allow this.
    #[error("{0}")]
    NotAllowed(String),
    /// Network trouble worth retrying (offline, timeout, 5xx, 429, an answer that is not ours).
    #[error("server unreachable: {0}")]
    Offline(String),
    /// The server did not accept the enrolment code (unknown, already used or expired).
    #[error(
        "the enrolment code was not accepted: it is unknown, already used or expired; check it, or ask the OCOP office for a new one"
    )]
    WrongCode,
    /// The server did not accept the username and password.
    #[error("the username or password is wrong; check them and try again")]
    WrongPassword,
    /// The server refused a request permanently (4xx other than 401/408/429).
    #[error("server refused the request: {0}")]
    Refused(String),
    /// The server cannot understand this app's requests (a whole push
    /// refused with 400/403/404/409/422): update the app; the outbox is kept.
    #[error("the app and the server are incompatible; update the app (unsent work is kept): {0}")]
    Incompatible(String),
    /// The user signed out or someone else signed in while a sync ran; what
    /// that sync fetched was not kept.
    #[error("the session changed during sync; nothing from that sync was kept")]
    SessionChanged,
    #[error("local storage failed: {0}")]
    Storage(String),
    #[error("local file error: {0}")]
    Io(String),
}

impl Error {
    /// Stable machine code, snake_case.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotSignedIn => "not_signed_in",
            Error::SignInAgain => "sign_in_again",
            Error::UnsyncedWork { .. } => "unsynced_work",
            Error::DatabaseTooNew { .. } => "database_too_new",
            Error::NotFound { .. } => "not_found",
            Error::Invalid(_) => "invalid",
            Error::NotAllowed(_) => "not_allowed",
            Error::Offline(_) => "offline",
            Error::WrongCode => "wrong_code",
            Error::WrongPassword => "wrong_password",
            Error::Refused(_) => "refused",
            Error::Incompatible(_) => "incompatible",
            Error::SessionChanged => "session_changed",
            Error::Storage(_) => "storage",
            Error::Io(_) => "io",
        }
    }

    /// The message in Vietnamese: what went wrong and what to do.
    pub fn vi(&self) -> String {
        match self {
            Error::NotSignedIn => {
                "Thiết bị chưa đăng nhập: hãy ghi danh bằng mã hoặc đăng nhập".into()
            }
            Error::SignInAgain => {
                "Máy chủ không còn chấp nhận thiết bị này: hãy đăng nhập lại (không mất dữ liệu)".into()
            }
            Error::UnsyncedWork { pending } => format!(
                "Còn {pending} thay đổi chưa gửi lên máy chủ; chỉ đăng xuất nếu chấp nhận mất chúng"
            ),
            Error::DatabaseTooNew { found, supported } => format!(
                "Dữ liệu trên máy có phiên bản {found}, mới hơn ứng dụng này hiểu ({supported}): hãy cập nhật ứng dụng"
            ),
            Error::NotFound { what, id } => format!("Không tìm thấy {what} {id}"),
            Error::Invalid(m) => format!("Không hợp lệ: {m}"),
            Error::NotAllowed(m) => format!("Không được phép: {m}"),
            Error::Offline(m) => {
                format!("Không kết nối được máy chủ: hãy thử lại khi có mạng ({m})")
            }
            Error::WrongCode => "Mã ghi danh không được chấp nhận: mã sai, đã dùng hoặc đã hết hạn; hãy kiểm tra lại hoặc xin Văn phòng OCOP cấp mã mới".into(),
            Error::WrongPassword => {
                "Tên đăng nhập hoặc mật khẩu không đúng; hãy kiểm tra và thử lại".into()
            }
            Error::Refused(m) => format!("Máy chủ từ chối: {m}"),
            Error::Incompatible(m) => format!(
                "Ứng dụng và máy chủ không tương thích: hãy cập nhật ứng dụng (dữ liệu chưa gửi vẫn được giữ): {m}"
            ),
            Error::SessionChanged => {
                "Phiên đăng nhập đã đổi trong lúc đồng bộ; không giữ gì từ lần đồng bộ đó".into()
            }
            Error::Storage(m) => format!("Lỗi lưu trữ trên máy: {m}"),
            Error::Io(m) => format!("Lỗi tệp trên máy: {m}"),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Error", 3)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.to_string())?;
        st.serialize_field("message_vi", &self.vi())?;
        st.end()
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Storage(format!("stored json unreadable: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let v = serde_json::to_value(Error::UnsyncedWork { pending: 3 }).unwrap();
        assert_eq!(v["code"], "unsynced_work");
        assert!(v["message"].as_str().unwrap().starts_with("3 changes"));
        assert!(
            v["message_vi"]
                .as_str()
                .unwrap()
                .starts_with("Còn 3 thay đổi")
        );
    }
}
