//! Helpers for tests (here and in the app crate): a real server on a free port.

use std::path::Path;

use crate::{AppState, Options, Result, open, serve};

/// The `admin` password of servers started by [`spawn`].
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A server running on `127.0.0.1:<free port>` inside the current tokio runtime.
#[derive(Debug)]
pub struct TestServer {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    pub state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Stops serving (also done on drop).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens `data_dir` (admin password [`ADMIN_PASSWORD`]) and serves it on 127.0.0.1:0.
pub async fn spawn(data_dir: &Path) -> Result<TestServer> {
    let state = open(
        data_dir,
        Options {
            admin_password: Some(ADMIN_PASSWORD.into()),
            public_url: None,
        },
    )
    .await?;
    spawn_state(state).await
}

/// Serves an already opened state on 127.0.0.1:0.
pub async fn spawn_state(state: AppState) -> Result<TestServer> {
    let listener = crate::listen(([127, 0, 0, 1], 0).into())?;
    let url = format!("http://{}", listener.local_addr()?);
    let s = state.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = serve(listener, s).await {
            tracing::error!(error = %e, "test server stopped");
        }
    });
    Ok(TestServer { url, state, task })
}
