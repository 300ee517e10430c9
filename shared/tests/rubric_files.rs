//! Loading rubric files: bundled sheets, every validation error with its path,
//! arbitrary input never panics, and the file format is frozen by a golden file.
mod common;

use ocop_shared::bundled;
use ocop_shared::rubric::Rubric;
use ocop_shared::validate::{RubricError, Severity, load_rubric};
use proptest::prelude::*;
use rstest::rstest;
use serde_json::{Value, json};

#[rstest]
#[case::cereal(bundled::FOOD_PROCESSED_CEREAL_1048, 31, false)]
#[case::fresh(bundled::FOOD_FRESH_PRODUCE_1048, 31, false)]
#[case::template_148(bundled::TEMPLATE_148, 0, true)]
fn bundled_rubrics_load_and_validate(
    #[case] text: &str,
    #[case] criteria: usize,
    #[case] template: bool,
) {
    let l = load_rubric(text).unwrap();
    assert_eq!(l.rubric.criterion_count(), criteria);
    assert_eq!(l.rubric.template, template);
    assert_eq!(l.rubric.total_cap(), 100);
}

/// The code lookup the server makes for every answer, by a plain scan.
fn scanned<'r>(r: &'r Rubric, code: &str) -> Option<&'r ocop_shared::rubric::Criterion> {
    r.parts
        .iter()
        .flat_map(|p| &p.sections)
        .flat_map(|s| &s.criteria)
        .find(|c| c.code == code)
}

#[test]
fn a_criterion_is_found_by_its_code_even_after_the_rubric_changes() {
    let mut r = load_rubric(bundled::FOOD_PROCESSED_CEREAL_1048)
        .unwrap()
        .rubric;
    let fresh = r.clone();
    let codes: Vec<String> = r.criteria().map(|(_, _, c)| c.code.clone()).collect();
    for code in codes
        .iter()
        .map(String::as_str)
        .chain(["", "9.9", "1.1 ", "A"])
    {
        assert_eq!(
            r.criterion(code).map(|c| &c.code),
            scanned(&r, code).map(|c| &c.code),
            "{code:?}"
        );
    }
    // Looking into a rubric does not make it unequal to its copy.
    assert_eq!(r, fresh);
    // Criteria moved, renamed and removed after the first lookup.
    r.parts.swap(0, 2);
    r.parts[1].sections[0].criteria[0].code = "7.7".into();
    r.parts[2].sections.pop();
    for code in codes.iter().map(String::as_str).chain(["7.7"]) {
        assert_eq!(
            r.criterion(code).map(|c| (&c.code, c.max_points)),
            scanned(&r, code).map(|c| (&c.code, c.max_points)),
            "{code:?}"
        );
    }
}

#[test]
fn template_148_has_the_148_caps_and_section_names() {
    let r = load_rubric(bundled::TEMPLATE_148).unwrap().rubric;
    let caps: Vec<_> = r.parts.iter().map(|p| (p.code.as_str(), p.cap)).collect();
    assert_eq!(caps, vec![("A", 40), ("B", 25), ("C", 35)]);
    let names: Vec<_> = r.parts[0]
        .sections
        .iter()
        .map(|s| s.title_vi.as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "Tổ chức sản xuất",
            "Phát triển sản phẩm",
            "Sức mạnh cộng đồng"
        ]
    );
    assert_eq!(r.parts[2].sections.len(), 3);
}

