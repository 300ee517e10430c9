//! One story driven through the `Store` trait directly (no HTTP): what a
//! second backend would have to pass too.

use ocop_shared::council::Participation;
use ocop_shared::wire::{
    Answer, AnswerEdit, EnrolRequest, Entity, Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest,
    RejectCode, SheetKey, SheetStatus,
};
use ocop_sync_server::demo;
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store};
use uuid::Uuid;

fn push(store: &dyn Store, p: &Principal, ops: Vec<(u64, Op)>) -> Vec<Outcome> {
    let resp = store
        .push(
            p,
            &PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations: ops
                    .into_iter()
                    .map(|(id, op)| Mutation {
                        id,
                        client_time: Some("2026-11-24T08:00:00+07:00".into()),
                        op,
                    })
                    .collect(),
            },
        )
        .unwrap();
    resp.results.into_iter().map(|r| r.outcome).collect()
}

#[test]
fn a_round_from_enrolment_to_release_through_the_store_trait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("story.sqlite3");
    let sqlite = SqliteStore::open(&path).unwrap();
    let store: &dyn Store = &sqlite;
    store.install_bundled_rubrics().unwrap();
    assert!(
        store.ensure_admin(None).unwrap().is_some(),
        "password generated once"
    );
    assert!(store.ensure_admin(None).unwrap().is_none());
    let info = demo::seed(store).unwrap();
    assert!(info.created);
    assert!(
        !demo::seed(store).unwrap().created,
        "seeding twice changes nothing"
    );
    assert_eq!(info.users.len(), 9);
    assert_eq!(info.products.len(), 12);

    // Every council member enrols a device with their code.
    let principals: Vec<Principal> = info
        .users
        .iter()
        .map(|u| {
            let t = store
                .enrol(&EnrolRequest {
                    code: u.enrolment_code.clone(),
                    device_name: "điện thoại".into(),
                })
                .unwrap();
            store.authenticate(&t.token).unwrap().expect("token works")
        })
        .collect();
    let chair = &principals[0];
    let secretary = &principals[8];
    let product = &info.products[6];
    let rubric = ocop_shared::bundled::scoreable()
        .into_iter()
        .find(|r| r.id == product.rubric.id)
        .unwrap();
    let key = |sheet_id| SheetKey {
        sheet_id,
        round_id: info.round_id,
        product_id: product.id,
        rubric: product.rubric.clone(),
    };
    let full = |pick: usize| -> Vec<AnswerEdit> {
        rubric
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
            .collect()
    };

    // The seventh member abstains; everyone else scores and submits.
    let abstainer = &principals[7];
    let out = push(
        store,
        abstainer,
        vec![(
            1,
            Op::SetParticipation {
                round_id: info.round_id,
                product_id: product.id,
                user_id: abstainer.user.id,
                participation: Participation::Abstained,
                reason: "người thân của chủ thể".into(),
            },
        )],
    );
    assert!(matches!(out[0], Outcome::Applied { .. }));
    let mut sheets = Vec::new();
    for (i, p) in principals[..7].iter().enumerate() {
        let sid = Uuid::now_v7();
        sheets.push(sid);
        let out = push(
            store,
            p,
            vec![
                (
                    1,
                    Op::SetAnswers {
                        sheet: key(sid),
                        answers: full(i % 2),
                    },
                ),
                (
                    2,
                    Op::SetNote {
                        sheet: key(sid),
                        note: "sản phẩm đặc trưng của địa phương".into(),
                        base_rev: 0,
                    },
                ),
                (3, Op::Submit { sheet_id: sid }),
            ],
        );
        assert!(
            out.iter().all(|o| matches!(o, Outcome::Applied { .. })),
            "{out:?}"
        );
        // Resending the same batch is a no-op.
        let again = push(
            store,
            p,
            vec![(
                1,
                Op::SetAnswers {
                    sheet: key(sid),
                    answers: full(i % 2),
                },
            )],
        );
        assert!(matches!(again[0], Outcome::Duplicate { .. }));
    }
    // The secretary sees progress, not answers.
    let pulled = store.pull(secretary, 0, 100_000).unwrap();
    let seen: Vec<_> = pulled
        .changes
        .iter()
        .filter_map(|c| match &c.entity {
            Entity::Sheet(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(seen.len(), 7);
    assert!(
        seen.iter().all(|s| s.answers.is_empty()
            && s.note.is_empty()
            && s.status == SheetStatus::Submitted)
    );
    // The secretary cannot score; the chair finalizes with quorum.
    let out = push(
        store,
        secretary,
        vec![(
            1,
            Op::SetAnswers {
                sheet: key(Uuid::now_v7()),
                answers: full(0),
            },
        )],
    );
    assert!(matches!(
        out[0],
        Outcome::Rejected {
            code: RejectCode::Forbidden,
            ..
        }
    ));
    let out = push(
        store,
        chair,
        vec![(
            10,
            Op::Finalize {
                round_id: info.round_id,
                product_id: product.id,
                consensus_sheet: None,
                expected_mean: None,
                note: String::new(),
            },
        )],
    );
    assert!(matches!(out[0], Outcome::Applied { .. }), "{out:?}");
    let decision = store
        .pull(chair, 0, 100_000)
        .unwrap()
        .changes
        .into_iter()
        .find_map(|c| match c.entity {
            Entity::Decision(d) => Some(d),
            _ => None,
        })
        .unwrap();
    let result = decision.result.unwrap();
    assert_eq!(result.members.len(), 7);
    assert!(
        result
            .excluded
            .iter()
            .any(|e| e.user_id == abstainer.user.id)
    );
    // Before release member 1 sees only their own sheet of the product; after, all.
    let member = &principals[1];
    let count = |p: &Principal| {
        store
            .pull(p, 0, 100_000)
            .unwrap()
            .changes
            .iter()
            .filter(|c| matches!(&c.entity, Entity::Sheet(s) if s.product_id == product.id))
            .count()
    };
    assert_eq!(count(member), 1);
    let cursor = store.pull(member, 0, 100_000).unwrap().next_cursor;
    let out = push(
        store,
        chair,
        vec![(
            11,
            Op::Release {
                round_id: info.round_id,
                product_id: product.id,
            },
        )],
    );
    assert!(matches!(out[0], Outcome::Applied { .. }));
    assert_eq!(count(member), 7);
    let newer = store.pull(member, cursor, 100_000).unwrap();
    assert_eq!(
        newer
            .changes
            .iter()
            .filter(|c| matches!(c.entity, Entity::Sheet(_)))
            .count(),
        7,
        "released sheets arrive past the member's cursor"
    );
    // Locked after finalize.
    let out = push(
        store,
        member,
        vec![(
            9,
            Op::SetNote {
                sheet: key(sheets[1]),
                note: "sửa".into(),
                base_rev: 0,
            },
        )],
    );
    assert!(
        matches!(
            out[0],
            Outcome::Rejected {
                code: RejectCode::Locked,
                ..
            }
        ),
        "{out:?}"
    );

    // The audit log has every write; the export has the round.
    let audit = store.audit(&Principal::system(), 10_000).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "push:finalize" && a.user_id == chair.user.id)
    );
    let export = store
        .export_round(&Principal::system(), info.round_id)
        .unwrap();
    assert_eq!(export["sheets"].as_array().unwrap().len(), 7);
    assert_eq!(export["decisions"].as_array().unwrap().len(), 1);
    assert!(
        store.export_round(member, info.round_id).is_err(),
        "export is admin only"
    );

    // Reopening the same file keeps everything; a newer schema is refused.
    let before = store.pull(chair, 0, 100_000).unwrap().changes;
    drop(sqlite);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.pull(chair, 0, 100_000).unwrap().changes, before);
    drop(reopened);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path)
        .err()
        .expect("newer schema refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn negative_schema_version_is_refused_not_read_as_a_huge_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", -1).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path)
        .err()
        .expect("negative schema version refused");
    assert!(err.to_string().contains("user_version is -1"), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "nothing was migrated into a foreign file");
}

/// The writer never checkpoints (the commit that did paid for everyone's
/// pages); a background thread, woken by commits, copies committed pages into
/// the database file while the store stays open. (Its fallback timer is 30 s,
/// longer than this test waits, so passing means the commits woke it.)
#[test]
fn committed_pages_reach_the_database_file_while_the_store_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.sqlite3");
    let sqlite = SqliteStore::open(&path).unwrap();
    let store: &dyn Store = &sqlite;
    let before = std::fs::metadata(&path).unwrap().len();
    // The bundled rubrics and the demo round: a few hundred KB of commits.
    store.install_bundled_rubrics().unwrap();
    demo::seed(store).unwrap();
    let wal = dir.path().join("ckpt.sqlite3-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 100_000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now >= before + 100_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database file still {now} bytes (was {before}) 10 s after the commits"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Still a working store afterwards.
    assert!(!demo::seed(store).unwrap().created);
}
