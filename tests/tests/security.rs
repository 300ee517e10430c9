//! Security properties checked on the real binary and the real database file:
//! passwords are stored as argon2id hashes only, device tokens only as
//! hashes, and the server listens on loopback unless told otherwise.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ocop_shared::wire::{AccountRole, CreateUserRequest, LoginRequest};
use ocop_sync_server::{Options, Principal};
use ocop_tests::server_binary;

#[test]
fn passwords_and_tokens_are_stored_only_as_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let st = ocop_sync_server::open_blocking(
        dir.path(),
        Options {
            admin_password: Some("mật-khẩu-quản-trị-1".into()),
            public_url: None,
        },
    )
    .unwrap();
    let store = st.store.as_ref();
    store
        .create_user(
            &Principal::system(),
            &CreateUserRequest {
                username: "lan.tt".into(),
                full_name: "Trần Thị Lan".into(),
                role: AccountRole::Assessor,
                password: Some("mật-khẩu-của-lan".into()),
            },
        )
        .unwrap();
    let t = store
        .login(&LoginRequest {
            username: "lan.tt".into(),
            password: "mật-khẩu-của-lan".into(),
            device_name: "phone".into(),
            device_id: None,
        })
        .unwrap();
    drop(st);
    let db = rusqlite::Connection::open(dir.path().join(ocop_sync_server::DB_FILE)).unwrap();
    let hashes: Vec<String> = db
        .prepare("SELECT password_hash FROM users WHERE password_hash IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hashes.len(), 2, "admin and lan.tt have passwords");
    for h in &hashes {
        assert!(h.starts_with("$argon2id$"), "not an argon2id hash: {h}");
        assert!(!h.contains("mật-khẩu"), "the password itself is stored");
    }
    let tokens: Vec<String> = db
        .prepare("SELECT token_hash FROM devices")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!tokens.is_empty());
    assert!(
        tokens.iter().all(|h| h != &t.token && h.len() == 64),
        "tokens are stored as sha-256 hex only"
    );
    // Nothing else in the file holds the token either.
    let bytes = std::fs::read(dir.path().join(ocop_sync_server::DB_FILE)).unwrap();
    assert!(
        !bytes
            .windows(t.token.len())
            .any(|w| w == t.token.as_bytes())
    );
}

/// Local addresses listening on `port`, from /proc/net/tcp (hex ip:port).
fn listeners(port: u16) -> Vec<String> {
    let t = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default()
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // state 0A = LISTEN
            (f.len() > 3 && f[3] == "0A" && f[1].ends_with(&format!(":{port:04X}")))
                .then(|| f[1].to_string())
        })
        .collect()
}

#[test]
fn server_listens_on_loopback_unless_told_otherwise() {
    const DEFAULT_PORT: u16 = 8787;
    assert!(
        std::net::TcpListener::bind(("0.0.0.0", DEFAULT_PORT)).is_ok(),
        "port {DEFAULT_PORT} is busy (is `scripts/run` running?); this test needs it free"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(server_binary())
        .args(["serve", "--data"])
        .arg(dir.path())
        .env_remove("OCOP_BIND")
        .env("OCOP_ADMIN_PASSWORD", "admin-password-for-tests")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.is_empty() {
        std::thread::sleep(Duration::from_millis(50));
        seen = listeners(DEFAULT_PORT);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !seen.is_empty(),
        "the server never listened on {DEFAULT_PORT}"
    );
    // 0100007F = 127.0.0.1 in /proc's little-endian hex.
    assert!(
        seen.iter().all(|a| a.starts_with("0100007F:")),
        "listening beyond loopback: {seen:?}"
    );
}