#[test]
fn source_slip_in_criterion_6_2_stays_visible_as_a_warning() {
    let l = load_rubric(bundled::FOOD_PROCESSED_CEREAL_1048).unwrap();
    assert_eq!(l.warnings.len(), 1);
    let w = &l.warnings[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(
        w.path,
        "parts[2].sections[0].criteria[1].option_sets[0].options[3].points"
    );
    assert!(
        w.message.contains("criterion 6.2 both give 3 points"),
        "{}",
        w.message
    );
    assert!(l.rubric.source_notes.iter().any(|n| n.contains("6.2")));
}

#[test]
fn alternative_option_sets_of_criterion_3_2_are_kept() {
    let r = common::cereal();
    let c = r.criterion("3.2").unwrap();
    assert_eq!(c.option_sets.len(), 2);
    assert_eq!(c.options().count(), 4);
    assert_eq!(c.max_points, 2);
}

/// A small valid rubric used to build broken ones.
fn tiny() -> Value {
    let crit = |code: &str, max: u32| {
        json!({
            "code": code, "text_vi": format!("Tiêu chí {code}"), "max_points": max,
            "option_sets": [{ "options": [
                { "id": "a", "text_vi": "Không", "points": 0 },
                { "id": "b", "text_vi": "Có", "points": max }
            ]}]
        })
    };
    json!({
        "format": "ocop-rubric/1", "id": "test-tiny", "version": 1, "decision": "148",
        "title_vi": "Phiếu thử", "group": "Thực phẩm", "subgroup": "Thử",
        "parts": [
            { "code": "A", "title_vi": "Phần A", "cap": 40, "sections": [{ "code": "1", "title_vi": "Mục 1", "criteria": [crit("1.1", 20), crit("1.2", 20)] }] },
            { "code": "B", "title_vi": "Phần B", "cap": 25, "sections": [{ "code": "2", "title_vi": "Mục 2", "criteria": [crit("2.1", 25)] }] },
            { "code": "C", "title_vi": "Phần C", "cap": 35, "sections": [{ "code": "3", "title_vi": "Mục 3", "criteria": [crit("3.1", 35)] }] }
        ]
    })
}

#[test]
fn the_tiny_fixture_is_valid() {
    load_rubric(&tiny().to_string()).unwrap();
}

#[test]
fn an_invalid_rubric_yields_every_error_with_its_path() {
    let mut v = tiny();
    v["id"] = json!("Bad ID!");
    v["parts"][0]["sections"][0]["criteria"][1]["code"] = json!("1.1");
    v["parts"][0]["sections"][0]["criteria"][0]["option_sets"][0]["options"][1]["points"] =
        json!(25);
    v["parts"][1]["sections"][0]["criteria"][0]["option_sets"][0]["options"]
        .as_array_mut()
        .unwrap()
        .pop();
    v["parts"][2]["code"] = json!("D");
    v["parts"][1]["cap"] = json!(30);
    let err = load_rubric(&v.to_string()).unwrap_err();
    let RubricError::Invalid(_) = &err else {
        panic!("expected validation errors, got {err}")
    };
    assert_eq!(
        err.messages(),
        vec![
            r#"id: "Bad ID!" must be 1 to 64 lowercase letters, digits or dashes, e.g. "148-food-processed-cereal""#,
            "parts[0].sections[0].criteria[0].option_sets[0].options[1].points: 25 exceeds the criterion maximum 20",
            r#"parts[0].sections[0].criteria[1].code: criterion "1.1" is used twice (also at parts[0].sections[0].criteria[0])"#,
            "parts[1].cap: 30 differs from 25, the cap decision 148/QĐ-TTg fixes for part B",
            "parts[1].sections[0].criteria[0].option_sets[0].options: has 1 option(s); a criterion needs at least two to choose from",
            "parts[1].sections[0].criteria[0].max_points: is 25 but the best option gives 0; one option must reach the maximum",
            "parts[1].cap: 30 but the criteria maxima of part B sum to 25",
            r#"parts[2].code: "D" is not a known part code; use "A", "B" or "C""#,
            "parts: part C (35 points) is missing",
            "parts: part caps sum to 105; a score sheet totals 100",
        ]
    );
}

#[rstest]
#[case::not_json("{ not json", "(file): key must be a string")]
#[case::wrong_type(
    r#"{"format": 1}"#,
    "format: invalid type: integer `1`, expected a string"
)]
#[case::unknown_field_deep(&tiny().to_string().replace("\"max_points\":20", "\"max_point\":20"), "parts[0].sections[0].criteria[0].max_point: unknown field `max_point`")]
fn malformed_files_name_where_reading_stopped(#[case] text: &str, #[case] starts: &str) {
    let e = load_rubric(text).unwrap_err();
    assert!(e.to_string().starts_with(starts), "{e}");
}

#[test]
fn a_sheet_with_empty_sections_must_be_marked_template() {
    let mut v = tiny();
    v["parts"][2]["sections"][0]["criteria"] = json!([]);
    let e = load_rubric(&v.to_string()).unwrap_err();
    assert!(e.messages().iter().any(|m| {
        m.starts_with("parts[2].sections[0].criteria: a section needs at least one criterion")
    }));
}

