//! Who may write what through push, as an outside client tried it (issue 21):
//! a sheet's pinned rubric, a member removed from the roster, and the bound
//! on enrolment codes.

mod common;

use common::*;
use ocop_shared::council::Participation;
use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::{
    Answer, MAX_ENROLMENT_TTL_MINUTES, Op, Outcome, PushResponse, RejectCode, paths,
};
use rstest::rstest;
use uuid::Uuid;

/// The one outcome of a one-mutation push.
fn only(r: &PushResponse) -> &Outcome {
    assert_eq!(r.results.len(), 1, "{r:?}");
    &r.results[0].outcome
}

fn assert_rejected(r: &PushResponse, code: RejectCode, says: &[&str]) {
    let Outcome::Rejected {
        code: got, reason, ..
    } = only(r)
    else {
        panic!("expected a rejection, got {r:?}");
    };
    assert_eq!(*got, code, "{reason}");
    for s in says {
        assert!(reason.contains(s), "{reason:?} does not say {s:?}");
    }
}

/// Which rubric a write to an existing sheet names.
#[derive(Debug, Clone, Copy)]
enum Naming {
    /// The rubric of another product (another id, published).
    AnotherId,
    /// The pinned rubric's id at a version the sheet is not pinned to.
    AnotherVersion,
}

/// Which sheet id the write names.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// The sheet's own id, from the device that made it.
    SheetId,
    /// A new id from the member's second device for the same slot (an alias).
    SecondDeviceAlias,
}

#[derive(Debug, Clone, Copy)]
enum Write {
    Answers,
    Note,
}

