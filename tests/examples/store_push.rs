//! Where push time goes: the store alone (no HTTP), JSON decode alone.
use std::time::Instant;

use ocop_shared::bundled;
use ocop_shared::wire::*;
use ocop_sync_server::{Options, Principal};
use uuid::Uuid;

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let st = ocop_sync_server::open_blocking(
        tmp.path(),
        Options {
            admin_password: Some("x-admin-password".into()),
            public_url: None,
        },
    )
    .unwrap();
    let info = ocop_sync_server::demo::seed(st.store.as_ref()).unwrap();
    let rubric = bundled::load(bundled::FOOD_PROCESSED_CEREAL_1048).rubric;
    let store = st.store.as_ref();
    let member = &info.members()[0];
    let tok = store
        .login(&LoginRequest {
            username: member.username.clone(),
            password: member.password.clone(),
            device_name: "x".into(),
            device_id: None,
        })
        .unwrap();
    let who = store.authenticate(&tok.token).unwrap().unwrap();
    let products: Vec<_> = info
        .products
        .iter()
        .filter(|p| p.rubric.id == rubric.id)
        .cloned()
        .collect();
    // Many sheets: reuse products by making one mutation per (product) per fake batch; sheets unique per product so
    // we create a new sheet only the first time; later batches edit with base revs of the same device (fresh).
    let mk = |p: &ProductInfo, seed: usize, id: u64| Mutation {
        id,
        client_time: None,
        op: Op::SetAnswers {
            sheet: SheetKey {
                sheet_id: Uuid::now_v7(),
                round_id: p.round_id,
                product_id: p.id,
                rubric: p.rubric.clone(),
            },
            answers: rubric
                .criteria()
                .enumerate()
                .map(|(k, (_, _, c))| {
                    let o: Vec<_> = c.options().collect();
                    AnswerEdit {
                        criterion: c.code.clone(),
                        answer: Answer {
                            option: Some(o[(seed + k) % o.len()].id.clone()),
                            note: format!("Đã đối chiếu hồ sơ tại cơ sở, số {seed}-{k}"),
                            ..Default::default()
                        },
                        base_rev: 0,
                    }
                })
                .collect(),
        },
    };
    let mut id = 0;
    let batches: Vec<PushRequest> = (0..100)
        .map(|b| PushRequest {
            protocol: PROTOCOL_VERSION,
            mutations: (0..100)
                .map(|i| {
                    id += 1;
                    mk(&products[i % products.len()], b * 100 + i, id)
                })
                .collect(),
        })
        .collect();
    let texts: Vec<Vec<u8>> = batches
        .iter()
        .map(|b| serde_json::to_vec(b).unwrap())
        .collect();
    let t = Instant::now();
    for t in &texts {
        let _: PushRequest = serde_json::from_slice(t).unwrap();
    }
    println!(
        "decode 10,000 sheet mutations: {:?} ({:.0}/s), {} bytes each",
        t.elapsed(),
        10_000.0 / t.elapsed().as_secs_f64(),
        texts[0].len() / 100
    );
    let t = Instant::now();
    for b in &batches {
        let r = store.push(&who, b).unwrap();
        assert!(
            r.results
                .iter()
                .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
            "{:?}",
            r.results[0]
        );
    }
    println!(
        "store.push 10,000 sheet writes: {:?} ({:.0}/s)",
        t.elapsed(),
        10_000.0 / t.elapsed().as_secs_f64()
    );
    let _ = Principal::system();
}
