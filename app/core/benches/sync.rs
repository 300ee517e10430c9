//! Sync throughput against an in-process server on 127.0.0.1 (release build):
//! 1. one device scores and pushes N sheets (default 1,000);
//! 2. a chair's fresh device pulls a round of P products x M members
//!    (default 100 x 15), then aggregates every product.
//!
//! `cargo bench -p ocop-app --bench sync` (env OCOP_BENCH_SHEETS, _PRODUCTS, _MEMBERS).

use std::time::Instant;

use ocop_app::Device;
use ocop_shared::bundled;
use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::{
    AccountRole, Answer, AnswerEdit, CouncilRole, CreateProductRequest, CreateRoundRequest,
    CreateUserRequest, Level, LoginRequest, MAX_BATCH_MUTATIONS, Mutation, Op, PROTOCOL_VERSION,
    PushRequest, RosterLine, SetRosterRequest, SheetKey,
};
use ocop_sync_server::{Principal, demo, testing};
use uuid::Uuid;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn product(round: Uuid, i: usize, r: &ocop_shared::rubric::Rubric) -> CreateProductRequest {
    CreateProductRequest {
        round_id: round,
        code: format!("B-{i:04}"),
        name: format!("Sản phẩm thử {i}"),
        producer: "HTX thử".into(),
        commune: "xã Thử".into(),
        district: "huyện Thử".into(),
        province: "Hà Tĩnh".into(),
        group: r.group.clone(),
        subgroup: r.subgroup.clone(),
        rubric: RubricRef {
            id: r.id.clone(),
            version: r.version,
        },
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        push_sheets(env("OCOP_BENCH_SHEETS", 1000)).await;
        chair_pull(
            env("OCOP_BENCH_PRODUCTS", 100),
            env("OCOP_BENCH_MEMBERS", 15),
        )
        .await;
    });
}

async fn push_sheets(n: usize) {
    let sdir = tempfile::tempdir().unwrap();
    let srv = testing::spawn(sdir.path()).await.unwrap();
    let info = demo::seed(&*srv.state.store).unwrap();
    let sys = Principal::system();
    let rubric = &bundled::scoreable()[0];
    for i in 0..n {
        srv.state
            .store
            .create_product(&sys, &product(info.round_id, i, rubric))
            .unwrap();
    }
    let u = &info.members()[0];
    let ddir = tempfile::tempdir().unwrap();
    let d = Device::open(ddir.path()).unwrap();
    d.login(&srv.url, &u.username, &u.password, "bench")
        .await
        .unwrap();
    let t = Instant::now();
    let r = d.sync_now().await.unwrap();
    println!(
        "[push] initial pull: {} changes in {} requests, {:.2} s",
        r.pulled_changes,
        r.pull_requests,
        t.elapsed().as_secs_f64()
    );
    let ids: Vec<Uuid> = d
        .list_products(info.round_id)
        .unwrap()
        .into_iter()
        .filter(|p| p.product.code.starts_with("B-"))
        .map(|p| p.product.id)
        .collect();
    assert_eq!(ids.len(), n);
    let t = Instant::now();
    let mut taps = 0usize;
    for (k, p) in ids.iter().enumerate() {
        for (i, (_, _, c)) in rubric.criteria().enumerate() {
            let opts: Vec<_> = c.options().collect();
            d.set_answer(*p, &c.code, Some(&opts[(i + k) % opts.len()].id))
                .unwrap();
            taps += 1;
        }
        d.submit(*p).unwrap();
        taps += 1;
    }
    let local = t.elapsed().as_secs_f64();
    println!(
        "[push] local: {taps} taps (each its own committed transaction) in {local:.2} s = {:.0} taps/s",
        taps as f64 / local
    );
    let pending = d.status().unwrap().pending;
    let t = Instant::now();
    let r = d.sync_now().await.unwrap();
    let s = t.elapsed().as_secs_f64();
    assert_eq!(d.status().unwrap().pending, 0);
    assert_eq!(r.rejected, 0);
    println!(
        "[push] {n} sheets ({pending} mutations after coalescing) pushed and pulled back in {s:.2} s = {:.0} sheets/s; {} push requests, {} pull requests, {} changes pulled",
        n as f64 / s,
        r.push_requests,
        r.pull_requests,
        r.pulled_changes
    );
}