#[rstest]
#[case::answers_naming_another_rubric_id(Write::Answers, Naming::AnotherId, Via::SheetId)]
#[case::answers_naming_another_version(Write::Answers, Naming::AnotherVersion, Via::SheetId)]
#[case::note_naming_another_rubric_id(Write::Note, Naming::AnotherId, Via::SheetId)]
#[case::note_naming_another_version(Write::Note, Naming::AnotherVersion, Via::SheetId)]
#[case::alias_answers_naming_another_rubric_id(
    Write::Answers,
    Naming::AnotherId,
    Via::SecondDeviceAlias
)]
#[case::alias_note_naming_another_version(
    Write::Note,
    Naming::AnotherVersion,
    Via::SecondDeviceAlias
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_naming_another_rubric_than_the_sheets_pinned_one_is_rejected(
    #[case] write: Write,
    #[case] naming: Naming,
    #[case] via: Via,
) {
    let w = world().await;
    let d = w.member(0);
    let rubric = rubric_of(&w, 0);
    let pinned = w.demo.products[0].rubric.clone();
    let sid = Uuid::now_v7();
    let first = d
        .push(vec![d.mutation(set_answers(
            &w,
            0,
            sid,
            vec![one_answer(&rubric, 0, 0, 0)],
        ))])
        .await;
    assert!(matches!(only(&first), Outcome::Applied { .. }), "{first:?}");

    let named = match naming {
        Naming::AnotherId => w
            .demo
            .products
            .iter()
            .map(|p| p.rubric.clone())
            .find(|r| r.id != pinned.id)
            .expect("the demo has products on two rubrics"),
        Naming::AnotherVersion => RubricRef {
            id: pinned.id.clone(),
            version: pinned.version + 1,
        },
    };
    let (writer, id) = match via {
        Via::SheetId => (d.clone(), sid),
        Via::SecondDeviceAlias => {
            let u = &w.demo.members()[0];
            let (st, body, t) = login(w.url(), &u.username, &u.password).await;
            assert_eq!(st, 200, "{body}");
            (Device::new(w.url(), t.unwrap()), Uuid::now_v7())
        }
    };
    let mut sheet = key(&w, 0, id);
    sheet.rubric = named.clone();
    // An edit the pinned rubric accepts: only the rubric named is wrong.
    let op = match write {
        Write::Answers => Op::SetAnswers {
            sheet,
            answers: vec![one_answer(&rubric, 0, 1, 0)],
        },
        Write::Note => Op::SetNote {
            sheet,
            note: "ghi chú".into(),
            base_rev: 0,
        },
    };
    let r = writer.push(vec![writer.mutation(op)]).await;
    let pin = format!("pinned to rubric {} version {}", pinned.id, pinned.version);
    assert_rejected(&r, RejectCode::Invalid, &[&pin, &named.id]);

    // Nothing of it was stored: the sheet is as its first write left it.
    let sheets: Vec<_> = w
        .admin
        .pull_all()
        .await
        .into_iter()
        .filter_map(|c| match c.entity {
            ocop_shared::wire::Entity::Sheet(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(sheets.len(), 1, "no second sheet for the slot");
    assert_eq!(sheets[0].rubric, pinned);
    assert_eq!(sheets[0].revision, first.server_seq);
    assert_eq!(sheets[0].note, "");
}

/// What a member removed from the roster sends afterwards.
#[derive(Debug, Clone, Copy)]
enum AfterRemoval {
    Answers,
    Note,
    Submit,
    Abstain,
    ResolveOwnConflict,
    /// The chair, removed, reopens a member's submitted sheet.
    ChairReopens,
    /// The chair, removed, releases a product.
    ChairReleases,
}

#[rstest]
#[case::answers(AfterRemoval::Answers)]
#[case::note(AfterRemoval::Note)]
#[case::submit(AfterRemoval::Submit)]
#[case::abstain(AfterRemoval::Abstain)]
#[case::resolve_own_conflict(AfterRemoval::ResolveOwnConflict)]
#[case::chair_reopens(AfterRemoval::ChairReopens)]
#[case::chair_releases(AfterRemoval::ChairReleases)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_of_a_member_removed_from_the_roster_is_refused_the_same_way(
    #[case] what: AfterRemoval,
) {
    let w = world().await;
    let rubric = rubric_of(&w, 0);
    let member = w.member(0);
    let sid = Uuid::now_v7();
    let r = member
        .push(vec![member.mutation(set_answers(
            &w,
            0,
            sid,
            full_answers(&rubric, 0),
        ))])
        .await;
    let Outcome::Applied { seq: written, .. } = *only(&r) else {
        panic!("expected applied: {r:?}");
    };
    // A conflict on the member's own sheet, from their second device.
    let u = &w.demo.members()[0];
    let (st, body, t) = login(w.url(), &u.username, &u.password).await;
    assert_eq!(st, 200, "{body}");
    let second = Device::new(w.url(), t.unwrap());
    let r = second
        .push(vec![second.mutation(set_answers(
            &w,
            0,
            sid,
            vec![one_answer(&rubric, 0, 1, 0)],
        ))])
        .await;
    let Outcome::Conflict { conflicts, .. } = only(&r).clone() else {
        panic!("expected a conflict: {r:?}");
    };
    if matches!(what, AfterRemoval::ChairReopens) {
        let r = member
            .push(vec![member.mutation(Op::Submit { sheet_id: sid })])
            .await;
        assert!(matches!(only(&r), Outcome::Applied { .. }), "{r:?}");
    }

    let removed = match what {
        AfterRemoval::ChairReopens | AfterRemoval::ChairReleases => w.demo.chair().id,
        _ => u.id,
    };
    let members: Vec<_> = w
        .demo
        .users
        .iter()
        .filter(|x| x.id != removed)
        .map(|x| serde_json::json!({"user_id": x.id, "role": x.role}))
        .collect();
    let r = w
        .admin
        .raw(
            reqwest::Method::PUT,
            &format!("{}/{}/roster", paths::ADMIN_ROUNDS, w.demo.round_id),
        )
        .await
        .json(&serde_json::json!({ "members": members }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let roster: Vec<ocop_shared::wire::RosterEntry> = r.json().await.unwrap();
    assert!(
        roster.iter().any(|e| e.user_id == removed && !e.active),
        "left out means inactive: {roster:?}"
    );

    let p = &w.demo.products[0];
    let (device, op) = match what {
        AfterRemoval::Answers => (
            member,
            set_answers(&w, 0, sid, vec![one_answer(&rubric, 1, 1, 0)]),
        ),
        AfterRemoval::Note => (
            member,
            Op::SetNote {
                sheet: key(&w, 0, sid),
                note: "sau khi rời hội đồng".into(),
                base_rev: 0,
            },
        ),
        AfterRemoval::Submit => (member, Op::Submit { sheet_id: sid }),
        AfterRemoval::Abstain => (
            member,
            Op::SetParticipation {
                round_id: p.round_id,
                product_id: p.id,
                user_id: u.id,
                participation: Participation::Abstained,
                reason: String::new(),
            },
        ),
        AfterRemoval::ResolveOwnConflict => (
            member,
            Op::ResolveConflict {
                sheet_id: sid,
                conflict_id: conflicts[0],
                answer: Some(Answer {
                    option: one_answer(&rubric, 0, 1, 0).answer.option,
                    ..Answer::default()
                }),
                note: None,
                base_rev: written,
            },
        ),
        AfterRemoval::ChairReopens => (
            w.chair(),
            Op::Reopen {
                sheet_id: sid,
                reason: "xem lại".into(),
            },
        ),
        AfterRemoval::ChairReleases => (
            w.chair(),
            Op::Release {
                round_id: p.round_id,
                product_id: p.id,
            },
        ),
    };
    let before = w.admin.pull_all().await.len();
    let r = device.push(vec![device.mutation(op)]).await;
    let round = w.demo.round_id.to_string();
    assert_rejected(
        &r,
        RejectCode::Forbidden,
        &["you are not on the council of round", &round, "removed"],
    );
    assert_eq!(
        w.admin.pull_all().await.len(),
        before,
        "nothing was written"
    );
}

#[rstest]
#[case::over_the_maximum(Some(MAX_ENROLMENT_TTL_MINUTES + 1), 400)]
#[case::u32_max(Some(u32::MAX), 400)]
#[case::the_maximum(Some(MAX_ENROLMENT_TTL_MINUTES), 201)]
#[case::the_default(None, 201)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_code_lifetime_over_thirty_days_is_refused_with_400(
    #[case] ttl_minutes: Option<u32>,
    #[case] status: u16,
) {
    assert_eq!(MAX_ENROLMENT_TTL_MINUTES, 30 * 24 * 60);
    let w = world().await;
    let user = w.demo.members()[0].id;
    let (st, body, _) = w
        .admin
        .post::<_, serde_json::Value>(
            paths::ADMIN_ENROLMENT_CODES,
            &ocop_shared::wire::EnrolmentCodeRequest {
                user_id: user,
                ttl_minutes,
            },
        )
        .await;
    assert_eq!(st, status, "{body}");
    if status == 400 {
        assert_eq!(body["code"], "bad_request", "{body}");
        let m = body["message"].as_str().unwrap();
        assert!(m.contains("43200") && m.contains("30 days"), "{m}");
    } else {
        let at = body["expires_at"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));
    }
}
