//! Cross-crate test support for OCOP Score.
//!
//! What it is: tools the tests in `tests/tests/` share — a fault-injecting
//! HTTP proxy that sits between real devices ([`ocop_app::Device`]) and a real
//! sync server on 127.0.0.1, and helpers to start and restart servers.
//!
//! What it is not: a mock. Every byte a device sends reaches the real server
//! (or is dropped on purpose by the proxy, as a flaky network would).

pub mod load;
pub mod proxy;
pub mod ui;
pub mod world;

use std::path::{Path, PathBuf};

/// The `ocop-sync-server` binary built next to the running test executable
/// (`scripts/test` builds it before the tests run).
pub fn server_binary() -> PathBuf {
    // target/<profile>/deps/<test>-<hash> → target/<profile>/ocop-sync-server
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("ocop-sync-server");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p ocop-sync-server` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A port on 127.0.0.1 that was free a moment ago, for a server that must
/// come back on the same address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The bundled rubric the demo round's `product`-th product is scored on.
pub fn demo_rubric(
    info: &ocop_sync_server::demo::DemoInfo,
    product: usize,
) -> ocop_shared::rubric::Rubric {
    let p = &info.products[product];
    ocop_shared::bundled::scoreable()
        .into_iter()
        .find(|r| r.id == p.rubric.id && r.version == p.rubric.version)
        .expect("bundled rubric")
}
