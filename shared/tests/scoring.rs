//! Scoring single sheets on the bundled rubrics.
mod common;

use common::*;
use ocop_shared::score::{AnswerError, SheetFlag, check_answer, score_sheet};
use ocop_shared::wire::{Answer, Level};
use proptest::prelude::*;
use rstest::rstest;

#[rstest]
#[case::cereal(cereal())]
#[case::fresh(fresh())]
fn all_maximum_options_give_one_hundred(#[case] r: ocop_shared::rubric::Rubric) {
    let s = score(&r, &all_max(&r));
    assert_eq!(s.total, 100);
    assert_eq!(
        s.parts.iter().map(|p| p.points).collect::<Vec<_>>(),
        vec![35, 25, 40]
    );
    assert!(s.complete());
    assert_eq!(s.star.band, 5);
    assert_eq!(
        s.star.stars, 4,
        "province level gives 4 stars, proposed for 5"
    );
    assert!(s.star.proposed_for_five);
}

#[rstest]
#[case::cereal(cereal())]
#[case::fresh(fresh())]
fn all_minimum_options_give_the_sum_of_minima(#[case] r: ocop_shared::rubric::Rubric) {
    let minima: u32 = r.criteria().map(|(_, _, c)| c.min_points()).sum();
    let s = score(&r, &all_min(&r));
    assert_eq!(s.total, minima);
    assert!(minima > 0, "some criteria start at 1 point");
    assert_eq!(s.star.stars, 1);
}

#[test]
fn unanswered_criteria_are_listed_in_sheet_order_and_the_star_is_provisional() {
    let r = cereal();
    let mut a = all_max(&r);
    a.remove("6.3");
    a.remove("1.2");
    let s = score(&r, &a);
    assert_eq!(s.unanswered, vec!["1.2", "6.3"]);
    assert_eq!(s.total, 100 - 3 - 3);
    assert!(
        s.star
            .reasons
            .iter()
            .any(|x| x.en().contains("2 criteria unanswered"))
    );
}

#[test]
fn disqualifying_knockout_gives_no_star_with_the_reason() {
    let r = cereal();
    let mut a = all_max(&r);
    a.get_mut("1.1").unwrap().knockout = true;
    let s = score(&r, &a);
    assert_eq!(s.total, 100, "points are still shown");
    assert!(s.star.disqualified);
    assert_eq!(s.star.stars, 0);
    assert!(
        s.star
            .reasons
            .iter()
            .any(|x| x.vi().contains("Bị loại theo tiêu chí 1.1"))
    );
}

#[test]
fn foreign_matter_knockout_zeroes_the_rest_of_the_sensory_section() {
    let r = cereal();
    let mut a = all_max(&r);
    a.insert(
        "6.1".into(),
        Answer {
            option: Some("a".into()),
            knockout: true,
            ..Default::default()
        },
    );
    a.remove("6.4"); // not required any more
    let s = score(&r, &a);
    // Section 6 is 20 points; 6.1 option a gives 0, the others are not considered.
    assert_eq!(s.part_points("C"), 40 - 20);
    assert!(
        s.complete(),
        "criteria of a zeroed section are not required: {:?}",
        s.unanswered
    );
    assert!(
        s.star
            .reasons
            .iter()
            .any(|x| x.en().contains("section 6 not considered"))
    );
}

#[test]
fn unmet_star_requirement_caps_the_star() {
    let r = cereal();
    let mut a = all_max(&r);
    // 8.1 option a (0 points): no product standard declared → no 3★ (781).
    a.insert(
        "8.1".into(),
        Answer {
            option: Some("a".into()),
            ..Default::default()
        },
    );
    let s = score(&r, &a);
    assert_eq!(s.total, 97);
    assert_eq!(s.star.band, 5);
    assert_eq!(s.star.stars, 2);
    assert_eq!(s.star.capped_at, Some(2));
    assert!(!s.star.proposed_for_five);
    assert!(s.flags.contains(&SheetFlag::Cap {
        criterion: "8.1".into(),
        cap: 2,
        requirement_stars: Some(3)
    }));
}

