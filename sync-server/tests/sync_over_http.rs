//! Push/pull over a real port (127.0.0.1:0), through the demo round.

mod common;

use common::*;
use ocop_shared::wire::{
    ConflictField, Entity, ErrorBody, ErrorCode, Op, Outcome, RejectCode, SheetState, SheetStatus,
    paths,
};
use rstest::rstest;
use uuid::Uuid;

fn sheets_in(changes: &[ocop_shared::wire::Change]) -> Vec<SheetState> {
    let mut map = std::collections::BTreeMap::new();
    for c in changes {
        if let Entity::Sheet(s) = &c.entity {
            map.insert(s.id, (**s).clone());
        }
    }
    map.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_identical_pushes_store_one_revision() {
    let w = world().await;
    let m = w.member(0);
    let rubric = rubric_of(&w, 0);
    let sheet_id = Uuid::now_v7();
    let mutation = m.mutation(set_answers(&w, 0, sheet_id, full_answers(&rubric, 1)));
    let before = w.server.state.store.table_counts().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let d = m.clone();
        let mu = mutation.clone();
        tasks.spawn(async move { d.push(vec![mu]).await });
    }
    let mut applied = 0;
    let mut duplicates = 0;
    let mut seqs = std::collections::BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let resp = r.unwrap();
        assert_eq!(resp.results.len(), 1);
        match &resp.results[0].outcome {
            Outcome::Applied { seq, sheet_id: s } => {
                applied += 1;
                seqs.insert(*seq);
                assert_eq!(*s, Some(sheet_id));
            }
            Outcome::Duplicate { original } => {
                duplicates += 1;
                let Outcome::Applied { seq, .. } = **original else {
                    panic!("duplicate of {original:?}")
                };
                seqs.insert(seq);
            }
            o => panic!("unexpected outcome {o:?}"),
        }
    }
    assert_eq!((applied, duplicates), (1, 49));
    assert_eq!(seqs.len(), 1, "every answer names the same write");
    let after = w.server.state.store.table_counts().unwrap();
    // A sheet written once keeps its one revision in its snapshot (schema 10).
    assert_eq!(after["sheet_revisions"], before["sheet_revisions"]);
    assert_eq!(after["applied_mutations"], before["applied_mutations"] + 1);
    assert_eq!(after["sheets"], before["sheets"] + 1);
    let history = w
        .server
        .state
        .store
        .sheet_revisions(&ocop_sync_server::Principal::system(), sheet_id)
        .unwrap();
    assert_eq!(history.len(), 1, "one revision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_base_edit_is_flagged_and_both_versions_readable() {
    let w = world().await;
    let a = w.member(0);
    let user = &w.demo.members()[0];
    let (st, body, t) = login(w.url(), &user.username, &user.password).await;
    assert_eq!(st, 200, "{body}");
    let b = Device::new(w.url(), t.unwrap());
    let rubric = rubric_of(&w, 0);

    // Device A starts the sheet.
    let sheet_a = Uuid::now_v7();
    let r1 = a
        .push(vec![a.mutation(set_answers(
            &w,
            0,
            sheet_a,
            vec![one_answer(&rubric, 0, 0, 0)],
        ))])
        .await;
    let Outcome::Applied { seq: rev1, .. } = r1.results[0].outcome else {
        panic!("{r1:?}")
    };

    // Device B (same member) started its own copy offline: mapped onto A's id.
    let sheet_b = Uuid::now_v7();
    let r2 = b
        .push(vec![b.mutation(set_answers(
            &w,
            0,
            sheet_b,
            vec![one_answer(&rubric, 0, 1, rev1)],
        ))])
        .await;
    let Outcome::Applied {
        seq: rev2,
        sheet_id,
    } = r2.results[0].outcome
    else {
        panic!("{r2:?}")
    };
    assert_eq!(
        sheet_id,
        Some(sheet_a),
        "the canonical sheet id is returned"
    );

    // A edits criterion 0 from the stale base rev1 and criterion 1 fresh.
    let r3 = a
        .push(vec![a.mutation(set_answers(
            &w,
            0,
            sheet_a,
            vec![
                one_answer(&rubric, 0, 2, rev1),
                one_answer(&rubric, 1, 0, 0),
            ],
        ))])
        .await;
    let c0 = rubric.criteria().next().unwrap().2.code.clone();
    let c1 = rubric.criteria().nth(1).unwrap().2.code.clone();
    let Outcome::Conflict {
        conflicts,
        criteria,
        applied,
        sheet_id,
        ..
    } = &r3.results[0].outcome
    else {
        panic!("{r3:?}")
    };
    assert_eq!(criteria, &vec![c0.clone()]);
    assert_eq!(applied, &vec![c1.clone()]);
    assert_eq!(*sheet_id, sheet_a);
    let conflict_id = conflicts[0];

    // Owner and chair both see the current value and the flagged other one.
    for viewer in [a, w.chair()] {
        let sheets = sheets_in(&viewer.pull_all().await);
        let s = sheets
            .iter()
            .find(|s| s.id == sheet_a)
            .expect("sheet visible");
        let current = &s.answers[&c0];
        assert_eq!(current.rev, rev2);
        assert_eq!(current.device_id, b.device_id);
        assert_eq!(
            current.answer.option.as_deref(),
            Some(
                rubric
                    .criteria()
                    .next()
                    .unwrap()
                    .2
                    .options()
                    .nth(1)
                    .unwrap()
                    .id
                    .as_str()
            )
        );
        assert!(s.answers.contains_key(&c1));
        let c = s.conflicts.iter().find(|c| c.id == conflict_id).unwrap();
        assert!(!c.resolved);
        assert_eq!((c.base_rev, c.current_rev), (rev1, rev2));
        let ConflictField::Answer { criterion, theirs } = &c.field else {
            panic!()
        };
        assert_eq!(criterion, &c0);
        assert_eq!(
            theirs.option.as_deref(),
            Some(
                rubric
                    .criteria()
                    .next()
                    .unwrap()
                    .2
                    .options()
                    .nth(2)
                    .unwrap()
                    .id
                    .as_str()
            )
        );
    }
    // Every accepted revision is kept.
    let (st, body, revs) = a
        .get::<Vec<SheetState>>(&format!("/api/v1/sheets/{sheet_a}/revisions"))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(revs.unwrap().len(), 3);

    // The owner resolves by keeping their value, based on the current revision.
    let keep = one_answer(&rubric, 0, 2, 0).answer;
    let r4 = a
        .push(vec![a.mutation(Op::ResolveConflict {
            sheet_id: sheet_a,
            conflict_id,
            answer: Some(keep.clone()),
            note: None,
            base_rev: rev2,
        })])
        .await;
    assert!(
        matches!(r4.results[0].outcome, Outcome::Applied { .. }),
        "{r4:?}"
    );
    let s = sheets_in(&a.pull_all().await)
        .into_iter()
        .find(|s| s.id == sheet_a)
        .unwrap();
    assert_eq!(s.answers[&c0].answer, keep);
    assert!(s.conflicts.iter().all(|c| c.resolved));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_mutation_is_quarantined_and_later_mutations_still_apply() {
    let w = world().await;
    let m = w.member(0);
    let rubric = rubric_of(&w, 0);
    let sheet = Uuid::now_v7();
    let mut bad = one_answer(&rubric, 0, 0, 0);
    bad.answer.option = Some("zz".into());
    let batch = vec![
        m.mutation(set_answers(&w, 0, sheet, vec![bad])),
        m.mutation(set_answers(
            &w,
            0,
            sheet,
            vec![one_answer(&rubric, 0, 0, 0)],
        )),
    ];
    let resp = m.push(batch.clone()).await;
    let Outcome::Rejected { code, reason } = &resp.results[0].outcome else {
        panic!("{resp:?}")
    };
    assert_eq!(*code, RejectCode::Invalid);
    assert!(reason.contains("zz"), "{reason}");
    assert!(
        matches!(resp.results[1].outcome, Outcome::Applied { .. }),
        "{resp:?}"
    );

    let (st, body, _) = w
        .admin
        .get::<serde_json::Value>(paths::ADMIN_QUARANTINE)
        .await;
    assert_eq!(st, 200);
    let q = body.as_array().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["device_id"], m.device_id.to_string());
    assert_eq!(q[0]["code"], "invalid");
    assert_eq!(
        q[0]["mutation"]["op"]["set_answers"]["answers"][0]["answer"]["option"],
        "zz"
    );
    // A resend of the batch is duplicates (of the rejection too), not a new quarantine row.
    let again = m.push(batch).await;
    assert!(
        matches!(&again.results[0].outcome, Outcome::Duplicate { original } if matches!(**original, Outcome::Rejected { .. })),
        "{again:?}"
    );
    assert!(
        matches!(again.results[1].outcome, Outcome::Duplicate { .. }),
        "{again:?}"
    );
    let (_, body, _) = w
        .admin
        .get::<serde_json::Value>(paths::ADMIN_QUARANTINE)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (st, _, _) = m.get::<serde_json::Value>(paths::ADMIN_QUARANTINE).await;
    assert_eq!(st, 403, "members cannot read the quarantine");
}

