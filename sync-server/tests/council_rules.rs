//! Council rules through the `Store` trait: the vice-chair presides when the
//! chair is recused; consensus councils finalize on the agreed sheet.

use ocop_shared::council::{CouncilConfig, CouncilMode, Participation};
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::{
    AccountRole, Answer, AnswerEdit, CouncilRole, CreateProductRequest, CreateRoundRequest,
    CreateUserRequest, EnrolRequest, EnrolmentCodeRequest, Entity, Level, Mutation, Op, Outcome,
    PROTOCOL_VERSION, ProductInfo, PushRequest, RejectCode, RosterLine, RoundInfo,
    SetRosterRequest, SheetKey,
};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store};
use uuid::Uuid;

struct Council {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    round: RoundInfo,
    product: ProductInfo,
    rubric: Rubric,
    /// chair, vice-chair, member, member
    people: Vec<Principal>,
    next: std::cell::Cell<u64>,
}

fn council(mode: CouncilMode) -> Council {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.sqlite3")).unwrap();
    store.install_bundled_rubrics().unwrap();
    let sys = Principal::system();
    let rubric = ocop_shared::bundled::scoreable().remove(1);
    let round = store
        .create_round(
            &sys,
            &CreateRoundRequest {
                name: "cấp xã".into(),
                level: Level::Commune,
                province: "Hà Tĩnh".into(),
                starts_on: "2026-03-02".into(),
                ends_on: "2026-03-03".into(),
                council: CouncilConfig {
                    mode,
                    ..CouncilConfig::default()
                },
            },
        )
        .unwrap();
    let roles = [
        CouncilRole::Chair,
        CouncilRole::ViceChair,
        CouncilRole::Member,
        CouncilRole::Member,
    ];
    let mut people = Vec::new();
    let mut lines = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        let u = store
            .create_user(
                &sys,
                &CreateUserRequest {
                    username: format!("p{i}"),
                    full_name: format!("Người {i}"),
                    role: AccountRole::Assessor,
                    password: None,
                },
            )
            .unwrap();
        lines.push(RosterLine {
            user_id: u.id,
            role: *role,
        });
        let code = store
            .issue_enrolment_code(
                &sys,
                &EnrolmentCodeRequest {
                    user_id: u.id,
                    ttl_minutes: None,
                },
                "http://x",
            )
            .unwrap()
            .code;
        let t = store
            .enrol(&EnrolRequest {
                code,
                device_name: "d".into(),
            })
            .unwrap();
        people.push(store.authenticate(&t.token).unwrap().unwrap());
    }
    store
        .set_roster(&sys, round.id, &SetRosterRequest { members: lines })
        .unwrap();
    let product = store
        .create_product(
            &sys,
            &CreateProductRequest {
                round_id: round.id,
                code: "SP-01".into(),
                name: "Cam Khe Mây".into(),
                producer: "THT cam Khe Mây".into(),
                commune: "xã Hương Minh".into(),
                district: "huyện Vũ Quang".into(),
                province: "Hà Tĩnh".into(),
                group: rubric.group.clone(),
                subgroup: rubric.subgroup.clone(),
                rubric: rubric.reference(),
            },
        )
        .unwrap();
    Council {
        _dir: dir,
        store,
        round,
        product,
        rubric,
        people,
        next: 1.into(),
    }
}

