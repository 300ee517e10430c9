//! Star rules: the half-open point bands and what may cap or void a star.

use serde::{Deserialize, Serialize};

use crate::fixed::Centi;
use crate::wire::Level;

/// The star band of a total (or mean): [0,30) 1★, [30,50) 2★, [50,70) 3★,
/// [70,90) 4★, [90,100] 5★. Bands are half-open so 89.99 is 4★ and 90.00 is 5★.
pub fn band(total: Centi) -> u8 {
    let h = total.hundredths();
    if h >= 9000 {
        5
    } else if h >= 7000 {
        4
    } else if h >= 5000 {
        3
    } else if h >= 3000 {
        2
    } else {
        1
    }
}

/// Why a star is what it is. Rendered for people by [`Reason::vi`] and [`Reason::en`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The band the points fall in.
    Band {
        total: Centi,
        band: u8,
    },
    /// 90 points or more outside the central level: 4★, proposed for 5★.
    ProposedForFive {
        total: Centi,
    },
    /// A knock-out was raised: the product is disqualified.
    Disqualified {
        criterion: String,
        text_vi: String,
        raised_by: u32,
        of: u32,
    },
    /// A mandatory criterion scored its lowest option: no 3★ or more.
    MandatoryFailed {
        criterion: String,
        cap: u8,
        raised_by: u32,
        of: u32,
    },
    /// A per-star minimum requirement (or a 26/2026 star mark) is not met.
    RequirementNotMet {
        criterion: String,
        stars: u8,
        min_points: u32,
        text_vi: String,
        /// The marked option needed (or a better one), for a star mark.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        option: Option<String>,
        raised_by: u32,
        of: u32,
    },
    /// A disqualifier of the sheet ("Hồ sơ bị loại khi: …") was raised: no star.
    DossierDisqualified {
        code: String,
        text_vi: String,
        raised_by: u32,
        of: u32,
    },
    /// A disqualifier raised by a minority of members: not applied, for discussion.
    MinorityDisqualifier {
        code: String,
        text_vi: String,
        raised_by: u32,
        of: u32,
    },
    /// A knock-out, mandatory failure or requirement raised by a minority of members: not applied, for discussion.
    MinorityFlag {
        criterion: String,
        /// The star cap it would impose; `None` for a disqualification.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<u8>,
        raised_by: u32,
        of: u32,
    },
    /// Criteria still unanswered: the star is provisional.
    Incomplete {
        unanswered: u32,
    },
    /// A section was not considered because of a knock-out in it.
    SectionZeroed {
        criterion: String,
        section: String,
    },
    QuorumNotMet {
        present: u32,
        required: u32,
        chair_present: bool,
    },
    SpreadOverLimit {
        spread: Centi,
        limit: Centi,
    },
    NoScores,
}

impl Reason {
    /// Vietnamese wording, for the UI and the minutes.
    pub fn vi(&self) -> String {
        match self {
            Reason::Band { total, band } => format!("Tổng điểm {total} thuộc khoảng {band} sao"),
            Reason::ProposedForFive { total } => {
                format!(
                    "Đạt {total} điểm (≥ 90): công nhận 4 sao, đề xuất Trung ương đánh giá 5 sao"
                )
            }
            Reason::Disqualified {
                criterion,
                text_vi,
                raised_by,
                of,
            } => {
                format!(
                    "Bị loại theo tiêu chí {criterion}: {text_vi} ({raised_by}/{of} thành viên)"
                )
            }
            Reason::MandatoryFailed {
                criterion,
                cap,
                raised_by,
                of,
            } => format!(
                "Tiêu chí bắt buộc {criterion} không đạt: tối đa {cap} sao ({raised_by}/{of} thành viên)"
            ),
            Reason::RequirementNotMet {
                criterion,
                stars,
                min_points,
                text_vi,
                option: Some(option),
                raised_by,
                of,
            } => format!(
                "Chưa đạt yêu cầu tối thiểu cho {stars} sao: tiêu chí {criterion} cần đạt mức {option} ({min_points} điểm) trở lên — “{text_vi}” ({raised_by}/{of} thành viên)"
            ),
            Reason::RequirementNotMet {
                criterion,
                stars,
                min_points,
                text_vi,
                option: None,
                raised_by,
                of,
            } => format!(
                "Chưa đạt yêu cầu tối thiểu cho {stars} sao ({text_vi}): tiêu chí {criterion} cần ít nhất {min_points} điểm ({raised_by}/{of} thành viên)"
            ),
            Reason::DossierDisqualified {
                text_vi,
                raised_by,
                of,
                ..
            } => format!("Bị loại, không xếp hạng sao — {text_vi} ({raised_by}/{of} thành viên)"),
            Reason::MinorityDisqualifier {
                text_vi,
                raised_by,
                of,
                ..
            } => format!(
                "{raised_by}/{of} thành viên nêu lý do loại hồ sơ ({text_vi}) — chưa đủ đa số, hội đồng cần thảo luận"
            ),
            Reason::MinorityFlag {
                criterion,
                raised_by,
                of,
                ..
            } => format!(
                "Tiêu chí {criterion}: {raised_by}/{of} thành viên nêu vấn đề loại trừ/giới hạn sao — chưa đủ đa số, hội đồng cần thảo luận"
            ),
            Reason::Incomplete { unanswered } => {
                format!("Còn {unanswered} tiêu chí chưa chấm: kết quả tạm tính")
            }
            Reason::SectionZeroed { criterion, section } => {
                format!("Không xem xét các chỉ tiêu khác của mục {section} do tiêu chí {criterion}")
            }
            Reason::QuorumNotMet {
                present,
                required,
                chair_present,
            } => format!(
                "Chưa đủ số lượng thành viên chấm: {present}/{required}{}",
                if *chair_present {
                    ""
                } else {
                    ", thiếu chủ tịch hội đồng"
                }
            ),
            Reason::SpreadOverLimit { spread, limit } => format!(
                "Chênh lệch tổng điểm giữa các thành viên {spread} vượt quá {limit} điểm: hội đồng thảo luận và chấm lại"
            ),
            Reason::NoScores => "Chưa có phiếu chấm nào".to_string(),
        }
    }

