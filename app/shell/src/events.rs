//! The sync loop and the `sync-status` event: the UI listens instead of
//! asking. The status is read after every command that changes something
//! (see `commands::changed`) and every half second while the sync loop
//! runs, and sent only when it differs from the last one sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocop_app::{Device, LoopConfig, SyncLoop, SyncStatus};
use tauri::{AppHandle, Emitter, Runtime};

pub const SYNC_STATUS: &str = "sync-status";

static LAST: Mutex<Option<SyncStatus>> = Mutex::new(None);

pub fn start<R: Runtime>(app: AppHandle<R>, device: Arc<Device>) {
    tauri::async_runtime::spawn(async move {
        let _sync = SyncLoop::spawn(device.clone(), LoopConfig::default());
        loop {
            emit_if_changed(&app, &device);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Sends the status when it changed since the last one sent.
pub fn emit_if_changed<R: Runtime>(app: &AppHandle<R>, device: &Device) {
    let Ok(now) = device.status() else { return };
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.as_ref() != Some(&now) {
        let _ = app.emit(SYNC_STATUS, &now);
        *last = Some(now);
    }
}
