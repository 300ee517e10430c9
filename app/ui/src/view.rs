//! View models: what a list row or a board cell says, from the data alone
//! (plain Rust, tested natively).

use ocop_shared::council::{Exclusion, Participation};
use ocop_shared::wire::{CouncilRole, SheetState, SheetStatus};

use crate::dto::ProductItem;
use crate::i18n::{Lang, Msg, tr};

/// The state of my sheet for a product, as the product list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyState {
    NotStarted,
    Draft { answered: usize, of: usize },
    Reopened { answered: usize, of: usize },
    Submitted,
    Locked,
}

impl MyState {
    pub fn of(item: &ProductItem) -> MyState {
        if item.decision.as_ref().is_some_and(|d| d.finalized) {
            return MyState::Locked;
        }
        let (answered, of) = (item.answered, item.criteria);
        match item.my_status {
            None => MyState::NotStarted,
            Some(SheetStatus::Draft) if answered == 0 => MyState::NotStarted,
            Some(SheetStatus::Draft) => MyState::Draft { answered, of },
            Some(SheetStatus::Reopened) => MyState::Reopened { answered, of },
            Some(SheetStatus::Submitted) => MyState::Submitted,
        }
    }

    pub fn label(self, lang: Lang) -> String {
        match self {
            MyState::NotStarted => tr(lang, Msg::NotStarted).into(),
            MyState::Draft { answered, of } => {
                format!("{answered}/{of} {}", tr(lang, Msg::Answered))
            }
            MyState::Reopened { answered, of } => {
                format!("{} · {answered}/{of}", tr(lang, Msg::Reopened))
            }
            MyState::Submitted => tr(lang, Msg::Submitted).into(),
            MyState::Locked => tr(lang, Msg::Locked).into(),
        }
    }

    /// CSS class of the badge.
    pub fn class(self) -> &'static str {
        match self {
            MyState::NotStarted => "badge todo",
            MyState::Draft { .. } | MyState::Reopened { .. } => "badge draft",
            MyState::Submitted => "badge done",
            MyState::Locked => "badge locked",
        }
    }
}

/// One cell of the chair's board: a member × a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    NotStarted,
    Draft {
        answered: usize,
        of: usize,
    },
    Submitted {
        total: u32,
    },
    Abstained,
    Recused,
    Absent,
    /// The secretary keeps the minutes and never scores.
    NotScoring,
}

impl Cell {
    pub fn of(
        role: CouncilRole,
        participation: Participation,
        sheet: Option<&SheetState>,
        total: Option<u32>,
        criteria: usize,
    ) -> Cell {
        if role == CouncilRole::Secretary {
            return Cell::NotScoring;
        }
        match participation {
            Participation::Abstained => return Cell::Abstained,
            Participation::Recused => return Cell::Recused,
            Participation::Absent => return Cell::Absent,
            Participation::Present => {}
        }
        match sheet {
            None => Cell::NotStarted,
            Some(s) if s.status == SheetStatus::Submitted => Cell::Submitted {
                total: total.unwrap_or(0),
            },
            Some(s) => {
                let answered = s
                    .answers
                    .values()
                    .filter(|a| a.answer.option.is_some())
                    .count();
                if answered == 0 {
                    Cell::NotStarted
                } else {
                    Cell::Draft {
                        answered,
                        of: criteria,
                    }
                }
            }
        }
    }

    pub fn label(self, lang: Lang) -> String {
        match self {
            // A dot, not words: a board of eight members by twenty products
            // must fit a laptop; the legend under the table says what it means.
            Cell::NotStarted => "·".into(),
            Cell::Draft { answered, of } => format!("{} {answered}/{of}", tr(lang, Msg::Draft)),
            Cell::Submitted { total } => total.to_string(),
            Cell::Abstained => tr(lang, Msg::Abstained).into(),
            Cell::Recused => tr(lang, Msg::Recused).into(),
            Cell::Absent => match lang {
                Lang::Vi => "Vắng".into(),
                Lang::En => "Absent".into(),
            },
            Cell::NotScoring => "—".into(),
        }
    }
}

