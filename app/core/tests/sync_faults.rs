//! Refusals, stale bases, session changes, photos and stored rows that no
//! longer decode: the device against a real server, through a proxy where the
//! network or the server must misbehave.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use ocop_app::{Device, Phase, SyncState};
use ocop_shared::council::Participation;
use ocop_shared::wire::{LoginRequest, SheetStatus, TokenResponse, paths};

/// Edits on two sheets: two outbox rows that cannot coalesce.
fn two_mutations(d: &Device, s: &Server) {
    for p in &s.demo.product_ids[..2] {
        let (c, o) = option(d, *p, 0, 1);
        d.set_answer(*p, &c, Some(&o)).unwrap();
    }
    assert_eq!(d.status().unwrap().pending, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_push_refused_with_422_keeps_the_outbox_and_says_update_the_app() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let d = device(&proxy.url, &s.demo.members()[0]).await;
    sync(&d.dev).await;
    two_mutations(&d.dev, &s);

    proxy.set(Mode::RefusePush);
    let e = d.dev.sync_now().await.unwrap_err();
    assert_eq!(e.code(), "incompatible", "{e}");
    let st = d.dev.status().unwrap();
    assert_eq!(st.state, SyncState::UpdateApp);
    assert_eq!(
        (st.pending, st.needs_attention),
        (2, 0),
        "nothing was set aside"
    );
    let words = st.last_error.unwrap();
    assert!(words.en.contains("update the app"), "{}", words.en);
    assert!(words.vi.contains("cập nhật ứng dụng"), "{}", words.vi);

    // After the "update" the same outbox goes up.
    proxy.set(Mode::Up);
    sync(&d.dev).await;
    let st = d.dev.status().unwrap();
    assert_eq!(
        (st.state, st.pending, st.needs_attention),
        (SyncState::UpToDate, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_sets_the_one_mutation_aside_and_retry_sends_it_again_under_a_new_id() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let d = device(&proxy.url, &s.demo.members()[1]).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[3];
    let (c, o) = option(&d.dev, p, 0, 1);
    d.dev.set_answer(p, &c, Some(&o)).unwrap();

    proxy.set(Mode::PushTooLarge);
    sync(&d.dev).await;
    let att = d.dev.needs_attention().unwrap();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].code, "http_413");
    let old = att[0].mutation_id;
    assert_eq!(d.dev.status().unwrap().pending, 0);

    proxy.set(Mode::Up);
    let new = d.dev.retry_attention(old).unwrap().unwrap();
    assert!(new > old, "a new mutation id ({new} after {old})");
    assert!(d.dev.needs_attention().unwrap().is_empty());
    assert_eq!(d.dev.sheet(p).unwrap().pending, vec![c.clone()]);
    sync(&d.dev).await;
    let st = d.dev.status().unwrap();
    assert_eq!((st.pending, st.needs_attention), (0, 0));
    let fresh = device(&s.srv.url, &s.demo.members()[1]).await;
    sync(&fresh.dev).await;
    assert_eq!(
        fresh.dev.sheet(p).unwrap().sheet.answers[&c]
            .answer
            .option
            .as_deref(),
        Some(o.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tap_after_a_pull_brought_another_devices_value_is_flagged_not_overwritten() {
    let s = server().await;
    let u = &s.demo.members()[2];
    let a = device(&s.srv.url, u).await;
    let b = device(&s.srv.url, u).await;
    sync(&a.dev).await;
    sync(&b.dev).await;
    let p = s.demo.product_ids[0];
    let (c, o_a1) = option(&a.dev, p, 0, 0);
    let (_, o_a2) = option(&a.dev, p, 0, 2);
    let (_, o_b) = option(&a.dev, p, 0, 1);

    // A taps, offline; B's value reaches the server.
    a.dev.set_answer(p, &c, Some(&o_a1)).unwrap();
    b.dev.set_answer(p, &c, Some(&o_b)).unwrap();
    sync(&b.dev).await;
    // A pull runs while A's tap is still queued, bringing B's value.
    a.dev.pull_now().await.unwrap();
    // A taps again: still built on what A saw before B's value.
    a.dev.set_answer(p, &c, Some(&o_a2)).unwrap();
    let r = sync(&a.dev).await;
    assert_eq!(r.conflicts, 1, "the server flags the stale edit");
    let v = a.dev.sheet(p).unwrap();
    assert_eq!(
        v.sheet.answers[&c].answer.option.as_deref(),
        Some(o_b.as_str()),
        "B's value is kept"
    );
    assert_eq!(v.conflicts.len(), 1);
    assert_eq!(v.conflicts[0].other.option.as_deref(), Some(o_a2.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_reopen_and_abstention_stay_visible_when_the_pull_then_fails() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let m = device(&s.srv.url, &s.demo.members()[3]).await;
    let chair = device(&proxy.url, s.demo.chair()).await;
    sync(&m.dev).await;
    let p = s.demo.product_ids[1];
    answer_all(&m.dev, p, |i| i);
    m.dev.submit(p).unwrap();
    sync(&m.dev).await;
    sync(&chair.dev).await;
    let member = s.demo.members()[3].id;
    assert_eq!(
        chair.dev.sheet_of(p, member).unwrap().sheet.status,
        SheetStatus::Submitted
    );

    chair.dev.reopen(p, member, "thiếu ảnh minh chứng").unwrap();
    let other = s.demo.members()[4].id;
    chair
        .dev
        .set_participation(p, other, Participation::Recused, "người nhà")
        .unwrap();
    proxy.set(Mode::NoPull);
    assert_eq!(chair.dev.sync_now().await.unwrap_err().code(), "offline");
    assert_eq!(chair.dev.status().unwrap().pending, 0, "both acknowledged");
    let v = chair.dev.sheet_of(p, member).unwrap();
    assert_eq!(v.sheet.status, SheetStatus::Reopened);
    assert_eq!(
        v.sheet.reopen_reason.as_deref(),
        Some("thiếu ảnh minh chứng")
    );
    let parts = chair.dev.participations(p).unwrap();
    assert!(
        parts
            .iter()
            .any(|x| x.user_id == other && x.participation == Participation::Recused),
        "{parts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_outbox_row_is_set_aside_with_its_text_and_the_rest_still_goes_up() {
    let s = server().await;
    let d = device(&s.srv.url, &s.demo.members()[4]).await;
    sync(&d.dev).await;
    two_mutations(&d.dev, &s);
    {
        let c = rusqlite::Connection::open(d.dir.path().join("ocop.sqlite")).unwrap();
        c.execute(
            "UPDATE outbox SET body = '{\"id\": 1, \"op\": {\"Mystery\": {}}}' WHERE id = (SELECT MIN(id) FROM outbox)",
            [],
        )
        .unwrap();
    }
    // The sheet with the unreadable row still opens and takes edits.
    let p0 = s.demo.product_ids[0];
    assert!(d.dev.sheet(p0).is_ok());
    let r = sync(&d.dev).await;
    assert_eq!((r.acknowledged, r.rejected), (1, 1));
    let att = d.dev.needs_attention().unwrap();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].code, "unreadable");
    assert!(att[0].mutation.is_none());
    assert!(att[0].raw.as_deref().unwrap().contains("Mystery"));
    assert_eq!(
        d.dev
            .retry_attention(att[0].mutation_id)
            .unwrap_err()
            .code(),
        "invalid"
    );
    d.dev.dismiss_attention(att[0].mutation_id).unwrap();
    let st = d.dev.status().unwrap();
    assert_eq!((st.pending, st.needs_attention), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_and_in_as_another_user_during_a_sync_keeps_nothing_of_that_sync() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let d = device(&proxy.url, &s.demo.members()[5]).await;
    proxy.set(Mode::Slow);
    let dev = d.dev.clone();
    let running = tokio::spawn(async move { dev.sync_now().await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    d.dev.sign_out(false).unwrap();
    proxy.set(Mode::Up);
    let other = &s.demo.members()[6];
    d.dev
        .login(&s.srv.url, &other.username, &other.password, "máy chung")
        .await
        .unwrap();
    let e = running.await.unwrap().unwrap_err();
    assert_eq!(e.code(), "session_changed", "{e}");
    // Nothing of the first user's pull landed: no rounds until the new user syncs.
    assert!(d.dev.rounds().unwrap().is_empty());
    assert_eq!(
        d.dev.session().unwrap().unwrap().user.id,
        other.id,
        "the new session is untouched"
    );
    sync(&d.dev).await;
    assert!(!d.dev.rounds().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_counts_unsent_photos_and_a_confirmed_sign_out_deletes_them() {
    let s = server().await;
    let d = device(&s.srv.url, &s.demo.members()[6]).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[2];
    let (c, _) = option(&d.dev, p, 0, 0);
    let sha = d
        .dev
        .add_attachment(p, &c, &[1u8; 1000], "image/jpeg")
        .unwrap();
    let e = d.dev.sign_out(false).unwrap_err();
    assert!(
        e.to_string().starts_with("2 changes"),
        "the edit and the photo: {e}"
    );
    assert!(
        d.dev.attachment_path(&sha).exists(),
        "refused: nothing deleted"
    );
    d.dev.sign_out(true).unwrap();
    assert!(!d.dev.attachment_path(&sha).exists());
    assert_eq!(d.dev.status().unwrap().state, SyncState::SignedOut);

    // Signed in again: nothing of the old photo is uploaded.
    d.dev
        .login(
            &s.srv.url,
            &s.demo.members()[6].username,
            &s.demo.members()[6].password,
            "d",
        )
        .await
        .unwrap();
    let r = sync(&d.dev).await;
    assert_eq!(r.attachments_uploaded, 0);
    assert!(!s.dir.path().join("attachments").join(&sha).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_that_can_never_be_uploaded_is_listed_in_needs_attention() {
    let s = server().await;
    let d = device(&s.srv.url, &s.demo.members()[0]).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[4];
    let (c, _) = option(&d.dev, p, 0, 0);
    let sha = d
        .dev
        .add_attachment(p, &c, &[2u8; 500], "image/png")
        .unwrap();
    std::fs::remove_file(d.dev.attachment_path(&sha)).unwrap();
    sync(&d.dev).await;
    let att = d.dev.needs_attention().unwrap();
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].photo.as_deref(), Some(sha.as_str()));
    assert_eq!(att[0].code, "file_missing");
    let st = d.dev.status().unwrap();
    assert_eq!((st.pending, st.needs_attention), (0, 1));
    assert!(st.last_success.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chair_downloads_a_members_photo_content_addressed() {
    let s = server().await;
    let m = device(&s.srv.url, &s.demo.members()[1]).await;
    let chair = device(&s.srv.url, s.demo.chair()).await;
    sync(&m.dev).await;
    let p = s.demo.product_ids[5];
    answer_all(&m.dev, p, |i| i);
    let (c, _) = option(&m.dev, p, 0, 0);
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let sha = m.dev.add_attachment(p, &c, &photo, "image/jpeg").unwrap();
    m.dev.submit(p).unwrap();
    sync(&m.dev).await;

    let r = sync(&chair.dev).await;
    assert_eq!(r.attachments_downloaded, 1);
    let v = chair.dev.sheet_of(p, s.demo.members()[1].id).unwrap();
    assert_eq!(v.sheet.answers[&c].answer.attachments, vec![sha.clone()]);
    assert_eq!(
        std::fs::read(chair.dev.attachment_path(&sha)).unwrap(),
        photo
    );
    assert_eq!(sync(&chair.dev).await.attachments_downloaded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_reported_while_syncing() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let d = device(&proxy.url, &s.demo.members()[2]).await;
    two_mutations_after_sync(&d.dev, &s).await;
    proxy.set(Mode::Slow);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (dev, seen, stop) = (d.dev.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let st = dev.status().unwrap();
                if st.state == SyncState::Syncing
                    && let Some(p) = st.progress
                {
                    seen.lock().unwrap().push(p.phase);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    sync(&d.dev).await;
    stop.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&Phase::Uploading), "{seen:?}");
    assert!(seen.contains(&Phase::Downloading), "{seen:?}");
    let st = d.dev.status().unwrap();
    assert_eq!((st.state, st.progress), (SyncState::UpToDate, None));
}

async fn two_mutations_after_sync(d: &Device, s: &Server) {
    sync(d).await;
    two_mutations(d, s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_again_after_a_401_reattaches_the_device_so_resent_mutations_are_duplicates() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let u = &s.demo.members()[3];
    let d = device(&proxy.url, u).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[2];
    let (c, o) = option(&d.dev, p, 0, 1);
    d.dev.set_answer(p, &c, Some(&o)).unwrap();
    let dev_id = d.dev.session().unwrap().unwrap().device_id;
    // The server applies the edit but the answer is lost.
    proxy.set(Mode::CutAnswers);
    assert_eq!(d.dev.sync_now().await.unwrap_err().code(), "offline");
    proxy.set(Mode::Up);
    // Someone signs in naming this device: its stored token stops working.
    let t: TokenResponse = reqwest::Client::new()
        .post(format!("{}{}", s.srv.url, paths::LOGIN))
        .json(&LoginRequest {
            username: u.username.clone(),
            password: u.password.clone(),
            device_name: "elsewhere".into(),
            device_id: Some(dev_id),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t.device_id, dev_id);
    assert_eq!(d.dev.sync_now().await.unwrap_err().code(), "sign_in_again");

    d.dev
        .login(&proxy.url, &u.username, &u.password, "test device")
        .await
        .unwrap();
    assert_eq!(d.dev.session().unwrap().unwrap().device_id, dev_id);
    let r = sync(&d.dev).await;
    assert_eq!(
        (r.acknowledged, r.conflicts),
        (1, 0),
        "the resend is a duplicate, not a stale edit of another device"
    );
    let st = d.dev.status().unwrap();
    assert_eq!((st.pending, st.needs_attention, st.conflicts), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_another_user_with_work_pending_is_refused_and_keeps_the_work() {
    let s = server().await;
    let d = device(&s.srv.url, &s.demo.members()[4]).await;
    sync(&d.dev).await;
    two_mutations(&d.dev, &s);
    let other = &s.demo.members()[5];
    let e = d
        .dev
        .login(&s.srv.url, &other.username, &other.password, "máy chung")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "unsynced_work");
    let st = d.dev.status().unwrap();
    assert_eq!(st.pending, 2);
    assert_eq!(
        d.dev.session().unwrap().unwrap().user.id,
        s.demo.members()[4].id
    );
    sync(&d.dev).await;
    d.dev
        .login(&s.srv.url, &other.username, &other.password, "máy chung")
        .await
        .unwrap();
    assert_eq!(d.dev.session().unwrap().unwrap().user.id, other.id);
    assert!(
        d.dev.rounds().unwrap().is_empty(),
        "the first user's data is gone"
    );
}
