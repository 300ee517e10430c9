//! Aggregating a provincial round: 100 products × 15 members = 1,500 sheets.
//! `cargo bench -p ocop-shared --bench council`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ocop_shared::bundled;
use ocop_shared::council::{
    CouncilConfig, CouncilInput, Member, MemberSheet, Participation, aggregate,
};
use ocop_shared::rubric::Rubric;
use ocop_shared::score::{SheetScore, score_sheet};
use ocop_shared::wire::{Answer, CouncilRole, Level};
use uuid::Uuid;

const PRODUCTS: usize = 100;
const MEMBERS: usize = 15;

fn answers(r: &Rubric, seed: usize) -> BTreeMap<String, Answer> {
    r.criteria()
        .enumerate()
        .map(|(k, (_, _, c))| {
            let opts: Vec<_> = c.options().collect();
            let o = opts[(seed * 7 + k * 3) % opts.len()];
            (
                c.code.clone(),
                Answer {
                    option: Some(o.id.clone()),
                    note: "Ghi chú của thành viên hội đồng".into(),
                    ..Default::default()
                },
            )
        })
        .collect()
}

fn roster() -> Vec<Member> {
    (0..MEMBERS)
        .map(|i| Member {
            user_id: Uuid::from_u128(i as u128 + 1),
            name: format!("Thành viên {i:02}"),
            role: if i == 0 {
                CouncilRole::Chair
            } else {
                CouncilRole::Member
            },
            participation: Participation::Present,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rubrics = bundled::scoreable();
    let roster = roster();
    let cfg = CouncilConfig::default();
    let sheets: Vec<Vec<BTreeMap<String, Answer>>> = (0..PRODUCTS)
        .map(|p| {
            (0..MEMBERS)
                .map(|m| answers(&rubrics[p % 2], p * MEMBERS + m))
                .collect()
        })
        .collect();

    c.bench_function("score_and_aggregate_round_100x15", |b| {
        b.iter(|| {
            let mut stars = 0u32;
            for (p, product) in sheets.iter().enumerate() {
                let r = &rubrics[p % 2];
                let scores: Vec<SheetScore> = product
                    .iter()
                    .map(|a| score_sheet(r, a, Level::Province).unwrap())
                    .collect();
                let ms: Vec<MemberSheet> = scores
                    .iter()
                    .enumerate()
                    .map(|(i, s)| MemberSheet {
                        user_id: roster[i].user_id,
                        score: s,
                    })
                    .collect();
                let res = aggregate(&CouncilInput {
                    rubric: r,
                    level: Level::Province,
                    config: &cfg,
                    roster: &roster,
                    sheets: &ms,
                    consensus: None,
                });
                stars += u32::from(res.star.map_or(0, |s| s.stars));
            }
            black_box(stars)
        })
    });

    let scored: Vec<Vec<SheetScore>> = sheets
        .iter()
        .enumerate()
        .map(|(p, product)| {
            product
                .iter()
                .map(|a| score_sheet(&rubrics[p % 2], a, Level::Province).unwrap())
                .collect()
        })
        .collect();
    c.bench_function("aggregate_only_round_100x15", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for (p, scores) in scored.iter().enumerate() {
                let ms: Vec<MemberSheet> = scores
                    .iter()
                    .enumerate()
                    .map(|(i, s)| MemberSheet {
                        user_id: roster[i].user_id,
                        score: s,
                    })
                    .collect();
                let res = aggregate(&CouncilInput {
                    rubric: &rubrics[p % 2],
                    level: Level::Province,
                    config: &cfg,
                    roster: &roster,
                    sheets: &ms,
                    consensus: None,
                });
                n += res.members.len() as u32;
            }
            black_box(n)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
