//! The writer keeps the sheets it wrote last and serves edits from them
//! (`sheet_cache`). That must change nothing anyone can see: the same story
//! of edits, an edit of a submitted sheet (a conflict), a note, a submit, a
//! reopen and a recusal (which re-stamps rows) run on a
//! store with the cache and one without gives the same outcomes and the same
//! sheets, and a store opened again on the file (empty cache) reads them too.

use ocop_shared::wire::{
    Answer, AnswerEdit, Entity, Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest, SheetKey,
    SheetState,
};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store, demo};
use uuid::Uuid;

mod common;

struct Run {
    /// Run-time ids in a fixed order (see `comparable`).
    ids: Vec<Uuid>,
    outcomes: Vec<String>,
    sheets: Vec<SheetState>,
    hits: u64,
}

/// Ids made at run time (the demo's round, products and people, and the
/// server's conflict ids, all UUIDv7) are the only things two runs may
/// differ in: each is replaced by its place in `ids`.
fn comparable(text: &str, ids: &[Uuid]) -> String {
    ids.iter().enumerate().fold(text.to_owned(), |t, (i, id)| {
        t.replace(&id.to_string(), &format!("id-{i}"))
    })
}

fn story(dir: &std::path::Path, cache: usize) -> Run {
    let path = dir.join("s.sqlite3");
    let sqlite = SqliteStore::open(&path).unwrap().with_sheet_cache(cache);
    let store: &dyn Store = &sqlite;
    store.install_bundled_rubrics().unwrap();
    let info = demo::seed(store).unwrap();
    let who = common::principals(store, &info.users);
    let (chair, member) = (&who[0], &who[1]);
    let rubric = ocop_shared::bundled::scoreable();
    let products = &info.products[..3];
    let sheet_ids: Vec<Uuid> = (0..3).map(|i| Uuid::from_u128(0x5eed + i)).collect();
    let key = |p: usize| SheetKey {
        sheet_id: sheet_ids[p],
        round_id: products[p].round_id,
        product_id: products[p].id,
        rubric: products[p].rubric.clone(),
    };
    let criteria: Vec<Vec<(String, Vec<String>)>> = products
        .iter()
        .map(|prod| {
            let r = rubric.iter().find(|r| r.id == prod.rubric.id).unwrap();
            r.criteria()
                .map(|(_, _, c)| (c.code.clone(), c.options().map(|o| o.id.clone()).collect()))
                .collect()
        })
        .collect();
    let answer = |p: usize, k: usize, o: usize, base_rev: u64| AnswerEdit {
        criterion: criteria[p][k].0.clone(),
        answer: Answer {
            option: Some(criteria[p][k].1[o % criteria[p][k].1.len()].clone()),
            note: format!("lần {o}"),
            ..Default::default()
        },
        base_rev,
    };
    let mut next_id = 0;
    let mut outcomes = Vec::new();
    let mut push = |who: &Principal, ops: Vec<Op>| -> Vec<Outcome> {
        let mutations = ops
            .into_iter()
            .map(|op| {
                next_id += 1;
                Mutation {
                    id: next_id,
                    client_time: None,
                    op,
                }
            })
            .collect();
        let r = store
            .push(
                who,
                &PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations,
                },
            )
            .unwrap();
        let o: Vec<Outcome> = r.results.into_iter().map(|x| x.outcome).collect();
        outcomes.push(serde_json::to_string(&o).unwrap());
        o
    };
    let rev_of = |o: &Outcome| match o {
        Outcome::Applied { seq, .. } | Outcome::Conflict { seq, .. } => *seq,
        other => panic!("{other:?}"),
    };
    // Every criterion answered on three sheets, one push.
    let first = push(
        member,
        (0..3)
            .map(|p| Op::SetAnswers {
                sheet: key(p),
                answers: (0..criteria[p].len()).map(|k| answer(p, k, 0, 0)).collect(),
            })
            .collect(),
    );
    let mut revs: Vec<Vec<u64>> = (0..3)
        .map(|p| vec![rev_of(&first[p]); criteria[p].len()])
        .collect();
    // Five rounds of fresh edits, one push each, several sheets per push.
    for round in 1..=5 {
        let ops = (0..3)
            .map(|p| Op::SetAnswers {
                sheet: key(p),
                answers: vec![answer(p, round % 4, round, revs[p][round % 4])],
            })
            .collect();
        for (p, o) in push(member, ops).iter().enumerate() {
            revs[p][round % 4] = rev_of(o);
        }
    }
    // An old base from the same device: its later edit, applied.
    push(
        member,
        vec![Op::SetAnswers {
            sheet: key(0),
            answers: vec![answer(0, 1, 9, 1)],
        }],
    );
    push(
        member,
        vec![Op::SetNote {
            sheet: key(1),
            note: "Cơ sở sản xuất sạch sẽ".into(),
            base_rev: 0,
        }],
    );
    push(
        member,
        vec![Op::Submit {
            sheet_id: sheet_ids[2],
        }],
    );
    // An edit of a submitted sheet: a flagged conflict, the value kept.
    push(
        member,
        vec![Op::SetAnswers {
            sheet: key(2),
            answers: vec![answer(2, 3, 5, revs[2][3])],
        }],
    );
    push(
        chair,
        vec![Op::Reopen {
            sheet_id: sheet_ids[2],
            reason: "thiếu minh chứng".into(),
        }],
    );
    push(
        member,
        vec![Op::SetAnswers {
            sheet: key(2),
            answers: vec![answer(2, 0, 7, revs[2][0])],
        }],
    );
    // The chair recuses another member on product 0, which re-stamps the
    // product's rows with a new seq; then an edit of product 0's sheet.
    push(
        chair,
        vec![Op::SetParticipation {
            round_id: products[0].round_id,
            product_id: products[0].id,
            user_id: who[2].user.id,
            participation: ocop_shared::council::Participation::Recused,
            reason: "người nhà của cơ sở".into(),
        }],
    );
    push(
        member,
        vec![Op::SetAnswers {
            sheet: key(0),
            answers: vec![answer(0, 2, 3, revs[0][2])],
        }],
    );
    let read = |store: &dyn Store| -> Vec<SheetState> {
        let page = store.pull(chair, 0, 10_000).unwrap();
        let mut sheets: Vec<SheetState> = page
            .changes
            .into_iter()
            .filter_map(|c| match c.entity {
                Entity::Sheet(s) if sheet_ids.contains(&s.id) => Some(*s),
                _ => None,
            })
            .collect();
        sheets.sort_by_key(|s| s.id);
        sheets
    };
    let sheets = read(store);
    let hits = sqlite.sheet_cache_hits();
    drop(sqlite);
    // A store opened again on the file, its cache empty, reads the same.
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(read(&again), sheets, "the file holds what was served");
    let mut ids: Vec<Uuid> = vec![info.round_id];
    ids.extend(info.products.iter().map(|p| p.id));
    ids.extend(who.iter().flat_map(|p| [p.user.id, p.device_id]));
    ids.extend(sheets.iter().flat_map(|s| s.conflicts.iter().map(|c| c.id)));
    Run {
        ids,
        outcomes,
        sheets,
        hits,
    }
}

#[test]
fn sheets_served_from_the_writers_cache_equal_sheets_read_from_the_file() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cached = story(a.path(), 1024);
    let uncached = story(b.path(), 0);
    assert!(
        cached.hits >= 15,
        "edits read cached sheets ({} hits)",
        cached.hits
    );
    assert_eq!(uncached.hits, 0);
    let conflicts = |r: &Run| r.sheets.iter().map(|s| s.conflicts.len()).sum::<usize>();
    assert_eq!(
        conflicts(&cached),
        1,
        "the edit of the submitted sheet is one flagged conflict"
    );
    assert_eq!(conflicts(&uncached), 1);
    assert_eq!(cached.ids.len(), uncached.ids.len());
    assert_eq!(cached.outcomes.len(), uncached.outcomes.len());
    for (x, y) in cached.outcomes.iter().zip(&uncached.outcomes) {
        assert!(!x.contains("rejected"), "{x}");
        assert_eq!(comparable(x, &cached.ids), comparable(y, &uncached.ids));
    }
    assert_eq!(
        comparable(&serde_json::to_string(&cached.sheets).unwrap(), &cached.ids),
        comparable(
            &serde_json::to_string(&uncached.sheets).unwrap(),
            &uncached.ids
        ),
    );
}
