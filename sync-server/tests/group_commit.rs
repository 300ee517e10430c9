//! Pushes that arrive together are committed together (one transaction, one
//! WAL sync) and each still gets exactly the outcomes it would get alone.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use ocop_shared::wire::{
    Answer, AnswerEdit, EnrolRequest, Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest,
    PushResponse, RejectCode, SheetKey,
};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store, demo};
use uuid::Uuid;

mod common;

/// One member's push: a sheet per product with two criteria answered; with
/// `bad`, the last mutation names an option the criterion does not have.
fn member_push(
    info: &demo::DemoInfo,
    sheet_ids: &[Uuid],
    first_id: u64,
    option: &str,
    bad: bool,
) -> PushRequest {
    let mutations = info
        .products
        .iter()
        .zip(sheet_ids)
        .enumerate()
        .map(|(i, (p, sid))| {
            let rubric = ocop_shared::bundled::scoreable()
                .into_iter()
                .find(|r| r.id == p.rubric.id)
                .unwrap();
            let answers = rubric
                .criteria()
                .take(2)
                .map(|(_, _, c)| AnswerEdit {
                    criterion: c.code.clone(),
                    answer: Answer {
                        option: Some(if bad && i + 1 == info.products.len() {
                            "no-such-option".into()
                        } else {
                            option.into()
                        }),
                        ..Answer::default()
                    },
                    base_rev: 0,
                })
                .collect();
            Mutation {
                id: first_id + i as u64,
                client_time: None,
                op: Op::SetAnswers {
                    sheet: SheetKey {
                        sheet_id: *sid,
                        round_id: info.round_id,
                        product_id: p.id,
                        rubric: p.rubric.clone(),
                    },
                    answers,
                },
            }
        })
        .collect();
    PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations,
    }
}

fn seqs(r: &PushResponse) -> Vec<u64> {
    r.results
        .iter()
        .filter_map(|x| match x.outcome {
            Outcome::Applied { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

/// `limit`: mutations per group; 30 holds two of these 12-mutation pushes, so
/// most pushes wait behind more than one group.
#[rstest::rstest]
#[case::default_limit(None)]
#[case::two_pushes_per_group(Some(30))]
fn concurrent_pushes_share_commits_and_keep_their_own_outcomes(#[case] limit: Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("group.sqlite3")).unwrap();
    if let Some(n) = limit {
        store = store.with_group_limit(n);
    }
    let store = Arc::new(store);
    store.install_bundled_rubrics().unwrap();
    let info = demo::seed(store.as_ref()).unwrap();
    let members: Vec<Principal> = common::principals(store.as_ref(), info.members());
    let sheets: Vec<Vec<Uuid>> = members
        .iter()
        .map(|_| info.products.iter().map(|_| Uuid::now_v7()).collect())
        .collect();
    let k = info.products.len();

    // Rounds until two pushes shared a commit (the first round nearly always).
    for round in 0..10u64 {
        let option = if round % 2 == 0 { "a" } else { "b" };
        // Every member pushes; member 0 sends the same request twice at once
        // (a resend racing the original); member 1's last mutation is invalid.
        let mut calls: Vec<(usize, PushRequest)> = members
            .iter()
            .enumerate()
            .map(|(m, _)| {
                (
                    m,
                    member_push(&info, &sheets[m], 1 + round * 100, option, m == 1),
                )
            })
            .collect();
        calls.push((0, calls[0].1.clone()));
        let barrier = Arc::new(Barrier::new(calls.len()));
        let handles: Vec<_> = calls
            .into_iter()
            .map(|(m, req)| {
                let (store, who, barrier) = (store.clone(), members[m].clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (m, store.push_owned(who, req).unwrap())
                })
            })
            .collect();
        let answers: Vec<(usize, PushResponse)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();

        let mut all_seqs = BTreeSet::new();
        let mut member0 = Vec::new();
        for (m, r) in &answers {
            assert_eq!(r.results.len(), k);
            match m {
                0 => member0.push(r),
                1 => {
                    assert_eq!(seqs(r).len(), k - 1, "the valid mutations apply");
                    assert!(matches!(
                        &r.results[k - 1].outcome,
                        Outcome::Rejected {
                            code: RejectCode::Invalid,
                            ..
                        }
                    ));
                }
                _ => assert_eq!(seqs(r).len(), k, "{:?}", r.results),
            }
            // One seq per push (a pull page never splits it), never shared by two pushes.
            let mine: BTreeSet<u64> = seqs(r).into_iter().collect();
            assert!(mine.len() <= 1, "{mine:?}");
            for s in mine {
                assert!(all_seqs.insert(s), "seq {s} given to two pushes");
            }
        }
        // The racing copies: each mutation applied once, the other copy a duplicate.
        assert_eq!(member0.len(), 2);
        for i in 0..k {
            let outcomes = [
                &member0[0].results[i].outcome,
                &member0[1].results[i].outcome,
            ];
            let applied = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Applied { .. }))
                .count();
            let dup = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Duplicate { .. }))
                .count();
            assert_eq!((applied, dup), (1, 1), "{outcomes:?}");
        }
        // What was stored is what was answered: every sheet holds this round's option.
        let chair = store
            .authenticate(
                &store
                    .enrol(&EnrolRequest {
                        code: store
                            .issue_enrolment_code(
                                &Principal::system(),
                                &ocop_shared::wire::EnrolmentCodeRequest {
                                    user_id: info.users[0].id,
                                    ttl_minutes: None,
                                },
                                "http://127.0.0.1",
                            )
                            .unwrap()
                            .code,
                        device_name: "laptop".into(),
                    })
                    .unwrap()
                    .token,
            )
            .unwrap()
            .unwrap();
        let page = store.pull(&chair, 0, 10_000).unwrap();
        let stored: Vec<_> = page
            .changes
            .iter()
            .filter_map(|c| match &c.entity {
                ocop_shared::wire::Entity::Sheet(s) => Some(s),
                _ => None,
            })
            .collect();
        // Member 1's invalid mutation never created its sheet.
        assert_eq!(stored.len(), members.len() * k - 1);
        for s in &stored {
            assert!(
                s.answers
                    .values()
                    .all(|a| a.answer.option.as_deref() == Some(option)),
                "sheet {} of {}",
                s.id,
                s.owner_id
            );
        }
        let (commits, pushes) = store.group_stats();
        assert_eq!(pushes, (round + 1) * (members.len() as u64 + 1));
        if commits < pushes {
            return;
        }
    }
    panic!("ten rounds of simultaneous pushes never shared a commit");
}