    /// English wording.
    pub fn en(&self) -> String {
        match self {
            Reason::Band { total, band } => format!("total {total} falls in the {band}-star band"),
            Reason::ProposedForFive { total } => {
                format!(
                    "{total} points (≥ 90): recognised at 4 stars, proposed to the central council for 5 stars"
                )
            }
            Reason::Disqualified {
                criterion,
                raised_by,
                of,
                ..
            } => {
                format!("disqualified by criterion {criterion} ({raised_by} of {of} members)")
            }
            Reason::MandatoryFailed {
                criterion,
                cap,
                raised_by,
                of,
            } => {
                format!(
                    "mandatory criterion {criterion} failed: at most {cap} stars ({raised_by} of {of} members)"
                )
            }
            Reason::RequirementNotMet {
                criterion,
                stars,
                min_points,
                option: Some(option),
                raised_by,
                of,
                ..
            } => format!(
                "minimum requirement for {stars} stars not met: criterion {criterion} needs option {option} ({min_points} points) or better ({raised_by} of {of} members)"
            ),
            Reason::DossierDisqualified {
                code,
                raised_by,
                of,
                ..
            } => format!("dossier disqualified ({code}): no star ({raised_by} of {of} members)"),
            Reason::MinorityDisqualifier {
                code,
                raised_by,
                of,
                ..
            } => format!(
                "{raised_by} of {of} members raised dossier disqualifier {code}; no majority, for discussion"
            ),
            Reason::RequirementNotMet {
                criterion,
                stars,
                min_points,
                raised_by,
                of,
                ..
            } => format!(
                "minimum requirement for {stars} stars not met: criterion {criterion} needs at least {min_points} points ({raised_by} of {of} members)"
            ),
            Reason::MinorityFlag {
                criterion,
                raised_by,
                of,
                ..
            } => format!(
                "criterion {criterion}: {raised_by} of {of} members raised a knock-out or cap; no majority, for discussion"
            ),
            Reason::Incomplete { unanswered } => {
                format!("{unanswered} criteria unanswered: provisional result")
            }
            Reason::SectionZeroed { criterion, section } => {
                format!("section {section} not considered because of criterion {criterion}")
            }
            Reason::QuorumNotMet {
                present,
                required,
                chair_present,
            } => format!(
                "quorum not met: {present} of {required} required scoring members{}",
                if *chair_present {
                    ""
                } else {
                    ", chair missing"
                }
            ),
            Reason::SpreadOverLimit { spread, limit } => {
                format!(
                    "spread between member totals {spread} exceeds {limit} points: discuss and re-score"
                )
            }
            Reason::NoScores => "no score sheets yet".to_string(),
        }
    }
}

/// The star a total gives at a level, before caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarOutcome {
    /// The star given: 0 when disqualified.
    pub stars: u8,
    /// The band of the points alone.
    pub band: u8,
    pub disqualified: bool,
    /// The lowest cap that applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped_at: Option<u8>,
    /// 90 or more below the central level: 4★ and proposed for 5★.
    pub proposed_for_five: bool,
    pub reasons: Vec<Reason>,
}

/// Caps and disqualification found on a sheet or agreed by a council.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub disqualified: bool,
    pub cap: Option<u8>,
    pub reasons: Vec<Reason>,
}

/// The star for `total` at `level`, after `effects`.
pub fn star(total: Centi, level: Level, effects: Effects) -> StarOutcome {
    let b = band(total);
    let mut reasons = vec![Reason::Band { total, band: b }];
    let mut stars = b;
    let mut proposed_for_five = false;
    if b == 5 && level != Level::Central {
        stars = 4;
        proposed_for_five = true;
        reasons.push(Reason::ProposedForFive { total });
    }
    let mut capped_at = None;
    // Caps are measured against the band, not the star this level gives: a
    // 4★ cap (a missed 5★ mark) at 90 points leaves 4★ at the province but
    // stops the proposal for 5★.
    if let Some(cap) = effects.cap
        && cap < b
    {
        stars = stars.min(cap);
        capped_at = Some(cap);
        proposed_for_five = false;
    }
    // A cap at or above the band changes nothing: leave it out of the
    // reasons so the minutes only list what mattered. A missed star mark
    // one level above the band is kept: it is what the product lacks for
    // the next star besides points (86 points and a missed 5★ mark).
    reasons.extend(effects.reasons.into_iter().filter(|r| match r {
        Reason::MandatoryFailed { cap, .. } | Reason::MinorityFlag { cap: Some(cap), .. } => {
            *cap < b
        }
        Reason::RequirementNotMet {
            stars,
            option: Some(_),
            ..
        } => *stars <= b + 1,
        Reason::RequirementNotMet { stars, .. } => stars.saturating_sub(1) < b,
        _ => true,
    }));
    if effects.disqualified {
        stars = 0;
        proposed_for_five = false;
    }
    if !proposed_for_five {
        reasons.retain(|r| !matches!(r, Reason::ProposedForFive { .. }));
    }
    StarOutcome {
        stars,
        band: b,
        disqualified: effects.disqualified,
        capped_at,
        proposed_for_five,
        reasons,
    }
}
