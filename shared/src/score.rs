//! Scoring one sheet: points per part and in total, what is unanswered, and
//! the provisional star with knock-out, disqualifier, mandatory and
//! minimum-requirement (star mark) effects.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::fixed::Centi;
use crate::rubric::{KnockoutEffect, Rubric};
use crate::stars::{self, Effects, Reason, StarOutcome};
use crate::wire::{Answer, Level};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartScore {
    pub code: String,
    pub points: u32,
    pub cap: u32,
}

/// A flag a single sheet raises; the council applies it by majority.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SheetFlag {
    Disqualify {
        criterion: String,
    },
    /// Mandatory criterion failed (cap 2) or a per-star requirement unmet (cap stars − 1).
    Cap {
        criterion: String,
        cap: u8,
        requirement_stars: Option<u8>,
    },
    /// One of the sheet's disqualifiers ("Hồ sơ bị loại khi: …") was raised.
    Disqualifier {
        code: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetScore {
    pub parts: Vec<PartScore>,
    pub total: u32,
    /// Criteria still to answer, in sheet order (criteria of a zeroed section are not required).
    pub unanswered: Vec<String>,
    pub flags: Vec<SheetFlag>,
    /// The star these points alone would give, with its reasons (provisional while incomplete).
    pub star: StarOutcome,
}

impl SheetScore {
    pub fn complete(&self) -> bool {
        self.unanswered.is_empty()
    }

    pub fn part_points(&self, code: &str) -> u32 {
        self.parts
            .iter()
            .find(|p| p.code == code)
            .map_or(0, |p| p.points)
    }
}

/// An answer that does not fit the rubric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("criterion {criterion:?} is not on score sheet {rubric}")]
    UnknownCriterion { rubric: String, criterion: String },
    #[error("option {option:?} is not an option of criterion {criterion} (valid: {valid})")]
    UnknownOption {
        criterion: String,
        option: String,
        valid: String,
    },
    #[error("criterion {criterion} has no knock-out to raise")]
    NoKnockout { criterion: String },
    #[error("disqualifier {code} is raised or lowered, not answered with an option")]
    OptionOnDisqualifier { code: String },
    #[error("attachment {hash:?} of criterion {criterion} is not a lowercase hex sha-256")]
    BadAttachment { criterion: String, hash: String },
    #[error("note of criterion {criterion} is {len} characters; the limit is {limit}")]
    NoteTooLong {
        criterion: String,
        len: usize,
        limit: usize,
    },
}

/// Longest note per answer, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Checks one answer against the rubric; what the server and app call before storing.
pub fn check_answer(rubric: &Rubric, criterion: &str, answer: &Answer) -> Result<(), AnswerError> {
    check_answer_parts(
        rubric,
        criterion,
        &AnswerParts {
            option: answer.option.as_deref(),
            knockout: answer.knockout,
            note: &answer.note,
            attachments: answer.attachments.iter().map(String::as_str),
        },
    )
}

/// An answer's fields as [`check_answer`] reads them, borrowed from wherever
/// they are (the server checks answers still inside a request's JSON).
#[derive(Debug, Clone)]
pub struct AnswerParts<'a, I> {
    pub option: Option<&'a str>,
    pub knockout: bool,
    pub note: &'a str,
    pub attachments: I,
}

/// [`check_answer`] of an answer given by its parts.
pub fn check_answer_parts<'a, I: Iterator<Item = &'a str> + Clone>(
    rubric: &Rubric,
    criterion: &str,
    answer: &AnswerParts<'a, I>,
) -> Result<(), AnswerError> {
    if rubric.criterion(criterion).is_none() && rubric.disqualifier(criterion).is_some() {
        // A disqualifier's answer is its raised flag and the note saying why;
        // the note and the photos are checked as for a criterion.
        if answer.option.is_some() {
            return Err(AnswerError::OptionOnDisqualifier {
                code: criterion.to_string(),
            });
        }
        return check_note_and_attachments(criterion, answer);
    }
    let c = rubric
        .criterion(criterion)
        .ok_or_else(|| AnswerError::UnknownCriterion {
            rubric: format!("{}@{}", rubric.id, rubric.version),
            criterion: criterion.to_string(),
        })?;
    if let Some(o) = answer.option
        && c.option(o).is_none()
    {
        let valid: Vec<String> = c
            .options()
            .map(|o| format!("{}={}", o.id, o.points))
            .collect();
        return Err(AnswerError::UnknownOption {
            criterion: criterion.to_string(),
            option: o.to_string(),
            valid: valid.join(", "),
        });
    }
    if answer.knockout && c.knockout.is_none() {
        return Err(AnswerError::NoKnockout {
            criterion: criterion.to_string(),
        });
    }
    check_note_and_attachments(criterion, answer)
}

