//! Sync throughput over real HTTP on 127.0.0.1 (plain `main`, no criterion).
//!
//! N sheets (default 10,000) of the 31-criterion 1048 rubric with notes
//! (~3 KB of JSON each), pushed by 100 members in batches of 100, then pulled
//! by the chair; then the time of a sync with nothing to send.
//!
//! Run: `cargo bench -p ocop-sync-server --bench sync` (env `OCOP_BENCH_N`).

use std::time::{Duration, Instant};

use ocop_shared::wire::{
    AccountRole, Answer, AnswerEdit, CouncilRole, CreateProductRequest, CreateRoundRequest,
    CreateUserRequest, EnrolRequest, EnrolmentCodeRequest, Level, Mutation, Op, PROTOCOL_VERSION,
    PullResponse, PushRequest, PushResponse, RosterLine, SetRosterRequest, SheetKey, TokenResponse,
    paths,
};
use ocop_sync_server::{Principal, testing};
use uuid::Uuid;

fn main() {
    let n: usize = std::env::var("OCOP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(n));
}

async fn run(n: usize) {
    let members = 100usize;
    let products = n.div_ceil(members);
    let dir = tempfile::tempdir().unwrap();
    let server = testing::spawn(dir.path()).await.unwrap();
    let store = server.state.store.clone();
    let url = server.url.clone();
    let rubric = ocop_shared::bundled::scoreable().remove(0);
    let rref = rubric.reference();

    // Setup through the store: a round, a council of 1 chair + 100 members, products.
    let (round_id, product_ids, codes) = {
        let store = store.clone();
        let rref = rref.clone();
        let (group, subgroup) = (rubric.group.clone(), rubric.subgroup.clone());
        tokio::task::spawn_blocking(move || {
            let sys = Principal::system();
            let round = store
                .create_round(
                    &sys,
                    &CreateRoundRequest {
                        name: "bench".into(),
                        level: Level::Province,
                        province: "Hà Tĩnh".into(),
                        starts_on: "2026-11-23".into(),
                        ends_on: "2026-11-27".into(),
                        council: Default::default(),
                    },
                )
                .unwrap();
            let mut lines = Vec::new();
            let mut codes = Vec::new();
            for i in 0..=members {
                let u = store
                    .create_user(
                        &sys,
                        &CreateUserRequest {
                            username: format!("u{i}"),
                            full_name: format!("Thành viên {i}"),
                            role: AccountRole::Assessor,
                            password: None,
                        },
                    )
                    .unwrap();
                lines.push(RosterLine {
                    user_id: u.id,
                    role: if i == 0 {
                        CouncilRole::Chair
                    } else {
                        CouncilRole::Member
                    },
                });
                codes.push(
                    store
                        .issue_enrolment_code(
                            &sys,
                            &EnrolmentCodeRequest {
                                user_id: u.id,
                                ttl_minutes: None,
                            },
                            "http://bench",
                        )
                        .unwrap()
                        .code,
                );
            }
            store
                .set_roster(&sys, round.id, &SetRosterRequest { members: lines })
                .unwrap();
            let mut ids = Vec::new();
            for p in 0..products {
                ids.push(
                    store
                        .create_product(
                            &sys,
                            &CreateProductRequest {
                                round_id: round.id,
                                code: format!("SP-{p:03}"),
                                name: format!("Sản phẩm {p}"),
                                producer: "HTX".into(),
                                commune: "xã".into(),
                                district: "huyện".into(),
                                province: "Hà Tĩnh".into(),
                                group: group.clone(),
                                subgroup: subgroup.clone(),
                                rubric: rref.clone(),
                            },
                        )
                        .unwrap()
                        .id,
                );
            }
            (round.id, ids, codes)
        })
        .await
        .unwrap()
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for c in &codes {
        let t: TokenResponse = http
            .post(format!("{url}{}", paths::ENROL))
            .json(&EnrolRequest {
                code: c.clone(),
                device_name: "bench".into(),
            })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(t.token);
    }
    let sheet_answers: Vec<AnswerEdit> = rubric
        .criteria()
        .map(|(_, _, c)| AnswerEdit {
            criterion: c.code.clone(),
            answer: Answer {
                option: Some(c.options().last().unwrap().id.clone()),
                knockout: false,
                note: "Hồ sơ đầy đủ".into(),
                attachments: vec![],
            },
            base_rev: 0,
        })
        .collect();
    // Build every member's batch up front.
    let mut batches: Vec<(String, PushRequest)> = Vec::new();
    let mut total = 0;
    for m in 0..members {
        let mut muts = Vec::new();
        for (i, p) in product_ids.iter().enumerate() {
            if total == n {
                break;
            }
            total += 1;
            muts.push(Mutation {
                id: i as u64 + 1,
                client_time: None,
                op: Op::SetAnswers {
                    sheet: SheetKey {
                        sheet_id: Uuid::now_v7(),
                        round_id,
                        product_id: *p,
                        rubric: rref.clone(),
                    },
                    answers: sheet_answers.clone(),
                },
            });
        }
        batches.push((
            tokens[m + 1].clone(),
            PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations: muts,
            },
        ));
    }
    let one = serde_json::to_string(&batches[0].1.mutations[0])
        .unwrap()
        .len();
    println!(
        "N = {n} sheets, {} criteria, ~{one} bytes of JSON per sheet mutation, batches of {products}",
        rubric.criterion_count()
    );

    // Push: 4 devices at a time.
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let chunks: Vec<Vec<(String, PushRequest)>> = batches
        .chunks(batches.len().div_ceil(4))
        .map(|c| c.to_vec())
        .collect();
    for chunk in chunks {
        let http = http.clone();
        let url = url.clone();
        set.spawn(async move {
            for (token, req) in chunk {
                let r: PushResponse = http
                    .post(format!("{url}{}", paths::PUSH))
                    .bearer_auth(&token)
                    .json(&req)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(r.results.len(), req.mutations.len());
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let push_s = t0.elapsed().as_secs_f64();
    println!(
        "push: {n} sheets in {push_s:.2} s = {:.0} sheets/s",
        n as f64 / push_s
    );

    // Pull: the chair (sees every sheet of the round) from cursor 0.
    let chair = &tokens[0];
    let t0 = Instant::now();
    let mut cursor = 0;
    let mut sheets = 0;
    let mut pages = 0;
    loop {
        let p: PullResponse = http
            .get(format!("{url}{}?cursor={cursor}&limit=1000", paths::PULL))
            .bearer_auth(chair)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        sheets += p
            .changes
            .iter()
            .filter(|c| matches!(c.entity, ocop_shared::wire::Entity::Sheet(_)))
            .count();
        cursor = p.next_cursor;
        if !p.has_more {
            break;
        }
    }
    let pull_s = t0.elapsed().as_secs_f64();
    assert_eq!(sheets, n);
    println!(
        "pull: {sheets} sheets in {pull_s:.2} s ({pages} requests) = {:.0} sheets/s",
        sheets as f64 / pull_s
    );

    // No-op sync: an empty push plus a pull at the current cursor.
    let member = &tokens[1];
    let rounds = 50;
    let t0 = Instant::now();
    for _ in 0..rounds {
        let r: PushResponse = http
            .post(format!("{url}{}", paths::PUSH))
            .bearer_auth(member)
            .json(&PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations: vec![],
            })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let p: PullResponse = http
            .get(format!("{url}{}?cursor={}", paths::PULL, r.server_seq))
            .bearer_auth(member)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(p.changes.is_empty());
    }
    let noop = t0.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "no-op sync (empty push + pull at cursor): {:.2} ms",
        noop * 1000.0
    );
}