#[derive(Debug, Clone, Copy)]
enum Bad {
    MalformedJson,
    OversizedBody,
    UnknownRubric,
    OptionOutOfRange,
    SomeoneElsesSheet,
    SecretaryScores,
    SubmitUnanswered,
    ReopenByMember,
}

#[rstest]
#[case::malformed_json(Bad::MalformedJson, 400, None)]
#[case::oversized_body(Bad::OversizedBody, 413, None)]
#[case::unknown_rubric(Bad::UnknownRubric, 200, Some(RejectCode::NotFound))]
#[case::option_out_of_range(Bad::OptionOutOfRange, 200, Some(RejectCode::Invalid))]
#[case::someone_elses_sheet(Bad::SomeoneElsesSheet, 200, Some(RejectCode::Forbidden))]
#[case::secretary_scores(Bad::SecretaryScores, 200, Some(RejectCode::Forbidden))]
#[case::submit_unanswered(Bad::SubmitUnanswered, 200, Some(RejectCode::Invalid))]
#[case::reopen_by_member(Bad::ReopenByMember, 200, Some(RejectCode::Forbidden))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_documented_refusal_and_leaves_data_unchanged(
    #[case] bad: Bad,
    #[case] status: u16,
    #[case] reject: Option<RejectCode>,
) {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let owner = w.member(0);
    let existing = Uuid::now_v7();
    owner
        .push(vec![owner.mutation(set_answers(
            &w,
            0,
            existing,
            vec![one_answer(&rubric, 0, 0, 0)],
        ))])
        .await;
    let store = w.server.state.store.clone();
    let before = store.table_counts().unwrap();
    let seq_before = store.server_seq().unwrap();

    let m = w.member(1);
    let url = format!("{}{}", w.url(), paths::PUSH);
    let push_one =
        |d: &Device, op: Op| serde_json::json!({"protocol": 1, "mutations": [d.mutation(op)]});
    let (st, body) = match bad {
        Bad::MalformedJson => {
            let r = m
                .http
                .post(&url)
                .bearer_auth(&m.token)
                .header("content-type", "application/json")
                .body("{\"protocol\": 1, \"mutations\": [")
                .send()
                .await
                .unwrap();
            let (s, b, _) = decode::<serde_json::Value>(r).await;
            (s, b)
        }
        Bad::OversizedBody => {
            let big = format!(
                "{{\"protocol\":1,\"mutations\":[],\"pad\":\"{}\"}}",
                "x".repeat(9 * 1024 * 1024)
            );
            let r = m
                .http
                .post(&url)
                .bearer_auth(&m.token)
                .header("content-type", "application/json")
                .body(big)
                .send()
                .await
                .unwrap();
            let (s, b, _) = decode::<serde_json::Value>(r).await;
            (s, b)
        }
        Bad::UnknownRubric => {
            let mut k = key(&w, 0, Uuid::now_v7());
            k.rubric.version = 99;
            let (s, b, _) = m
                .post::<_, serde_json::Value>(
                    paths::PUSH,
                    &push_one(
                        m,
                        Op::SetAnswers {
                            sheet: k,
                            answers: vec![one_answer(&rubric, 0, 0, 0)],
                        },
                    ),
                )
                .await;
            (s, b)
        }
        Bad::OptionOutOfRange => {
            let mut a = one_answer(&rubric, 0, 0, 0);
            a.answer.option = Some("z".into());
            let (s, b, _) = m
                .post::<_, serde_json::Value>(
                    paths::PUSH,
                    &push_one(m, set_answers(&w, 0, Uuid::now_v7(), vec![a])),
                )
                .await;
            (s, b)
        }
        Bad::SomeoneElsesSheet => {
            let (s, b, _) = m
                .post::<_, serde_json::Value>(
                    paths::PUSH,
                    &push_one(
                        m,
                        set_answers(&w, 0, existing, vec![one_answer(&rubric, 0, 1, 0)]),
                    ),
                )
                .await;
            (s, b)
        }
        Bad::SecretaryScores => {
            let sec = w.secretary();
            let (s, b, _) = sec
                .post::<_, serde_json::Value>(
                    paths::PUSH,
                    &push_one(
                        sec,
                        set_answers(&w, 0, Uuid::now_v7(), vec![one_answer(&rubric, 0, 1, 0)]),
                    ),
                )
                .await;
            (s, b)
        }
        Bad::SubmitUnanswered => {
            let (s, b, _) = owner
                .post::<_, serde_json::Value>(
                    paths::PUSH,
                    &push_one(owner, Op::Submit { sheet_id: existing }),
                )
                .await;
            (s, b)
        }
        Bad::ReopenByMember => {
            let (s, b, _) = m
                .post::<_, serde_json::Value>(
                    paths::PUSH,
                    &push_one(
                        m,
                        Op::Reopen {
                            sheet_id: existing,
                            reason: "xem lại".into(),
                        },
                    ),
                )
                .await;
            (s, b)
        }
    };
    assert_eq!(st, status, "{body}");
    match reject {
        None => {
            let e: ErrorBody = serde_json::from_value(body.clone()).expect("the one error shape");
            assert_eq!(e.code.http_status(), status);
            if status == 413 {
                assert!(
                    e.message.contains("8388608"),
                    "message states the limit: {}",
                    e.message
                );
                assert_eq!(e.code, ErrorCode::PayloadTooLarge);
            }
            assert_eq!(store.table_counts().unwrap(), before, "nothing written");
        }
        Some(code) => {
            assert_eq!(body["results"][0]["status"], "rejected", "{body}");
            assert_eq!(
                body["results"][0]["code"],
                serde_json::to_value(code).unwrap(),
                "{body}"
            );
            let after = store.table_counts().unwrap();
            for t in ["sheets", "sheet_revisions", "entities", "sheet_aliases"] {
                assert_eq!(after[t], before[t], "table {t} unchanged");
            }
            assert_eq!(after["quarantine"], before["quarantine"] + 1);
        }
    }
    assert_eq!(store.server_seq().unwrap(), seq_before, "no seq taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_gets_401_that_never_says_discard() {
    let w = world().await;
    let m = w.member(2);
    assert_eq!(m.get::<serde_json::Value>(paths::ME).await.0, 200);
    let (st, _, _) = w
        .admin
        .post::<_, serde_json::Value>(
            &format!("{}/{}/revoke", paths::ADMIN_DEVICES, m.device_id),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(st, 204);
    for p in [paths::ME.to_string(), format!("{}?cursor=0", paths::PULL)] {
        let (st, body, _) = m.get::<serde_json::Value>(&p).await;
        assert_eq!(st, 401);
        let e: ErrorBody = serde_json::from_value(body).unwrap();
        assert_eq!(e.code, ErrorCode::Unauthorized);
        let msg = e.message.to_lowercase();
        for word in ["discard", "delete", "wipe", "erase"] {
            assert!(
                !msg.contains(word),
                "401 must not suggest losing data: {msg}"
            );
        }
        assert!(msg.contains("keep"), "{msg}");
    }
    // Other devices are unaffected.
    assert_eq!(w.member(3).get::<serde_json::Value>(paths::ME).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_code_is_single_use_and_expiring() {
    let w = world().await;
    let user = w.demo.members()[4].id;
    let (st, body, code) = w
        .admin
        .post::<_, ocop_shared::wire::EnrolmentCodeResponse>(
            paths::ADMIN_ENROLMENT_CODES,
            &serde_json::json!({"user_id": user}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let code = code.unwrap();
    assert_eq!(code.code.len(), 9);
    assert!(
        code.qr_payload
            .starts_with("ocop-enrol:1?server=http://127.0.0.1:"),
        "{}",
        code.qr_payload
    );
    assert!(code.qr_payload.ends_with(&format!("&code={}", code.code)));
    // Case and dashes do not matter.
    let typed = code.code.replace('-', "").to_lowercase();
    let d = enrol(w.url(), &typed, "máy tính bảng").await;
    assert_eq!(d.user_id, user);
    let http = reqwest::Client::new();
    let again = http
        .post(format!("{}{}", w.url(), paths::ENROL))
        .json(&serde_json::json!({"code": code.code, "device_name": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 401, "single use");

    let (_, _, expired) = w
        .admin
        .post::<_, ocop_shared::wire::EnrolmentCodeResponse>(
            paths::ADMIN_ENROLMENT_CODES,
            &serde_json::json!({"user_id": user, "ttl_minutes": 0}),
        )
        .await;
    let r = http
        .post(format!("{}{}", w.url(), paths::ENROL))
        .json(&serde_json::json!({"code": expired.unwrap().code, "device_name": "late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited_after_five_failures_per_minute() {
    let w = world().await;
    let u = &w.demo.members()[5];
    for _ in 0..5 {
        assert_eq!(login(w.url(), &u.username, "wrong").await.0, 401);
    }
    let (st, body, _) = login(w.url(), &u.username, "wrong").await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(
        login(w.url(), &u.username, &u.password).await.0,
        429,
        "even the right password waits"
    );
    // Another account is not affected.
    let other = &w.demo.members()[6];
    assert_eq!(
        login(w.url(), &other.username, &other.password).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_pages_never_split_one_seq_and_idle_client_skips_ahead() {
    let w = world().await;
    let m = w.member(0);
    let start = m.pull_from(0, 100_000).await.next_cursor;
    let mut muts = Vec::new();
    for p in 0..10 {
        let r = rubric_of(&w, p);
        muts.push(m.mutation(set_answers(
            &w,
            p,
            Uuid::now_v7(),
            vec![one_answer(&r, 0, 0, 0)],
        )));
    }
    let resp = m.push(muts).await;
    let seq = resp.server_seq;
    let page = m.pull_from(start, 3).await;
    assert_eq!(page.changes.len(), 10, "one push is one seq, never split");
    assert!(page.changes.iter().all(|c| c.seq == seq));
    assert_eq!(page.next_cursor, seq);
    assert!(!page.has_more);
    // An idle client (nothing visible beyond its cursor) gets the server seq.
    let chair_view = w.secretary().pull_from(seq, 10).await;
    assert!(chair_view.changes.is_empty());
    assert_eq!(chair_view.next_cursor, seq);
    // Another member's writes are invisible but the cursor still moves on.
    let other = w.member(1);
    let r = rubric_of(&w, 0);
    let later = other
        .push(vec![other.mutation(set_answers(
            &w,
            0,
            Uuid::now_v7(),
            vec![one_answer(&r, 0, 0, 0)],
        ))])
        .await;
    let idle = m.pull_from(seq, 10).await;
    assert!(idle.changes.is_empty());
    assert_eq!(idle.next_cursor, later.server_seq);
}

/// Everyone scores product 0, the chair finalizes (checking the mean) and releases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_checks_quorum_and_mean_locks_sheets_and_release_opens_them() {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let round = w.demo.round_id;
    let product = w.demo.products[0].id;
    let mut sheet_ids = Vec::new();
    // Only the chair and 3 members submit: quorum (6 of 8) not met.
    for (i, d) in w.devices[..8].iter().enumerate() {
        let sid = Uuid::now_v7();
        sheet_ids.push(sid);
        let r = d
            .push(vec![
                d.mutation(set_answers(&w, 0, sid, full_answers(&rubric, i % 3))),
                d.mutation(Op::Submit { sheet_id: sid }),
            ])
            .await;
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "{r:?}"
        );
        if i == 3 {
            let f = w
                .chair()
                .push(vec![w.chair().mutation(Op::Finalize {
                    round_id: round,
                    product_id: product,
                    consensus_sheet: None,
                    expected_mean: None,
                    note: String::new(),
                })])
                .await;
            let Outcome::Rejected { code, reason } = &f.results[0].outcome else {
                panic!("{f:?}")
            };
            assert_eq!(*code, RejectCode::Invalid);
            assert!(reason.contains("quorum"), "{reason}");
        }
    }
    // Members cannot see each other's sheets yet.
    let seen = sheets_in(&w.member(1).pull_all().await);
    assert_eq!(seen.iter().filter(|s| s.product_id == product).count(), 1);
    // Wrong expected mean → refused; right one → finalized.
    let chair = w.chair();
    let wrong = chair
        .push(vec![chair.mutation(Op::Finalize {
            round_id: round,
            product_id: product,
            consensus_sheet: None,
            expected_mean: Some(ocop_shared::Centi::from_hundredths(1)),
            note: String::new(),
        })])
        .await;
    assert!(
        matches!(&wrong.results[0].outcome, Outcome::Rejected { code: RejectCode::Invalid, reason } if reason.contains("mean")),
        "{wrong:?}"
    );
    let ok = chair
        .push(vec![chair.mutation(Op::Finalize {
            round_id: round,
            product_id: product,
            consensus_sheet: None,
            expected_mean: None,
            note: "biên bản số 12".into(),
        })])
        .await;
    assert!(
        matches!(ok.results[0].outcome, Outcome::Applied { .. }),
        "{ok:?}"
    );
    let decision = chair
        .pull_all()
        .await
        .into_iter()
        .find_map(|c| match c.entity {
            Entity::Decision(d) if d.product_id == product => Some(d),
            _ => None,
        })
        .unwrap();
    assert!(decision.finalized && !decision.released);
    let result = decision.result.unwrap();
    assert!(result.quorum.met);
    assert_eq!(result.members.len(), 8);
    // Locked: a member's later write to their own sheet is refused as locked
    // (not kept as a conflict: the minutes are signed).
    let m = w.member(0);
    let locked = m
        .push(vec![m.mutation(set_answers(
            &w,
            0,
            sheet_ids[1],
            vec![one_answer(&rubric, 0, 1, 0)],
        ))])
        .await;
    assert!(
        matches!(
            locked.results[0].outcome,
            Outcome::Rejected {
                code: RejectCode::Locked,
                ..
            }
        ),
        "{locked:?}"
    );
    let locked = chair
        .push(vec![chair.mutation(Op::Reopen {
            sheet_id: sheet_ids[1],
            reason: "xem lại".into(),
        })])
        .await;
    assert!(
        matches!(
            locked.results[0].outcome,
            Outcome::Rejected {
                code: RejectCode::Locked,
                ..
            }
        ),
        "{locked:?}"
    );
    // Release: members now read every sheet of the product.
    let rel = chair
        .push(vec![chair.mutation(Op::Release {
            round_id: round,
            product_id: product,
        })])
        .await;
    assert!(
        matches!(rel.results[0].outcome, Outcome::Applied { .. }),
        "{rel:?}"
    );
    let seen = sheets_in(&w.member(1).pull_all().await);
    let of_product: Vec<_> = seen.iter().filter(|s| s.product_id == product).collect();
    assert_eq!(of_product.len(), 8);
    assert!(
        of_product
            .iter()
            .all(|s| s.status == SheetStatus::Submitted
                && s.answers.len() == rubric.criterion_count())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_by_chair_needs_reason_and_allows_resubmit() {
    let w = world().await;
    let rubric = rubric_of(&w, 1);
    let m = w.member(0);
    let sid = Uuid::now_v7();
    m.push(vec![
        m.mutation(set_answers(&w, 1, sid, full_answers(&rubric, 0))),
        m.mutation(Op::Submit { sheet_id: sid }),
    ])
    .await;
    let edit = m
        .push(vec![m.mutation(set_answers(
            &w,
            1,
            sid,
            vec![one_answer(&rubric, 0, 1, 0)],
        ))])
        .await;
    assert!(
        matches!(
            &edit.results[0].outcome,
            Outcome::Conflict { applied, .. } if applied.is_empty()
        ),
        "an edit to a submitted sheet is kept as a conflict and changes nothing: {edit:?}"
    );
    let c = w.chair();
    let no_reason = c
        .push(vec![c.mutation(Op::Reopen {
            sheet_id: sid,
            reason: "  ".into(),
        })])
        .await;
    assert!(matches!(
        no_reason.results[0].outcome,
        Outcome::Rejected {
            code: RejectCode::Invalid,
            ..
        }
    ));
    let ok = c
        .push(vec![c.mutation(Op::Reopen {
            sheet_id: sid,
            reason: "thiếu minh chứng tiêu chí 1".into(),
        })])
        .await;
    assert!(
        matches!(ok.results[0].outcome, Outcome::Applied { .. }),
        "{ok:?}"
    );
    let current = sheets_in(&m.pull_all().await)
        .into_iter()
        .find(|s| s.id == sid)
        .unwrap();
    assert_eq!(current.status, SheetStatus::Reopened);
    assert_eq!(
        current.reopen_reason.as_deref(),
        Some("thiếu minh chứng tiêu chí 1")
    );
    let c0 = &current.answers[&rubric.criteria().next().unwrap().2.code];
    let r = m
        .push(vec![
            m.mutation(set_answers(
                &w,
                1,
                sid,
                vec![one_answer(&rubric, 0, 1, c0.rev)],
            )),
            m.mutation(Op::Submit { sheet_id: sid }),
        ])
        .await;
    assert!(
        r.results
            .iter()
            .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participation_member_abstains_self_only_chair_recuses() {
    let w = world().await;
    let round = w.demo.round_id;
    let product = w.demo.products[2].id;
    let m = w.member(0);
    let other = w.member(1).user_id;
    let op = |user, p| Op::SetParticipation {
        round_id: round,
        product_id: product,
        user_id: user,
        participation: p,
        reason: "người nhà".into(),
    };
    use ocop_shared::council::Participation;
    let r = m
        .push(vec![
            m.mutation(op(m.user_id, Participation::Abstained)),
            m.mutation(op(other, Participation::Recused)),
            m.mutation(op(m.user_id, Participation::Recused)),
        ])
        .await;
    assert!(matches!(r.results[0].outcome, Outcome::Applied { .. }));
    assert!(matches!(
        r.results[1].outcome,
        Outcome::Rejected {
            code: RejectCode::Forbidden,
            ..
        }
    ));
    assert!(matches!(
        r.results[2].outcome,
        Outcome::Rejected {
            code: RejectCode::Forbidden,
            ..
        }
    ));
    let c = w.chair();
    let r = c
        .push(vec![c.mutation(op(other, Participation::Recused))])
        .await;
    assert!(matches!(r.results[0].outcome, Outcome::Applied { .. }));
    let parts: Vec<_> = w
        .secretary()
        .pull_all()
        .await
        .into_iter()
        .filter_map(|c| match c.entity {
            Entity::Participation(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(parts.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_body_under_a_used_mutation_id_is_rejected_as_id_reused() {
    let w = world().await;
    let m = w.member(0);
    let rubric = rubric_of(&w, 0);
    let sid = Uuid::now_v7();
    let first = m.mutation(set_answers(&w, 0, sid, vec![one_answer(&rubric, 0, 0, 0)]));
    let mut changed = first.clone();
    changed.op = set_answers(&w, 0, sid, vec![one_answer(&rubric, 0, 1, 0)]);
    m.push(vec![first.clone()]).await;
    let r = m.push(vec![changed, first]).await;
    assert!(
        matches!(
            r.results[0].outcome,
            Outcome::Rejected {
                code: RejectCode::IdReused,
                ..
            }
        ),
        "{r:?}"
    );
    assert!(
        matches!(r.results[1].outcome, Outcome::Duplicate { .. }),
        "{r:?}"
    );
    let s = sheets_in(&m.pull_all().await)
        .into_iter()
        .find(|s| s.id == sid)
        .unwrap();
    let c0 = rubric.criteria().next().unwrap().2;
    assert_eq!(
        s.answers[&c0.code].answer.option.as_deref(),
        Some(c0.options().next().unwrap().id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_device_later_edit_supersedes_but_another_devices_stale_note_conflicts() {
    let w = world().await;
    let a = w.member(0);
    let user = &w.demo.members()[0];
    let (_, _, t) = login(w.url(), &user.username, &user.password).await;
    let b = Device::new(w.url(), t.unwrap());
    let rubric = rubric_of(&w, 3);
    let sid = Uuid::now_v7();
    let r = a
        .push(vec![a.mutation(set_answers(
            &w,
            3,
            sid,
            vec![one_answer(&rubric, 0, 0, 0)],
        ))])
        .await;
    let Outcome::Applied { seq: rev1, .. } = r.results[0].outcome else {
        panic!()
    };
    // A edits again without having pulled its own write (base 0): its own value, so fresh.
    let r = a
        .push(vec![a.mutation(set_answers(
            &w,
            3,
            sid,
            vec![one_answer(&rubric, 0, 1, 0)],
        ))])
        .await;
    assert!(
        matches!(r.results[0].outcome, Outcome::Applied { seq, .. } if seq > rev1),
        "{r:?}"
    );
    let c0 = rubric.criteria().next().unwrap().2;
    let s = sheets_in(&a.pull_all().await)
        .into_iter()
        .find(|s| s.id == sid)
        .unwrap();
    assert_eq!(
        s.answers[&c0.code].answer.option.as_deref(),
        Some(c0.options().nth(1).unwrap().id.as_str()),
        "the later edit of the same device is current"
    );
    assert!(s.conflicts.is_empty(), "{s:?}");
    // Notes: A writes; B writes from base 0 → conflict, A's note stays.
    let r = a
        .push(vec![a.mutation(Op::SetNote {
            sheet: key(&w, 3, sid),
            note: "ghi chú của máy A".into(),
            base_rev: 0,
        })])
        .await;
    let Outcome::Applied { seq: note_rev, .. } = r.results[0].outcome else {
        panic!("{r:?}")
    };
    let r = b
        .push(vec![b.mutation(Op::SetNote {
            sheet: key(&w, 3, sid),
            note: "ghi chú của máy B".into(),
            base_rev: 0,
        })])
        .await;
    let Outcome::Conflict {
        criteria, applied, ..
    } = &r.results[0].outcome
    else {
        panic!("{r:?}")
    };
    assert_eq!(criteria, &vec!["note".to_string()]);
    assert!(applied.is_empty());
    let s = sheets_in(&a.pull_all().await)
        .into_iter()
        .find(|s| s.id == sid)
        .unwrap();
    assert_eq!(
        (s.note.as_str(), s.note_rev),
        ("ghi chú của máy A", note_rev)
    );
    assert!(
        matches!(&s.conflicts[0].field, ConflictField::Note { theirs } if theirs == "ghi chú của máy B")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_round_locks_sheet_writes_and_wrong_protocol_is_400() {
    let w = world().await;
    let m = w.member(0);
    let rubric = rubric_of(&w, 0);
    let (st, body, _) = m.push_status(vec![]).await;
    assert_eq!(st, 200, "{body}");
    let r = m
        .http
        .post(format!("{}{}", w.url(), paths::PUSH))
        .bearer_auth(&m.token)
        .json(&serde_json::json!({"protocol": 99, "mutations": []}))
        .send()
        .await
        .unwrap();
    let (st, body, _) = decode::<serde_json::Value>(r).await;
    assert_eq!(st, 400);
    assert!(
        body["message"].as_str().unwrap().contains("protocol 1"),
        "{body}"
    );

    let r = w
        .admin
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{}/status", paths::ADMIN_ROUNDS, w.demo.round_id),
        )
        .await
        .json(&serde_json::json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = m
        .push(vec![m.mutation(set_answers(
            &w,
            0,
            Uuid::now_v7(),
            vec![one_answer(&rubric, 0, 0, 0)],
        ))])
        .await;
    assert!(
        matches!(
            r.results[0].outcome,
            Outcome::Rejected {
                code: RejectCode::Locked,
                ..
            }
        ),
        "{r:?}"
    );
    let round = m
        .pull_all()
        .await
        .into_iter()
        .find_map(|c| match c.entity {
            Entity::Round(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(round.status, ocop_shared::wire::RoundStatus::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_names_who_which_device_and_what_and_export_has_the_round() {
    let w = world().await;
    let m = w.member(3);
    let rubric = rubric_of(&w, 5);
    let sid = Uuid::now_v7();
    let r = m
        .push(vec![m.mutation(set_answers(
            &w,
            5,
            sid,
            full_answers(&rubric, 0),
        ))])
        .await;
    let Outcome::Applied { seq, .. } = r.results[0].outcome else {
        panic!("{r:?}")
    };
    let (st, audit, _) = w
        .admin
        .get::<serde_json::Value>(&format!("{}?limit=50", paths::ADMIN_AUDIT))
        .await;
    assert_eq!(st, 200);
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "push:set_answers")
        .expect("the push is audited");
    assert_eq!(entry["user_id"], m.user_id.to_string());
    assert_eq!(entry["device_id"], m.device_id.to_string());
    assert_eq!(entry["seq"], seq);
    assert!(entry["at"].as_str().unwrap().starts_with("20"));
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "enrol")
    );

    let (st, export, _) = w
        .admin
        .get::<serde_json::Value>(&format!(
            "{}?round_id={}",
            paths::ADMIN_EXPORT,
            w.demo.round_id
        ))
        .await;
    assert_eq!(st, 200);
    assert_eq!(export["round"]["id"], w.demo.round_id.to_string());
    assert_eq!(export["products"].as_array().unwrap().len(), 12);
    assert_eq!(export["roster"].as_array().unwrap().len(), 9);
    let sheets = export["sheets"].as_array().unwrap();
    assert_eq!(sheets.len(), 1);
    assert_eq!(
        sheets[0]["answers"]["criteria"].as_object().unwrap().len(),
        rubric.criterion_count()
    );
    let (st, _, users) = w
        .admin
        .get::<Vec<ocop_shared::wire::UserInfo>>(paths::ADMIN_USERS)
        .await;
    assert_eq!(st, 200);
    assert_eq!(users.unwrap().len(), 10, "admin + council of 9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_devices_offline_edit_after_submit_is_a_flagged_conflict_never_dropped() {
    let w = world().await;
    let a = w.member(0);
    let user = &w.demo.members()[0];
    let (_, _, t) = login(w.url(), &user.username, &user.password).await;
    let b = Device::new(w.url(), t.unwrap());
    let rubric = rubric_of(&w, 4);
    let c0 = rubric.criteria().next().unwrap().2.clone();
    let option = |i: usize| c0.options().nth(i).unwrap().id.clone();
    let sid = Uuid::now_v7();
    let r = a
        .push(vec![
            a.mutation(set_answers(&w, 4, sid, full_answers(&rubric, 0))),
            a.mutation(Op::Submit { sheet_id: sid }),
        ])
        .await;
    assert!(
        r.results
            .iter()
            .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
        "{r:?}"
    );
    // B edited offline before it knew of the submission (its own sheet id, base 0).
    let quarantined = w.server.state.store.table_counts().unwrap()["quarantine"];
    let r = b
        .push(vec![
            b.mutation(set_answers(
                &w,
                4,
                Uuid::now_v7(),
                vec![one_answer(&rubric, 0, 1, 0)],
            )),
            b.mutation(Op::SetNote {
                sheet: key(&w, 4, sid),
                note: "ghi chú từ máy B".into(),
                base_rev: 0,
            }),
        ])
        .await;
    let mut conflict_ids = Vec::new();
    for x in &r.results {
        let Outcome::Conflict {
            sheet_id,
            conflicts,
            applied,
            ..
        } = &x.outcome
        else {
            panic!("an edit to a submitted sheet must be kept as a conflict: {r:?}")
        };
        assert_eq!(*sheet_id, sid, "mapped onto the canonical sheet");
        assert!(applied.is_empty(), "nothing of a submitted sheet changes");
        conflict_ids.extend(conflicts.iter().copied());
    }
    assert_eq!(conflict_ids.len(), 2);
    assert_eq!(
        w.server.state.store.table_counts().unwrap()["quarantine"],
        quarantined,
        "kept on the sheet, not quarantined"
    );
    // Owner and chair both see the unchanged sheet and the two unresolved conflicts.
    for viewer in [a, w.chair()] {
        let s = sheets_in(&viewer.pull_all().await)
            .into_iter()
            .find(|s| s.id == sid)
            .expect("sheet visible to owner and chair");
        assert_eq!(s.status, SheetStatus::Submitted);
        assert_eq!(s.answers[&c0.code].answer.option, Some(option(0)));
        assert_eq!(s.note, "");
        let open: Vec<_> = s.conflicts.iter().filter(|c| !c.resolved).collect();
        assert_eq!(open.len(), 2, "{s:?}");
        assert!(open.iter().any(|c| matches!(&c.field,
            ConflictField::Answer { criterion, theirs } if *criterion == c0.code && theirs.option == Some(option(1)))));
        assert!(open.iter().any(|c| matches!(&c.field,
            ConflictField::Note { theirs } if theirs == "ghi chú từ máy B")));
    }
    // Resolving waits for a reopen: the owner signed off on the current values.
    let current = sheets_in(&a.pull_all().await)
        .into_iter()
        .find(|s| s.id == sid)
        .unwrap();
    let rev = current.answers[&c0.code].rev;
    let resolve = |d: &Device| {
        d.mutation(Op::ResolveConflict {
            sheet_id: sid,
            conflict_id: conflict_ids[0],
            answer: Some(one_answer(&rubric, 0, 1, 0).answer),
            note: None,
            base_rev: rev,
        })
    };
    let r = a.push(vec![resolve(a)]).await;
    assert!(
        matches!(
            r.results[0].outcome,
            Outcome::Rejected {
                code: RejectCode::Invalid,
                ..
            }
        ),
        "{r:?}"
    );
    let c = w.chair();
    let r = c
        .push(vec![c.mutation(Op::Reopen {
            sheet_id: sid,
            reason: "máy thứ hai có sửa đổi".into(),
        })])
        .await;
    assert!(
        matches!(r.results[0].outcome, Outcome::Applied { .. }),
        "{r:?}"
    );
    let r = a.push(vec![resolve(a)]).await;
    assert!(
        matches!(r.results[0].outcome, Outcome::Applied { .. }),
        "{r:?}"
    );
    let s = sheets_in(&a.pull_all().await)
        .into_iter()
        .find(|s| s.id == sid)
        .unwrap();
    assert_eq!(s.answers[&c0.code].answer.option, Some(option(1)));
    assert!(
        s.conflicts
            .iter()
            .any(|c| c.id == conflict_ids[0] && c.resolved)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_round_refuses_submit_and_reopen_as_locked() {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let m = w.member(1);
    let (draft, submitted) = (Uuid::now_v7(), Uuid::now_v7());
    m.push(vec![
        m.mutation(set_answers(&w, 0, draft, full_answers(&rubric, 0))),
        m.mutation(set_answers(
            &w,
            1,
            submitted,
            full_answers(&rubric_of(&w, 1), 0),
        )),
        m.mutation(Op::Submit {
            sheet_id: submitted,
        }),
    ])
    .await;
    let r = w
        .admin
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{}/status", paths::ADMIN_ROUNDS, w.demo.round_id),
        )
        .await
        .json(&serde_json::json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = m
        .push(vec![m.mutation(Op::Submit { sheet_id: draft })])
        .await;
    let c = w.chair();
    let r2 = c
        .push(vec![c.mutation(Op::Reopen {
            sheet_id: submitted,
            reason: "xem lại".into(),
        })])
        .await;
    for o in [&r.results[0].outcome, &r2.results[0].outcome] {
        assert!(
            matches!(o, Outcome::Rejected { code: RejectCode::Locked, reason } if reason.contains("closed")),
            "{o:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_is_matched_case_insensitively_at_login() {
    let w = world().await;
    let u = w.demo.user("lan.tt").unwrap();
    let (st, body, t) = login(w.url(), " Lan.TT ", &u.password).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(t.unwrap().user.username, "lan.tt");
    let found = w.server.state.store.user_by_username("LAN.tt").unwrap();
    assert_eq!(found.map(|u| u.id), Some(u.id));
}

async fn login_with_device(
    url: &str,
    username: &str,
    password: &str,
    device_id: Uuid,
) -> (
    u16,
    serde_json::Value,
    Option<ocop_shared::wire::TokenResponse>,
) {
    let r = reqwest::Client::new()
        .post(format!("{url}{}", paths::LOGIN))
        .json(&ocop_shared::wire::LoginRequest {
            username: username.into(),
            password: password.into(),
            device_name: "điện thoại".into(),
            device_id: Some(device_id),
        })
        .send()
        .await
        .unwrap();
    decode(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_naming_own_device_reattaches_it_so_resends_stay_duplicates() {
    let w = world().await;
    let u = &w.demo.members()[2];
    let m = w.member(2);
    let rubric = rubric_of(&w, 0);
    let batch = vec![m.mutation(set_answers(
        &w,
        0,
        Uuid::now_v7(),
        vec![one_answer(&rubric, 0, 0, 0)],
    ))];
    let first = m.push(batch.clone()).await;
    let devices_before = w.server.state.store.table_counts().unwrap()["devices"];
    let (st, body, t) = login_with_device(w.url(), &u.username, &u.password, m.device_id).await;
    assert_eq!(st, 200, "{body}");
    let t = t.unwrap();
    assert_eq!(t.device_id, m.device_id, "same device id");
    assert_ne!(t.token, m.token, "a new token");
    assert_eq!(
        w.server.state.store.table_counts().unwrap()["devices"],
        devices_before,
        "no new device"
    );
    // The old token is replaced; the new one resends the batch as duplicates.
    assert_eq!(m.get::<serde_json::Value>(paths::ME).await.0, 401);
    let again = Device::new(w.url(), t);
    let r = again.push(batch).await;
    assert_eq!(
        r.results[0].outcome,
        Outcome::Duplicate {
            original: Box::new(first.results[0].outcome.clone())
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_naming_another_users_device_gets_a_new_device() {
    let w = world().await;
    let u = &w.demo.members()[2];
    let theirs = w.member(3).device_id;
    let (st, body, t) = login_with_device(w.url(), &u.username, &u.password, theirs).await;
    assert_eq!(st, 200, "{body}");
    let t = t.unwrap();
    assert_ne!(t.device_id, theirs);
    assert_eq!(t.user.id, u.id);
    // The other member's device is untouched.
    assert_eq!(w.member(3).get::<serde_json::Value>(paths::ME).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_naming_a_revoked_device_is_refused_with_401_that_says_revoked() {
    let w = world().await;
    let u = &w.demo.members()[2];
    let m = w.member(2);
    let (st, _, _) = w
        .admin
        .post::<_, serde_json::Value>(
            &format!("{}/{}/revoke", paths::ADMIN_DEVICES, m.device_id),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(st, 204);
    let (st, body, _) = login_with_device(w.url(), &u.username, &u.password, m.device_id).await;
    assert_eq!(st, 401, "{body}");
    assert_eq!(body["code"], "unauthorized");
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    assert_eq!(
        m.get::<serde_json::Value>(paths::ME).await.0,
        401,
        "still revoked"
    );
    // Without a device id the member can still sign this phone in as a new device.
    let (st, body, t) = login(w.url(), &u.username, &u.password).await;
    assert_eq!(st, 200, "{body}");
    assert_ne!(t.unwrap().device_id, m.device_id);
}

/// A device asks for the next page as soon as a page's headers arrive; the
/// headers must say what the body says, page after page, to the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_headers_repeat_the_body_cursor_on_every_page() {
    let w = world().await;
    let (mut cursor, mut pages) = (0u64, 0);
    loop {
        let r = w
            .chair()
            .raw(
                reqwest::Method::GET,
                &format!("{}?cursor={cursor}&limit=3", paths::PULL),
            )
            .await
            .send()
            .await
            .unwrap();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .unwrap_or_else(|| panic!("pull answer without {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let (next, more) = (
            header(ocop_shared::wire::pull_headers::NEXT_CURSOR),
            header(ocop_shared::wire::pull_headers::HAS_MORE),
        );
        let (status, body, page) = decode::<ocop_shared::wire::PullResponse>(r).await;
        assert_eq!(status, 200, "{body}");
        let page = page.unwrap();
        assert_eq!(next, page.next_cursor.to_string(), "page {pages}");
        assert_eq!(more, page.has_more.to_string(), "page {pages}");
        pages += 1;
        if !page.has_more {
            break;
        }
        assert!(page.next_cursor > cursor);
        cursor = page.next_cursor;
    }
    assert!(
        pages > 2,
        "the demo round spans several pages of 3 ({pages})"
    );
}

/// A new sheet of every demo product for `m`, each answer with a long
/// note: a push large enough to be read on two threads (see
/// `Store::push_body`).
fn large_push(w: &World, m: &Device) -> Vec<ocop_shared::wire::Mutation> {
    (0..w.demo.products.len())
        .map(|p| {
            let mut answers = full_answers(&rubric_of(w, p), p);
            for a in &mut answers {
                a.answer.note = "ghi chú của thành viên hội đồng ".repeat(10);
            }
            m.mutation(set_answers(w, p, Uuid::now_v7(), answers))
        })
        .collect()
}

/// A large push refused for a malformed mutation while other members push
/// at the same moment (their pushes may be committed in one group with it):
/// it is refused and leaves nothing, every other push is applied whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_large_push_leaves_the_pushes_beside_it_applied() {
    use ocop_shared::wire::{PROTOCOL_VERSION, PushRequest};
    let w = world().await;
    let bad = w.member(0);
    let mut body = serde_json::to_value(PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations: large_push(&w, bad),
    })
    .unwrap();
    let last = body["mutations"].as_array().unwrap().len() - 1;
    body["mutations"][last]["op"] = serde_json::json!({"no_such_op": {}});
    let text = serde_json::to_vec(&body).unwrap();
    let others: Vec<Device> = (1..4).map(|i| w.member(i).clone()).collect();
    for p in 0..5 {
        let pushes: Vec<_> = others
            .iter()
            .map(|m| {
                let mutation = m.mutation(set_answers(
                    &w,
                    p,
                    Uuid::now_v7(),
                    full_answers(&rubric_of(&w, p), p),
                ));
                let m = m.clone();
                tokio::spawn(async move { m.push(vec![mutation]).await })
            })
            .collect();
        let refused = post_push_text(bad, text.clone()).await;
        assert_eq!(refused.status(), 400);
        for r in pushes {
            let r = r.await.unwrap();
            assert!(
                matches!(r.results[0].outcome, Outcome::Applied { .. }),
                "{r:?}"
            );
        }
    }
    // Nothing of the refused push: its member has no sheet at all.
    let mine = bad.pull_all().await;
    assert!(
        !mine
            .iter()
            .any(|c| matches!(&c.entity, Entity::Sheet(s) if s.owner_id == bad.user_id)),
        "a refused push left a sheet"
    );
}

/// `text` sent as `m`'s push body, as it is (not re-encoded by the client).
async fn post_push_text(m: &Device, text: Vec<u8>) -> reqwest::Response {
    m.raw(reqwest::Method::POST, paths::PUSH)
        .await
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap()
}

/// A push large enough to be prepared while it is written (see
/// `Store::push_body`): one malformed mutation in it, wherever it stands,
/// refuses it whole, naming where, the way a small push is refused, and
/// nothing of it is stored, even of the sheets the writer took before it;
/// the same push without the fault then applies every sheet.
#[rstest]
#[case::first(0)]
#[case::after_the_first_chunks(9)]
#[case::last(usize::MAX)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_push_with_one_malformed_mutation_is_refused_whole_naming_where(#[case] at: usize) {
    use ocop_shared::wire::{PROTOCOL_VERSION, PushRequest};
    let w = world().await;
    let m = w.member(0);
    let mutations = large_push(&w, m);
    let at = at.min(mutations.len() - 1);
    let mut body = serde_json::to_value(PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations: mutations.clone(),
    })
    .unwrap();
    body["mutations"][at]["op"]["set_answers"]["sheet"] = serde_json::json!(5);
    let text = serde_json::to_vec(&body).unwrap();
    assert!(text.len() > 64 * 1024, "{} bytes", text.len());
    let before = w.server.state.store.table_counts().unwrap();
    let r = post_push_text(m, text).await;
    let (status, raw, e) = decode::<ErrorBody>(r).await;
    assert_eq!(status, 400, "{raw}");
    let e = e.unwrap();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(
        e.message.starts_with(&format!(
            "malformed json at mutations[{at}].op.set_answers.sheet"
        )),
        "{}",
        e.message
    );
    assert_eq!(w.server.state.store.table_counts().unwrap(), before);

    let resp = m.push(mutations).await;
    assert_eq!(resp.results.len(), w.demo.products.len());
    assert!(
        resp.results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Applied { .. })),
        "{resp:?}"
    );
}

/// Every push answer says where its time went on the server, in the order
/// it was spent, so a slow push can be explained from the outside (the sync
/// benchmark reports these): a large push shows its steps, and the total
/// covers the steps inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_answer_says_where_its_time_went_in_server_timing() {
    use ocop_shared::wire::{PROTOCOL_VERSION, PushRequest};
    let w = world().await;
    let m = w.member(0);
    let mutations = large_push(&w, m);
    let text = serde_json::to_vec(&PushRequest {
        protocol: PROTOCOL_VERSION,
        mutations,
    })
    .unwrap();
    let r = post_push_text(m, text).await;
    assert_eq!(r.status(), 200);
    let header = r
        .headers()
        .get("server-timing")
        .expect("a push answer has a Server-Timing header")
        .to_str()
        .unwrap()
        .to_owned();
    let t = ocop_sync_server::http::parse_server_timing(&header);
    let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["body", "queue", "read", "prepare", "write", "total"],
        "{header}"
    );
    let dur = |name: &str| t.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(t.iter().all(|(_, d)| *d >= 0.0), "{header}");
    assert!(dur("read") > 0.0, "{header}");
    assert!(dur("write") > 0.0, "{header}");
    // Each figure is rounded to a microsecond.
    let inside = dur("body") + dur("queue") + dur("read") + dur("prepare") + dur("write");
    assert!(dur("total") + 0.006 >= inside, "{header}");
}

/// A push the server cannot take whole is refused before anything of it is
/// prepared or stored, with the error a decoded push got: a malformed
/// mutation is named first, then the protocol, then the size.
#[rstest]
#[case::another_protocol(99, 1, false, 400, "protocol 99 is not supported")]
#[case::too_many_mutations(1, 501, false, 413, "501 mutations in one push")]
#[case::malformed_before_protocol(99, 1, true, 400, "malformed json at mutations[0].op")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_the_server_cannot_take_is_refused_whole_with_the_first_reason(
    #[case] protocol: u32,
    #[case] mutations: usize,
    #[case] malformed: bool,
    #[case] status: u16,
    #[case] message: &str,
) {
    let w = world().await;
    let m = w.member(0);
    let mut muts: Vec<serde_json::Value> = (0..mutations)
        .map(|_| {
            serde_json::to_value(m.mutation(Op::Submit {
                sheet_id: Uuid::now_v7(),
            }))
            .unwrap()
        })
        .collect();
    if malformed {
        muts[0]["op"] = serde_json::json!({"no_such_op": {}});
    }
    let before = w.server.state.store.table_counts().unwrap();
    let r = m
        .raw(reqwest::Method::POST, paths::PUSH)
        .await
        .json(&serde_json::json!({"protocol": protocol, "mutations": muts}))
        .send()
        .await
        .unwrap();
    let (got, raw, e) = decode::<ErrorBody>(r).await;
    assert_eq!(got, status, "{raw}");
    let e = e.unwrap();
    assert!(e.message.starts_with(message), "{}", e.message);
    assert_eq!(w.server.state.store.table_counts().unwrap(), before);
}

/// A new sheet's answers are dropped while its push waits for the writer
/// (its prepared snapshot is enough for a first write); every other outcome
/// still sees all of them: a refused sheet is quarantined whole, and a
/// whole-sheet write to a sheet that already exists applies every answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_sheet_that_is_not_new_is_written_or_refused_with_all_its_answers() {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let n = rubric.criteria().count();

    // The secretary does not score: refused, and quarantined with every answer.
    let s = w.secretary();
    let r = s
        .push(vec![s.mutation(set_answers(
            &w,
            0,
            Uuid::now_v7(),
            full_answers(&rubric, 0),
        ))])
        .await;
    assert!(
        matches!(r.results[0].outcome, Outcome::Rejected { .. }),
        "{r:?}"
    );
    let (st, q, _) = w
        .admin
        .get::<serde_json::Value>(paths::ADMIN_QUARANTINE)
        .await;
    assert_eq!(st, 200, "{q}");
    let entry = q
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["device_id"] == s.device_id.to_string())
        .expect("the refusal is quarantined");
    assert_eq!(
        entry["mutation"]["op"]["set_answers"]["answers"]
            .as_array()
            .map(Vec::len),
        Some(n),
        "{entry}"
    );

    // A member writes a sheet whole, then whole again with other options
    // (no base: the same device wrote every answer, so each applies).
    let m = w.member(0);
    let sheet_id = Uuid::now_v7();
    for pick in [0, 1] {
        let r = m
            .push(vec![m.mutation(set_answers(
                &w,
                0,
                sheet_id,
                full_answers(&rubric, pick),
            ))])
            .await;
        assert!(
            matches!(r.results[0].outcome, Outcome::Applied { .. }),
            "{r:?}"
        );
    }
    let sheet = sheets_in(&m.pull_all().await)
        .into_iter()
        .find(|x| x.id == sheet_id)
        .expect("the sheet");
    let second = full_answers(&rubric, 1);
    assert_eq!(sheet.answers.len(), n);
    for e in &second {
        assert_eq!(
            sheet.answers[&e.criterion].answer, e.answer,
            "{}",
            e.criterion
        );
    }
}

/// A device restored against an older backup asks from a cursor the server
/// never reached: it is told so (409 `cursor_ahead`, with where the server
/// is), not handed an empty page that would skip everything up to its cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_ahead_of_the_server_is_refused_with_cursor_ahead_not_echoed() {
    let w = world().await;
    let m = w.member(0);
    let caught_up = m.pull_from(0, 10_000).await;
    assert!(!caught_up.has_more);
    let (status, body, _) = m
        .get::<serde_json::Value>(&format!("{}?cursor=187000000", paths::PULL))
        .await;
    assert_eq!(status, 409, "{body}");
    let e: ErrorBody = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(e.code, ErrorCode::CursorAhead);
    assert!(
        e.message.contains("pull again from cursor 0"),
        "{}",
        e.message
    );
    let server_seq = e.details.as_ref().unwrap()["server_seq"].as_u64().unwrap();
    assert!(server_seq >= caught_up.next_cursor, "{body}");
    // The server's own position is not ahead of it: an empty, final page.
    let at = m.pull_from(server_seq, 100).await;
    assert!(at.changes.is_empty() && !at.has_more);
    assert_eq!(at.next_cursor, server_seq);
    // One past it is.
    let (status, _, _) = m
        .get::<serde_json::Value>(&format!("{}?cursor={}", paths::PULL, server_seq + 1))
        .await;
    assert_eq!(status, 409);
}

/// Behind a trusted reverse proxy (here 127.0.0.1, where the test connects
/// from) the login limit is per forwarded client: one person's wrong
/// passwords do not lock the account for a colleague behind the same proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_login_limit_is_per_forwarded_client() {
    use ocop_sync_server::client_ip::{TrustedProxies, parse_proxy};
    let dir = tempfile::tempdir().unwrap();
    let mut state = ocop_sync_server::open(
        dir.path(),
        ocop_sync_server::Options {
            admin_password: Some(ocop_sync_server::testing::ADMIN_PASSWORD.into()),
            public_url: None,
        },
    )
    .await
    .unwrap();
    state.trusted_proxies = TrustedProxies::new(vec![parse_proxy("127.0.0.1").unwrap()]);
    let info = ocop_sync_server::demo::seed(&*state.store).unwrap();
    let srv = ocop_sync_server::testing::spawn_state(state).await.unwrap();
    let u = &info.members()[5];
    let http = reqwest::Client::new();
    let login_from = |client: &'static str, password: String| {
        let req = http
            .post(format!("{}{}", srv.url, paths::LOGIN))
            .header("x-forwarded-for", client)
            .json(&serde_json::json!({
                "username": u.username, "password": password, "device_name": "phone"
            }));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..6 {
        login_from("203.0.113.7", "wrong".into()).await;
    }
    assert_eq!(login_from("203.0.113.7", u.password.clone()).await, 429);
    assert_eq!(
        login_from("198.51.100.20", u.password.clone()).await,
        200,
        "a colleague behind the same proxy signs in"
    );
}
