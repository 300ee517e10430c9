//! The 26 score sheets of Decision 26/2026/QĐ-TTg: each loads and validates,
//! and their star marks and disqualifiers rank products as
//! docs/rubric-format.md says, with reasons in Vietnamese and English.

use std::collections::BTreeMap;

use ocop_shared::bundled;
use ocop_shared::rubric::{Decision, Rubric};
use ocop_shared::score::{AnswerError, score_sheet};
use ocop_shared::stars::Reason;
use ocop_shared::validate::load_rubric;
use ocop_shared::wire::{Answer, Level};
use rstest::rstest;

fn sheet(code: &str) -> Rubric {
    bundled::sheet_26_2026(code).unwrap_or_else(|| panic!("no 26/2026 sheet {code}"))
}

fn pick(option: &str) -> Answer {
    Answer {
        option: Some(option.into()),
        ..Default::default()
    }
}

/// The fewest points criterion `code` may give with its star marks up to
/// `up_to` stars met.
fn floor(r: &Rubric, code: &str, up_to: u8) -> u32 {
    r.star_requirements
        .iter()
        .filter(|q| q.criterion == code && q.stars <= up_to)
        .map(|q| q.min_points)
        .max()
        .unwrap_or(0)
}

/// Answers worth exactly `target` points, with every star mark met but by
/// the `fixed` choices; when the points are too few for that (50 points
/// cannot meet every 5★ mark), every mark up to 4★, else up to 3★.
fn answers(r: &Rubric, target: u32, fixed: &[(&str, &str)]) -> BTreeMap<String, Answer> {
    (3..=5)
        .rev()
        .find_map(|up_to| answers_up_to(r, target, fixed, up_to))
        .unwrap_or_else(|| panic!("{target} points cannot be reached with the 3★ marks met"))
}

fn answers_up_to(
    r: &Rubric,
    target: u32,
    fixed: &[(&str, &str)],
    up_to: u8,
) -> Option<BTreeMap<String, Answer>> {
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (_, _, c) in r.criteria() {
        let chosen = match fixed.iter().find(|(code, _)| *code == c.code) {
            Some((_, id)) => c
                .option(id)
                .unwrap_or_else(|| panic!("{} has no {id}", c.code)),
            None => c.options().max_by_key(|o| o.points).unwrap(),
        };
        total += chosen.points;
        out.insert(c.code.clone(), pick(&chosen.id));
    }
    let mut deficit = total
        .checked_sub(target)
        .expect("target above what the choices allow");
    for (_, _, c) in r.criteria() {
        if deficit == 0 || fixed.iter().any(|(code, _)| *code == c.code) {
            continue;
        }
        let low = floor(r, &c.code, up_to);
        let best = c
            .options()
            .filter(|o| o.points >= low && c.max_points - o.points <= deficit)
            .min_by_key(|o| o.points)
            .expect("the top option always fits");
        deficit -= c.max_points - best.points;
        out.insert(c.code.clone(), pick(&best.id));
    }
    (deficit == 0).then_some(out)
}

fn missed_marks(reasons: &[Reason]) -> Vec<(String, u8, String)> {
    reasons
        .iter()
        .filter_map(|r| match r {
            Reason::RequirementNotMet {
                criterion,
                stars,
                option: Some(o),
                ..
            } => Some((criterion.clone(), *stars, o.clone())),
            _ => None,
        })
        .collect()
}

