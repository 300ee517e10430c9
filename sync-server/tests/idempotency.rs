//! A mutation id a device used before is found whatever the order it comes
//! back in: the push skips the look-up only for ids above every id the
//! device has stored and not met earlier in the same push.

mod common;

use common::StoreWorld;
use ocop_shared::wire::{Outcome, RejectCode};
use rstest::rstest;

/// What a push answered for one mutation, in short.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Applied,
    Duplicate,
    IdReused,
}

fn got(o: &Outcome) -> Got {
    match o {
        Outcome::Applied { .. } => Got::Applied,
        Outcome::Duplicate { .. } => Got::Duplicate,
        Outcome::Rejected {
            code: RejectCode::IdReused,
            ..
        } => Got::IdReused,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Pushes, each a list of (mutation id, which option of criterion 1.2); the
/// outcomes expected, push by push.
#[rstest]
#[case::same_id_twice_in_one_push(
    vec![vec![(5, 0), (5, 0)]],
    vec![vec![Got::Applied, Got::Duplicate]]
)]
#[case::same_id_twice_in_one_push_with_another_change(
    vec![vec![(5, 0), (5, 1)]],
    vec![vec![Got::Applied, Got::IdReused]]
)]
#[case::resend_of_the_newest_id(
    vec![vec![(1, 0), (2, 1)], vec![(2, 1)]],
    vec![vec![Got::Applied, Got::Applied], vec![Got::Duplicate]]
)]
#[case::resend_of_an_older_id_after_newer_ones(
    vec![vec![(1, 0), (2, 1), (3, 0)], vec![(1, 0), (4, 1)]],
    vec![vec![Got::Applied; 3], vec![Got::Duplicate, Got::Applied]]
)]
#[case::an_unused_id_below_the_newest_is_new(
    vec![vec![(1, 0), (9, 1)], vec![(4, 0)]],
    vec![vec![Got::Applied, Got::Applied], vec![Got::Applied]]
)]
#[case::an_older_id_with_another_change(
    vec![vec![(1, 0), (2, 1)], vec![(1, 1)]],
    vec![vec![Got::Applied, Got::Applied], vec![Got::IdReused]]
)]
#[case::ids_past_the_signed_range(
    vec![vec![(u64::MAX, 0), (7, 1)], vec![(u64::MAX, 0)]],
    vec![vec![Got::Applied, Got::Applied], vec![Got::Duplicate]]
)]
fn a_used_mutation_id_is_found_in_any_order(
    #[case] pushes: Vec<Vec<(u64, usize)>>,
    #[case] expected: Vec<Vec<Got>>,
) {
    let w = StoreWorld::new();
    // The sheet exists first (id 0 is below every id used here).
    let whole: Vec<(String, usize)> = w.codes().into_iter().map(|c| (c, 0)).collect();
    w.push(vec![w.set(0, whole)]);
    let mut distinct: std::collections::BTreeSet<u64> =
        pushes.iter().flatten().map(|&(id, _)| id).collect();
    distinct.insert(0);
    let outcomes: Vec<Vec<Got>> = pushes
        .into_iter()
        .map(|p| {
            let ms = p
                .into_iter()
                .map(|(id, option)| w.set(id, vec![("1.2".into(), option)]))
                .collect();
            w.push_any(ms)
                .results
                .iter()
                .map(|r| got(&r.outcome))
                .collect()
        })
        .collect();
    assert_eq!(outcomes, expected);
    // Every id used is stored once: none lost, none stored for a resend.
    let db = rusqlite::Connection::open(&w.path).unwrap();
    let mut stored: Vec<i64> = db
        .prepare("SELECT mutation_id FROM applied_mutations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    stored.sort_unstable();
    let mut want: Vec<i64> = distinct.into_iter().map(|id| id as i64).collect();
    want.sort_unstable();
    assert_eq!(stored, want);
}
