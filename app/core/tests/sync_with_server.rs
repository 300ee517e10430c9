//! The device against a real sync server on 127.0.0.1 (in process), with a
//! fault-injecting proxy in between where the network matters.

mod common;

use std::time::Duration;

use common::*;
use ocop_app::{Keep, LoopConfig, SyncLoop, SyncState};
use ocop_shared::council::Participation;
use ocop_shared::wire::SheetStatus;
use ocop_sync_server::Principal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_of_one_member_offline_keep_both_criteria_and_flag_the_same_criterion() {
    let s = server().await;
    let u = &s.demo.members()[0];
    let a = device(&s.srv.url, u).await;
    let b = device(&s.srv.url, u).await;
    sync(&a.dev).await;
    sync(&b.dev).await;
    let p = s.demo.product_ids[0];
    let (c0, o_a) = option(&a.dev, p, 0, 0);
    let (_, o_b) = option(&a.dev, p, 0, 1);
    assert_ne!(o_a, o_b);
    let (c1, o1) = option(&a.dev, p, 1, 0);
    let (c2, o2) = option(&a.dev, p, 2, 0);

    // Both offline: each creates its own sheet for the same slot.
    a.dev.set_answer(p, &c0, Some(&o_a)).unwrap();
    a.dev.set_answer(p, &c1, Some(&o1)).unwrap();
    b.dev.set_answer(p, &c0, Some(&o_b)).unwrap();
    b.dev.set_answer(p, &c2, Some(&o2)).unwrap();

    sync(&a.dev).await;
    let rb = sync(&b.dev).await;
    assert_eq!(rb.conflicts, 1, "b's edit of {c0} had a stale base");
    sync(&a.dev).await;

    let va = a.dev.sheet(p).unwrap();
    let vb = b.dev.sheet(p).unwrap();
    assert_eq!(
        va.sheet.id, vb.sheet.id,
        "b re-keyed its sheet onto the canonical one"
    );
    for v in [&va, &vb] {
        assert_eq!(
            v.sheet.answers[&c1].answer.option.as_deref(),
            Some(o1.as_str())
        );
        assert_eq!(
            v.sheet.answers[&c2].answer.option.as_deref(),
            Some(o2.as_str())
        );
        assert_eq!(
            v.sheet.answers[&c0].answer.option.as_deref(),
            Some(o_a.as_str())
        );
        assert_eq!(
            v.conflicts.len(),
            1,
            "the conflict is shown on both devices"
        );
        let c = &v.conflicts[0];
        assert_eq!(c.criterion.as_deref(), Some(c0.as_str()));
        assert_eq!(c.current.option.as_deref(), Some(o_a.as_str()));
        assert_eq!(c.other.option.as_deref(), Some(o_b.as_str()));
        assert!(v.pending.is_empty());
    }
    assert!(vb.conflicts[0].other_is_mine);
    assert_eq!(b.dev.status().unwrap().conflicts, 1);

    // B keeps its own version.
    b.dev
        .resolve_conflict(vb.sheet.id, vb.conflicts[0].conflict_id, Keep::Other)
        .unwrap();
    sync(&b.dev).await;
    sync(&a.dev).await;
    for d in [&a.dev, &b.dev] {
        let v = d.sheet(p).unwrap();
        assert_eq!(
            v.sheet.answers[&c0].answer.option.as_deref(),
            Some(o_b.as_str())
        );
        assert!(v.conflicts.is_empty());
        let st = d.status().unwrap();
        assert_eq!((st.pending, st.conflicts, st.needs_attention), (0, 0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_scored_by_three_members_and_a_chair_is_aggregated_finalized_and_released() {
    let s = server().await;
    let url = &s.srv.url;
    let chair = device(url, s.demo.chair()).await;
    let mut members = Vec::new();
    for u in &s.demo.members()[..3] {
        members.push(device(url, u).await);
    }
    // A member who will not score this product and is offline when it is finalized.
    let late = device(url, &s.demo.members()[3]).await;
    sync(&late.dev).await;
    sync(&chair.dev).await;
    for m in &members {
        sync(&m.dev).await;
    }
    let p = s.demo.product_ids[0];

    answer_all(&chair.dev, p, |i| i);
    chair.dev.submit(p).unwrap();
    for (k, m) in members.iter().enumerate() {
        answer_all(&m.dev, p, |i| i + k + 1);
        m.dev.submit(p).unwrap();
        assert_eq!(m.dev.sheet(p).unwrap().sheet.status, SheetStatus::Submitted);
        sync(&m.dev).await;
        assert_eq!(m.dev.status().unwrap().needs_attention, 0);
    }
    // Members not at the session are recused by the chair, so quorum counts the four present.
    for u in &s.demo.members()[3..] {
        chair
            .dev
            .set_participation(p, u.id, Participation::Recused, "vắng mặt")
            .unwrap();
    }
    sync(&chair.dev).await;
    assert_eq!(chair.dev.needs_attention().unwrap(), vec![]);
    assert_eq!(
        chair.dev.sheets_of_product(p).unwrap().len(),
        4,
        "the chair sees the council's sheets"
    );
    assert_eq!(
        members[0].dev.sheets_of_product(p).unwrap().len(),
        1,
        "a member sees only their own sheet before release"
    );

    // The chair reopens one sheet; the member re-scores one criterion and resubmits.
    let m0 = s.demo.members()[0].id;
    chair.dev.reopen(p, m0, "kiểm tra lại tiêu chí 1").unwrap();
    assert_eq!(
        chair.dev.council_result(p).unwrap().members.len(),
        3,
        "a reopened sheet is not averaged"
    );
    sync(&chair.dev).await;
    sync(&members[0].dev).await;
    let v = members[0].dev.sheet(p).unwrap();
    assert_eq!(v.sheet.status, SheetStatus::Reopened);
    assert_eq!(
        v.sheet.reopen_reason.as_deref(),
        Some("kiểm tra lại tiêu chí 1")
    );
    assert!(v.editable);
    let (c, o) = option(&members[0].dev, p, 0, 0);
    members[0].dev.set_answer(p, &c, Some(&o)).unwrap();
    members[0].dev.submit(p).unwrap();
    sync(&members[0].dev).await;
    sync(&chair.dev).await;
    assert_eq!(members[0].dev.needs_attention().unwrap(), vec![]);

    let r = chair.dev.council_result(p).unwrap();
    assert_eq!(r.members.len(), 4);
    assert!(r.can_finalize, "{r:?}");
    let fin = chair.dev.finalize(p, "biên bản số 1").unwrap();
    assert!(
        chair.dev.decision_of(p).unwrap().unwrap().finalized,
        "shown at once, offline"
    );
    sync(&chair.dev).await;
    assert_eq!(
        chair.dev.needs_attention().unwrap(),
        vec![],
        "the server agreed with the mean"
    );
    chair.dev.release(p).unwrap();
    sync(&chair.dev).await;
    assert_eq!(chair.dev.status().unwrap().pending, 0);

    // The late member edits the now locked product, then another product:
    // the first is rejected for good and set aside, the second still applies.
    let p2 = s.demo.product_ids[1];
    let (c, o) = option(&late.dev, p, 0, 0);
    late.dev.set_answer(p, &c, Some(&o)).unwrap();
    late.dev.set_answer(p2, &c, Some(&o)).unwrap();
    let r = sync(&late.dev).await;
    assert_eq!((r.rejected, r.acknowledged), (1, 1), "{r:?}");
    let att = late.dev.needs_attention().unwrap();
    assert_eq!(att.len(), 1);
    assert!(!att[0].reason.is_empty());
    let st = late.dev.status().unwrap();
    assert_eq!((st.pending, st.needs_attention), (0, 1));
    assert!(
        late.dev.sheet(p).unwrap().sheet.answers.is_empty(),
        "the refused edit is not shown as saved"
    );
    assert_eq!(late.dev.sheet(p2).unwrap().sheet.answers.len(), 1);
    late.dev.dismiss_attention(att[0].mutation_id).unwrap();
    assert_eq!(late.dev.status().unwrap().needs_attention, 0);

    for m in &members {
        sync(&m.dev).await;
        let d = m.dev.decision_of(p).unwrap().expect("decision pulled");
        assert!(d.finalized && d.released);
        assert_eq!(d.result.unwrap().mean_total, fin.mean_total);
        assert_eq!(
            m.dev.sheets_of_product(p).unwrap().len(),
            4,
            "released: all sheets visible"
        );
        assert!(
            m.dev
                .set_answer(p, &option(&m.dev, p, 0, 0).0, None)
                .is_err(),
            "locked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_or_answer_lost_during_a_push_then_up_loses_nothing_and_applies_once() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let d = device(&proxy.url, &s.demo.members()[0]).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[1];
    answer_all(&d.dev, p, |i| i);
    d.dev.set_note(p, "hồ sơ đủ").unwrap();
    answer_all(&d.dev, s.demo.product_ids[2], |i| i + 1);
    let n = d.dev.status().unwrap().pending;
    assert_eq!(n, 3, "taps on one sheet are coalesced into one mutation");
    let before = s.srv.state.store.table_counts().unwrap();

    // The server commits but the answer never arrives.
    proxy.set(Mode::CutAnswers);
    let e = d.dev.sync_now().await.unwrap_err();
    assert_eq!(e.code(), "offline");
    assert_eq!(
        d.dev.status().unwrap().pending,
        n,
        "no answer, no acknowledgement"
    );
    // A tap now must not be folded into a mutation that may have reached the server.
    let (c, o) = option(&d.dev, p, 0, 2);
    d.dev.set_answer(p, &c, Some(&o)).unwrap();
    let n = n + 1;
    assert_eq!(d.dev.status().unwrap().pending, n);
    // Then the server is unreachable.
    proxy.set(Mode::Down);
    assert_eq!(d.dev.sync_now().await.unwrap_err().code(), "offline");
    let st = d.dev.status().unwrap();
    assert_eq!((st.state, st.pending), (SyncState::Offline, n));
    assert!(st.last_error.unwrap().vi.contains("Không kết nối"));
    // A captive portal's 200 is not an acknowledgement either.
    proxy.set(Mode::Portal);
    assert_eq!(d.dev.sync_now().await.unwrap_err().code(), "offline");
    assert_eq!(d.dev.status().unwrap().pending, n);

    // A 503 is worth retrying, not a refusal.
    proxy.set(Mode::Busy);
    let e = d.dev.sync_now().await.unwrap_err();
    assert_eq!(e.code(), "offline");
    assert!(e.to_string().contains("503"), "{e}");
    assert_eq!(d.dev.status().unwrap().pending, n);

    proxy.set(Mode::Up);
    sync(&d.dev).await;
    let st = d.dev.status().unwrap();
    assert_eq!((st.pending, st.needs_attention, st.conflicts), (0, 0, 0));
    let after = s.srv.state.store.table_counts().unwrap();
    assert_eq!(
        after["applied_mutations"] - before["applied_mutations"],
        n,
        "each mutation applied once"
    );
    assert_eq!(after["sheets"] - before["sheets"], 2);

    // A fresh device of the same member sees every answer.
    let fresh = device(&s.srv.url, &s.demo.members()[0]).await;
    sync(&fresh.dev).await;
    let v = fresh.dev.sheet(p).unwrap();
    assert!(v.score.complete(), "{:?}", v.score.unanswered);
    assert_eq!(v.sheet.answers, d.dev.sheet(p).unwrap().sheet.answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_with_edits_pending_keeps_data_and_outbox_and_says_sign_in_again() {
    let s = server().await;
    let u = &s.demo.members()[1];
    let d = device(&s.srv.url, u).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[2];
    for i in 0..3 {
        let (c, o) = option(&d.dev, p, i, 1);
        d.dev.set_answer(p, &c, Some(&o)).unwrap();
    }
    let dev_id = d.dev.session().unwrap().unwrap().device_id;
    s.srv
        .state
        .store
        .revoke_device(&Principal::system(), dev_id)
        .unwrap();

    let e = d.dev.sync_now().await.unwrap_err();
    assert_eq!(e.code(), "sign_in_again");
    let st = d.dev.status().unwrap();
    assert_eq!(st.state, SyncState::SignInAgain);
    assert_eq!(st.pending, 1, "three taps, coalesced");
    assert!(st.last_error.unwrap().en.contains("sign in again"));
    assert_eq!(d.dev.sheet(p).unwrap().sheet.answers.len(), 3, "data kept");
    // Editing still works offline while signed out by the server.
    let (c, o) = option(&d.dev, p, 3, 0);
    d.dev.set_answer(p, &c, Some(&o)).unwrap();
    assert_eq!(d.dev.sync_now().await.unwrap_err().code(), "sign_in_again");

    d.dev
        .login(&s.srv.url, &u.username, &u.password, "test device")
        .await
        .unwrap();
    sync(&d.dev).await;
    let st = d.dev.status().unwrap();
    assert_eq!(
        (st.state, st.pending, st.needs_attention),
        (SyncState::UpToDate, 0, 0)
    );
    assert_eq!(d.dev.sheet(p).unwrap().sheet.answers.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_loop_retries_on_its_own_when_the_server_comes_back() {
    let s = server().await;
    let proxy = Proxy::start(&s.srv.url).await;
    let d = device(&proxy.url, &s.demo.members()[2]).await;
    sync(&d.dev).await;
    proxy.set(Mode::Down);
    let lp = SyncLoop::spawn(
        d.dev.clone(),
        LoopConfig {
            idle: Duration::from_secs(3600),
            debounce: Duration::from_millis(50),
        },
    );
    let p = s.demo.product_ids[3];
    let (c, o) = option(&d.dev, p, 0, 0);
    d.dev.set_answer(p, &c, Some(&o)).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(d.dev.status().unwrap().pending, 1);
    // No new edit, no nudge: the backoff timer alone must bring it home.
    proxy.set(Mode::Up);
    let t0 = std::time::Instant::now();
    while d.dev.status().unwrap().pending > 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "loop never retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(d.dev.status().unwrap().last_success.is_some());
    lp.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_by_code_and_sign_out_names_what_would_be_lost() {
    let s = server().await;
    let u = &s.demo.members()[4];
    let dir = tempfile::tempdir().unwrap();
    let d = ocop_app::Device::open(dir.path()).unwrap();
    let me = d
        .enrol(&s.srv.url, &u.enrolment_code, "điện thoại")
        .await
        .unwrap();
    assert_eq!(me.id, u.id);
    sync(&d).await;
    assert!(!d.rounds().unwrap().is_empty());
    assert_eq!(
        d.list_products(s.demo.round_id).unwrap().len(),
        s.demo.product_ids.len()
    );
    let p = s.demo.product_ids[4];
    let (c, o) = option(&d, p, 0, 0);
    d.set_answer(p, &c, Some(&o)).unwrap();
    d.set_note(p, "ghi chú").unwrap();
    let e = d.sign_out(false).unwrap_err();
    assert_eq!(e.code(), "unsynced_work");
    assert!(e.to_string().starts_with("2 changes"), "{e}");
    // Refused means untouched: still signed in, data and outbox kept.
    let st = d.status().unwrap();
    assert_eq!((st.state, st.pending), (SyncState::Pending, 2));
    assert_eq!(d.session().unwrap().unwrap().user.id, u.id);
    let v = d.sheet(p).unwrap();
    assert_eq!(
        v.sheet.answers[&c].answer.option.as_deref(),
        Some(o.as_str())
    );
    assert_eq!(v.sheet.note, "ghi chú");
    sync(&d).await;
    d.sign_out(false).unwrap();
    assert_eq!(d.status().unwrap().state, SyncState::SignedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_is_stored_content_addressed_and_uploaded_once() {
    let s = server().await;
    let d = device(&s.srv.url, &s.demo.members()[5]).await;
    sync(&d.dev).await;
    let p = s.demo.product_ids[5];
    let (c, o) = option(&d.dev, p, 0, 0);
    d.dev.set_answer(p, &c, Some(&o)).unwrap();
    let photo = vec![7u8; 300_000];
    let sha = d.dev.add_attachment(p, &c, &photo, "image/jpeg").unwrap();
    assert_eq!(std::fs::read(d.dev.attachment_path(&sha)).unwrap(), photo);
    assert_eq!(
        d.dev.sheet(p).unwrap().sheet.answers[&c].answer.attachments,
        vec![sha.clone()]
    );
    let r = sync(&d.dev).await;
    assert_eq!(r.attachments_uploaded, 1);
    assert!(s.dir.path().join("attachments").join(&sha).exists());
    // Nothing left to upload on the next sync.
    assert_eq!(sync(&d.dev).await.attachments_uploaded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consensus_round_is_finalized_from_the_one_agreed_sheet() {
    use ocop_shared::council::{CouncilConfig, CouncilMode};
    use ocop_shared::wire::{
        CreateProductRequest, CreateRoundRequest, Level, RosterLine, SetRosterRequest,
    };
    let s = server().await;
    let sys = Principal::system();
    let store = &s.srv.state.store;
    let round = store
        .create_round(
            &sys,
            &CreateRoundRequest {
                name: "đồng thuận".into(),
                level: Level::Province,
                province: "Hà Tĩnh".into(),
                starts_on: "2026-12-01".into(),
                ends_on: "2026-12-02".into(),
                council: CouncilConfig {
                    mode: CouncilMode::Consensus,
                    ..Default::default()
                },
            },
        )
        .unwrap();
    store
        .set_roster(
            &sys,
            round.id,
            &SetRosterRequest {
                members: s
                    .demo
                    .users
                    .iter()
                    .map(|u| RosterLine {
                        user_id: u.id,
                        role: u.role,
                    })
                    .collect(),
            },
        )
        .unwrap();
    let tpl = &s.demo.products[0];
    let p = store
        .create_product(
            &sys,
            &CreateProductRequest {
                round_id: round.id,
                code: "DT-01".into(),
                name: tpl.name.clone(),
                producer: tpl.producer.clone(),
                commune: tpl.commune.clone(),
                district: tpl.district.clone(),
                province: tpl.province.clone(),
                group: tpl.group.clone(),
                subgroup: tpl.subgroup.clone(),
                rubric: tpl.rubric.clone(),
            },
        )
        .unwrap()
        .id;
    let chair = device(&s.srv.url, s.demo.chair()).await;
    sync(&chair.dev).await;
    answer_all(&chair.dev, p, |i| i + 2);
    chair.dev.submit(p).unwrap();
    sync(&chair.dev).await;
    let agreed = chair.dev.sheet(p).unwrap().sheet.id;
    let r = chair.dev.council_result_consensus(p, agreed).unwrap();
    assert!(r.can_finalize, "{r:?}");
    let total = chair.dev.sheet(p).unwrap().score.total;
    assert_eq!(
        r.mean_total,
        Some(ocop_shared::Centi::from_points(i64::from(total)))
    );
    chair
        .dev
        .finalize_consensus(p, agreed, "đồng thuận")
        .unwrap();
    sync(&chair.dev).await;
    assert_eq!(chair.dev.needs_attention().unwrap(), vec![]);
    let d = chair.dev.decision_of(p).unwrap().unwrap();
    assert!(d.finalized);
    assert_eq!(d.result.unwrap().mean_total, r.mean_total);
}
