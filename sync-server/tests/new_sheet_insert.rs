//! A sheet pushed whole with no base (its snapshot prepared before the
//! writer lock) is inserted without being looked for first; the insert is
//! the look-up (see `write_prepared_sheet`). These are the cases where the
//! sheet is not new after all: each must give what looking first gave, and
//! leave no second sheet behind.

use ocop_shared::wire::{
    Answer, AnswerEdit, EnrolRequest, EnrolmentCodeRequest, Mutation, Op, Outcome,
    PROTOCOL_VERSION, PushRequest, RejectCode, SheetKey,
};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store, demo};
use rstest::rstest;
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: SqliteStore,
    /// Member 0's first and second device, member 1's device.
    a1: Principal,
    a2: Principal,
    b: Principal,
    products: Vec<ocop_shared::wire::ProductInfo>,
    next: std::cell::Cell<u64>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        store.install_bundled_rubrics().unwrap();
        let info = demo::seed(&store).unwrap();
        let members = info.members();
        let enrol = |code: String| {
            let t = store
                .enrol(&EnrolRequest {
                    code,
                    device_name: "điện thoại".into(),
                })
                .unwrap();
            store.authenticate(&t.token).unwrap().unwrap()
        };
        let a1 = enrol(members[0].enrolment_code.clone());
        let second = store
            .issue_enrolment_code(
                &Principal::system(),
                &EnrolmentCodeRequest {
                    user_id: a1.user.id,
                    ttl_minutes: None,
                },
                "http://x",
            )
            .unwrap()
            .code;
        let a2 = enrol(second);
        let b = enrol(members[1].enrolment_code.clone());
        World {
            _dir: dir,
            path,
            products: info.products.clone(),
            store,
            a1,
            a2,
            b,
            next: 1.into(),
        }
    }

    /// Sheet `id` of product `p`, written whole by `who`: the first option
    /// and a note on criteria `from..to`, no base (a prepared new sheet).
    fn push(&self, who: &Principal, id: Uuid, p: usize, from: usize, to: usize) -> Outcome {
        let product = &self.products[p];
        let rubric = ocop_shared::bundled::scoreable()
            .into_iter()
            .find(|r| r.id == product.rubric.id)
            .unwrap();
        let answers = rubric
            .criteria()
            .map(|(_, _, c)| c)
            .skip(from)
            .take(to - from)
            .map(|c| AnswerEdit {
                criterion: c.code.clone(),
                answer: Answer {
                    option: c.options().next().map(|o| o.id.clone()),
                    note: "đủ hồ sơ".into(),
                    ..Default::default()
                },
                base_rev: 0,
            })
            .collect();
        let id_m = self.next.get();
        self.next.set(id_m + 1);
        let r = self
            .store
            .push(
                who,
                &PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations: vec![Mutation {
                        id: id_m,
                        client_time: None,
                        op: Op::SetAnswers {
                            sheet: SheetKey {
                                sheet_id: id,
                                round_id: product.round_id,
                                product_id: product.id,
                                rubric: product.rubric.clone(),
                            },
                            answers,
                        },
                    }],
                },
            )
            .unwrap();
        r.results.into_iter().next().unwrap().outcome
    }

    fn count(&self, sql: &str, id: Uuid) -> i64 {
        let db = rusqlite::Connection::open(&self.path).unwrap();
        db.query_row(sql, [id.to_string()], |r| r.get(0)).unwrap()
    }

    /// Snapshot rows with this id.
    fn sheets(&self, id: Uuid) -> i64 {
        self.count(
            "SELECT COUNT(*) FROM entities WHERE kind = 'sheet' AND id = ?1",
            id,
        )
    }

    /// Answers in the snapshot of sheet `id` as pull serves it.
    fn answered(&self, id: Uuid) -> usize {
        self.store
            .pull(&Principal::system(), 0, 100_000)
            .unwrap()
            .changes
            .into_iter()
            .find_map(|c| match c.entity {
                ocop_shared::wire::Entity::Sheet(s) if s.id == id => Some(s.answers.len()),
                _ => None,
            })
            .unwrap()
    }
}