/// The rubric file format, frozen: a change here is a format change that
/// needs a new `format` tag and a migration note.
#[test]
fn rubric_file_format_is_frozen() {
    let r: Rubric = serde_json::from_value(tiny()).unwrap();
    let mut with_all = r.clone();
    let c = &mut with_all.parts[0].sections[0].criteria[0];
    c.text_en = Some("Criterion".into());
    c.mandatory = true;
    c.notes = vec!["Ghi chú".into()];
    c.knockout = Some(ocop_shared::rubric::Knockout {
        effect: ocop_shared::rubric::KnockoutEffect::Disqualify,
        text_vi: "Bị loại nếu ...".into(),
        text_en: None,
    });
    c.option_sets[0].label_vi = Some("Trường hợp 1".into());
    c.option_sets[0].options[0].evidence_vi = Some("Hợp đồng, hóa đơn".into());
    with_all
        .star_requirements
        .push(ocop_shared::rubric::StarRequirement {
            stars: 3,
            criterion: "1.1".into(),
            min_points: 1,
            text_vi: "Yêu cầu".into(),
            option: None,
        });
    with_all.source_notes.push("Nguồn".into());
    assert!(load_rubric(&serde_json::to_string(&with_all).unwrap()).is_ok());
    common_golden::check(
        "rubric-format.json",
        &serde_json::to_string_pretty(&with_all).unwrap(),
    );
}

/// Format `/2`, frozen the same way: every field `/1` has and what `/2`
/// added (star marks naming their option, disqualifiers, provenance,
/// section maxima).
#[test]
fn rubric_file_format_2_is_frozen() {
    let mut v = tiny();
    v["format"] = json!("ocop-rubric/2");
    let mut r: Rubric = serde_json::from_value(v).unwrap();
    r.decision = ocop_shared::rubric::Decision::D26_2026;
    let sec = &mut r.parts[0].sections[0];
    sec.max_points = Some(sec.criteria.iter().map(|c| c.max_points).sum());
    r.parts[0].sections[0].criteria[0].notes =
        vec!["Yêu cầu: 100% sản phẩm được trồng trên địa bàn cấp tỉnh".into()];
    r.parts[0].sections[0].criteria[0].option_sets[0].options[1].evidence_vi =
        Some("Hợp đồng, hóa đơn".into());
    r.star_requirements
        .push(ocop_shared::rubric::StarRequirement {
            stars: 4,
            criterion: "1.1".into(),
            min_points: 20,
            text_vi: "Phương án b".into(),
            option: Some("b".into()),
        });
    r.disqualifiers.push(ocop_shared::rubric::Disqualifier {
        code: "loai-1".into(),
        text_vi: "Hồ sơ bị loại khi: Giả mạo hồ sơ".into(),
        text_en: Some("Rejected when the dossier is forged".into()),
    });
    r.provenance = Some(ocop_shared::rubric::Provenance {
        decision: "26/2026/QĐ-TTg".into(),
        date: "2026-05-22".into(),
        annex: "Phụ lục II".into(),
        sheet_no: 1,
        annex1_code: "I.1.a".into(),
        group_as_printed: Some("Thực phẩm. Nhóm: Thực phẩm tươi sống".into()),
        source: "bản sao văn bản".into(),
        corrections: vec!["tiêu chí 7, phương án c: nguồn in 13, sửa thành 3".into()],
    });
    let text = serde_json::to_string_pretty(&r).unwrap();
    let l = load_rubric(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.rubric, r);
    common_golden::check("rubric-format-2.json", &text);
}

/// A `/1` file keeps its meaning: a field `/2` added is refused there, by path.
#[rstest]
#[case::disqualifiers("disqualifiers", json!([{"code": "loai-1", "text_vi": "Hồ sơ bị loại khi: …"}]), "disqualifiers")]
#[case::provenance("provenance", json!({"decision": "26/2026/QĐ-TTg", "date": "2026-05-22", "annex": "Phụ lục II", "sheet_no": 1, "annex1_code": "I.1.a", "source": "bản sao"}), "provenance")]
#[case::star_mark("star_requirements", json!([{"stars": 3, "criterion": "1.1", "min_points": 0, "text_vi": "a", "option": "a"}]), "star_requirements[0].option")]
fn a_format_1_file_cannot_carry_the_fields_of_format_2(
    #[case] field: &str,
    #[case] value: Value,
    #[case] path: &str,
) {
    let mut v = tiny();
    v[field] = value;
    let e = load_rubric(&v.to_string()).unwrap_err();
    assert!(
        e.messages()
            .iter()
            .any(|m| m.starts_with(&format!("{path}: is a field of \"ocop-rubric/2\""))),
        "{e}"
    );
    v["format"] = json!("ocop-rubric/2");
    assert!(
        load_rubric(&v.to_string()).is_ok(),
        "the same file as /2 loads"
    );
}

