//! The rubric (score sheet template) model and its JSON file format.
//!
//! A rubric is versioned data: criteria change with each government decision
//! (1048/2019, 781/2020, 148/2023, 26/2026). A score sheet is pinned to the exact
//! `(id, version)` it was started on, so a later correction never changes a
//! sheet already scored. The file format is documented in `docs/rubric-format.md`
//! and frozen by a golden test.

use serde::{Deserialize, Serialize};

/// The file format tag a rubric file written today carries in `"format"`.
/// `ocop-rubric/2` adds to `/1` what the 26/2026 sheets print: star marks
/// naming their option, disqualifiers, provenance and section maxima.
pub const RUBRIC_FORMAT: &str = "ocop-rubric/2";

/// The first, frozen format: the 1048 sheets and files imported before
/// 26/2026. Still read; it cannot carry the fields `/2` added, so a `/1`
/// file means what it always meant.
pub const RUBRIC_FORMAT_1: &str = "ocop-rubric/1";

/// The legal decision a rubric implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// 1048/QĐ-TTg (2019) as amended by 781/QĐ-TTg (2020): parts A 35 / B 25 / C 40.
    #[serde(rename = "1048/781")]
    D1048,
    /// 148/QĐ-TTg (2023): parts A 40 / B 25 / C 35.
    #[serde(rename = "148")]
    D148,
    /// 26/2026/QĐ-TTg (22/5/2026), in force since 148 lapsed (about
    /// 21/7/2026): parts A 40 / B 25 / C 35, 26 sheets with per-option star marks.
    #[serde(rename = "26/2026")]
    D26_2026,
}

impl Decision {
    /// The part caps the decision fixes, in order A, B, C.
    pub fn part_caps(self) -> [(&'static str, u32); 3] {
        match self {
            Decision::D1048 => [("A", 35), ("B", 25), ("C", 40)],
            Decision::D148 | Decision::D26_2026 => [("A", 40), ("B", 25), ("C", 35)],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Decision::D1048 => "1048/QĐ-TTg + 781/QĐ-TTg",
            Decision::D148 => "148/QĐ-TTg",
            Decision::D26_2026 => "26/2026/QĐ-TTg",
        }
    }
}

/// Identity of one published rubric version; what a sheet is pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RubricRef {
    pub id: String,
    pub version: u32,
}

/// A whole score sheet template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    /// [`RUBRIC_FORMAT`], or [`RUBRIC_FORMAT_1`] for a file of the first format.
    pub format: String,
    /// Stable identity, lowercase letters, digits and dashes, e.g. `1048-food-processed-cereal`.
    pub id: String,
    /// Increases with every published change; a published version is immutable.
    pub version: u32,
    pub decision: Decision,
    pub title_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    /// Product group ("nhóm"), e.g. "Thực phẩm chế biến".
    pub group: String,
    /// Product subgroup ("phân nhóm"), e.g. "Chế biến từ gạo, ngũ cốc".
    pub subgroup: String,
    /// A template has sections but no criteria yet; an admin completes it by import.
    #[serde(default, skip_serializing_if = "is_false")]
    pub template: bool,
    pub parts: Vec<Part>,
    /// Per-star minimum requirements (781/QĐ-TTg), and the star marks of
    /// 26/2026 (a requirement naming its `option`): below them the star is capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub star_requirements: Vec<StarRequirement>,
    /// The sheet's "Hồ sơ bị loại khi: …" lines: raised on a sheet, the product gets no star.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disqualifiers: Vec<Disqualifier>,
    /// Where the sheet comes from, for the rubric view and exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Documented corrections of the source text, kept visible on purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_notes: Vec<String>,
    /// Where each criterion stands, built on the first lookup: a push
    /// checks 31 answers per sheet, and scanning the parts for each code was
    /// a twentieth of the server's time (perf, 2026-12-03).
    #[serde(skip)]
    index: CodeIndex,
}

/// Criterion code -> (part, section, criterion) positions. Never part of a
/// rubric's identity: two rubrics are equal whether or not either was
/// looked into yet.
#[derive(Debug, Clone, Default)]
struct CodeIndex(std::sync::OnceLock<std::collections::HashMap<String, [usize; 3]>>);

impl PartialEq for CodeIndex {
    fn eq(&self, _: &CodeIndex) -> bool {
        true
    }
}

impl Eq for CodeIndex {}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Part A, B or C of a sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// "A", "B" or "C".
    pub code: String,
    pub title_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    /// Maximum points of the part; equals the sum of its criteria maxima.
    pub cap: u32,
    pub sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Section number as printed, e.g. "1".
    pub code: String,
    pub title_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    /// The section maximum as printed ("1. TỔ CHỨC SẢN XUẤT (18)"); when
    /// given, the criteria maxima must sum to it, which catches a criterion
    /// filed under the wrong section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_points: Option<u32>,
    #[serde(default)]
    pub criteria: Vec<Criterion>,
}

/// One line of the sheet: the assessor picks exactly one option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Code as printed, e.g. "1.1", "7" or "6.1.1"; unique in the rubric.
    pub code: String,
    pub text_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
    /// The criterion maximum as printed on the sheet; no option may exceed it.
    pub max_points: u32,
    /// "Tiêu chí bắt buộc" (148): scoring the lowest option caps the star at 2.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mandatory: bool,
    /// A knock-out the assessor can raise on this criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knockout: Option<Knockout>,
    /// Lines printed under the criterion ("Yêu cầu: …", "Ghi chú: …", "Chỉ
    /// áp dụng khi …"), verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// One set normally; several when the sheet offers alternative cases
    /// ("Lựa chọn một trong hai trường hợp sau"). Option ids are unique across sets.
    pub option_sets: Vec<OptionSet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_vi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_en: Option<String>,
    pub options: Vec<ScoreOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreOption {
    /// Stable id within the criterion ("a", "b", ...); answers refer to it.
    pub id: String,
    pub text_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
    pub points: u32,
    /// What evidence ("hồ sơ") supports this option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_vi: Option<String>,
}