fn check_note_and_attachments<'a, I: Iterator<Item = &'a str> + Clone>(
    criterion: &str,
    answer: &AnswerParts<'a, I>,
) -> Result<(), AnswerError> {
    for h in answer.attachments.clone() {
        if !is_sha256_hex(h) {
            return Err(AnswerError::BadAttachment {
                criterion: criterion.to_string(),
                hash: h.to_string(),
            });
        }
    }
    let len = answer.note.chars().count();
    if len > MAX_NOTE_CHARS {
        return Err(AnswerError::NoteTooLong {
            criterion: criterion.to_string(),
            len,
            limit: MAX_NOTE_CHARS,
        });
    }
    Ok(())
}

/// True for 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Scores a sheet. Answers that do not fit the rubric are an error (check
/// them with [`check_answer`] when they are entered).
pub fn score_sheet(
    rubric: &Rubric,
    answers: &BTreeMap<String, Answer>,
    level: Level,
) -> Result<SheetScore, AnswerError> {
    for (code, a) in answers {
        check_answer(rubric, code, a)?;
    }
    // Sections zeroed by a raised ZeroSection knock-out: (part, section code) -> criterion.
    let mut zeroed: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut flags = BTreeSet::new();
    for d in &rubric.disqualifiers {
        if answers.get(&d.code).is_some_and(|a| a.knockout) {
            flags.insert(SheetFlag::Disqualifier {
                code: d.code.clone(),
            });
        }
    }
    for (p, s, c) in rubric.criteria() {
        if let (Some(k), Some(a)) = (&c.knockout, answers.get(&c.code))
            && a.knockout
        {
            match k.effect {
                KnockoutEffect::ZeroSection => {
                    zeroed
                        .entry((p.code.clone(), s.code.clone()))
                        .or_insert_with(|| c.code.clone());
                }
                KnockoutEffect::Disqualify => {
                    flags.insert(SheetFlag::Disqualify {
                        criterion: c.code.clone(),
                    });
                }
            }
        }
    }

    let mut parts = Vec::with_capacity(rubric.parts.len());
    let mut unanswered = Vec::new();
    let mut points_of: BTreeMap<&str, u32> = BTreeMap::new();
    let mut section_notes = Vec::new();
    for p in &rubric.parts {
        let mut pts = 0u32;
        for s in &p.sections {
            let zero_by = zeroed.get(&(p.code.clone(), s.code.clone()));
            if let Some(by) = zero_by {
                section_notes.push(Reason::SectionZeroed {
                    criterion: by.clone(),
                    section: s.code.clone(),
                });
            }
            for c in &s.criteria {
                let chosen = answers
                    .get(&c.code)
                    .and_then(|a| a.option.as_deref())
                    .and_then(|o| c.option(o));
                let got = match (zero_by, chosen) {
                    // Other criteria of a zeroed section are not considered: 0, not required.
                    (Some(by), _) if by != &c.code => 0,
                    (_, Some(o)) => o.points,
                    (_, None) => {
                        unanswered.push(c.code.clone());
                        continue;
                    }
                };
                points_of.insert(&c.code, got);
                pts += got;
                if c.mandatory && chosen.is_some_and(|o| o.points == c.min_points()) {
                    flags.insert(SheetFlag::Cap {
                        criterion: c.code.clone(),
                        cap: 2,
                        requirement_stars: None,
                    });
                }
            }
        }
        // Never above the cap, whatever the data says.
        parts.push(PartScore {
            code: p.code.clone(),
            points: pts.min(p.cap),
            cap: p.cap,
        });
    }
    for r in &rubric.star_requirements {
        if let Some(&got) = points_of.get(r.criterion.as_str())
            && got < r.min_points
        {
            flags.insert(SheetFlag::Cap {
                criterion: r.criterion.clone(),
                cap: r.stars.saturating_sub(1),
                requirement_stars: Some(r.stars),
            });
        }
    }
    let total: u32 = parts.iter().map(|p| p.points).sum();
    let flags: Vec<SheetFlag> = flags.into_iter().collect();
    let mut effects = effects_of(
        rubric,
        &flags.iter().map(|f| (f.clone(), 1)).collect::<Vec<_>>(),
        1,
    );
    effects.reasons.extend(section_notes);
    if !unanswered.is_empty() {
        effects.reasons.push(Reason::Incomplete {
            unanswered: unanswered.len() as u32,
        });
    }
    let star = stars::star(Centi::from_points(i64::from(total)), level, effects);
    Ok(SheetScore {
        parts,
        total,
        unanswered,
        flags,
        star,
    })
}

