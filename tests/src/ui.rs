//! The real app under test: the built `ocop-score` binary in its WebKitGTK
//! WebView, driven through WebKitWebDriver (W3C WebDriver) with fantoccini.
//! Needs a display (`xvfb-run`) and `OCOP_APP_BIN`; `scripts/test` sets both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};

use crate::free_port;
use serde_json::json;

/// The app binary to drive, or `None` when this run has no display or no
/// built app (then the UI tests say so and pass nothing off as tested).
pub fn app_binary() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var_os("OCOP_APP_BIN")?);
    std::env::var_os("DISPLAY")?;
    bin.exists().then_some(bin)
}

/// Fails when CI expects the UI tests to run and they cannot.
pub fn require_app() -> Option<PathBuf> {
    let bin = app_binary();
    if bin.is_none() {
        assert!(
            std::env::var_os("OCOP_E2E_REQUIRED").is_none(),
            "OCOP_E2E_REQUIRED is set but OCOP_APP_BIN/DISPLAY do not give a runnable app"
        );
        eprintln!("skipped: set OCOP_APP_BIN and run under xvfb-run (scripts/test does)");
    }
    bin
}

/// One running app: its WebDriver process and session.
pub struct App {
    pub client: Client,
    driver: Child,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// Starts the app with its data in `data_dir`, the Connect screen
    /// prefilled with `server_url`, in a window of `w`×`h`.
    pub async fn start(bin: &Path, data_dir: &Path, server_url: &str, w: u32, h: u32) -> App {
        let port = free_port();
        std::fs::create_dir_all(data_dir).unwrap();
        let driver = Command::new("WebKitWebDriver")
            .arg(format!("--port={port}"))
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("OCOP_APP_DATA", data_dir.join("app"))
            .env("XDG_DATA_HOME", data_dir.join("xdg-data"))
            .env("XDG_CACHE_HOME", data_dir.join("xdg-cache"))
            .env("OCOP_SERVER", server_url)
            .env("OCOP_DEVICE_NAME", "e2e phone")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("WebKitWebDriver (Debian package webkit2gtk-driver) must be installed");
        let caps = json!({
            "webkitgtk:browserOptions": {"binary": bin.to_string_lossy(), "args": []}
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("tls")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session with the app: {e}"),
            }
        };
        client.set_window_size(w, h).await.expect("window size");
        App { client, driver }
    }

    /// The first element matching `css`, waiting up to 15 s for it.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        // Into view first: the sticky header must not cover the target.
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'});",
                vec![serde_json::to_value(&el).unwrap()],
            )
            .await
            .unwrap();
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until `css`'s text satisfies `f` (15 s), and returns it.
    pub async fn wait_text(&self, css: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(t) = el.text().await
                && f(&t)
            {
                return t;
            }
            if Instant::now() > deadline {
                let last = match self.client.find(Locator::Css(css)).await {
                    Ok(el) => el.text().await.unwrap_or_default(),
                    Err(_) => "(absent)".into(),
                };
                panic!("{css} never matched; last text {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The DOM text of `css`, shown or hidden (WebDriver's text is only what is rendered).
    pub async fn content(&self, css: &str) -> String {
        let el = self.find(css).await;
        el.prop("textContent").await.unwrap().unwrap_or_default()
    }

    /// An attribute of `css`, via the DOM.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.unwrap()
    }

    /// What a thumb meets on the current screen: whether the page scrolls
    /// sideways, and every visible tap target smaller than 44×44 px (a
    /// checkbox or file input counts by the label around it).
    pub async fn layout(&self) -> Layout {
        const JS: &str = r#"
            const bad = [];
            const sel = 'button, a[href], input:not([type=hidden]), select, textarea, summary, [role=button]';
            for (const el of document.querySelectorAll(sel)) {
              let t = el;
              if (['checkbox', 'radio', 'file'].includes(el.type) && el.closest('label')) t = el.closest('label');
              const r = t.getBoundingClientRect();
              const cs = getComputedStyle(t);
              if ((r.width === 0 && r.height === 0) || cs.visibility === 'hidden' || cs.display === 'none') continue;
              if (r.height < 44 || r.width < 44) {
                bad.push(`${el.tagName.toLowerCase()}[data-test=${el.dataset.test || ''}] "${(el.textContent || el.placeholder || '').trim().slice(0, 40)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
              }
            }
            return {scroll_width: document.documentElement.scrollWidth, width: window.innerWidth, small: bad};
        "#;
        let v = self
            .client
            .execute(JS, vec![])
            .await
            .expect("layout script");
        serde_json::from_value(v).expect("layout result")
    }

    pub async fn screenshot(&self, path: &Path) {
        // WebKit's screenshot can lag the DOM by a frame.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Closes the app as a user would (the database is committed either way).
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        // Closing the session does not always end the app: SIGTERM it (it
        // is WebKitWebDriver's child), then the driver.
        let _ = Command::new("pkill")
            .args(["-TERM", "-P", &self.driver.id().to_string()])
            .status();
        let _ = Command::new("kill")
            .arg(self.driver.id().to_string())
            .status();
        let _ = self.driver.wait();
    }

    /// Kills the app process without warning, as a phone's OS does.
    pub async fn kill(mut self) {
        // The app is WebKitWebDriver's child.
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &self.driver.id().to_string()])
            .status();
        let _ = Command::new("kill")
            .arg(self.driver.id().to_string())
            .status();
        let _ = self.driver.wait();
        let _ = self.client;
    }
}

/// See [`App::layout`].
#[derive(Debug, serde::Deserialize)]
pub struct Layout {
    pub scroll_width: u32,
    pub width: u32,
    pub small: Vec<String>,
}

impl Layout {
    /// Panics naming what is wrong, with `screen` for context.
    pub fn assert_thumb_friendly(&self, screen: &str) {
        assert!(
            self.scroll_width <= self.width,
            "{screen}: the page scrolls sideways ({} px content in {} px)",
            self.scroll_width,
            self.width
        );
        assert!(
            self.small.is_empty(),
            "{screen}: tap targets under 44 px: {:#?}",
            self.small
        );
    }
}

/// Where the UI tests write screenshots: `OCOP_SCREENSHOTS`, else `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("OCOP_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots"))
}
