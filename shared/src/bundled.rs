//! Rubrics shipped with the software, embedded at compile time: the 26
//! sheets of Decision 26/2026/QĐ-TTg (in force), and the 1048/781 sheets and
//! the 148 template, kept because sheets already scored on them stay pinned.

use crate::rubric::Rubric;
use crate::validate::{Loaded, load_rubric};

/// 1048/781 food sheet: Thực phẩm chế biến — Chế biến từ gạo, ngũ cốc (31 criteria).
pub const FOOD_PROCESSED_CEREAL_1048: &str =
    include_str!("../rubrics/1048-food-processed-cereal.json");
/// 1048/781 food sheet: Thực phẩm tươi sống — Rau, củ, quả, hạt tươi (31 criteria).
pub const FOOD_FRESH_PRODUCE_1048: &str = include_str!("../rubrics/1048-food-fresh-produce.json");
/// 148 template: parts A 40 / B 25 / C 35 with their sections; criteria to import.
pub const TEMPLATE_148: &str = include_str!("../rubrics/148-template.json");

/// The bundled files of the decisions before 26/2026, as `(file name, text)`.
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

/// The 26 sheets of Decision 26/2026/QĐ-TTg, as `(Phụ lục I code, file
/// name, text)` in sheet order.
pub const SHEETS_26_2026: [(&str, &str, &str); 26] = crate::bundled_26_2026::SHEETS;

/// Every bundled rubric file, as `(file name, text)`: 26/2026 first.
pub fn all_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    SHEETS_26_2026
        .iter()
        .map(|&(_, name, text)| (name, text))
        .chain(ALL)
}

/// The 26 sheets of Decision 26/2026/QĐ-TTg, in sheet order.
pub fn sheets_26_2026() -> Vec<Rubric> {
    SHEETS_26_2026
        .iter()
        .map(|&(_, _, text)| load(text).rubric)
        .collect()
}

/// The 26/2026 sheet of a product set, by its Phụ lục I code ("I.4.a"):
/// how an admin picks the sheet for a product.
pub fn sheet_26_2026(annex1_code: &str) -> Option<Rubric> {
    SHEETS_26_2026
        .iter()
        .find(|&&(code, _, _)| code == annex1_code)
        .map(|&(_, _, text)| load(text).rubric)
}

/// The two complete, scoreable 1048 sheets (what the demo and the server's
/// fixtures score on; new rounds on 26/2026 are the app's change to make).
pub fn scoreable() -> Vec<Rubric> {
    vec![
        load(FOOD_PROCESSED_CEREAL_1048).rubric,
        load(FOOD_FRESH_PRODUCE_1048).rubric,
    ]
}
