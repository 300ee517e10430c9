//! Sheet bodies are stored zstd-compressed from schema 4; rows written before
//! as TEXT must read back exactly as they did, and stay writable.

use ocop_shared::wire::{
    Answer, AnswerEdit, EnrolRequest, Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest,
    SheetKey,
};
use ocop_sync_server::demo;
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store};
use uuid::Uuid;

fn push_one(store: &dyn Store, p: &Principal, id: u64, op: Op) -> Outcome {
    let resp = store
        .push(
            p,
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
    resp.results[0].outcome.clone()
}

/// A note long enough that even a one-answer revision is over the size
/// below which bodies are stored as TEXT anyway (1 KB), so every row here is
/// compressed first.
fn long_note(criterion: &str) -> String {
    format!("ghi chú {criterion}; ").repeat(50)
}

/// Rewrites every compressed sheet body as the JSON TEXT a schema-3 server wrote.
fn decompress_all(path: &std::path::Path) -> usize {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut n = 0;
    for table in ["entities", "sheet_revisions"] {
        let rows: Vec<(i64, Vec<u8>)> = db
            .prepare(&format!(
                "SELECT rowid, body FROM {table} WHERE typeof(body) = 'blob' AND length(body) > 0"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (rowid, blob) in rows {
            let text =
                String::from_utf8(ocop_sync_server::sqlite::unpack_body(&blob).unwrap()).unwrap();
            db.execute(
                &format!("UPDATE {table} SET body = ?1 WHERE rowid = ?2"),
                rusqlite::params![text, rowid],
            )
            .unwrap();
            n += 1;
        }
    }
    n
}

#[test]
fn sheets_stored_as_text_before_schema_4_read_back_the_same_and_stay_writable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bodies.sqlite3");
    let (info, chair_token, member_token, sheet_id) = {
        let store = SqliteStore::open(&path).unwrap();
        store.install_bundled_rubrics().unwrap();
        let info = demo::seed(&store).unwrap();
        let token = |i: usize| {
            store
                .enrol(&EnrolRequest {
                    code: info.users[i].enrolment_code.clone(),
                    device_name: "điện thoại".into(),
                })
                .unwrap()
                .token
        };
        let (chair_token, member_token) = (token(0), token(1));
        let member = store.authenticate(&member_token).unwrap().unwrap();
        let product = &info.products[0];
        let sheet_id = Uuid::now_v7();
        let key = SheetKey {
            sheet_id,
            round_id: info.round_id,
            product_id: product.id,
            rubric: product.rubric.clone(),
        };
        let edit = |criterion: &str, option: &str, base_rev| AnswerEdit {
            criterion: criterion.into(),
            answer: Answer {
                option: Some(option.into()),
                note: long_note(criterion),
                ..Answer::default()
            },
            base_rev,
        };
        let out = push_one(
            &store,
            &member,
            1,
            Op::SetAnswers {
                sheet: key.clone(),
                answers: vec![edit("1.1", "a", 0), edit("1.2", "a", 0)],
            },
        );
        let Outcome::Applied { seq, .. } = out else {
            panic!("{out:?}")
        };
        let out = push_one(
            &store,
            &member,
            2,
            Op::SetAnswers {
                sheet: key,
                answers: vec![edit("1.2", "b", seq)],
            },
        );
        assert!(matches!(out, Outcome::Applied { .. }), "{out:?}");
        (info, chair_token, member_token, sheet_id)
    };
    let read = |store: &SqliteStore| {
        let chair = store.authenticate(&chair_token).unwrap().unwrap();
        (
            store.pull_json(&chair, 0, 10_000).unwrap().json,
            store.sheet_revisions(&chair, sheet_id).unwrap(),
        )
    };
    let compressed = read(&SqliteStore::open(&path).unwrap());
    assert_eq!(decompress_all(&path), 3, "one snapshot and two revisions");
    let store = SqliteStore::open(&path).unwrap();
    let text = read(&store);
    assert_eq!(text.0, compressed.0, "pull is byte for byte the same");
    assert_eq!(text.1, compressed.1, "revisions are the same");
    assert_eq!(text.1.len(), 2);

    // A TEXT-stored sheet takes a further edit, stored compressed again.
    let member = store.authenticate(&member_token).unwrap().unwrap();
    let current = &text.1[1];
    let out = push_one(
        &store,
        &member,
        3,
        Op::SetAnswers {
            sheet: SheetKey {
                sheet_id,
                round_id: info.round_id,
                product_id: info.products[0].id,
                rubric: current.rubric.clone(),
            },
            answers: vec![AnswerEdit {
                criterion: "1.1".into(),
                answer: Answer {
                    option: Some("b".into()),
                    ..Answer::default()
                },
                base_rev: current.answers["1.1"].rev,
            }],
        },
    );
    assert!(matches!(out, Outcome::Applied { .. }), "{out:?}");
    let revs = read(&store).1;
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[2].answers["1.1"].answer.option.as_deref(), Some("b"));
    assert_eq!(revs[2].answers["1.2"].answer.option.as_deref(), Some("b"));
    assert_eq!(revs[2].answers["1.2"].answer.note, long_note("1.2"));
}
