//! Who may write what, as rules on data the store already loaded: the
//! refusals every push operation shares, so that one kind of caller is
//! refused the same way whichever operation it sends; and the bound on the
//! credential that lets a device in (an enrolment code's lifetime).
//!
//! The store looks things up and asks these functions; they never touch the
//! database, so a second backend gets the same answers by calling them.

use ocop_shared::rubric::RubricRef;
use ocop_shared::wire::{
    CouncilRole, EnrolmentCodeRequest, MAX_ENROLMENT_TTL_MINUTES, RejectCode, SheetState,
};
use uuid::Uuid;

use crate::error::Error;

/// A mutation refused for good: its reject code and the reason shown to the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: RejectCode,
    pub reason: String,
}

impl Refusal {
    fn new(code: RejectCode, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// The caller's place on a round's council, for any write to the round.
///
/// `role` is the caller's *active* roster entry (`None` when they are not on
/// the roster or were left out of it, `active: false`). A member removed
/// from the council loses every write at once, not only some: their sheets
/// stay as they were when they were removed, so nothing they send afterwards
/// (answers, notes, a submit, an abstention, a chair's decision) may change
/// what the council counts.
pub(crate) fn on_council(round: Uuid, role: Option<CouncilRole>) -> Result<CouncilRole, Refusal> {
    role.ok_or_else(|| {
        Refusal::new(
            RejectCode::Forbidden,
            format!(
                "you are not on the council of round {round} (not on its roster, or removed from it); ask the provincial office to add you back"
            ),
        )
    })
}

/// [`on_council`], and the caller scores: the secretary keeps the minutes.
pub(crate) fn scoring_member(round: Uuid, role: Option<CouncilRole>) -> Result<(), Refusal> {
    match on_council(round, role)? {
        CouncilRole::Secretary => Err(Refusal::new(
            RejectCode::Forbidden,
            "the secretary keeps the minutes and does not score",
        )),
        _ => Ok(()),
    }
}

/// A write to an existing sheet must name the rubric the sheet is pinned to.
///
/// The sheet's answers were checked against its pinned rubric; a write naming
/// another one (a device that fetched a newer version, or a client that
/// guessed) would have its options read against a rubric it did not mean.
/// Refused rather than silently re-read, so the device learns the pin.
pub(crate) fn pinned_rubric(sheet: &SheetState, named: &RubricRef) -> Result<(), Refusal> {
    if sheet.rubric == *named {
        return Ok(());
    }
    Err(Refusal::new(
        RejectCode::Invalid,
        format!(
            "sheet {} is pinned to rubric {} version {}, but this write names rubric {} version {}; pull the sheet and write it against its pinned rubric",
            sheet.id, sheet.rubric.id, sheet.rubric.version, named.id, named.version
        ),
    ))
}

/// A photo a write names that the caller did not upload and may not read.
pub(crate) fn attachment_not_available(sha256: &str) -> Refusal {
    Refusal::new(
        RejectCode::NotFound,
        format!(
            "attachment {sha256} is not available to you; a sheet may name only a photo you uploaded or may already read, so name a photo of your own"
        ),
    )
}

/// Default lifetime of an enrolment code: one day.
const DEFAULT_ENROLMENT_TTL_MINUTES: u32 = 24 * 60;

/// The lifetime of an enrolment code asked for, within the documented bound.
///
/// A code is a password for one sign-in; one that lives for years is a
/// standing key to the account (and `u32::MAX` minutes is past the year
/// 9999, which RFC 3339 cannot write).
pub(crate) fn enrolment_ttl(req: &EnrolmentCodeRequest) -> Result<chrono::Duration, Error> {
    let minutes = req.ttl_minutes.unwrap_or(DEFAULT_ENROLMENT_TTL_MINUTES);
    if minutes > MAX_ENROLMENT_TTL_MINUTES {
        return Err(Error::BadRequest(format!(
            "ttl_minutes is {minutes}; an enrolment code lives at most {MAX_ENROLMENT_TTL_MINUTES} minutes (30 days): ask for fewer, or issue a new code when it expires"
        )));
    }
    Ok(chrono::Duration::minutes(i64::from(minutes)))
}