/// A push that fails with a store error (here: its resend finds a damaged
/// idempotency row) gets its error; the pushes it shared a group with are
/// undone with it and run again without it, so they still apply.
#[test]
fn a_push_that_fails_does_not_take_its_group_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.sqlite3");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    store.install_bundled_rubrics().unwrap();
    let info = demo::seed(store.as_ref()).unwrap();
    let members: Vec<Principal> = info.members()[..4]
        .iter()
        .map(|u| {
            let t = store
                .enrol(&EnrolRequest {
                    code: u.enrolment_code.clone(),
                    device_name: "điện thoại".into(),
                })
                .unwrap();
            store.authenticate(&t.token).unwrap().unwrap()
        })
        .collect();
    let sheets: Vec<Vec<Uuid>> = members
        .iter()
        .map(|_| info.products.iter().map(|_| Uuid::now_v7()).collect())
        .collect();
    // Member 0's first push lands; then its idempotency row is damaged.
    let first = member_push(&info, &sheets[0], 1, "a", false);
    store.push_owned(members[0].clone(), first.clone()).unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute(
        "UPDATE applied_mutations SET outcome = '{damaged' WHERE device_id = ?1",
        [members[0].device_id.to_string()],
    )
    .unwrap();
    // Rounds until the failing push has shared a group (the first, nearly always).
    for round in 0..20u64 {
        let option = if round % 2 == 0 { "b" } else { "c" };
        let barrier = Arc::new(Barrier::new(members.len()));
        let handles: Vec<_> = members
            .iter()
            .enumerate()
            .map(|(m, who)| {
                // Member 0 resends its first push; the others push new values.
                let req = if m == 0 {
                    first.clone()
                } else {
                    member_push(&info, &sheets[m], 1 + round * 100, option, false)
                };
                let (store, who, barrier) = (store.clone(), who.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    (m, store.push_owned(who, req))
                })
            })
            .collect();
        for h in handles {
            let (m, r) = h.join().unwrap();
            if m == 0 {
                r.expect_err("a damaged outcome row cannot be answered");
            } else {
                let r = r.unwrap();
                assert_eq!(seqs(&r).len(), info.products.len(), "{:?}", r.results);
            }
        }
        for (m, who) in members.iter().enumerate().skip(1) {
            let page = store.pull(who, 0, 10_000).unwrap();
            let mine: Vec<_> = page
                .changes
                .iter()
                .filter_map(|c| match &c.entity {
                    ocop_shared::wire::Entity::Sheet(s) if s.owner_id == who.user.id => Some(s),
                    _ => None,
                })
                .collect();
            assert_eq!(
                mine.len(),
                info.products.len(),
                "member {m}'s sheets are stored"
            );
            for s in mine {
                assert!(
                    s.answers
                        .values()
                        .all(|a| a.answer.option.as_deref() == Some(option)),
                    "member {m}'s sheet {} holds this round's answers",
                    s.id
                );
            }
        }
        if store.group_failures() > 0 {
            return;
        }
    }
    panic!("in twenty rounds the failing push never shared a group");
}