/// Turns flags (each with how many sheets raised it, out of `of`) into effects.
/// A flag applies when more than half of `of` raised it.
pub(crate) fn effects_of(rubric: &Rubric, flags: &[(SheetFlag, u32)], of: u32) -> Effects {
    let mut e = Effects::default();
    for (f, n) in flags {
        let majority = 2 * n > of;
        let (crit, cap) = match f {
            SheetFlag::Disqualify { criterion } => (criterion.clone(), None),
            SheetFlag::Cap { criterion, cap, .. } => (criterion.clone(), Some(*cap)),
            SheetFlag::Disqualifier { code } => {
                let text_vi = rubric
                    .disqualifier(code)
                    .map(|d| d.text_vi.clone())
                    .unwrap_or_default();
                if majority {
                    e.disqualified = true;
                    e.reasons.push(Reason::DossierDisqualified {
                        code: code.clone(),
                        text_vi,
                        raised_by: *n,
                        of,
                    });
                } else {
                    e.reasons.push(Reason::MinorityDisqualifier {
                        code: code.clone(),
                        text_vi,
                        raised_by: *n,
                        of,
                    });
                }
                continue;
            }
        };
        if !majority {
            e.reasons.push(Reason::MinorityFlag {
                criterion: crit,
                cap,
                raised_by: *n,
                of,
            });
            continue;
        }
        match f {
            SheetFlag::Disqualify { criterion } => {
                e.disqualified = true;
                let text_vi = rubric
                    .criterion(criterion)
                    .and_then(|c| c.knockout.as_ref())
                    .map(|k| k.text_vi.clone())
                    .unwrap_or_default();
                e.reasons.push(Reason::Disqualified {
                    criterion: criterion.clone(),
                    text_vi,
                    raised_by: *n,
                    of,
                });
            }
            // Handled above, majority or not.
            SheetFlag::Disqualifier { .. } => {}
            SheetFlag::Cap {
                criterion,
                cap,
                requirement_stars,
            } => {
                e.cap = Some(e.cap.map_or(*cap, |c| c.min(*cap)));
                match requirement_stars {
                    None => e.reasons.push(Reason::MandatoryFailed {
                        criterion: criterion.clone(),
                        cap: *cap,
                        raised_by: *n,
                        of,
                    }),
                    Some(stars) => {
                        let req = rubric
                            .star_requirements
                            .iter()
                            .find(|r| r.stars == *stars && &r.criterion == criterion);
                        e.reasons.push(Reason::RequirementNotMet {
                            criterion: criterion.clone(),
                            stars: *stars,
                            min_points: req.map_or(0, |r| r.min_points),
                            text_vi: req.map(|r| r.text_vi.clone()).unwrap_or_default(),
                            option: req.and_then(|r| r.option.clone()),
                            raised_by: *n,
                            of,
                        });
                    }
                }
            }
        }
    }
    e
}