#[rstest]
#[case("1048-food-processed-cereal.json", bundled::FOOD_PROCESSED_CEREAL_1048)]
#[case("1048-food-fresh-produce.json", bundled::FOOD_FRESH_PRODUCE_1048)]
#[case("148-template.json", bundled::TEMPLATE_148)]
fn bundled_files_round_trip_byte_for_byte(#[case] _name: &str, #[case] text: &str) {
    let r: Rubric = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string_pretty(&r).unwrap() + "\n", text);
}

mod common_golden {
    /// Compares with `tests/golden/<name>`; `UPDATE_GOLDEN=1` rewrites it.
    pub fn check(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, format!("{actual}\n")).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(
            actual,
            want.trim_end_matches('\n'),
            "golden file {name} differs"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text into the loader never panics.
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,400}") {
        let _ = load_rubric(&s);
    }

    /// Arbitrary JSON values spliced into a valid rubric never panic the loader.
    #[test]
    fn arbitrary_json_in_a_rubric_never_panics(path in 0usize..8, v in arb_json()) {
        let mut r = tiny();
        let slots = [
            "/id", "/version", "/parts/0/cap", "/parts/0/sections/0/criteria/0/max_points",
            "/parts/0/sections/0/criteria/0/option_sets/0/options/0/points", "/parts/1/sections",
            "/parts/2/code", "/star_requirements",
        ];
        if let Some(slot) = r.pointer_mut(slots[path]) {
            *slot = v;
        } else {
            r["star_requirements"] = v;
        }
        let _ = load_rubric(&r.to_string());
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u32>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The rules `/2` brought, each reported at its path.
#[rstest]
#[case::section_maximum_differs("/parts/0/sections/0/max_points", json!(18), "parts[0].sections[0].max_points: 18 but the criteria maxima of section 1 sum to 40")]
#[case::mark_on_a_missing_option("/star_requirements", json!([{"stars": 4, "criterion": "1.1", "min_points": 20, "text_vi": "x", "option": "z"}]), "star_requirements[0].option: \"z\" is not an option of criterion 1.1")]
#[case::mark_points_differ_from_its_option("/star_requirements", json!([{"stars": 4, "criterion": "1.1", "min_points": 5, "text_vi": "x", "option": "b"}]), "star_requirements[0].min_points: 5 differs from the 20 points of the marked option b of criterion 1.1")]
#[case::two_requirements_for_one_level("/star_requirements", json!([{"stars": 4, "criterion": "1.1", "min_points": 20, "text_vi": "x", "option": "b"}, {"stars": 4, "criterion": "1.1", "min_points": 0, "text_vi": "y", "option": "a"}]), "star_requirements[1].criterion: criterion 1.1 has a second requirement for 4 stars (also at star_requirements[0])")]
#[case::disqualifier_on_a_criterion_code("/disqualifiers", json!([{"code": "1.1", "text_vi": "Hồ sơ bị loại khi: …"}]), "disqualifiers[0].code: \"1.1\" is a criterion code (at parts[0].sections[0].criteria[0]); a disqualifier needs its own answer key")]
#[case::disqualifier_twice("/disqualifiers", json!([{"code": "loai-1", "text_vi": "a"}, {"code": "loai-1", "text_vi": "b"}]), "disqualifiers[1].code: disqualifier \"loai-1\" is used twice (also at disqualifiers[0])")]
#[case::provenance_date("/provenance", json!({"decision": "26/2026/QĐ-TTg", "date": "22/5/2026", "annex": "Phụ lục II", "sheet_no": 1, "annex1_code": "I.1.a", "source": "bản sao"}), "provenance.date: \"22/5/2026\" is not a date in the form YYYY-MM-DD")]
fn a_broken_format_2_rule_is_reported_at_its_path(
    #[case] pointer: &str,
    #[case] value: Value,
    #[case] message: &str,
) {
    let mut v = tiny();
    v["format"] = json!("ocop-rubric/2");
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut v
    } else {
        v.pointer_mut(parent).unwrap()
    };
    target[key] = value;
    let e = load_rubric(&v.to_string()).unwrap_err();
    assert!(e.messages().iter().any(|m| m == message), "{e}");
}