impl Council {
    fn push(&self, who: usize, op: Op) -> Outcome {
        let id = self.next.get();
        self.next.set(id + 1);
        let r = self
            .store
            .push(
                &self.people[who],
                &PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations: vec![Mutation {
                        id,
                        client_time: None,
                        op,
                    }],
                },
            )
            .unwrap();
        r.results[0].outcome.clone()
    }

    fn score_and_submit(&self, who: usize, pick: usize) -> Uuid {
        let sid = Uuid::now_v7();
        let answers = self
            .rubric
            .criteria()
            .map(|(_, _, c)| {
                let opts: Vec<_> = c.options().collect();
                AnswerEdit {
                    criterion: c.code.clone(),
                    answer: Answer {
                        option: Some(opts[pick.min(opts.len() - 1)].id.clone()),
                        ..Answer::default()
                    },
                    base_rev: 0,
                }
            })
            .collect();
        let key = SheetKey {
            sheet_id: sid,
            round_id: self.round.id,
            product_id: self.product.id,
            rubric: self.rubric.reference(),
        };
        assert!(matches!(
            self.push(
                who,
                Op::SetAnswers {
                    sheet: key,
                    answers
                }
            ),
            Outcome::Applied { .. }
        ));
        assert!(matches!(
            self.push(who, Op::Submit { sheet_id: sid }),
            Outcome::Applied { .. }
        ));
        sid
    }

    fn finalize(&self, who: usize, consensus: Option<Uuid>) -> Outcome {
        self.push(who, self.finalize_op(consensus))
    }

    fn finalize_op(&self, consensus: Option<Uuid>) -> Op {
        Op::Finalize {
            round_id: self.round.id,
            product_id: self.product.id,
            consensus_sheet: consensus,
            expected_mean: None,
            note: String::new(),
        }
    }

    /// Sheet `sheet`'s first criterion set to its last option, no base.
    fn edit(&self, sheet: Uuid) -> Op {
        let c0 = self.rubric.criteria().next().unwrap().2;
        Op::SetAnswers {
            sheet: SheetKey {
                sheet_id: sheet,
                round_id: self.round.id,
                product_id: self.product.id,
                rubric: self.rubric.reference(),
            },
            answers: vec![AnswerEdit {
                criterion: c0.code.clone(),
                answer: Answer {
                    option: c0.options().last().map(|o| o.id.clone()),
                    ..Answer::default()
                },
                base_rev: 0,
            }],
        }
    }

    /// `ops` in one push of `who`'s, numbered from `first`.
    fn push_ops(
        &self,
        store: &SqliteStore,
        who: usize,
        first: u64,
        ops: Vec<Op>,
    ) -> Result<ocop_shared::wire::PushResponse, ocop_sync_server::Error> {
        self.push_mutations(store, who, numbered(first, ops))
    }

    fn push_mutations(
        &self,
        store: &SqliteStore,
        who: usize,
        mutations: Vec<Mutation>,
    ) -> Result<ocop_shared::wire::PushResponse, ocop_sync_server::Error> {
        store.push(
            &self.people[who],
            &PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations,
            },
        )
    }

    /// The chair (0) has scored and submitted a sheet (given back), and so
    /// has everyone else: the product can be finalized.
    fn everyone_submitted(&self) -> Uuid {
        let mine = self.score_and_submit(0, 0);
        for who in [1, 2, 3] {
            self.score_and_submit(who, who % 2);
        }
        mine
    }
}

#[test]
fn vice_chair_presides_only_when_the_chair_is_recused() {
    let c = council(CouncilMode::Individual);
    let (chair, vice) = (0, 1);
    // Before any recusal the vice-chair cannot recuse or finalize.
    let recuse_chair = Op::SetParticipation {
        round_id: c.round.id,
        product_id: c.product.id,
        user_id: c.people[chair].user.id,
        participation: Participation::Recused,
        reason: "chủ thể là người thân".into(),
    };
    assert!(matches!(
        c.push(vice, recuse_chair.clone()),
        Outcome::Rejected {
            code: RejectCode::Forbidden,
            ..
        }
    ));
    assert!(matches!(
        c.push(chair, recuse_chair),
        Outcome::Applied { .. }
    ));
    for who in [vice, 2, 3] {
        c.score_and_submit(who, who % 2);
    }
    let o = c.finalize(chair, None);
    assert!(
        matches!(
            o,
            Outcome::Rejected {
                code: RejectCode::Forbidden,
                ..
            }
        ),
        "a recused chair does not preside: {o:?}"
    );
    let o = c.finalize(vice, None);
    assert!(matches!(o, Outcome::Applied { .. }), "{o:?}");
    let d = c
        .store
        .pull(&c.people[vice], 0, 10_000)
        .unwrap()
        .changes
        .into_iter()
        .find_map(|x| match x.entity {
            Entity::Decision(d) => Some(d),
            _ => None,
        })
        .unwrap();
    let result = d.result.unwrap();
    assert_eq!(result.members.len(), 3);
    assert!(result.quorum.met);
    assert_eq!(d.decided_by, c.people[vice].user.id);
}

