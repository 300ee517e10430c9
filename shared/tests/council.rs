//! Star thresholds and council aggregation.
mod common;

use common::*;
use ocop_shared::Centi;
use ocop_shared::council::{
    CouncilConfig, CouncilInput, CouncilMode, CouncilResult, Exclusion, Member, MemberSheet,
    Participation, aggregate,
};
use ocop_shared::rubric::Rubric;
use ocop_shared::score::SheetScore;
use ocop_shared::stars::{Effects, band, star};
use ocop_shared::wire::{CouncilRole, Level};
use proptest::prelude::*;
use rstest::rstest;
use uuid::Uuid;

fn c(s: &str) -> Centi {
    s.parse().unwrap()
}

#[rstest]
#[case("0", 1)]
#[case("29.99", 1)]
#[case("30", 2)]
#[case("49.99", 2)]
#[case("50", 3)]
#[case("69.99", 3)]
#[case("70", 4)]
#[case("89.99", 4)]
#[case("90", 5)]
#[case("100", 5)]
fn star_bands_are_half_open(#[case] total: &str, #[case] want: u8) {
    assert_eq!(band(c(total)), want);
}

#[rstest]
#[case::province_89_99("89.99", Level::Province, 4, false)]
#[case::province_90("90", Level::Province, 4, true)]
#[case::province_100("100", Level::Province, 4, true)]
#[case::commune_90("90.75", Level::Commune, 4, true)]
#[case::central_89_99("89.99", Level::Central, 4, false)]
#[case::central_90("90", Level::Central, 5, false)]
fn five_stars_only_at_central_level(
    #[case] total: &str,
    #[case] level: Level,
    #[case] stars: u8,
    #[case] proposed: bool,
) {
    let s = star(c(total), level, Effects::default());
    assert_eq!((s.stars, s.proposed_for_five), (stars, proposed));
}

// ------------------------------------------------------------ council fixtures

struct Council {
    rubric: Rubric,
    roster: Vec<Member>,
    scores: Vec<(Uuid, SheetScore)>,
    config: CouncilConfig,
}

fn id(n: u32) -> Uuid {
    Uuid::from_u128(u128::from(n))
}

/// A council of `members` scoring members (first is the chair) plus a secretary.
fn council(members: usize) -> Council {
    let mut roster = vec![];
    for i in 0..members {
        let role = if i == 0 {
            CouncilRole::Chair
        } else {
            CouncilRole::Member
        };
        roster.push(Member {
            user_id: id(i as u32 + 1),
            name: format!("Thành viên {i:02}"),
            role,
            participation: Participation::Present,
        });
    }
    roster.push(Member {
        user_id: id(999),
        name: "Thư ký".into(),
        role: CouncilRole::Secretary,
        participation: Participation::Present,
    });
    Council {
        rubric: cereal(),
        roster,
        scores: vec![],
        config: CouncilConfig::default(),
    }
}

impl Council {
    fn sheet(&mut self, member: u32, total: u32) -> &mut Self {
        let s = score(&self.rubric, &answers_totalling(&self.rubric, total));
        self.scores.push((id(member), s));
        self
    }
    fn participation(&mut self, member: u32, p: Participation) -> &mut Self {
        self.roster
            .iter_mut()
            .find(|m| m.user_id == id(member))
            .unwrap()
            .participation = p;
        self
    }
    fn run(&self) -> CouncilResult {
        let sheets: Vec<MemberSheet> = self
            .scores
            .iter()
            .map(|(u, s)| MemberSheet {
                user_id: *u,
                score: s,
            })
            .collect();
        aggregate(&CouncilInput {
            rubric: &self.rubric,
            level: Level::Province,
            config: &self.config,
            roster: &self.roster,
            sheets: &sheets,
            consensus: None,
        })
    }
}

