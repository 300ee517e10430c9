//! Helpers shared by the `shared` crate's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use ocop_shared::bundled;
use ocop_shared::rubric::Rubric;
use ocop_shared::score::{SheetScore, score_sheet};
use ocop_shared::wire::{Answer, Level};

pub fn cereal() -> Rubric {
    bundled::load(bundled::FOOD_PROCESSED_CEREAL_1048).rubric
}

pub fn fresh() -> Rubric {
    bundled::load(bundled::FOOD_FRESH_PRODUCE_1048).rubric
}

/// Answers picking, for each criterion, the option chosen by `pick(options sorted by points)`.
pub fn answers_by(
    r: &Rubric,
    mut pick: impl FnMut(&str, &[(&str, u32)]) -> usize,
) -> BTreeMap<String, Answer> {
    let mut out = BTreeMap::new();
    for (_, _, c) in r.criteria() {
        let mut opts: Vec<(&str, u32)> = c.options().map(|o| (o.id.as_str(), o.points)).collect();
        opts.sort_by_key(|(id, p)| (*p, id.to_string()));
        let i = pick(&c.code, &opts).min(opts.len() - 1);
        out.insert(
            c.code.clone(),
            Answer {
                option: Some(opts[i].0.to_string()),
                ..Default::default()
            },
        );
    }
    out
}

pub fn all_max(r: &Rubric) -> BTreeMap<String, Answer> {
    answers_by(r, |_, o| o.len() - 1)
}

pub fn all_min(r: &Rubric) -> BTreeMap<String, Answer> {
    answers_by(r, |_, _| 0)
}

/// Answers that give exactly `target` points: from all maxima, lower criteria
/// one by one, sparing those carrying per-star requirements until last so that
/// a total of 72 really means 4 stars.
pub fn answers_totalling(r: &Rubric, target: u32) -> BTreeMap<String, Answer> {
    let mut answers = all_max(r);
    let mut deficit = 100u32.checked_sub(target).expect("target above 100");
    let required: Vec<&str> = r
        .star_requirements
        .iter()
        .map(|q| q.criterion.as_str())
        .collect();
    let (spare, rest): (Vec<_>, Vec<_>) = r
        .criteria()
        .map(|(_, _, c)| c)
        .partition(|c| required.contains(&c.code.as_str()));
    for c in rest.into_iter().chain(spare) {
        if deficit == 0 {
            break;
        }
        let best = c
            .options()
            .filter(|o| c.max_points - o.points <= deficit)
            .min_by_key(|o| (o.points, o.id.clone()))
            .expect("the top option always fits");
        deficit -= c.max_points - best.points;
        answers.insert(
            c.code.clone(),
            Answer {
                option: Some(best.id.clone()),
                ..Default::default()
            },
        );
    }
    assert_eq!(deficit, 0, "cannot reach {target} exactly");
    answers
}

pub fn score(r: &Rubric, a: &BTreeMap<String, Answer>) -> SheetScore {
    score_sheet(r, a, Level::Province).expect("answers fit the rubric")
}
