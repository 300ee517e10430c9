//! Revisions are stored as what each write changed; reading them back gives
//! every whole sheet as it was, and an edit of one criterion stores a small row.

mod common;

use common::StoreWorld as World;
use ocop_shared::wire::SheetState;

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
fn a_new_sheet_keeps_no_revision_row_until_it_is_written_again() {
    let w = World::new();
    let whole: Vec<(String, usize)> = w.codes().into_iter().map(|c| (c, 0)).collect();
    w.push(vec![w.set(1, whole)]);
    let first = w.current();
    // One copy of the body, the snapshot's, and no row: the snapshot is the
    // sheet's one revision (schema 10).
    assert_eq!(w.revision_rows(), vec![]);
    assert_eq!(w.revisions(), vec![first.clone()]);
    // The next write makes the first revision's row from the snapshot, then
    // stores its own change.
    w.push(vec![w.set(2, vec![("1.2".into(), 1)])]);
    let second = w.current();
    let rows = w.revision_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 1, "the first revision holds its own body now");
    assert!(rows[0].1 > 0 && rows[1].1 > 0, "{rows:?}");
    assert_ne!(first, second);
    assert_eq!(w.revisions(), vec![first.clone(), second.clone()]);
    // And a third write leaves those two as they are.
    w.push(vec![w.set(3, vec![("1.2".into(), 2)])]);
    assert_eq!(w.revision_rows().len(), 3);
    assert_eq!(w.revisions(), vec![first, second, w.current()]);
}

/// A new sheet written the ordinary way (its first write carries a base, so
/// nothing was prepared) keeps a revision row that points at its snapshot
/// (`delta = 2`); its next write gives that row its own copy first.
#[test]
fn a_first_revision_that_points_at_its_snapshot_gets_its_own_copy_on_the_next_write() {
    let w = World::new();
    let whole: Vec<(String, usize)> = w.codes().into_iter().map(|c| (c, 0)).collect();
    let mut first_write = w.set(1, whole);
    if let ocop_shared::wire::Op::SetAnswers { answers, .. } = &mut first_write.op {
        answers[0].base_rev = 7;
    }
    w.push_any(vec![first_write]);
    let first = w.current();
    assert_eq!(w.revision_rows(), vec![(2, 0)]);
    assert_eq!(w.revisions(), vec![first.clone()]);
    w.push(vec![w.set(2, vec![("1.2".into(), 1)])]);
    let rows = w.revision_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, 1, "the first revision holds its own body now");
    assert!(rows[0].1 > 0 && rows[1].1 > 0, "{rows:?}");
    assert_eq!(w.revisions(), vec![first, w.current()]);
}