pub fn role_label(role: CouncilRole, lang: Lang) -> &'static str {
    match role {
        CouncilRole::Chair => tr(lang, Msg::Chair),
        CouncilRole::ViceChair => tr(lang, Msg::ViceChair),
        CouncilRole::Member => tr(lang, Msg::Member),
        CouncilRole::Secretary => tr(lang, Msg::Secretary),
    }
}

/// Why a member's sheet is not in the council's mean, in words.
pub fn exclusion_label(why: Exclusion, lang: Lang) -> &'static str {
    match why {
        Exclusion::Secretary => tr(lang, Msg::Secretary),
        Exclusion::Abstained => tr(lang, Msg::Abstained),
        Exclusion::Recused => tr(lang, Msg::Recused),
        Exclusion::Absent => tr(lang, Msg::ExAbsent),
        Exclusion::Pending => tr(lang, Msg::ExPending),
        Exclusion::NotOnCouncil => tr(lang, Msg::ExNotOnCouncil),
        Exclusion::Incomplete => tr(lang, Msg::ExIncomplete),
        Exclusion::DuplicateSheet => tr(lang, Msg::ExDuplicate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocop_shared::rubric::RubricRef;
    use ocop_shared::wire::{DecisionInfo, ProductInfo};
    use rstest::rstest;
    use uuid::Uuid;

    fn item(status: Option<SheetStatus>, answered: usize, finalized: bool) -> ProductItem {
        ProductItem {
            product: ProductInfo {
                id: Uuid::nil(),
                round_id: Uuid::nil(),
                code: "HT-01".into(),
                name: "Nước mắm".into(),
                producer: String::new(),
                commune: String::new(),
                district: String::new(),
                province: String::new(),
                group: String::new(),
                subgroup: String::new(),
                rubric: RubricRef {
                    id: "r".into(),
                    version: 1,
                },
            },
            my_status: status,
            answered,
            criteria: 31,
            decision: finalized.then(|| DecisionInfo {
                round_id: Uuid::nil(),
                product_id: Uuid::nil(),
                finalized: true,
                released: false,
                result: None,
                note: String::new(),
                decided_by: Uuid::nil(),
            }),
            unsynced: false,
        }
    }

    #[rstest]
    #[case(None, 0, false, "Chưa chấm")]
    #[case(Some(SheetStatus::Draft), 12, false, "12/31 đã chấm")]
    #[case(Some(SheetStatus::Submitted), 31, false, "Đã nộp")]
    #[case(Some(SheetStatus::Reopened), 31, false, "Được mở lại · 31/31")]
    #[case(Some(SheetStatus::Submitted), 31, true, "Đã khóa")]
    fn my_sheet_state_reads_as_the_list_shows_it(
        #[case] s: Option<SheetStatus>,
        #[case] n: usize,
        #[case] finalized: bool,
        #[case] want: &str,
    ) {
        assert_eq!(MyState::of(&item(s, n, finalized)).label(Lang::Vi), want);
    }

    #[test]
    fn a_secretary_never_has_a_score_cell_and_a_recused_member_shows_why() {
        assert_eq!(
            Cell::of(
                CouncilRole::Secretary,
                Participation::Present,
                None,
                None,
                31
            ),
            Cell::NotScoring
        );
        assert_eq!(
            Cell::of(CouncilRole::Member, Participation::Recused, None, None, 31).label(Lang::En),
            "Recused"
        );
        assert_eq!(
            Cell::of(CouncilRole::Member, Participation::Present, None, None, 31),
            Cell::NotStarted
        );
    }

    #[test]
    fn every_reason_not_to_count_a_sheet_reads_in_vietnamese_not_as_a_code() {
        use Exclusion::*;
        for why in [
            Secretary,
            Abstained,
            Recused,
            Absent,
            Pending,
            NotOnCouncil,
            Incomplete,
            DuplicateSheet,
        ] {
            let vi = exclusion_label(why, Lang::Vi);
            assert_ne!(vi, exclusion_label(why, Lang::En), "{why:?}");
            assert_ne!(vi.to_lowercase(), format!("{why:?}").to_lowercase());
        }
        assert_eq!(exclusion_label(Pending, Lang::Vi), "chưa nộp phiếu");
    }
}
