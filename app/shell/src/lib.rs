//! The OCOP Score app's Tauri 2 shell: it opens the device core
//! ([`ocop_app::Device`]) in the app's data directory, starts its sync loop,
//! shows the Leptos UI (`app/ui`, built to `app/ui/dist`) in a WebView and
//! exposes the device's methods to it as commands.
//!
//! What it is not: any logic. Each command in [`commands`] is a one-line
//! adapter over a `Device` method; a local call runs on tokio's blocking
//! pool so the UI thread never waits on SQLite or on a pull holding the
//! database. Sync status goes to the UI as `sync-status` events.

pub mod commands;
mod events;

use std::sync::Arc;

use tauri::Manager;

/// The device the commands act on, registered once in `setup`.
pub struct Core(pub Arc<ocop_app::Device>);

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,ocop_app=info".into()),
        )
        .try_init();
    tauri::Builder::default()
        .setup(|app| {
            let dir = match std::env::var_os("OCOP_APP_DATA") {
                Some(d) => std::path::PathBuf::from(d),
                None => app.path().app_data_dir()?,
            };
            let device = Arc::new(ocop_app::Device::open(&dir)?);
            app.manage(Core(device.clone()));
            events::start(app.handle().clone(), device);
            Ok(())
        })
        .invoke_handler(commands::handler())
        .run(tauri::generate_context!())
        .expect("the OCOP Score window could not start");
}