#[test]
fn mean_is_rounded_to_two_decimals_and_part_means_are_reported() {
    let mut k = council(3);
    k.sheet(1, 70).sheet(2, 71).sheet(3, 71);
    let r = k.run();
    assert_eq!(r.mean_total, Some(c("70.67")));
    assert_eq!(r.part_means.len(), 3);
    assert_eq!(r.members.len(), 3);
    assert_eq!(r.members[0].role, CouncilRole::Chair);
    assert_eq!(r.star.unwrap().stars, 4);
}

#[rstest]
#[case::exactly_ten_is_not_flagged(60, 70, "10", false)]
#[case::eleven_is_flagged(60, 71, "10", true)]
#[case::ten_over_a_limit_of_9_99(60, 70, "9.99", true)]
#[case::ten_under_a_limit_of_10_01(60, 70, "10.01", false)]
fn spread_is_flagged_only_when_over_the_limit(
    #[case] lo: u32,
    #[case] hi: u32,
    #[case] limit: &str,
    #[case] flagged: bool,
) {
    let mut k = council(4);
    k.config.spread_limit = c(limit);
    k.sheet(1, lo)
        .sheet(2, hi)
        .sheet(3, lo + 1)
        .sheet(4, lo + 2);
    let r = k.run();
    assert_eq!(r.spread, Some(Centi::from_points(i64::from(hi - lo))));
    assert_eq!(r.spread_flagged, flagged);
    assert_eq!(
        r.star
            .unwrap()
            .reasons
            .iter()
            .any(|x| x.en().contains("spread")),
        flagged
    );
}

#[rstest]
// 8 scoring members: ¾ of 8 = 6 required, chair included.
#[case::six_of_eight_with_chair(8, &[1, 2, 3, 4, 5, 6], true)]
#[case::five_of_eight(8, &[1, 2, 3, 4, 5], false)]
#[case::six_of_eight_without_chair(8, &[2, 3, 4, 5, 6, 7], false)]
// 7 scoring members: ¾ of 7 = 5.25 → 6 required.
#[case::five_of_seven(7, &[1, 2, 3, 4, 5], false)]
#[case::six_of_seven(7, &[1, 2, 3, 4, 5, 6], true)]
fn quorum_needs_three_quarters_including_the_chair(
    #[case] n: usize,
    #[case] scored: &[u32],
    #[case] met: bool,
) {
    let mut k = council(n);
    for m in scored {
        k.sheet(*m, 60);
    }
    let r = k.run();
    assert_eq!(r.quorum.met, met, "{:?}", r.quorum);
    assert_eq!(r.can_finalize, met);
    assert_eq!(r.quorum.eligible, n as u32, "the secretary is not counted");
}

#[test]
fn secretary_sheet_is_never_counted() {
    let mut k = council(4);
    k.sheet(1, 60)
        .sheet(2, 60)
        .sheet(3, 60)
        .sheet(4, 60)
        .sheet(999, 10);
    let r = k.run();
    assert_eq!(r.mean_total, Some(c("60")));
    assert!(
        r.excluded
            .iter()
            .any(|e| e.user_id == id(999) && e.why == Exclusion::Secretary)
    );
}

#[test]
fn abstained_and_recused_members_are_excluded_from_means() {
    let mut k = council(6);
    k.sheet(1, 60)
        .sheet(2, 60)
        .sheet(3, 60)
        .sheet(4, 60)
        .sheet(5, 90)
        .sheet(6, 30);
    k.participation(5, Participation::Abstained)
        .participation(6, Participation::Recused);
    let r = k.run();
    assert_eq!(r.mean_total, Some(c("60")));
    assert_eq!(
        r.quorum.eligible, 5,
        "recused members leave the denominator"
    );
    assert_eq!(r.quorum.present, 4);
    assert_eq!(r.quorum.required, 4);
    assert!(r.quorum.met);
    let why: Vec<_> = r.excluded.iter().map(|e| e.why).collect();
    assert!(why.contains(&Exclusion::Abstained) && why.contains(&Exclusion::Recused));
}