#[rstest]
#[case::sheet_01_i_1_a("I.1.a", 1)]
#[case::sheet_02_i_1_b("I.1.b", 2)]
#[case::sheet_03_i_2_a("I.2.a", 3)]
#[case::sheet_04_i_2_b("I.2.b", 4)]
#[case::sheet_05_i_3_a("I.3.a", 5)]
#[case::sheet_06_i_3_b("I.3.b", 6)]
#[case::sheet_07_i_3_c("I.3.c", 7)]
#[case::sheet_08_i_3_d("I.3.d", 8)]
#[case::sheet_09_i_4_a("I.4.a", 9)]
#[case::sheet_10_i_4_b("I.4.b", 10)]
#[case::sheet_11_i_5_a("I.5.a", 11)]
#[case::sheet_12_i_5_b("I.5.b", 12)]
#[case::sheet_13_i_6("I.6", 13)]
#[case::sheet_14_ii_1_a("II.1.a", 14)]
#[case::sheet_15_ii_1_b("II.1.b", 15)]
#[case::sheet_16_ii_2_a("II.2.a", 16)]
#[case::sheet_17_ii_2_b("II.2.b", 17)]
#[case::sheet_18_iii_1("III.1", 18)]
#[case::sheet_19_iii_2("III.2", 19)]
#[case::sheet_20_iii_3("III.3", 20)]
#[case::sheet_21_iv_1("IV.1", 21)]
#[case::sheet_22_iv_2("IV.2", 22)]
#[case::sheet_23_v_1("V.1", 23)]
#[case::sheet_24_v_2("V.2", 24)]
#[case::sheet_25_v_3("V.3", 25)]
#[case::sheet_26_vi_1("VI.1", 26)]
fn every_26_2026_sheet_loads_and_validates_with_exact_caps_and_marks_on_existing_options(
    #[case] annex1_code: &str,
    #[case] sheet_no: u32,
) {
    let (_, name, text) = bundled::SHEETS_26_2026[sheet_no as usize - 1];
    let r = load_rubric(text)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .rubric;
    assert_eq!(r.decision, Decision::D26_2026);
    assert_eq!(r.format, "ocop-rubric/2");
    let caps: Vec<(&str, u32, u32)> = r
        .parts
        .iter()
        .map(|p| (p.code.as_str(), p.cap, p.criteria_max_sum()))
        .collect();
    assert_eq!(caps, [("A", 40, 40), ("B", 25, 25), ("C", 35, 35)]);
    for s in r.parts.iter().flat_map(|p| &p.sections) {
        let sum: u32 = s.criteria.iter().map(|c| c.max_points).sum();
        assert_eq!(s.max_points, Some(sum), "section {}", s.code);
    }
    assert!(!r.star_requirements.is_empty());
    for q in &r.star_requirements {
        assert!((3..=5).contains(&q.stars));
        let c = r
            .criterion(&q.criterion)
            .expect("a mark on an existing criterion");
        let id = q
            .option
            .as_deref()
            .expect("every 26/2026 requirement is a star mark");
        let o = c.option(id).expect("a mark on an existing option");
        assert_eq!(
            (o.points, o.text_vi.as_str()),
            (q.min_points, q.text_vi.as_str())
        );
        assert_eq!(r.star_mark(&q.criterion, id), Some(q.stars));
    }
    let p = r.provenance.as_ref().expect("provenance");
    assert_eq!(
        (
            p.decision.as_str(),
            p.date.as_str(),
            p.sheet_no,
            p.annex1_code.as_str()
        ),
        ("26/2026/QĐ-TTg", "2026-05-22", sheet_no, annex1_code)
    );
    assert!(p.annex.starts_with("Phụ lục II"));
    assert_eq!(sheet(annex1_code), r, "found by its Phụ lục I code");
}

#[test]
fn the_26_sheets_hold_the_787_criteria_2579_options_and_572_star_marks_of_the_decision() {
    let sheets = bundled::sheets_26_2026();
    let criteria: usize = sheets.iter().map(Rubric::criterion_count).sum();
    let options: usize = sheets
        .iter()
        .flat_map(|r| r.criteria().map(|(_, _, c)| c.options().count()))
        .sum();
    let marks: usize = sheets.iter().map(|r| r.star_requirements.len()).sum();
    assert_eq!(
        (sheets.len(), criteria, options, marks),
        (26, 787, 2579, 572)
    );
    let three_level = sheets
        .iter()
        .flat_map(|r| {
            r.criteria()
                .map(|(_, _, c)| c.code.clone())
                .collect::<Vec<_>>()
        })
        .filter(|c| c.matches('.').count() == 2)
        .count();
    assert_eq!(three_level, 12, "criteria such as 6.1.1");
}

