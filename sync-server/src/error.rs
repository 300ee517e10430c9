//! The one error type of the server and its mapping to HTTP responses.
//!
//! Every failed HTTP call answers with [`ErrorBody`]; internals (SQLite, I/O)
//! are logged with `tracing` and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ocop_shared::wire::{ErrorBody, ErrorCode, MAX_BODY_BYTES};

/// Errors of the store and of the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request (bad JSON, bad query, bad header).
    #[error("{0}")]
    BadRequest(String),
    /// No token, unknown or revoked token, wrong password, bad enrolment code.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A known path asked with a method it does not answer.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A URI longer than [`crate::error_shape::MAX_URI_BYTES`].
    #[error("{0}")]
    UriTooLong(String),
    /// A request body in a `Content-Encoding` the server cannot decode.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// State conflict (username taken, published rubric changed, upload offset).
    #[error("{message}")]
    Conflict {
        message: String,
        details: Option<serde_json::Value>,
    },
    /// A pull cursor past the server's last sequence number: the server was
    /// restored from an older backup, and the device must pull from 0.
    #[error(
        "cursor {cursor} is ahead of this server, which has written up to {server_seq} (was it restored from a backup?); pull again from cursor 0 and keep unsent changes"
    )]
    CursorAhead { cursor: u64, server_seq: u64 },
    /// Body over a limit; the message says the limit.
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed but invalid; `details` lists every issue.
    #[error("{message}")]
    Invalid {
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("{0}")]
    RateLimited(String),
    /// The database was written by a newer server.
    #[error(
        "database schema version {found} is newer than this server supports ({supported}); upgrade the server"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
    /// A bug or an impossible state; logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What handlers return on failure; an alias so the HTTP layer reads naturally.
pub type ApiError = Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
            details: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
            details: None,
        }
    }

    /// The 413 every oversized JSON body gets.
    pub fn body_too_large() -> Self {
        Error::TooLarge(format!(
            "request body is larger than the limit of {MAX_BODY_BYTES} bytes ({} MiB); send fewer mutations per push",
            MAX_BODY_BYTES / (1024 * 1024)
        ))
    }

    /// The wire error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Error::UriTooLong(_) => ErrorCode::UriTooLong,
            Error::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::CursorAhead { .. } => ErrorCode::CursorAhead,
            Error::TooLarge(_) => ErrorCode::PayloadTooLarge,
            Error::Invalid { .. } => ErrorCode::Unprocessable,
            Error::RateLimited(_) => ErrorCode::RateLimited,
            // A write that hit a UNIQUE key (two admins creating the same
            // thing at once) is a state conflict the caller can act on, not a bug.
            e if e.is_unique_violation() => ErrorCode::Conflict,
            Error::SchemaTooNew { .. }
            | Error::Sqlite(_)
            | Error::Io(_)
            | Error::Json(_)
            | Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether this is SQLite refusing a duplicate of a UNIQUE or primary key.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    }

    /// The body sent to the client: internals are replaced by a generic message.
    pub fn body(&self) -> ErrorBody {
        let (message, details) = match self {
            e if e.is_unique_violation() => (
                "this already exists (a name, code or id that must be unique is taken); list what exists and pick another".to_string(),
                None,
            ),
            Error::BadRequest(m)
            | Error::Unauthorized(m)
            | Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::MethodNotAllowed(m)
            | Error::UriTooLong(m)
            | Error::UnsupportedMediaType(m)
            | Error::TooLarge(m)
            | Error::RateLimited(m) => (m.clone(), None),
            Error::Conflict { message, details } | Error::Invalid { message, details } => {
                (message.clone(), details.clone())
            }
            Error::CursorAhead { server_seq, .. } => (
                self.to_string(),
                Some(serde_json::json!({ "server_seq": server_seq })),
            ),
            Error::SchemaTooNew { .. }
            | Error::Sqlite(_)
            | Error::Io(_)
            | Error::Json(_)
            | Error::Internal(_) => (
                "internal server error; it was logged, retry later".to_string(),
                None,
            ),
        };
        ErrorBody {
            code: self.code(),
            message,
            details,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_constraint_violation_is_a_409_conflict_without_internals() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (code TEXT UNIQUE); INSERT INTO t VALUES ('SP-01');")
            .unwrap();
        let e: Error = conn
            .execute("INSERT INTO t VALUES ('SP-01')", [])
            .unwrap_err()
            .into();
        assert_eq!(e.code(), ErrorCode::Conflict);
        let body = e.body();
        assert_eq!(body.code, ErrorCode::Conflict);
        assert!(!body.message.contains("t.code"), "{}", body.message);
        assert!(body.message.contains("already exists"), "{}", body.message);
        let other: Error = conn
            .execute("INSERT INTO nope VALUES (1)", [])
            .unwrap_err()
            .into();
        assert_eq!(
            other.code(),
            ErrorCode::Internal,
            "other sqlite errors stay 500"
        );
    }
}