#[test]
fn mandatory_criterion_at_its_lowest_option_caps_at_two_stars() {
    let mut r = cereal();
    for p in &mut r.parts {
        for s in &mut p.sections {
            for c in &mut s.criteria {
                if c.code == "4.1" {
                    c.mandatory = true;
                }
            }
        }
    }
    let mut a = all_max(&r);
    a.insert(
        "4.1".into(),
        Answer {
            option: Some("a".into()),
            ..Default::default()
        },
    ); // 1 point, the lowest
    let s = score(&r, &a);
    assert_eq!(s.total, 96);
    assert_eq!(s.star.stars, 2);
    assert!(
        s.star
            .reasons
            .iter()
            .any(|x| x.vi().contains("Tiêu chí bắt buộc 4.1 không đạt"))
    );
}

#[rstest]
#[case::unknown_criterion("99.9", Answer { option: Some("a".into()), ..Default::default() }, "criterion \"99.9\" is not on score sheet 1048-food-processed-cereal@1")]
#[case::unknown_option("1.1", Answer { option: Some("z".into()), ..Default::default() }, "option \"z\" is not an option of criterion 1.1 (valid: a=1, b=2, c=3)")]
#[case::knockout_without_rule("1.2", Answer { option: Some("a".into()), knockout: true, ..Default::default() }, "criterion 1.2 has no knock-out to raise")]
#[case::bad_hash("1.2", Answer { option: None, attachments: vec!["XYZ".into()], ..Default::default() }, "attachment \"XYZ\" of criterion 1.2 is not a lowercase hex sha-256")]
fn answers_that_do_not_fit_are_refused_with_a_clear_message(
    #[case] code: &str,
    #[case] a: Answer,
    #[case] msg: &str,
) {
    let r = cereal();
    let e: AnswerError = check_answer(&r, code, &a).unwrap_err();
    assert_eq!(e.to_string(), msg);
    let mut all = all_max(&r);
    all.insert(code.into(), a);
    assert!(score_sheet(&r, &all, Level::Province).is_err());
}

#[test]
fn central_level_grants_five_stars() {
    let r = fresh();
    let s = score_sheet(&r, &all_max(&r), Level::Central).unwrap();
    assert_eq!(s.star.stars, 5);
    assert!(!s.star.proposed_for_five);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever options are picked (or left out), parts never exceed their caps
    /// and the total is the sum of the parts.
    #[test]
    fn totals_never_exceed_caps(seed in proptest::collection::vec(0usize..8, 31), skip in proptest::collection::vec(any::<bool>(), 31), which in 0usize..2) {
        let r = if which == 0 { cereal() } else { fresh() };
        let mut i = 0;
        let mut a = answers_by(&r, |_, _| { let v = seed[i % seed.len()]; i += 1; v });
        for ((code, _), s) in a.clone().iter().zip(skip.iter()) {
            if *s { a.remove(code); }
        }
        let s = score(&r, &a);
        for p in &s.parts {
            prop_assert!(p.points <= p.cap);
        }
        prop_assert_eq!(s.total, s.parts.iter().map(|p| p.points).sum::<u32>());
        prop_assert!(s.total <= 100);
    }

    /// Every single option of every bundled criterion scores within its part cap.
    #[test]
    fn every_bundled_option_scores_within_its_part_cap(which in 0usize..2, crit in 0usize..31, opt in 0usize..6) {
        let r = if which == 0 { cereal() } else { fresh() };
        let (p, _, c) = r.criteria().nth(crit).unwrap();
        let opts: Vec<_> = c.options().collect();
        let o = opts[opt % opts.len()];
        let mut a = std::collections::BTreeMap::new();
        a.insert(c.code.clone(), Answer { option: Some(o.id.clone()), ..Default::default() });
        let s = score(&r, &a);
        prop_assert_eq!(s.part_points(&p.code), o.points);
        prop_assert!(o.points <= c.max_points && o.points <= p.cap);
    }
}