#[test]
fn consensus_council_finalizes_on_the_agreed_sheet() {
    let c = council(CouncilMode::Consensus);
    let agreed = c.score_and_submit(0, 2);
    let o = c.finalize(0, None);
    assert!(
        matches!(
            o,
            Outcome::Rejected {
                code: RejectCode::Invalid,
                ..
            }
        ),
        "the agreed sheet must be named: {o:?}"
    );
    let o = c.finalize(0, Some(Uuid::now_v7()));
    assert!(
        matches!(
            o,
            Outcome::Rejected {
                code: RejectCode::NotFound,
                ..
            }
        ),
        "{o:?}"
    );
    let o = c.finalize(0, Some(agreed));
    assert!(matches!(o, Outcome::Applied { .. }), "{o:?}");
    let d = c
        .store
        .pull(&c.people[0], 0, 10_000)
        .unwrap()
        .changes
        .into_iter()
        .find_map(|x| match x.entity {
            Entity::Decision(d) => Some(d),
            _ => None,
        })
        .unwrap();
    let result = d.result.unwrap();
    assert_eq!(result.mode, CouncilMode::Consensus);
    assert!(result.mean_total.is_some());
    // Finalizing twice is refused as locked.
    assert!(matches!(
        c.finalize(0, Some(agreed)),
        Outcome::Rejected {
            code: RejectCode::Locked,
            ..
        }
    ));
}

/// What a push knows of a product's decision is forgotten when the push
/// itself finalizes the product: a sheet write after the finalize, in the
/// same push, is refused as locked (one before it was not).
#[test]
fn a_finalize_locks_the_sheets_for_the_rest_of_its_own_push() {
    let c = council(CouncilMode::Individual);
    let mine = c.everyone_submitted();
    let ops = vec![c.edit(mine), c.finalize_op(None), c.edit(mine)];
    let first = c.next.get();
    c.next.set(first + ops.len() as u64);
    let r = c.push_ops(&c.store, 0, first, ops).unwrap();
    let got: Vec<&Outcome> = r.results.iter().map(|x| &x.outcome).collect();
    // Before: a submitted sheet's edit waits as a flagged conflict.
    assert!(matches!(got[0], Outcome::Conflict { .. }), "{got:?}");
    assert!(matches!(got[1], Outcome::Applied { .. }), "{got:?}");
    assert!(
        matches!(
            got[2],
            Outcome::Rejected {
                code: RejectCode::Locked,
                ..
            }
        ),
        "{got:?}"
    );
}

/// A push that fails is undone whole, a finalize in it too; what the writer
/// read of the decision inside it (the finalized product) is forgotten with
/// it, so the next write to the product is not refused as locked.
#[test]
fn a_decision_read_in_an_undone_push_is_forgotten() {
    let c = council(CouncilMode::Individual);
    let mine = c.everyone_submitted();
    // An edit the chair will resend; its stored answer is then damaged, so
    // the resend fails the push it is in with a store error.
    let resent = c.next.get();
    assert!(matches!(c.push(0, c.edit(mine)), Outcome::Conflict { .. }));
    let db = rusqlite::Connection::open(c._dir.path().join("c.sqlite3")).unwrap();
    db.execute(
        "UPDATE applied_mutations SET outcome = '{damaged' WHERE mutation_id = ?1",
        [resent as i64],
    )
    .unwrap();
    let first = c.next.get();
    c.next.set(first + 2);
    // The finalize, an edit that reads the product finalized, and the resend
    // that fails the push.
    let mut mutations = numbered(first, vec![c.finalize_op(None), c.edit(mine)]);
    mutations.extend(numbered(resent, vec![c.edit(mine)]));
    let failed = c.push_mutations(&c.store, 0, mutations);
    assert!(failed.is_err(), "{failed:?}");
    let after = c.push(0, c.edit(mine));
    assert!(matches!(after, Outcome::Conflict { .. }), "{after:?}");
}

/// A store opened on a database whose product is finalized knows it from
/// the start (it reads the decisions when it opens): the sheets stay locked.
#[test]
fn a_finalized_product_stays_locked_after_the_server_restarts() {
    let c = council(CouncilMode::Individual);
    let mine = c.everyone_submitted();
    assert!(matches!(c.finalize(0, None), Outcome::Applied { .. }));
    let reopened = SqliteStore::open(&c._dir.path().join("c.sqlite3")).unwrap();
    let r = c.push_ops(&reopened, 0, 1_000, vec![c.edit(mine)]).unwrap();
    assert!(
        matches!(
            r.results[0].outcome,
            Outcome::Rejected {
                code: RejectCode::Locked,
                ..
            }
        ),
        "{:?}",
        r.results[0]
    );
}

/// `ops` as mutations numbered from `first`.
fn numbered(first: u64, ops: Vec<Op>) -> Vec<Mutation> {
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| Mutation {
            id: first + i as u64,
            client_time: None,
            op,
        })
        .collect()
}
