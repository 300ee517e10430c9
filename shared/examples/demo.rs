//! Scores demo sheets on the bundled rubrics and prints a council result.
//! `cargo run -p ocop-shared --example demo`
use std::collections::BTreeMap;

use ocop_shared::bundled;
use ocop_shared::council::{
    CouncilConfig, CouncilInput, Member, MemberSheet, Participation, aggregate,
};
use ocop_shared::score::score_sheet;
use ocop_shared::validate::load_rubric;
use ocop_shared::wire::{Answer, CouncilRole, Level};
use uuid::Uuid;

fn main() {
    for (name, text) in bundled::all_files() {
        match load_rubric(text) {
            Ok(l) => {
                println!(
                    "{name}: ok, {} criteria, caps {:?}",
                    l.rubric.criterion_count(),
                    l.rubric.parts.iter().map(|p| p.cap).collect::<Vec<_>>()
                );
                for w in &l.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(e) => println!("{name}: {e}"),
        }
    }
    let rubric = bundled::load(bundled::FOOD_PROCESSED_CEREAL_1048).rubric;
    let names = [
        "Nguyễn Văn An (chủ tịch)",
        "Trần Thị Bình",
        "Lê Văn Cường",
        "Phạm Thị Dung",
        "Hoàng Văn Em",
        "Võ Thị Phương",
        "Đặng Văn Giang",
        "Bùi Thị Hạnh",
        "Ngô Thị Lan (thư ký)",
    ];
    let mut roster = Vec::new();
    let mut scores = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let id = Uuid::from_u128(i as u128 + 1);
        let role = match i {
            0 => CouncilRole::Chair,
            8 => CouncilRole::Secretary,
            _ => CouncilRole::Member,
        };
        roster.push(Member {
            user_id: id,
            name: n.to_string(),
            role,
            participation: Participation::Present,
        });
        if role == CouncilRole::Secretary {
            continue;
        }
        let mut answers = BTreeMap::new();
        for (k, (_, _, c)) in rubric.criteria().enumerate() {
            let opts: Vec<_> = c.options().collect();
            // Deterministic spread of choices: mostly good options.
            let pick = opts.len() - 1 - ((k + i) % 3).min(opts.len() - 1);
            answers.insert(
                c.code.clone(),
                Answer {
                    option: Some(opts[pick].id.clone()),
                    ..Default::default()
                },
            );
        }
        let s = score_sheet(&rubric, &answers, Level::Province).expect("demo answers fit");
        println!(
            "{:28} {:>3} điểm  (A {}, B {}, C {})",
            n, s.total, s.parts[0].points, s.parts[1].points, s.parts[2].points
        );
        scores.push((id, s));
    }
    let sheets: Vec<MemberSheet> = scores
        .iter()
        .map(|(id, s)| MemberSheet {
            user_id: *id,
            score: s,
        })
        .collect();
    let cfg = CouncilConfig::default();
    let r = aggregate(&CouncilInput {
        rubric: &rubric,
        level: Level::Province,
        config: &cfg,
        roster: &roster,
        sheets: &sheets,
        consensus: None,
    });
    println!(
        "\nĐiểm trung bình / mean: {}",
        r.mean_total.map(|m| m.to_string()).unwrap_or_default()
    );
    for p in &r.part_means {
        println!("  phần {}: {} / {}", p.code, p.mean, p.cap);
    }
    println!(
        "Chênh lệch / spread: {} {}",
        r.spread.map(|m| m.to_string()).unwrap_or_default(),
        if r.spread_flagged {
            "(vượt ngưỡng)"
        } else {
            ""
        }
    );
    println!(
        "Túc số / quorum: {}/{} (cần {}), đạt: {}",
        r.quorum.present, r.quorum.eligible, r.quorum.required, r.quorum.met
    );
    if let Some(s) = &r.star {
        println!("Xếp hạng / star: {}★", s.stars);
        for reason in &s.reasons {
            println!("  - {}\n    {}", reason.vi(), reason.en());
        }
    }
}
