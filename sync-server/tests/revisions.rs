//! Revisions are stored as what each write changed; reading them back gives
//! every whole sheet as it was, and an edit of one criterion stores a small row.

use ocop_shared::wire::{
    Answer, AnswerEdit, EnrolRequest, Entity, Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest,
    SheetKey, SheetState,
};
use ocop_sync_server::demo;
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store};
use uuid::Uuid;

#[test]
fn every_revision_reads_back_whole_and_one_criterion_edits_store_small_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.sqlite3");
    let sqlite = SqliteStore::open(&path).unwrap();
    let store: &dyn Store = &sqlite;
    store.install_bundled_rubrics().unwrap();
    let info = demo::seed(store).unwrap();
    let m = &info.members()[0];
    let t = store
        .enrol(&EnrolRequest {
            code: m.enrolment_code.clone(),
            device_name: "d".into(),
        })
        .unwrap();
    let who: Principal = store.authenticate(&t.token).unwrap().unwrap();
    let prod = &info.products[0];
    let rubric = ocop_shared::bundled::scoreable()
        .into_iter()
        .find(|r| r.id == prod.rubric.id)
        .unwrap();
    let key = SheetKey {
        sheet_id: Uuid::now_v7(),
        round_id: prod.round_id,
        product_id: prod.id,
        rubric: prod.rubric.clone(),
    };
    let codes: Vec<String> = rubric.criteria().map(|(_, _, c)| c.code.clone()).collect();
    let opt = |code: &str, i: usize| {
        let c = rubric.criterion(code).unwrap();
        let o: Vec<_> = c.options().collect();
        o[i % o.len()].id.clone()
    };
    let set = |id: u64, edits: Vec<(String, usize)>| Mutation {
        id,
        client_time: None,
        op: Op::SetAnswers {
            sheet: key.clone(),
            answers: edits
                .into_iter()
                .map(|(c, i)| AnswerEdit {
                    criterion: c.clone(),
                    answer: Answer {
                        option: Some(opt(&c, i)),
                        note: format!("ghi chú {i}"),
                        ..Default::default()
                    },
                    base_rev: 0,
                })
                .collect(),
        },
    };
    // The whole sheet, then three single-criterion edits in separate pushes.
    let mut snapshots: Vec<SheetState> = Vec::new();
    let push = |ms: Vec<Mutation>| {
        let r = store
            .push(
                &who,
                &PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations: ms,
                },
            )
            .unwrap();
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "{r:?}"
        );
    };
    let current = || -> SheetState {
        store
            .pull(&Principal::system(), 0, 100_000)
            .unwrap()
            .changes
            .into_iter()
            .find_map(|c| match c.entity {
                Entity::Sheet(s) if s.product_id == prod.id => Some(*s),
                _ => None,
            })
            .unwrap()
    };
    push(vec![set(1, codes.iter().map(|c| (c.clone(), 0)).collect())]);
    snapshots.push(current());
    for (n, c) in ["1.2", "4.1", "1.2"].iter().enumerate() {
        push(vec![set(n as u64 + 2, vec![(c.to_string(), n + 1)])]);
        snapshots.push(current());
    }
    let revs = store
        .sheet_revisions(&Principal::system(), key.sheet_id)
        .unwrap();
    assert_eq!(
        revs, snapshots,
        "each revision reads back as the whole sheet it was"
    );
    // The stored rows: the first holds all 31 answers, the edits one each.
    // A whole sheet is zstd-compressed JSON (schema 4); a body under 1 KB is
    // kept as its JSON TEXT (compressing it cost more than it saved).
    let db = rusqlite::Connection::open(&path).unwrap();
    let sizes: Vec<i64> = db
        .prepare("SELECT body FROM sheet_revisions ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
        .unwrap()
        .enumerate()
        .map(|(i, b)| {
            let json = match b.unwrap() {
                rusqlite::types::Value::Blob(b) => {
                    assert_eq!(i, 0, "only the whole sheet is large enough to pack");
                    ocop_sync_server::sqlite::unpack_body(&b).expect("a zstd-compressed body")
                }
                rusqlite::types::Value::Text(t) => {
                    assert!(
                        i > 0 && t.len() < 1024,
                        "row {i}: {} bytes as text",
                        t.len()
                    );
                    t.into_bytes()
                }
                other => panic!("row {i}: {other:?}"),
            };
            serde_json::from_slice::<serde_json::Value>(&json).expect("json inside");
            json.len() as i64
        })
        .collect();
    assert_eq!(sizes.len(), 4);
    for s in &sizes[1..] {
        assert!(
            *s * 5 < sizes[0],
            "an edit of one criterion stored {s} bytes vs {} for the whole sheet",
            sizes[0]
        );
    }
}
