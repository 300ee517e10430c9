//! A sheet's first write with no base takes a shortcut in the writer (its
//! answers are built in one pass, see `set_answers`). It must give what the
//! edit-by-edit rules give: every edit applied, the last of a criterion named
//! twice winning; and a first write that carries a base (an edit made on top
//! of a version the server never saw) still goes edit by edit, so that edit
//! is flagged as a conflict and the others apply.

use ocop_shared::wire::{
    Answer, AnswerEdit, Entity, Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest, SheetKey,
    SheetState,
};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Store, demo};
use rstest::rstest;
use uuid::Uuid;

mod common;

/// (criterion index, option index, base_rev) of each edit, in order.
type Edits = &'static [(usize, usize, u64)];

#[rstest]
#[case::every_criterion_once(&[(0, 0, 0), (1, 1, 0), (2, 0, 0)], &[(0, 0), (1, 1), (2, 0)], &[])]
#[case::a_criterion_named_twice_keeps_the_last(&[(0, 0, 0), (1, 0, 0), (0, 1, 0)], &[(0, 1), (1, 0)], &[])]
#[case::an_edit_with_a_base_is_flagged_and_the_rest_apply(&[(0, 0, 0), (1, 1, 7)], &[(0, 0)], &[1])]
fn a_first_write_applies_as_edit_by_edit_rules_say(
    #[case] edits: Edits,
    #[case] expect_answers: &[(usize, usize)],
    #[case] expect_conflicts: &[usize],
) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.sqlite3")).unwrap();
    store.install_bundled_rubrics().unwrap();
    let info = demo::seed(&store).unwrap();
    let member = common::principals(&store, &info.users).swap_remove(1);
    let product = &info.products[0];
    let rubric = ocop_shared::bundled::scoreable()
        .into_iter()
        .find(|r| r.id == product.rubric.id)
        .unwrap();
    let criteria: Vec<(String, Vec<String>)> = rubric
        .criteria()
        .map(|(_, _, c)| (c.code.clone(), c.options().map(|o| o.id.clone()).collect()))
        .collect();
    let sheet_id = Uuid::now_v7();
    let op = Op::SetAnswers {
        sheet: SheetKey {
            sheet_id,
            round_id: product.round_id,
            product_id: product.id,
            rubric: product.rubric.clone(),
        },
        answers: edits
            .iter()
            .map(|&(k, o, base_rev)| AnswerEdit {
                criterion: criteria[k].0.clone(),
                answer: Answer {
                    option: Some(criteria[k].1[o].clone()),
                    note: format!("ghi chú {k}-{o}"),
                    ..Default::default()
                },
                base_rev,
            })
            .collect(),
    };
    let resp = store
        .push(
            &member,
            &PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations: vec![Mutation {
                    id: 1,
                    client_time: None,
                    op,
                }],
            },
        )
        .unwrap();
    let outcome = &resp.results[0].outcome;
    let sheet: SheetState = store
        .pull(&member, 0, 10_000)
        .unwrap()
        .changes
        .into_iter()
        .find_map(|c| match c.entity {
            Entity::Sheet(s) if s.id == sheet_id => Some(*s),
            _ => None,
        })
        .expect("the sheet is pulled back");
    let got: Vec<(String, Option<String>, String)> = sheet
        .answers
        .iter()
        .map(|(k, a)| (k.clone(), a.answer.option.clone(), a.answer.note.clone()))
        .collect();
    let mut want: Vec<(String, Option<String>, String)> = expect_answers
        .iter()
        .map(|&(k, o)| {
            (
                criteria[k].0.clone(),
                Some(criteria[k].1[o].clone()),
                format!("ghi chú {k}-{o}"),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let seq = match outcome {
        Outcome::Applied { seq, .. } => {
            assert!(expect_conflicts.is_empty(), "{outcome:?}");
            *seq
        }
        Outcome::Conflict {
            seq,
            criteria: flagged,
            applied,
            ..
        } => {
            let want: Vec<String> = expect_conflicts
                .iter()
                .map(|&i| criteria[edits[i].0].0.clone())
                .collect();
            assert_eq!(flagged, &want);
            let mut applied = applied.clone();
            applied.sort();
            let mut want_applied: Vec<String> = expect_answers
                .iter()
                .map(|&(k, _)| criteria[k].0.clone())
                .collect();
            want_applied.sort();
            assert_eq!(applied, want_applied);
            *seq
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(sheet.conflicts.len(), expect_conflicts.len());
    assert!(
        sheet
            .answers
            .values()
            .all(|a| a.rev == seq && a.device_id == member.device_id)
    );
    assert_eq!(sheet.revision, seq);
}
