//! Rubrics shipped with the software, embedded at compile time.

use crate::rubric::Rubric;
use crate::validate::{Loaded, load_rubric};

/// 1048/781 food sheet: Thực phẩm chế biến — Chế biến từ gạo, ngũ cốc (31 criteria).
pub const FOOD_PROCESSED_CEREAL_1048: &str =
    include_str!("../rubrics/1048-food-processed-cereal.json");
/// 1048/781 food sheet: Thực phẩm tươi sống — Rau, củ, quả, hạt tươi (31 criteria).
pub const FOOD_FRESH_PRODUCE_1048: &str = include_str!("../rubrics/1048-food-fresh-produce.json");
/// 148 template: parts A 40 / B 25 / C 35 with their sections; criteria to import.
pub const TEMPLATE_148: &str = include_str!("../rubrics/148-template.json");

/// All bundled rubric files, as `(file name, text)`.
pub const ALL: [(&str, &str); 3] = [
    (
        "1048-food-processed-cereal.json",
        FOOD_PROCESSED_CEREAL_1048,
    ),
    ("1048-food-fresh-produce.json", FOOD_FRESH_PRODUCE_1048),
    ("148-template.json", TEMPLATE_148),
];

/// Loads a bundled rubric; they are validated by the test suite, so a failure
/// here is a build defect.
pub fn load(text: &str) -> Loaded {
    match load_rubric(text) {
        Ok(l) => l,
        Err(e) => panic!("bundled rubric is invalid: {e}"),
    }
}

/// The two complete, scoreable 1048 sheets.
pub fn scoreable() -> Vec<Rubric> {
    vec![
        load(FOOD_PROCESSED_CEREAL_1048).rubric,
        load(FOOD_FRESH_PRODUCE_1048).rubric,
    ]
}