#[rstest]
#[case::misprint_13_read_as_3("I.2.b", "criterion 7: option c: source prints 13, corrected to 3.0")]
#[case::misprint_11_read_as_1("I.5.a", "source prints 11")]
#[case::empty_cell_read_as_0(
    "I.2.b",
    "criterion 1.2: option a: points cell empty in source; 0 assumed"
)]
#[case::yes_no_added_to_the_bilingual_label(
    "I.1.a",
    "criterion 2.4: source lists no answer options"
)]
#[case::sheet_heading_from_the_list("I.6", "sheet: sheet heading not captured by the parser")]
fn every_transcription_correction_is_in_the_provenance(#[case] code: &str, #[case] text: &str) {
    let r = sheet(code);
    let corrections = &r.provenance.as_ref().unwrap().corrections;
    assert!(
        corrections.iter().any(|c| c.contains(text)),
        "{corrections:#?}"
    );
}

#[rstest]
#[case::requirement_line(
    "I.1.a",
    "1.1",
    "Yêu cầu: 100% sản phẩm được trồng trên địa bàn cấp tỉnh"
)]
#[case::requirement_run_into_the_title(
    "I.4.a",
    "5.3",
    "Yêu cầu: Nội dung câu chuyện sản phẩm OCOP phải thể hiện rõ nguồn gốc"
)]
#[case::only_applies_when("I.4.a", "5.2", "Chỉ áp dụng khi có câu chuyện")]
#[case::foreign_matter_note("I.5.a", "6.1.1", "Chú ý: Nếu có các tạp chất không chấp nhận được")]
fn requirement_and_note_lines_are_shown_verbatim_on_their_criterion(
    #[case] code: &str,
    #[case] criterion: &str,
    #[case] line: &str,
) {
    let r = sheet(code);
    let c = r.criterion(criterion).unwrap();
    assert!(
        c.notes.iter().any(|n| n.starts_with(line)),
        "{:#?}",
        c.notes
    );
    assert!(!c.text_vi.contains("Yêu cầu:"), "{}", c.text_vi);
    assert!(
        r.criteria().all(|(_, _, c)| c
            .notes
            .iter()
            .all(|n| !n.starts_with("Phần") && n != "TỔNG CỘNG")),
        "part headings and the total are not notes"
    );
}

#[test]
fn the_two_cases_of_a_tourism_criterion_are_two_option_sets() {
    let r = sheet("VI.1");
    for code in ["8", "9", "15"] {
        let c = r.criterion(code).unwrap();
        let labels: Vec<&str> = c
            .option_sets
            .iter()
            .filter_map(|s| s.label_vi.as_deref())
            .collect();
        assert_eq!(labels.len(), 2, "{code}");
        assert!(labels[0].starts_with("Trường hợp 1: Dịch vụ du lịch do cộng đồng cung cấp"));
        assert!(labels[1].starts_with("Trường hợp 2: "));
        assert!(
            c.option_sets
                .iter()
                .all(|s| s.options.iter().map(|o| o.points).max() == Some(c.max_points))
        );
    }
}

#[test]
fn evidence_hints_from_the_self_assessment_form_show_on_the_options_that_give_points() {
    let r = sheet("I.4.a");
    let ip = r.criterion("3.5").unwrap();
    assert!(ip.options().all(|o| {
        o.evidence_vi
            .as_deref()
            .is_some_and(|e| e.contains("nhãn hiệu"))
    }));
    let links = r.criterion("1.5").unwrap();
    for o in links.options() {
        assert_eq!(o.evidence_vi.is_some(), o.points > 0, "option {}", o.id);
    }
}

/// A mark missed on one criterion, every other mark met.
#[rstest]
#[case::eighty_six_with_a_5_star_mark_missed_ranks_4_stars(
    "I.5.a",
    86,
    Level::Province, ("1.5", "c"), 4, (5, "d"))]
#[case::eighty_six_on_the_fish_sauce_sheet_likewise(
    "I.4.a",
    86,
    Level::Province, ("6.5", "c"), 4, (5, "d"))]
#[case::ninety_two_centrally_with_a_5_star_mark_missed_ranks_4_stars(
    "I.5.a",
    92,
    Level::Central, ("7", "c"), 4, (5, "d"))]
#[case::seventy_two_with_a_4_star_mark_missed_ranks_3_stars(
    "I.5.a",
    72,
    Level::Province, ("2.1", "c"), 3, (4, "d"))]
