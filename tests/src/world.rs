//! A small world for cross-crate tests: one real sync server (in-process, on
//! 127.0.0.1, its SQLite file on disk) and several real devices
//! ([`ocop_app::Device`], each with its own SQLite file), every device talking
//! to the server through its own fault [`Proxy`].
//!
//! Building a world from nothing costs password hashing and seeding, so a
//! [`Template`] is built once and copied (files only) for each schedule.

use std::path::{Path, PathBuf};

use ocop_app::Device;
use ocop_sync_server::demo::DemoInfo;
use ocop_sync_server::testing::{self, TestServer};
use ocop_sync_server::{Options, Principal, Store};
use uuid::Uuid;

use crate::proxy::Proxy;

/// Server admin password in every world.
pub const ADMIN_PASSWORD: &str = testing::ADMIN_PASSWORD;

/// Who holds each device of a world: (demo username index, device name).
/// Index 0 is the chair; two devices belong to the same member.
pub const DEVICES: [(usize, &str); 5] = [
    (0, "laptop-chair"),
    (1, "phone-member1"),
    (1, "tablet-member1"),
    (2, "phone-member2"),
    (3, "phone-member3"),
];

/// Products the simulation scores (the first of the demo round).
pub const PRODUCTS: usize = 2;

/// Copies a directory tree (SQLite files, WAL included).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy file");
        }
    }
}

/// Points a copied device database at another server URL (the per-world proxy).
pub fn repoint_device(dir: &Path, url: &str) {
    let c = rusqlite::Connection::open(dir.join("ocop.sqlite")).expect("open device db");
    c.execute(
        "UPDATE meta SET value = ?1 WHERE key IN ('server_url', 'last_server_url')",
        [url],
    )
    .expect("repoint device");
}

/// A world on disk, ready to copy: a seeded server and signed-in devices.
#[derive(Debug)]
pub struct Template {
    pub dir: tempfile::TempDir,
    pub demo: DemoInfo,
    /// Device ids, in [`DEVICES`] order.
    pub device_ids: Vec<Uuid>,
}

impl Template {
    /// Seeds a server, signs every device in, recuses the members who do not
    /// take part so that quorum is reachable, syncs everyone once.
    pub async fn build() -> Template {
        let dir = tempfile::tempdir().expect("tempdir");
        let server_dir = dir.path().join("server");
        let state = ocop_sync_server::open(
            &server_dir,
            Options {
                admin_password: Some(ADMIN_PASSWORD.into()),
                public_url: None,
            },
        )
        .await
        .expect("open server");
        let demo = ocop_sync_server::demo::seed(state.store.as_ref()).expect("seed demo");
        let server = testing::spawn_state(state).await.expect("spawn server");
        let mut device_ids = Vec::new();
        let mut devices = Vec::new();
        for (i, (user, name)) in DEVICES.iter().enumerate() {
            let d = Device::open(dir.path().join(format!("device-{i}"))).expect("open device");
            let u = &demo.users[*user];
            d.login(&server.url, &u.username, &u.password, name)
                .await
                .expect("login");
            device_ids.push(d.session().expect("session").expect("signed in").device_id);
            devices.push(d);
        }
        devices[0].sync_now().await.expect("chair first sync");
        // Members 4..7 are recused for the simulated products: the council that
        // scores them is the chair and members 1..3 (quorum 3 of 4).
        for p in &demo.product_ids[..PRODUCTS] {
            for m in &demo.users[4..8] {
                devices[0]
                    .set_participation(
                        *p,
                        m.id,
                        ocop_shared::council::Participation::Recused,
                        "không tham gia mô phỏng",
                    )
                    .expect("recuse");
            }
        }
        for d in &devices {
            d.sync_now().await.expect("initial sync");
        }
        drop(devices);
        drop(server);
        settle().await;
        Template {
            dir,
            demo,
            device_ids,
        }
    }

    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub fn device_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("device-{i}"))
    }
}

fn has_wal(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            if p.is_dir() {
                has_wal(&p)
            } else {
                p.to_string_lossy().ends_with("-wal")
            }
        })
}

/// Waits (bounded) until no database under `dir` has an open WAL.
pub async fn wait_closed(dir: &Path) {
    for _ in 0..500 {
        if !has_wal(dir) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("databases under {} are still open after 5 s", dir.display());
}

/// Lets aborted server tasks drop their database handles.
pub async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// One device of a running world.
#[derive(Debug)]
pub struct Dev {
    pub dir: PathBuf,
    pub device: Option<Device>,
    pub proxy: Proxy,
    pub user: usize,
    pub device_id: Uuid,
}

impl Dev {
    pub fn d(&self) -> &Device {
        self.device.as_ref().expect("device open")
    }

    /// Drops the device without any shutdown and opens the same file again,
    /// as after the OS killed the app.
    pub fn kill_and_reopen(&mut self) {
        self.device = None;
        self.device = Some(Device::open(&self.dir).expect("reopen device"));
    }
}

/// A running world: a copy of a [`Template`].
#[derive(Debug)]
pub struct World {
    pub dir: tempfile::TempDir,
    pub server: Option<TestServer>,
    pub devs: Vec<Dev>,
    pub demo: DemoInfo,
}

impl World {
    /// Copies `t` and starts its server and one proxy per device (proxy RNGs
    /// seeded from `seed`).
    pub async fn from_template(t: &Template, seed: u64) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&t.server_dir(), &dir.path().join("server"));
        let server = start_server(&dir.path().join("server")).await;
        let mut devs = Vec::new();
        for (i, (user, _)) in DEVICES.iter().enumerate() {
            let ddir = dir.path().join(format!("device-{i}"));
            copy_dir(&t.device_dir(i), &ddir);
            let proxy =
                Proxy::start(&server.url, seed.wrapping_mul(31).wrapping_add(i as u64)).await;
            repoint_device(&ddir, &proxy.url);
            let device = Device::open(&ddir).expect("open device copy");
            devs.push(Dev {
                dir: ddir,
                device: Some(device),
                proxy,
                user: *user,
                device_id: t.device_ids[i],
            });
        }
        World {
            dir,
            server: Some(server),
            devs,
            demo: t.demo.clone(),
        }
    }

    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub fn store(&self) -> &dyn Store {
        self.server
            .as_ref()
            .expect("server running")
            .state
            .store
            .as_ref()
    }

    /// Stops the server and starts it again on the same files (new port; the
    /// proxies follow).
    pub async fn restart_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
            drop(s);
        }
        settle().await;
        let s = start_server(&self.server_dir()).await;
        for d in &self.devs {
            d.proxy.set_upstream(&s.url);
        }
        self.server = Some(s);
    }

    pub fn product(&self, i: usize) -> Uuid {
        self.demo.product_ids[i]
    }

    pub fn user_id(&self, dev: usize) -> Uuid {
        self.demo.users[self.devs[dev].user].id
    }
}

async fn start_server(dir: &Path) -> TestServer {
    let state = ocop_sync_server::open(
        dir,
        Options {
            admin_password: Some(ADMIN_PASSWORD.into()),
            public_url: None,
        },
    )
    .await
    .expect("open server");
    testing::spawn_state(state).await.expect("spawn server")
}

/// The server as admin sees it.
pub fn system() -> Principal {
    Principal::system()
}
