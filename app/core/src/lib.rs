//! OCOP Score on the device: the local SQLite store, the outbox and the sync
//! engine of an assessor's phone or a chair's laptop, as plain Rust.
//!
//! What it is:
//! - [`Device`]: opens the app's data directory, enrols or signs in, and offers
//!   every user action (answer a criterion, note, photo, submit, abstain,
//!   reopen, finalize, release, resolve a conflict) as one committed local
//!   transaction that also queues the mutation for the server;
//! - the sync engine ([`Device::sync_now`], [`SyncLoop`]): push in batches,
//!   pull since a cursor, retry with backoff; what to sync is decided by pure
//!   functions in [`plan`];
//! - chair functions offline: the council result through
//!   `ocop_shared::council::aggregate` over the sheets held locally.
//!
//! The API, one Tauri command each (local calls are synchronous and commit
//! before returning; network calls are `async`):
//! - [`Device::open`]`(data_dir)`; [`Device::enrol`]`(url, code, device_name)`,
//!   [`Device::login`]`(url, username, password, device_name)`,
//!   [`Device::sign_out`]`(force)`, [`Device::session`];
//! - reading: [`Device::rounds`], [`Device::my_role`], [`Device::list_products`],
//!   [`Device::sheet`], [`Device::sheet_of`], [`Device::sheets_of_product`],
//!   [`Device::rubric`], [`Device::participations`], [`Device::decision_of`];
//! - scoring: [`Device::set_answer`], [`Device::set_knockout`],
//!   [`Device::set_answer_note`], [`Device::set_note`], [`Device::add_attachment`],
//!   [`Device::submit`], [`Device::set_participation`];
//! - chair: [`Device::council_result`], [`Device::council_result_consensus`],
//!   [`Device::reopen`], [`Device::finalize`], [`Device::finalize_consensus`],
//!   [`Device::release`];
//! - sync: [`Device::status`], [`Device::sync_now`], [`Device::nudge`],
//!   [`SyncLoop::spawn`], [`Device::conflicts`], [`Device::resolve_conflict`],
//!   [`Device::needs_attention`], [`Device::retry_attention`],
//!   [`Device::dismiss_attention`].
//!
//! Sync rules the UI can rely on: a whole push the server cannot understand
//! (any 4xx but 401/408/413/429) keeps the outbox and sets the state to
//! [`SyncState::UpdateApp`]; only a 413 narrows a batch down and sets one
//! mutation aside. An edit on top of an unacknowledged edit keeps that
//! edit's base revision, so another device's value pulled meanwhile is
//! flagged as a conflict, never overwritten. Signing out or in stops a
//! running sync from writing. Mutation bodies are stored in format
//! `meta.body_format` (2); a row that no longer decodes goes to "needs
//! attention" with its text, as does a photo the server refuses.
//!
//! Errors are one [`Error`] type that serializes as `{code, message}`.
//!
//! What it is not: a UI, and not tied to Tauri — each public method is meant
//! to be wrapped one line per Tauri command. It never decides conflicts on
//! its own and never deletes unsent work without an explicit `force`.

mod db;
mod device;
pub mod error;
mod model;
mod net;
pub mod photo;
pub mod plan;
pub mod status;
mod sync;

pub use device::{AttentionItem, ConflictView, Device, Keep, ProductItem, Session, SheetView};
pub use error::{Error, Result};
pub use net::push_body_as_sent;
pub use status::{Phase, Progress, SyncState, SyncStatus, Words};
pub use sync::{LoopConfig, SyncLoop, SyncReport};

/// Schema version this build writes; a file with a higher one is refused.
pub fn schema_version() -> i64 {
    db::schema_version()
}

#[cfg(feature = "testing")]
pub mod testing {
    //! Raw schema of every earlier version, for migration tests.
    pub fn migrations() -> &'static [&'static str] {
        crate::db::MIGRATIONS
    }
}

#[cfg(test)]
mod tests {
    /// A Tauri command needs `Send + Sync` state and `Send` futures.
    #[test]
    fn the_device_and_its_futures_can_live_in_a_tauri_command() {
        fn send_sync<T: Send + Sync>() {}
        fn send<F: std::future::Future + Send>(_: F) {}
        send_sync::<crate::Device>();
        let dir = tempfile::tempdir().unwrap();
        let d = crate::Device::open(dir.path()).unwrap();
        send(d.sync_now());
        send(d.login("http://127.0.0.1:9", "u", "p", "d"));
        send(d.enrol("http://127.0.0.1:9", "c", "d"));
        let e = d.status().unwrap();
        assert_eq!(e.state, crate::SyncState::SignedOut);
        assert_eq!(
            d.sheet(uuid::Uuid::nil()).unwrap_err().code(),
            "not_signed_in"
        );
    }
}