#[case::seventy_two_on_the_herbal_sheet_likewise(
    "III.1",
    72,
    Level::Province, ("11", "b"), 3, (4, "c"))]
#[case::seventy_with_a_4_star_mark_missed_ranks_3_stars(
    "I.4.a",
    70,
    Level::Province, ("9", "a"), 3, (4, "b"))]
#[case::sixty_with_a_3_star_mark_missed_caps_at_2_stars(
    "I.5.a",
    60,
    Level::Province, ("1.1", "a"), 2, (3, "b"))]
#[case::fifty_with_a_3_star_mark_missed_caps_at_2_stars(
    "I.4.a",
    50,
    Level::Province, ("2.2", "b"), 2, (3, "c"))]
#[case::eighty_six_with_a_3_star_mark_missed_caps_at_2_stars(
    "III.1",
    86,
    Level::Province, ("2.2", "b"), 2, (3, "c"))]
fn a_missed_star_mark_caps_the_star_and_names_the_criterion_and_the_option_needed(
    #[case] code: &str,
    #[case] total: u32,
    #[case] level: Level,
    #[case] (criterion, chosen): (&str, &str),
    #[case] stars: u8,
    #[case] (mark, needed): (u8, &str),
) {
    let r = sheet(code);
    let s = score_sheet(&r, &answers(&r, total, &[(criterion, chosen)]), level).unwrap();
    assert_eq!(s.total, total);
    assert_eq!(s.star.stars, stars);
    assert!(!s.star.proposed_for_five);
    let missed = missed_marks(&s.star.reasons);
    assert!(
        missed.contains(&(criterion.to_string(), mark, needed.to_string())),
        "{missed:?}"
    );
    let reason = s
        .star
        .reasons
        .iter()
        .find(|x| matches!(x, Reason::RequirementNotMet { stars: m, criterion: c, .. } if *m == mark && c == criterion))
        .unwrap();
    let points = r
        .criterion(criterion)
        .unwrap()
        .option(needed)
        .unwrap()
        .points;
    assert!(reason.vi().starts_with(&format!(
        "Chưa đạt yêu cầu tối thiểu cho {mark} sao: tiêu chí {criterion} cần đạt mức {needed} ({points} điểm) trở lên — “"
    )), "{}", reason.vi());
    assert_eq!(
        reason.en(),
        format!(
            "minimum requirement for {mark} stars not met: criterion {criterion} needs option {needed} ({points} points) or better (1 of 1 members)"
        )
    );
    // With the marked option chosen instead, the mark is met and no longer caps.
    let met = score_sheet(&r, &answers(&r, total, &[(criterion, needed)]), level).unwrap();
    let still = missed_marks(&met.star.reasons);
    assert!(
        !still.iter().any(|(c, m, _)| c == criterion && *m == mark),
        "{still:?}"
    );
    assert_eq!(met.star.capped_at, None, "{:?}", met.star.reasons);
    assert!(met.star.stars >= stars);
}

#[test]
fn the_reason_for_a_missed_5_star_mark_reads_in_vietnamese_with_the_option_text() {
    let r = sheet("I.5.a");
    let s = score_sheet(&r, &answers(&r, 86, &[("1.5", "c")]), Level::Province).unwrap();
    let vi: Vec<String> = s.star.reasons.iter().map(Reason::vi).collect();
    assert_eq!(
        vi,
        [
            "Tổng điểm 86.00 thuộc khoảng 4 sao",
            "Chưa đạt yêu cầu tối thiểu cho 5 sao: tiêu chí 1.5 cần đạt mức d (3 điểm) trở lên — “Có hợp đồng liên kết trên 75% sản lượng tiêu thụ và tổ chức thực hiện hợp đồng ổn định từ 12 tháng trở lên tính đến thời điểm đăng ký đánh giá, phân hạng OCOP” (1/1 thành viên)",
        ]
    );
}

#[test]
fn ninety_points_with_a_5_star_mark_missed_are_not_proposed_for_5_stars() {
    let r = sheet("I.4.a");
    let s = score_sheet(&r, &answers(&r, 90, &[("7", "c")]), Level::Province).unwrap();
    assert_eq!(
        (s.star.stars, s.star.proposed_for_five, s.star.capped_at),
        (4, false, Some(4))
    );
    assert!(
        !s.star
            .reasons
            .iter()
            .any(|x| matches!(x, Reason::ProposedForFive { .. }))
    );
}

