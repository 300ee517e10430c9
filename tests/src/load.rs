//! A round sized for load: one chair, `members` scoring members and `products`
//! products on the 31-criterion cereal sheet, set up through the `Store` trait
//! (no HTTP), and full score sheets with notes (~3.4 KB of JSON each). Shared
//! by the sync benchmark and the store-only example so both measure the same data.

use std::path::Path;

use ocop_shared::bundled;
use ocop_shared::council::CouncilConfig;
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::*;
use ocop_sync_server::{Options, Principal, Store};
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// What [`setup`] made: the products, one device token per member, a second
/// device of member 0 (for the conflict phase) and the chair's device.
pub struct Setup {
    pub products: Vec<ProductInfo>,
    pub members: Vec<String>,
    pub member0_second: String,
    pub chair: String,
    pub rubric: Rubric,
}

/// Creates the round in a new server directory `dir` (the store is closed on return).
pub fn setup(dir: &Path, members: usize, products: usize) -> Setup {
    let state = ocop_sync_server::open_blocking(
        dir,
        Options {
            admin_password: Some(ADMIN_PASSWORD.into()),
            public_url: None,
        },
    )
    .expect("open");
    let store: &dyn Store = state.store.as_ref();
    let sys = Principal::system();
    let rubric = bundled::load(bundled::FOOD_PROCESSED_CEREAL_1048).rubric;
    let round = store
        .create_round(
            &sys,
            &CreateRoundRequest {
                name: "Đợt đánh giá đo hiệu năng".into(),
                level: Level::Province,
                province: "Hà Tĩnh".into(),
                starts_on: "2026-11-23".into(),
                ends_on: "2026-11-27".into(),
                council: CouncilConfig::default(),
            },
        )
        .expect("round");
    let mut users = Vec::new();
    for i in 0..=members {
        let u = store
            .create_user(
                &sys,
                &CreateUserRequest {
                    username: format!("tv{i:04}"),
                    full_name: format!("Thành viên {i:04}"),
                    role: AccountRole::Assessor,
                    password: None,
                },
            )
            .expect("user");
        users.push(u);
    }
    let lines: Vec<RosterLine> = users
        .iter()
        .enumerate()
        .map(|(i, u)| RosterLine {
            user_id: u.id,
            role: if i == 0 {
                CouncilRole::Chair
            } else {
                CouncilRole::Member
            },
        })
        .collect();
    store
        .set_roster(&sys, round.id, &SetRosterRequest { members: lines })
        .expect("roster");
    let mut prods = Vec::new();
    for p in 0..products {
        prods.push(
            store
                .create_product(
                    &sys,
                    &CreateProductRequest {
                        round_id: round.id,
                        code: format!("SP-{p:03}"),
                        name: format!("Sản phẩm số {p}"),
                        producer: "HTX Nông nghiệp".into(),
                        commune: "xã Thạch Long".into(),
                        district: "huyện Thạch Hà".into(),
                        province: "Hà Tĩnh".into(),
                        group: rubric.group.clone(),
                        subgroup: rubric.subgroup.clone(),
                        rubric: rubric.reference(),
                    },
                )
                .expect("product"),
        );
    }
    let token = |u: &UserInfo, name: &str| {
        let code = store
            .issue_enrolment_code(
                &sys,
                &EnrolmentCodeRequest {
                    user_id: u.id,
                    ttl_minutes: None,
                },
                "http://127.0.0.1",
            )
            .expect("code");
        store
            .enrol(&EnrolRequest {
                code: code.code,
                device_name: name.into(),
            })
            .expect("enrol")
            .token
    };
    let chair = token(&users[0], "chair");
    let members_t: Vec<String> = users[1..].iter().map(|u| token(u, "phone")).collect();
    let member0_second = token(&users[1], "tablet");
    Setup {
        products: prods,
        members: members_t,
        member0_second,
        chair,
        rubric,
    }
}

/// Member `m`'s new sheet of every product of `s`, as the benchmark
/// pushes them (mutation ids from 1, one per product in order).
pub fn member_sheets(s: &Setup, m: usize) -> Vec<Mutation> {
    s.products
        .iter()
        .enumerate()
        .map(|(p, prod)| Mutation {
            id: p as u64 + 1,
            client_time: None,
            op: full_sheet(&s.rubric, prod, m * 7 + p),
        })
        .collect()
}

/// A new sheet of `product` with every criterion answered and noted.
pub fn full_sheet(rubric: &Rubric, product: &ProductInfo, seed: usize) -> Op {
    let answers = rubric
        .criteria()
        .enumerate()
        .map(|(k, (_, _, c))| {
            let opts: Vec<_> = c.options().collect();
            AnswerEdit {
                criterion: c.code.clone(),
                answer: Answer {
                    option: Some(opts[(seed + k) % opts.len()].id.clone()),
                    knockout: false,
                    note: format!("Hồ sơ đầy đủ, mẫu {seed}-{k}"),
                    attachments: vec![],
                },
                base_rev: 0,
            }
        })
        .collect();
    Op::SetAnswers {
        sheet: SheetKey {
            sheet_id: Uuid::now_v7(),
            round_id: product.round_id,
            product_id: product.id,
            rubric: product.rubric.clone(),
        },
        answers,
    }
}