/// What happened before the push under test, on sheet X (product 0).
#[derive(Debug, Clone, Copy)]
enum Before {
    Nothing,
    /// Member 0's first device wrote criteria 0..4 of X.
    OwnSheet,
}

/// The push under test.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Member 0's first device writes criteria 4..9 of X.
    SameDeviceMore,
    /// Member 0's second device starts its own sheet Y for the same slot.
    SecondDeviceSameSlot,
    /// Member 1 writes X (member 0's sheet id).
    OtherMemberSameId,
    /// Member 0's second device writes Y (already an alias of X) for product 1.
    AliasIdOtherProduct,
}

#[rstest]
#[case::a_new_sheet_is_created_once(Before::Nothing, Then::SameDeviceMore)]
#[case::an_existing_sheet_gets_the_new_answers(Before::OwnSheet, Then::SameDeviceMore)]
#[case::a_second_devices_sheet_for_the_slot_becomes_an_alias(
    Before::OwnSheet,
    Then::SecondDeviceSameSlot
)]
#[case::another_members_sheet_id_is_refused(Before::OwnSheet, Then::OtherMemberSameId)]
#[case::an_alias_id_never_becomes_a_sheet(Before::OwnSheet, Then::AliasIdOtherProduct)]
fn a_sheet_pushed_as_new_that_is_not_new_is_found(#[case] before: Before, #[case] then: Then) {
    let w = World::new();
    let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
    if let Before::OwnSheet = before {
        assert!(matches!(w.push(&w.a1, x, 0, 0, 4), Outcome::Applied { .. }));
    }
    let had = match before {
        Before::Nothing => 0,
        Before::OwnSheet => 4,
    };
    match then {
        Then::SameDeviceMore => {
            let got = w.push(&w.a1, x, 0, 4, 9);
            assert!(
                matches!(got, Outcome::Applied { sheet_id: Some(s), .. } if s == x),
                "{got:?}"
            );
            assert_eq!(w.sheets(x), 1);
            assert_eq!(w.answered(x), had + 5);
            // A sheet written once keeps no revision row (its snapshot is its
            // one revision); its second write makes the first write's row.
            assert_eq!(
                w.count(
                    "SELECT COUNT(*) FROM sheet_revisions WHERE sheet_id = ?1",
                    x
                ),
                if had == 0 { 0 } else { 2 }
            );
            let history: Vec<usize> = w
                .store
                .sheet_revisions(&Principal::system(), x)
                .unwrap()
                .iter()
                .map(|s| s.answers.len())
                .collect();
            assert_eq!(history, if had == 0 { vec![5] } else { vec![4, 9] });
        }
        Then::SecondDeviceSameSlot => {
            let got = w.push(&w.a2, y, 0, 4, 9);
            assert!(
                matches!(got, Outcome::Applied { sheet_id: Some(s), .. } if s == x),
                "{got:?}"
            );
            assert_eq!(w.sheets(y), 0, "no second sheet for the slot");
            assert_eq!(w.answered(x), 9);
            assert_eq!(
                w.count("SELECT COUNT(*) FROM sheet_aliases WHERE alias_id = ?1", y),
                1
            );
        }
        Then::OtherMemberSameId => {
            let got = w.push(&w.b, x, 0, 4, 9);
            assert!(
                matches!(
                    got,
                    Outcome::Rejected {
                        code: RejectCode::Forbidden,
                        ..
                    }
                ),
                "{got:?}"
            );
            assert_eq!(w.sheets(x), 1);
            assert_eq!(w.answered(x), 4, "member 0's sheet is untouched");
        }
        Then::AliasIdOtherProduct => {
            assert!(matches!(w.push(&w.a2, y, 0, 4, 9), Outcome::Applied { .. }));
            let got = w.push(&w.a2, y, 1, 0, 3);
            assert!(
                matches!(
                    got,
                    Outcome::Rejected {
                        code: RejectCode::Invalid,
                        ..
                    }
                ),
                "{got:?}"
            );
            assert_eq!(w.sheets(y), 0, "the alias id made no sheet");
            assert_eq!(w.answered(x), 9);
        }
    }
}