#[test]
fn a_vice_chair_presides_when_the_chair_is_recused() {
    let mut k = council(5);
    k.roster[1].role = CouncilRole::ViceChair;
    k.participation(1, Participation::Recused);
    k.sheet(2, 60).sheet(3, 60).sheet(4, 60);
    assert!(k.run().quorum.met);
}

#[test]
fn members_without_a_sheet_are_pending() {
    let mut k = council(4);
    k.sheet(1, 60);
    let r = k.run();
    assert_eq!(
        r.excluded
            .iter()
            .filter(|e| e.why == Exclusion::Pending)
            .count(),
        3
    );
    assert!(!r.quorum.met);
}

#[rstest]
#[case::majority_disqualifies(5, true)]
#[case::half_does_not(4, false)]
fn knockout_applies_by_majority(#[case] raising: usize, #[case] disqualified: bool) {
    let mut k = council(8);
    for m in 1..=8u32 {
        let mut a = answers_totalling(&k.rubric, 80);
        if (m as usize) <= raising {
            a.get_mut("1.1").unwrap().knockout = true;
        }
        let s = score(&k.rubric, &a);
        k.scores.push((id(m), s));
    }
    let r = k.run();
    let st = r.star.unwrap();
    assert_eq!(st.disqualified, disqualified);
    assert_eq!(st.stars, if disqualified { 0 } else { 4 });
    if !disqualified {
        assert!(
            st.reasons
                .iter()
                .any(|x| x.en().contains("4 of 8 members raised"))
        );
    }
}

#[test]
fn consensus_mode_uses_the_agreed_sheet_and_counts_attendance() {
    let mut k = council(4);
    k.config.mode = CouncilMode::Consensus;
    k.participation(4, Participation::Absent);
    let agreed = score(&k.rubric, &answers_totalling(&k.rubric, 72));
    let r = aggregate(&CouncilInput {
        rubric: &k.rubric,
        level: Level::Province,
        config: &k.config,
        roster: &k.roster,
        sheets: &[],
        consensus: Some(&agreed),
    });
    assert_eq!(r.mean_total, Some(c("72")));
    assert_eq!(r.quorum.present, 3);
    assert!(r.quorum.met);
    assert_eq!(r.star.unwrap().stars, 4);
}

#[test]
fn no_sheets_gives_no_mean_and_cannot_finalize() {
    let r = council(3).run();
    assert_eq!(r.mean_total, None);
    assert!(r.star.is_none());
    assert!(!r.can_finalize);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The council result does not depend on the order of sheets or roster.
    #[test]
    fn aggregation_is_order_independent(totals in proptest::collection::vec(20u32..=100, 1..10), rot in 0usize..10, abstain in 0usize..10) {
        let mut k = council(totals.len());
        for (i, t) in totals.iter().enumerate() {
            k.sheet(i as u32 + 1, *t);
        }
        if abstain < totals.len() {
            k.participation(abstain as u32 + 1, Participation::Abstained);
        }
        let a = k.run();
        let n = k.scores.len();
        k.scores.rotate_left(rot % n);
        k.scores.reverse();
        let m = k.roster.len();
        k.roster.rotate_left(rot % m);
        let b = k.run();
        prop_assert_eq!(a, b);
    }

    /// The mean lies between the lowest and highest counted total.
    #[test]
    fn mean_lies_within_member_totals(totals in proptest::collection::vec(20u32..=100, 1..16)) {
        let mut k = council(totals.len());
        for (i, t) in totals.iter().enumerate() {
            k.sheet(i as u32 + 1, *t);
        }
        let r = k.run();
        let mean = r.mean_total.unwrap();
        let lo = Centi::from_points(i64::from(*totals.iter().min().unwrap()));
        let hi = Centi::from_points(i64::from(*totals.iter().max().unwrap()));
        prop_assert!(lo <= mean && mean <= hi);
    }
}