/// What happens when an assessor raises a knock-out on a criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnockoutEffect {
    /// The product is disqualified ("Bị loại").
    Disqualify,
    /// The other criteria of the same section are not considered (score 0),
    /// e.g. sensory scoring stops when high-risk foreign matter is found.
    ZeroSection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knockout {
    pub effect: KnockoutEffect,
    /// The condition, as the sheet words it.
    pub text_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
}

/// "To reach `stars`, criterion `criterion` needs at least `min_points`."
///
/// A 26/2026 star mark ("Dấu sao là yêu cầu tối thiểu phải đạt theo các cấp
/// độ sao") is one of these naming the marked `option`, with `min_points`
/// equal to that option's points: "that option or a better one" is read as
/// "at least its points", since the sheets order options by points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarRequirement {
    pub stars: u8,
    pub criterion: String,
    pub min_points: u32,
    /// What is required, as the sheet words it (for a star mark, the marked option's text).
    pub text_vi: String,
    /// The marked option's id, for a star mark: the sheet shows the mark on it
    /// and a missed mark names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
}

/// A reason the whole dossier is rejected, printed at the head of the sheet.
/// Raised like a knock-out, by an answer keyed by `code` (no option, a note
/// saying why): the code shares the answer keys with the criteria.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disqualifier {
    /// Key of the answer that raises it, e.g. "loai-1"; never a criterion code.
    pub code: String,
    /// The line as printed, e.g. "Hồ sơ bị loại khi: Giả mạo hồ sơ …".
    pub text_vi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_en: Option<String>,
}

/// Where a sheet's text comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The decision's number as printed, e.g. "26/2026/QĐ-TTg".
    pub decision: String,
    /// Date of the decision, `YYYY-MM-DD`.
    pub date: String,
    /// The annex holding the sheet, e.g. "Phụ lục II (kiêm phiếu đánh giá sản phẩm OCOP)".
    pub annex: String,
    /// The sheet's number in the annex (1 to 26 for 26/2026).
    pub sheet_no: u32,
    /// The product set's code in Phụ lục I, e.g. "I.4.a"; what an admin picks a sheet by.
    pub annex1_code: String,
    /// The group line as the sheet prints it, when it differs from Phụ lục I's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_as_printed: Option<String>,
    /// The text transcribed and how.
    pub source: String,
    /// Every correction made while transcribing, each naming its criterion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<String>,
}

impl Rubric {
    pub fn reference(&self) -> RubricRef {
        RubricRef {
            id: self.id.clone(),
            version: self.version,
        }
    }

    /// Every criterion in sheet order, with the part code it belongs to.
    pub fn criteria(&self) -> impl Iterator<Item = (&Part, &Section, &Criterion)> {
        self.parts.iter().flat_map(|p| {
            p.sections
                .iter()
                .flat_map(move |s| s.criteria.iter().map(move |c| (p, s, c)))
        })
    }

    /// The criterion with this code.
    pub fn criterion(&self, code: &str) -> Option<&Criterion> {
        let at = self.index.0.get_or_init(|| {
            let mut at = std::collections::HashMap::new();
            for (p, part) in self.parts.iter().enumerate() {
                for (s, section) in part.sections.iter().enumerate() {
                    for (c, criterion) in section.criteria.iter().enumerate() {
                        at.entry(criterion.code.clone()).or_insert([p, s, c]);
                    }
                }
            }
            at
        });
        // The fields are public: a rubric changed after its index was built
        // is still answered right, by the scan (a found criterion is checked
        // to be where the index says and to carry the code).
        at.get(code)
            .and_then(|&[p, s, c]| self.parts.get(p)?.sections.get(s)?.criteria.get(c))
            .filter(|c| c.code == code)
            .or_else(|| self.criteria().map(|(_, _, c)| c).find(|c| c.code == code))
    }

    pub fn criterion_count(&self) -> usize {
        self.criteria().count()
    }

    /// The disqualifier an answer keyed by `code` raises.
    pub fn disqualifier(&self, code: &str) -> Option<&Disqualifier> {
        self.disqualifiers.iter().find(|d| d.code == code)
    }

    /// The star mark on an option: the lowest star level whose requirement
    /// names it (a sheet prints one mark per option).
    pub fn star_mark(&self, criterion: &str, option: &str) -> Option<u8> {
        self.star_requirements
            .iter()
            .filter(|q| q.criterion == criterion && q.option.as_deref() == Some(option))
            .map(|q| q.stars)
            .min()
    }

    /// Sum of the part caps (100 for a complete sheet).
    pub fn total_cap(&self) -> u32 {
        self.parts.iter().map(|p| p.cap).sum()
    }
}

impl Criterion {
    pub fn options(&self) -> impl Iterator<Item = &ScoreOption> {
        self.option_sets.iter().flat_map(|s| s.options.iter())
    }

    pub fn option(&self, id: &str) -> Option<&ScoreOption> {
        self.options().find(|o| o.id == id)
    }

    /// The most points any option gives (equals `max_points` in a valid rubric).
    pub fn top_points(&self) -> u32 {
        self.options().map(|o| o.points).max().unwrap_or(0)
    }

    /// The fewest points any option gives (not always 0).
    pub fn min_points(&self) -> u32 {
        self.options().map(|o| o.points).min().unwrap_or(0)
    }
}

impl Part {
    pub fn criteria_max_sum(&self) -> u32 {
        self.sections
            .iter()
            .flat_map(|s| &s.criteria)
            .map(|c| c.max_points)
            .sum()
    }
}
