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

/// A member's device, one product's sheet key and its rubric, on a demo store.
struct World {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sqlite: SqliteStore,
    who: Principal,
    key: SheetKey,
    rubric: ocop_shared::rubric::Rubric,
}

impl World {
    fn new() -> World {
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
        World {
            _dir: dir,
            path,
            sqlite,
            who,
            key,
            rubric,
        }
    }

    fn codes(&self) -> Vec<String> {
        self.rubric
            .criteria()
            .map(|(_, _, c)| c.code.clone())
            .collect()
    }

    /// Mutation `id`: the `i`-th option (and a note) on each criterion given.
    fn set(&self, id: u64, edits: Vec<(String, usize)>) -> Mutation {
        let opt = |code: &str, i: usize| {
            let c = self.rubric.criterion(code).unwrap();
            let o: Vec<_> = c.options().collect();
            o[i % o.len()].id.clone()
        };
        Mutation {
            id,
            client_time: None,
            op: Op::SetAnswers {
                sheet: self.key.clone(),
                answers: edits
                    .into_iter()
                    .map(|(c, i)| AnswerEdit {
                        answer: Answer {
                            option: Some(opt(&c, i)),
                            note: format!("ghi chú {i}"),
                            ..Default::default()
                        },
                        criterion: c,
                        base_rev: 0,
                    })
                    .collect(),
            },
        }
    }

    fn push(&self, ms: Vec<Mutation>) {
        let r = self
            .sqlite
            .push(
                &self.who,
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
    }

    /// The sheet as pull serves it.
    fn current(&self) -> SheetState {
        self.sqlite
            .pull(&Principal::system(), 0, 100_000)
            .unwrap()
            .changes
            .into_iter()
            .find_map(|c| match c.entity {
                Entity::Sheet(s) if s.id == self.key.sheet_id => Some(*s),
                _ => None,
            })
            .unwrap()
    }

    fn revisions(&self) -> Vec<SheetState> {
        self.sqlite
            .sheet_revisions(&Principal::system(), self.key.sheet_id)
            .unwrap()
    }

    /// Each revision row's `delta` and the length of its own body.
    fn revision_rows(&self) -> Vec<(i64, i64)> {
        let db = rusqlite::Connection::open(&self.path).unwrap();
        db.prepare("SELECT delta, length(body) FROM sheet_revisions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

#[test]
fn every_revision_reads_back_whole_and_one_criterion_edits_store_small_rows() {
    let w = World::new();
    let (path, codes) = (&w.path, w.codes());
    let push = |ms| w.push(ms);
    let set = |id, edits| w.set(id, edits);
    let current = || w.current();
    let mut snapshots: Vec<SheetState> = Vec::new();
    push(vec![set(1, codes.iter().map(|c| (c.clone(), 0)).collect())]);
    snapshots.push(current());
    for (n, c) in ["1.2", "4.1", "1.2"].iter().enumerate() {
        push(vec![set(n as u64 + 2, vec![(c.to_string(), n + 1)])]);
        snapshots.push(current());
    }
    let revs = w.revisions();
    assert_eq!(
        revs, snapshots,
        "each revision reads back as the whole sheet it was"
    );
    // The stored rows: the first holds all 31 answers, the edits one each.
    // A whole sheet is zstd-compressed JSON (schema 4); a body under 1 KB is
    // kept as its JSON TEXT (compressing it cost more than it saved).
    let db = rusqlite::Connection::open(path).unwrap();
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

#[test]
fn a_new_sheets_first_revision_stores_no_second_copy_until_the_sheet_is_written_again() {
    let w = World::new();
    let whole: Vec<(String, usize)> = w.codes().into_iter().map(|c| (c, 0)).collect();
    w.push(vec![w.set(1, whole)]);
    let first = w.current();
    // One copy of the body: the snapshot's; the revision row points at it.
    assert_eq!(w.revision_rows(), vec![(2, 0)]);
    assert_eq!(w.revisions(), vec![first.clone()]);
    // The next write copies the first body into its row, then stores its own change.
    w.push(vec![w.set(2, vec![("1.2".into(), 1)])]);
    let second = w.current();
    let rows = w.revision_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 1, "the first revision holds its own body now");
    assert!(rows[0].1 > 0 && rows[1].1 > 0, "{rows:?}");
    assert_ne!(first, second);
    assert_eq!(w.revisions(), vec![first, second]);
}