/// Every mark the points allow met (all of them from 70 points): the band
/// alone decides, 5★ only centrally.
#[rstest]
#[case::forty_nine_is_2_stars(49, Level::Province, 2, false)]
#[case::fifty_is_3_stars(50, Level::Province, 3, false)]
#[case::sixty_nine_is_3_stars(69, Level::Province, 3, false)]
#[case::seventy_is_4_stars(70, Level::Province, 4, false)]
#[case::eighty_nine_is_4_stars(89, Level::Province, 4, false)]
#[case::ninety_is_4_stars_proposed_for_5_at_the_province(90, Level::Province, 4, true)]
#[case::ninety_is_5_stars_centrally(90, Level::Central, 5, false)]
#[case::eighty_nine_is_4_stars_centrally(89, Level::Central, 4, false)]
fn boundary_totals_with_every_mark_met_rank_by_the_band(
    #[case] total: u32,
    #[case] level: Level,
    #[case] stars: u8,
    #[case] proposed: bool,
    #[values("I.4.a", "I.2.a", "III.1", "VI.1")] code: &str,
) {
    let r = sheet(code);
    let s = score_sheet(&r, &answers(&r, total, &[]), level).unwrap();
    assert_eq!(s.total, total);
    assert_eq!(
        (s.star.stars, s.star.proposed_for_five),
        (stars, proposed),
        "{:?}",
        s.star.reasons
    );
    assert_eq!(s.star.capped_at, None);
    let missed = missed_marks(&s.star.reasons);
    assert!(missed.iter().all(|(_, m, _)| *m > stars), "{missed:?}");
    if total >= 70 {
        assert!(missed.is_empty(), "{missed:?}");
    }
}

#[rstest]
#[case::ninety_five_points(95, Level::Central)]
#[case::seventy_two_points(72, Level::Province)]
fn a_raised_disqualifier_gives_no_star_and_keeps_its_reason(
    #[case] total: u32,
    #[case] level: Level,
) {
    let r = sheet("I.4.a");
    let d = &r.disqualifiers[0];
    assert!(d.text_vi.starts_with("Hồ sơ bị loại khi: Giả mạo hồ sơ"));
    let mut a = answers(&r, total, &[]);
    a.insert(
        d.code.clone(),
        Answer {
            knockout: true,
            note: "Giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm đã hết hạn".into(),
            ..Default::default()
        },
    );
    let s = score_sheet(&r, &a, level).unwrap();
    assert_eq!(
        (s.total, s.star.stars, s.star.disqualified),
        (total, 0, true)
    );
    let reason = s
        .star
        .reasons
        .iter()
        .find(|x| matches!(x, Reason::DossierDisqualified { .. }))
        .expect("the disqualifier is among the reasons");
    assert_eq!(
        reason.vi(),
        format!(
            "Bị loại, không xếp hạng sao — {} (1/1 thành viên)",
            d.text_vi
        )
    );
    assert_eq!(
        reason.en(),
        "dossier disqualified (loai-1): no star (1 of 1 members)"
    );
    // Lowered again, the star is back.
    a.get_mut(&d.code).unwrap().knockout = false;
    assert!(score_sheet(&r, &a, level).unwrap().star.stars > 0);
}

#[rstest]
#[case::an_option_on_a_disqualifier(
    "I.4.a",
    "disqualifier loai-1 is raised or lowered, not answered with an option"
)]
#[case::a_disqualifier_the_sheet_does_not_print(
    "III.2",
    "criterion \"loai-1\" is not on score sheet qd26-2026-19-my-pham-tu-duoc-lieu@1"
)]
fn a_disqualifier_answer_that_does_not_fit_is_refused(#[case] code: &str, #[case] message: &str) {
    let r = sheet(code);
    let a = Answer {
        option: Some("a".into()),
        knockout: true,
        ..Default::default()
    };
    let e: AnswerError = ocop_shared::score::check_answer(&r, "loai-1", &a).unwrap_err();
    assert_eq!(e.to_string(), message);
}
