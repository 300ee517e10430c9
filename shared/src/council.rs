//! Council aggregation: from the roster and the submitted sheets to the
//! council's mean, spread, quorum and star, deterministically whatever the
//! order the sheets arrive in.
//!
//! Rules (provincial regulations of the 1048 era; 148 practice is similar):
//! - the product score is the arithmetic mean of the scoring members' totals,
//!   two decimals, rounded half away from zero ([`Centi::mean`]);
//! - the secretary never scores; abstained (own choice) and recused (chair's
//!   decision) members are excluded from the means;
//! - quorum: at least `quorum_numerator / quorum_denominator` (default ¾) of the
//!   eligible members (roster minus secretary minus recused) have submitted, the
//!   chair among them (a vice-chair presides when the chair is recused);
//! - member totals should not differ by more than `spread_limit` (default 10):
//!   a larger spread is flagged for discussion and re-scoring;
//! - a knock-out, mandatory failure or per-star requirement applies when more
//!   than half of the scoring members raised it; a minority flag is reported;
//! - consensus mode: one agreed sheet gives the result; quorum counts attendance.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fixed::Centi;
use crate::rubric::Rubric;
use crate::score::{SheetFlag, SheetScore, effects_of};
use crate::stars::{self, Reason, StarOutcome};
use crate::wire::{CouncilRole, Level};

/// A member's participation for one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Participation {
    #[default]
    Present,
    Absent,
    /// The member's own choice not to score this product.
    Abstained,
    /// Excluded by the chair (conflict of interest).
    Recused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouncilMode {
    /// Every member scores independently; the result is the mean.
    Individual,
    /// The council agrees one sheet.
    Consensus,
}

/// Per-round council rules; provinces differ, so these are settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CouncilConfig {
    pub mode: CouncilMode,
    pub spread_limit: Centi,
    pub quorum_numerator: u32,
    pub quorum_denominator: u32,
    pub chair_required: bool,
}

impl Default for CouncilConfig {
    fn default() -> Self {
        CouncilConfig {
            mode: CouncilMode::Individual,
            spread_limit: Centi::from_points(10),
            quorum_numerator: 3,
            quorum_denominator: 4,
            chair_required: true,
        }
    }
}

/// One roster line as it stands for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: Uuid,
    pub name: String,
    pub role: CouncilRole,
    pub participation: Participation,
}

/// A submitted sheet, scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSheet<'a> {
    pub user_id: Uuid,
    pub score: &'a SheetScore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    Secretary,
    Abstained,
    Recused,
    Absent,
    /// Present but no submitted sheet yet.
    Pending,
    /// A sheet from someone not on the active roster.
    NotOnCouncil,
    /// Submitted with criteria unanswered (should not happen; never averaged).
    Incomplete,
    /// A second sheet from the same member (only the first by sheet order is used).
    DuplicateSheet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTotal {
    pub user_id: Uuid,
    pub name: String,
    pub role: CouncilRole,
    pub total: u32,
    /// Points per part, in rubric order.
    pub parts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub user_id: Uuid,
    pub name: String,
    pub why: Exclusion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMean {
    pub code: String,
    pub mean: Centi,
    pub cap: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// Roster minus secretary minus recused.
    pub eligible: u32,
    /// Members counted present (scored, or attending in consensus mode).
    pub present: u32,
    pub required: u32,
    pub chair_present: bool,
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouncilResult {
    pub mode: CouncilMode,
    /// Scoring members, sorted by role then name then id.
    pub members: Vec<MemberTotal>,
    pub excluded: Vec<Excluded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_total: Option<Centi>,
    pub part_means: Vec<PartMean>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Centi>,
    pub spread_flagged: bool,
    pub quorum: Quorum,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star: Option<StarOutcome>,
    /// Whether the chair may finalize: quorum met and a mean exists.
    pub can_finalize: bool,
}

/// Input of [`aggregate`].
#[derive(Debug, Clone)]
pub struct CouncilInput<'a> {
    pub rubric: &'a Rubric,
    pub level: Level,
    pub config: &'a CouncilConfig,
    pub roster: &'a [Member],
    /// Submitted sheets; any order.
    pub sheets: &'a [MemberSheet<'a>],
    /// Consensus mode: the agreed sheet.
    pub consensus: Option<&'a SheetScore>,
}

