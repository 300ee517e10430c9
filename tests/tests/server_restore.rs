//! A server restored from an older backup, with a real server on 127.0.0.1
//! and real devices: a device whose pull cursor is past everything the
//! restored server has written is told so (`cursor_ahead`), pulls everything
//! again from 0, and keeps and sends what it had not sent yet.

use std::path::Path;

use ocop_app::Device;
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::SheetStatus;
use ocop_sync_server::demo;
use ocop_sync_server::{DB_FILE, Options, testing::ADMIN_PASSWORD};
use ocop_tests::{demo_rubric, free_port};
use uuid::Uuid;

/// Opens `dir` and serves it on `port` until the returned task is aborted.
async fn serve(dir: &Path, port: u16) -> tokio::task::JoinHandle<()> {
    let opts = Options {
        admin_password: Some(ADMIN_PASSWORD.into()),
        public_url: None,
    };
    let state = ocop_sync_server::open(dir, opts).await.unwrap();
    let listener = ocop_sync_server::listen(([127, 0, 0, 1], port).into()).unwrap();
    tokio::spawn(async move {
        let _ = ocop_sync_server::serve(listener, state).await;
    })
}

/// Every criterion of `product` answered with its first option, one sync each:
/// the server's sequence moves on by at least one per criterion.
async fn score_all(d: &Device, rubric: &Rubric, product: Uuid, sync_each: bool) {
    let codes: Vec<(String, String)> = rubric
        .criteria()
        .map(|(_, _, c)| (c.code.clone(), c.option_sets[0].options[0].id.clone()))
        .collect();
    for (code, opt) in codes {
        d.set_answer(product, &code, Some(&opt)).unwrap();
        if sync_each {
            d.sync_now().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_ahead_of_a_restored_server_pulls_again_from_zero_and_keeps_its_outbox() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let info = {
        let st = ocop_sync_server::open(
            &live,
            Options {
                admin_password: Some(ADMIN_PASSWORD.into()),
                public_url: None,
            },
        )
        .await
        .unwrap();
        demo::seed_with_url(&*st.store, &url).unwrap()
    };
    let server = serve(&live, port).await;

    let chair = info.chair();
    let d = Device::open(tmp.path().join("chair")).unwrap();
    d.login(&url, &chair.username, &chair.password, "laptop")
        .await
        .unwrap();
    d.sync_now().await.unwrap();

    // The nightly backup, taken here (a consistent copy of the live database).
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    rusqlite::Connection::open(live.join(DB_FILE))
        .unwrap()
        .execute(
            "VACUUM INTO ?1",
            [restored.join(DB_FILE).to_string_lossy().as_ref()],
        )
        .unwrap();

    // After the backup the chair scores a whole sheet, syncing every tap:
    // its cursor ends well past the backup's last change.
    let p0 = info.products[0].id;
    let r0 = demo_rubric(&info, 0);
    score_all(&d, &r0, p0, true).await;
    // One more change, not sent yet.
    let c0 = r0.criteria().next().unwrap().2.clone();
    let last = c0.option_sets[0].options.last().unwrap().id.clone();
    d.set_answer(p0, &c0.code, Some(&last)).unwrap();
    assert_eq!(d.status().unwrap().pending, 1);

    // The server dies and is restored from the backup on the same address.
    server.abort();
    let _ = server.await;
    let server = serve(&restored, port).await;

    // A member scores and submits on the restored server: these changes get
    // sequence numbers the chair's old cursor has already passed.
    let m = &info.members()[0];
    let p1 = info.products[1].id;
    let md = Device::open(tmp.path().join("member")).unwrap();
    md.login(&url, &m.username, &m.password, "phone")
        .await
        .unwrap();
    md.sync_now().await.unwrap();
    score_all(&md, &demo_rubric(&info, 1), p1, false).await;
    md.submit(p1).unwrap();
    md.sync_now().await.unwrap();

    let report = d.sync_now().await.unwrap();
    assert!(report.pull_restarted, "{report:?}");
    assert_eq!(d.status().unwrap().pending, 0, "the outbox went out");
    // The member's sheet reached the chair (an echoed cursor skipped it).
    let sheets = d.sheets_of_product(p1).unwrap();
    assert!(
        sheets
            .iter()
            .any(|s| s.owner_id == m.id && s.status == SheetStatus::Submitted),
        "{sheets:?}"
    );
    // The chair's unsent change reached the restored server. It was made on
    // a revision the restored server never had, so the server keeps it as a
    // conflict for the chair to decide, beside what it holds: not lost, not
    // silently applied over the restored state.
    assert_eq!(report.conflicts, 1, "{report:?}");
    let conflicts = d.conflicts().unwrap();
    assert!(
        conflicts
            .iter()
            .any(|c| c.criterion.as_deref() == Some(c0.code.as_str())
                && c.other.option.as_deref() == Some(last.as_str())),
        "{conflicts:?}"
    );
    // A second sync is an ordinary one.
    assert!(!d.sync_now().await.unwrap().pull_restarted);
    server.abort();
}
