//! The push-body splitter takes a body exactly when serde reads it as a
//! protocol number and a list of JSON values (counting a mutation that is
//! not UTF-8 JSON, which the server refuses when it prepares it, as not
//! taken), and finds the same protocol, count and places.

use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::{Answer, AnswerEdit, Mutation, Op, PushRequest, SheetKey};
use proptest::prelude::*;
use uuid::Uuid;

// The reference and the splitter's reading, shared with the fuzz target
// (`shared/fuzz/fuzz_targets/push_decode.rs`).
#[path = "common/split_oracle.rs"]
mod split_oracle;
use split_oracle::{serde_reads, splits};

fn agree(body: &[u8]) -> Result<(), TestCaseError> {
    match (serde_reads(body), splits(body)) {
        (Some((got, places)), Some((got2, places2, true))) => {
            prop_assert_eq!(got, got2);
            prop_assert_eq!(places, places2);
        }
        (None, None) | (None, Some((_, _, false))) => {}
        (serde, split) => prop_assert!(
            false,
            "serde {:?}, splitter {:?}, body {:?}",
            serde,
            split,
            String::from_utf8_lossy(body)
        ),
    }
    Ok(())
}

/// A push body with answers, notes and escapes in its strings, and
/// whitespace between its tokens when pretty: what a device or a hand may send.
fn rich_body(n: usize, pretty: bool) -> Vec<u8> {
    let mutations: Vec<Mutation> = (0..n as u64)
        .map(|id| Mutation {
            id,
            client_time: None,
            op: Op::SetAnswers {
                sheet: SheetKey {
                    sheet_id: Uuid::from_u128(u128::from(id) + 1),
                    round_id: Uuid::from_u128(7),
                    product_id: Uuid::from_u128(u128::from(id) << 64),
                    rubric: RubricRef {
                        id: "food".into(),
                        version: 1,
                    },
                },
                answers: vec![AnswerEdit {
                    criterion: "1.2".into(),
                    answer: Answer {
                        option: Some("b".into()),
                        note: format!("ghi chú \"{id}\" \\ [{{}}] ,:\n\t\u{1} ✓"),
                        ..Default::default()
                    },
                    base_rev: id,
                }],
            },
        })
        .collect();
    let req = PushRequest {
        protocol: 1,
        mutations,
    };
    if pretty {
        serde_json::to_vec_pretty(&req).unwrap()
    } else {
        serde_json::to_vec(&req).unwrap()
    }
}

/// A body, and one change to it: a byte replaced, removed or inserted (among
/// those JSON's structure turns on, and half of a UTF-8 sequence), or the
/// body cut short.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    (
        1usize..6,
        any::<bool>(),
        0usize..4,
        any::<prop::sample::Index>(),
        prop::sample::select(b"{}[]\",: \\0a-\xc3\x80e.".to_vec()),
    )
        .prop_map(|(n, pretty, how, at, byte)| {
            let mut b = rich_body(n, pretty);
            let i = at.index(b.len());
            match how {
                0 => b[i] = byte,
                1 => {
                    b.remove(i);
                }
                2 => b.insert(i, byte),
                _ => b.truncate(i),
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    /// On bodies whole, with one byte changed anywhere, or random strings of
    /// JSON's structural characters (200,000 cases once, no difference).
    #[test]
    fn the_splitter_takes_a_body_exactly_when_serde_reads_it(
        body in prop_oneof![
            (1usize..6, any::<bool>()).prop_map(|(n, p)| rich_body(n, p)),
            mangled(),
            prop::collection::vec(
                prop::sample::select(b"{}[]\",: \\0a\"protocol\"mutations1".to_vec()),
                0..40,
            ),
        ]
    ) {
        agree(&body)?;
    }
}

/// Half of a UTF-8 sequence inside a mutation (a case proptest found): the
/// splitter takes the body, and the mutation it gives is the one to refuse.
#[test]
fn a_mutation_that_is_not_utf8_is_found_and_left_to_refuse() {
    let mut body = rich_body(2, false);
    let at = body.windows(8).position(|w| w == b"round_id").unwrap();
    body[at] = 0xc3;
    let (_, _, valid) = splits(&body).expect("the push's own structure is whole");
    assert!(!valid);
    assert!(serde_reads(&body).is_none());
    agree(&body).unwrap();
}