/// Whether a member in `role` presides over a product's council: the chair,
/// or the vice-chair when the chair is recused from that product. The one
/// rule for finalize, reopen, release and recusal, on the device and on the
/// server alike.
pub fn presides(role: CouncilRole, chair_recused: bool) -> bool {
    match role {
        CouncilRole::Chair => !chair_recused,
        CouncilRole::ViceChair => chair_recused,
        CouncilRole::Member | CouncilRole::Secretary => false,
    }
}

fn role_rank(r: CouncilRole) -> u8 {
    match r {
        CouncilRole::Chair => 0,
        CouncilRole::ViceChair => 1,
        CouncilRole::Member => 2,
        CouncilRole::Secretary => 3,
    }
}

/// Aggregates a council's sheets for one product.
pub fn aggregate(input: &CouncilInput<'_>) -> CouncilResult {
    let cfg = input.config;
    // Sort the roster so that everything below is order-independent.
    let mut roster: Vec<&Member> = input.roster.iter().collect();
    roster.sort_by(|a, b| {
        (role_rank(a.role), &a.name, a.user_id).cmp(&(role_rank(b.role), &b.name, b.user_id))
    });
    roster.dedup_by_key(|m| m.user_id);
    let mut sheets: Vec<&MemberSheet<'_>> = input.sheets.iter().collect();
    // Deterministic pick among duplicates: highest total first is arbitrary, so
    // order by (user, total, parts) and keep the first.
    sheets.sort_by(|a, b| {
        (a.user_id, a.score.total, &a.score.parts).cmp(&(b.user_id, b.score.total, &b.score.parts))
    });

    let mut members = Vec::new();
    let mut excluded = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut flag_counts: std::collections::BTreeMap<SheetFlag, u32> = Default::default();
    for s in &sheets {
        let Some(m) = roster.iter().find(|m| m.user_id == s.user_id) else {
            excluded.push(Excluded {
                user_id: s.user_id,
                name: String::new(),
                why: Exclusion::NotOnCouncil,
            });
            continue;
        };
        let why = match (m.role, m.participation) {
            (CouncilRole::Secretary, _) => Some(Exclusion::Secretary),
            (_, Participation::Abstained) => Some(Exclusion::Abstained),
            (_, Participation::Recused) => Some(Exclusion::Recused),
            (_, Participation::Absent) => Some(Exclusion::Absent),
            _ if !s.score.complete() => Some(Exclusion::Incomplete),
            _ if used.contains(&s.user_id) => Some(Exclusion::DuplicateSheet),
            _ => None,
        };
        if let Some(why) = why {
            if why != Exclusion::DuplicateSheet
                && excluded.iter().any(|e: &Excluded| e.user_id == m.user_id)
            {
                continue;
            }
            excluded.push(Excluded {
                user_id: m.user_id,
                name: m.name.clone(),
                why,
            });
            continue;
        }
        used.insert(s.user_id);
        for f in &s.score.flags {
            *flag_counts.entry(f.clone()).or_default() += 1;
        }
        members.push(MemberTotal {
            user_id: m.user_id,
            name: m.name.clone(),
            role: m.role,
            total: s.score.total,
            parts: s.score.parts.iter().map(|p| p.points).collect(),
        });
    }
    // Roster members without a sheet.
    for m in &roster {
        if used.contains(&m.user_id) || excluded.iter().any(|e| e.user_id == m.user_id) {
            continue;
        }
        let why = match (m.role, m.participation) {
            (CouncilRole::Secretary, _) => Exclusion::Secretary,
            (_, Participation::Abstained) => Exclusion::Abstained,
            (_, Participation::Recused) => Exclusion::Recused,
            (_, Participation::Absent) => Exclusion::Absent,
            _ => Exclusion::Pending,
        };
        excluded.push(Excluded {
            user_id: m.user_id,
            name: m.name.clone(),
            why,
        });
    }
    members.sort_by(|a, b| {
        (role_rank(a.role), &a.name, a.user_id).cmp(&(role_rank(b.role), &b.name, b.user_id))
    });
    excluded
        .sort_by(|a, b| (a.why as u8, &a.name, a.user_id).cmp(&(b.why as u8, &b.name, b.user_id)));

    // Quorum.
    let eligible: Vec<&&Member> = roster
        .iter()
        .filter(|m| m.role != CouncilRole::Secretary && m.participation != Participation::Recused)
        .collect();
    let chair_recused = roster
        .iter()
        .any(|m| m.role == CouncilRole::Chair && m.participation == Participation::Recused);
    let presiding = |r: CouncilRole| presides(r, chair_recused);
    let (present, chair_present) = match cfg.mode {
        CouncilMode::Individual => (
            members.len() as u32,
            members.iter().any(|m| presiding(m.role)),
        ),
        CouncilMode::Consensus => {
            let attending: Vec<_> = eligible
                .iter()
                .filter(|m| {
                    matches!(
                        m.participation,
                        Participation::Present | Participation::Abstained
                    )
                })
                .collect();
            (
                attending.len() as u32,
                attending.iter().any(|m| presiding(m.role)),
            )
        }
    };
    let n_eligible = eligible.len() as u32;
    let den = cfg.quorum_denominator.max(1);
    // ceil(eligible * num / den) without floats.
    let required =
        (u64::from(n_eligible) * u64::from(cfg.quorum_numerator)).div_ceil(u64::from(den)) as u32;
    let met =
        n_eligible > 0 && present >= required.max(1) && (!cfg.chair_required || chair_present);
    let quorum = Quorum {
        eligible: n_eligible,
        present,
        required,
        chair_present,
        met,
    };

    // Means.
    let (mean_total, part_means, spread, star) = match (cfg.mode, input.consensus) {
        (CouncilMode::Consensus, Some(c)) => {
            let total = Centi::from_points(i64::from(c.total));
            let pm = c
                .parts
                .iter()
                .map(|p| PartMean {
                    code: p.code.clone(),
                    mean: Centi::from_points(i64::from(p.points)),
                    cap: p.cap,
                })
                .collect();
            let flags: Vec<(SheetFlag, u32)> = c.flags.iter().map(|f| (f.clone(), 1)).collect();
            let effects = effects_of(input.rubric, &flags, 1);
            (
                Some(total),
                pm,
                None,
                Some(stars::star(total, input.level, effects)),
            )
        }
        (CouncilMode::Consensus, None) => (None, Vec::new(), None, None),
        (CouncilMode::Individual, _) if members.is_empty() => (None, Vec::new(), None, None),
        (CouncilMode::Individual, _) => {
            let n = members.len() as u64;
            let sum: i64 = members.iter().map(|m| i64::from(m.total)).sum();
            let mean = Centi::mean(sum, n).unwrap_or(Centi::ZERO);
            let pm = input
                .rubric
                .parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let s: i64 = members
                        .iter()
                        .map(|m| i64::from(m.parts.get(i).copied().unwrap_or(0)))
                        .sum();
                    PartMean {
                        code: p.code.clone(),
                        mean: Centi::mean(s, n).unwrap_or(Centi::ZERO),
                        cap: p.cap,
                    }
                })
                .collect();
            let max = members.iter().map(|m| m.total).max().unwrap_or(0);
            let min = members.iter().map(|m| m.total).min().unwrap_or(0);
            let spread = Centi::from_points(i64::from(max - min));
            let flags: Vec<(SheetFlag, u32)> = flag_counts.into_iter().collect();
            let effects = effects_of(input.rubric, &flags, members.len() as u32);
            (
                Some(mean),
                pm,
                Some(spread),
                Some(stars::star(mean, input.level, effects)),
            )
        }
    };
    let spread_flagged = spread.is_some_and(|s| s > cfg.spread_limit);
    let star = star.map(|mut s| {
        if !quorum.met {
            s.reasons.push(Reason::QuorumNotMet {
                present: quorum.present,
                required: quorum.required,
                chair_present: quorum.chair_present,
            });
        }
        if let (true, Some(sp)) = (spread_flagged, spread) {
            s.reasons.push(Reason::SpreadOverLimit {
                spread: sp,
                limit: cfg.spread_limit,
            });
        }
        s
    });
    let can_finalize = quorum.met && mean_total.is_some();
    CouncilResult {
        mode: cfg.mode,
        members,
        excluded,
        mean_total,
        part_means,
        spread,
        spread_flagged,
        quorum,
        star,
        can_finalize,
    }
}
