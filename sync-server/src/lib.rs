//! OCOP Score sync server.
//!
//! What it **is**: the provincial office's server that council members'
//! devices sync with — accounts and revocable device tokens, rubrics
//! (published versions immutable), rounds, council rosters, products, score
//! sheets with every accepted revision, the chair's decisions, content-addressed
//! attachments, a quarantine of refused mutations and an audit log of every
//! write. Push is idempotent per `(device, mutation id)` by a database
//! constraint; stale edits become flagged conflicts, never silent overwrites;
//! pull is a cursor over one global `seq`, filtered for blind scoring.
//! The protocol is described in `docs/sync-protocol.md`; the wire types are
//! [`ocop_shared::wire`].
//!
//! What it is **not**: a scoring engine of its own (it calls
//! [`ocop_shared::score`] and [`ocop_shared::council`]), a web UI, or a
//! multi-node service (one SQLite file; the [`store::Store`] trait is the seam
//! for another backend).
//!
//! # Library API (stable; used by the app's tests)
//! - [`open`]`(data_dir, Options) -> AppState`: opens or creates the database
//!   under `data_dir`, installs the bundled rubrics and the `admin` account;
//! - [`router`]`(AppState) -> axum::Router`: the whole HTTP API;
//! - [`serve`]`(TcpListener, AppState)`: serves until the future is dropped;
//! - [`demo::seed`]`(&dyn Store) -> DemoInfo`: a realistic provincial round;
//! - [`testing::spawn`]`(data_dir)`: a server on `127.0.0.1:0`, returns its URL.

mod access;
mod attachments;
pub mod body;
pub mod client_ip;
pub mod demo;
pub mod error;
pub mod error_shape;
pub mod http;
mod prepare;
mod sheet_cache;
pub mod sqlite;
pub mod store;
pub mod testing;

use axum::serve::ListenerExt as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{ApiError, Error, Result};
pub use http::{AppState, router};
pub use store::{Principal, Store};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "ocop-sync.sqlite3";

/// How to open a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Password of the `admin` account created at first start; generated when `None`.
    pub admin_password: Option<String>,
    /// Base URL for enrolment QR payloads (e.g. `https://ocop.example.vn`).
    pub public_url: Option<String>,
}

/// Opens (or creates) the server's data directory; blocking version of [`open`].
pub fn open_blocking(data_dir: &Path, opts: Options) -> Result<AppState> {
    std::fs::create_dir_all(data_dir.join("attachments"))?;
    let store = sqlite::SqliteStore::open(&data_dir.join(DB_FILE))?;
    store.install_bundled_rubrics()?;
    let generated = store.ensure_admin(opts.admin_password.as_deref())?;
    let mut state = AppState::new(Arc::new(store), PathBuf::from(data_dir), opts.public_url);
    state.first_admin_password = generated;
    Ok(state)
}

/// Opens (or creates) the server's data directory.
pub async fn open(data_dir: &Path, opts: Options) -> Result<AppState> {
    let dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || open_blocking(&dir, opts))
        .await
        .map_err(|e| Error::Internal(format!("open task failed: {e}")))?
}

/// Serves the API on `listener` until the returned future is dropped or fails.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener.tap_io(no_delay), app).await?;
    Ok(())
}

/// Listens on `addr` with a deep accept queue. Tokio's `TcpListener::bind`
/// asks for 1,024 and the kernel may cap that lower; when a few hundred devices
/// connect in the same instant (a council session ending) the queue overflowed
/// in the benchmark ("possible SYN flooding", connections reset). 4,096 is
/// asked for; the kernel still caps it at `net.core.somaxconn`.
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Answers go out at once: with Nagle's algorithm a small response written
/// behind an unacknowledged one waits for the client's delayed ACK.
fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Like [`serve`], stopping gracefully when `shutdown` completes.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener.tap_io(no_delay), app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
