//! The HTTP pull splices stored JSON instead of re-encoding it; this checks
//! the spliced page is byte for byte what encoding the typed page gives, for
//! every role (the secretary's redacted view included) and across pages.

use ocop_shared::wire::{
    Answer, AnswerEdit, Mutation, Op, PROTOCOL_VERSION, PushRequest, SheetKey,
};
use ocop_sync_server::demo;
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store};
use uuid::Uuid;

mod common;

#[test]
fn spliced_pull_pages_equal_encoded_pull_pages_for_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("p.sqlite3")).unwrap();
    let store: &dyn Store = &sqlite;
    store.install_bundled_rubrics().unwrap();
    let info = demo::seed(store).unwrap();
    let who: Vec<Principal> = common::principals(store, &info.users);
    let rubric = ocop_shared::bundled::scoreable();
    // Two members answer a few criteria on three products, with notes that need escaping.
    for (m, p) in who[1..3].iter().zip(0..) {
        let muts = info.products[..3]
            .iter()
            .enumerate()
            .map(|(i, prod)| {
                let r = rubric.iter().find(|r| r.id == prod.rubric.id).unwrap();
                let answers = r
                    .criteria()
                    .take(5)
                    .map(|(_, _, c)| AnswerEdit {
                        criterion: c.code.clone(),
                        answer: Answer {
                            option: Some(c.options().next().unwrap().id.clone()),
                            note: format!("ghi chú \"{p}\"\n\t\\ {}", c.code),
                            ..Default::default()
                        },
                        base_rev: 0,
                    })
                    .collect();
                Mutation {
                    id: i as u64 + 1,
                    client_time: None,
                    op: Op::SetAnswers {
                        sheet: SheetKey {
                            sheet_id: Uuid::now_v7(),
                            round_id: prod.round_id,
                            product_id: prod.id,
                            rubric: prod.rubric.clone(),
                        },
                        answers,
                    },
                }
            })
            .collect();
        store
            .push(
                m,
                &PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations: muts,
                },
            )
            .unwrap();
    }
    let mut all = who.clone();
    all.push(Principal::system());
    for p in &all {
        for limit in [1, 7, 1000] {
            let mut cursor = 0;
            loop {
                let typed = store.pull(p, cursor, limit).unwrap();
                let spliced = store.pull_json(p, cursor, limit).unwrap();
                assert_eq!(
                    spliced.json,
                    serde_json::to_string(&typed).unwrap(),
                    "{} at cursor {cursor}",
                    p.user.username
                );
                assert_eq!(
                    (spliced.next_cursor, spliced.has_more),
                    (typed.next_cursor, typed.has_more),
                    "the header fields are the body's"
                );
                if !typed.has_more {
                    break;
                }
                cursor = typed.next_cursor;
            }
        }
    }
}