async fn chair_pull(products: usize, members: usize) {
    let sdir = tempfile::tempdir().unwrap();
    let srv = testing::spawn(sdir.path()).await.unwrap();
    let store = &srv.state.store;
    let sys = Principal::system();
    let rubric = &bundled::scoreable()[0];
    let mut users = Vec::new();
    for m in 0..members {
        let name = format!("bench{m:02}");
        let u = store
            .create_user(
                &sys,
                &CreateUserRequest {
                    username: name.clone(),
                    full_name: format!("Thành viên {m}"),
                    role: AccountRole::Assessor,
                    password: Some(format!("pw-{name}")),
                },
            )
            .unwrap();
        users.push((u, name));
    }
    let round = store
        .create_round(
            &sys,
            &CreateRoundRequest {
                name: "bench round".into(),
                level: Level::Province,
                province: "Hà Tĩnh".into(),
                starts_on: "2026-11-23".into(),
                ends_on: "2026-11-27".into(),
                council: Default::default(),
            },
        )
        .unwrap();
    store
        .set_roster(
            &sys,
            round.id,
            &SetRosterRequest {
                members: users
                    .iter()
                    .enumerate()
                    .map(|(i, (u, _))| RosterLine {
                        user_id: u.id,
                        role: if i == 0 {
                            CouncilRole::Chair
                        } else {
                            CouncilRole::Member
                        },
                    })
                    .collect(),
            },
        )
        .unwrap();
    let pids: Vec<Uuid> = (0..products)
        .map(|i| {
            store
                .create_product(&sys, &product(round.id, i, rubric))
                .unwrap()
                .id
        })
        .collect();
    // Every member scores and submits every product (through the store, to keep setup short).
    let t = Instant::now();
    for (m, (_, name)) in users.iter().enumerate() {
        let tok = store
            .login(&LoginRequest {
                username: name.clone(),
                password: format!("pw-{name}"),
                device_name: "bench".into(),
                device_id: None,
            })
            .unwrap();
        let who = store.authenticate(&tok.token).unwrap().unwrap();
        let mut ms = Vec::new();
        let mut id = 0u64;
        for (k, p) in pids.iter().enumerate() {
            let sheet_id = Uuid::now_v7();
            let answers = rubric
                .criteria()
                .enumerate()
                .map(|(i, (_, _, c))| {
                    let opts: Vec<_> = c.options().collect();
                    AnswerEdit {
                        criterion: c.code.clone(),
                        answer: Answer {
                            option: Some(opts[(i + k + m) % opts.len()].id.clone()),
                            ..Default::default()
                        },
                        base_rev: 0,
                    }
                })
                .collect();
            id += 1;
            ms.push(Mutation {
                id,
                client_time: None,
                op: Op::SetAnswers {
                    sheet: SheetKey {
                        sheet_id,
                        round_id: round.id,
                        product_id: *p,
                        rubric: rubric.reference(),
                    },
                    answers,
                },
            });
            id += 1;
            ms.push(Mutation {
                id,
                client_time: None,
                op: Op::Submit { sheet_id },
            });
        }
        for chunk in ms.chunks(MAX_BATCH_MUTATIONS) {
            store
                .push(
                    &who,
                    &PushRequest {
                        protocol: PROTOCOL_VERSION,
                        mutations: chunk.to_vec(),
                    },
                )
                .unwrap();
        }
    }
    println!(
        "[pull] setup: {members} members x {products} products submitted in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let ddir = tempfile::tempdir().unwrap();
    let d = Device::open(ddir.path()).unwrap();
    d.login(
        &srv.url,
        &users[0].1,
        &format!("pw-{}", users[0].1),
        "chair laptop",
    )
    .await
    .unwrap();
    let t = Instant::now();
    let r = d.sync_now().await.unwrap();
    let s = t.elapsed().as_secs_f64();
    let sheets = pids
        .iter()
        .map(|p| d.sheets_of_product(*p).unwrap().len())
        .sum::<usize>();
    assert_eq!(sheets, products * members);
    println!(
        "[pull] chair's fresh device: {} changes ({sheets} sheets) in {} requests, {s:.2} s = {:.0} sheets/s",
        r.pulled_changes,
        r.pull_requests,
        sheets as f64 / s
    );
    let t = Instant::now();
    let mut finalizable = 0;
    for p in &pids {
        if d.council_result(*p).unwrap().can_finalize {
            finalizable += 1;
        }
    }
    println!(
        "[pull] council results of {products} products offline in {:.3} s ({finalizable} can be finalized)",
        t.elapsed().as_secs_f64()
    );
}
