//! The local model as pure functions: natural keys of pulled entities and how
//! unacknowledged mutations are laid over a server snapshot. No I/O here, so
//! "keep my pending edits on top of what I just pulled" is unit-testable.

use ocop_shared::wire::{
    AnswerState, ConflictField, DecisionInfo, Entity, Mutation, Op, ParticipationInfo, SheetState,
    SheetStatus,
};
use uuid::Uuid;

pub(crate) const SHEET: &str = "sheet";
pub(crate) const PARTICIPATION: &str = "participation";
pub(crate) const DECISION: &str = "decision";

/// Where a pulled entity is stored: `(kind, key, id, round, product, owner)`.
pub(crate) struct Placement {
    pub kind: &'static str,
    pub key: String,
    pub id: Option<String>,
    pub round: Option<Uuid>,
    pub product: Option<Uuid>,
    pub owner: Option<Uuid>,
}

pub(crate) fn sheet_key(round: Uuid, product: Uuid, owner: Uuid) -> String {
    format!("{round}/{product}/{owner}")
}

pub(crate) fn participation_key(round: Uuid, product: Uuid, user: Uuid) -> String {
    format!("{round}/{product}/{user}")
}

pub(crate) fn decision_key(round: Uuid, product: Uuid) -> String {
    format!("{round}/{product}")
}

pub(crate) fn rubric_key(id: &str, version: u32) -> String {
    format!("{id}@{version}")
}

pub(crate) fn place(e: &Entity) -> Placement {
    let p = |kind, key: String, id: Option<String>, round, product, owner| Placement {
        kind,
        key,
        id,
        round,
        product,
        owner,
    };
    match e {
        Entity::User(u) => p(
            "user",
            u.id.to_string(),
            Some(u.id.to_string()),
            None,
            None,
            None,
        ),
        Entity::Rubric(r) => p(
            "rubric",
            rubric_key(&r.id, r.version),
            None,
            None,
            None,
            None,
        ),
        Entity::Round(r) => p(
            "round",
            r.id.to_string(),
            Some(r.id.to_string()),
            Some(r.id),
            None,
            None,
        ),
        Entity::Roster(r) => p(
            "roster",
            format!("{}/{}", r.round_id, r.user_id),
            None,
            Some(r.round_id),
            None,
            Some(r.user_id),
        ),
        Entity::Product(x) => p(
            "product",
            x.id.to_string(),
            Some(x.id.to_string()),
            Some(x.round_id),
            Some(x.id),
            None,
        ),
        Entity::Participation(x) => p(
            PARTICIPATION,
            participation_key(x.round_id, x.product_id, x.user_id),
            None,
            Some(x.round_id),
            Some(x.product_id),
            Some(x.user_id),
        ),
        Entity::Sheet(s) => p(
            SHEET,
            sheet_key(s.round_id, s.product_id, s.owner_id),
            Some(s.id.to_string()),
            Some(s.round_id),
            Some(s.product_id),
            Some(s.owner_id),
        ),
        Entity::Decision(d) => p(
            DECISION,
            decision_key(d.round_id, d.product_id),
            None,
            Some(d.round_id),
            Some(d.product_id),
            None,
        ),
        Entity::Attachment(a) => p("attachment", a.sha256.clone(), None, None, None, None),
    }
}

/// How a folded write stamps revisions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stamp<'a> {
    /// Not acknowledged yet: revisions stay what the device last saw, so the
    /// next edit still names the base the user built on.
    Pending,
    /// Acknowledged at server `seq`; for a conflict outcome only the criteria
    /// in `applied` took effect (a note edit in conflict did not).
    Acked {
        seq: u64,
        applied: Option<&'a [String]>,
    },
}

/// Folds one sheet operation into a sheet (created from the op's key when a
/// first edit arrives). One rule for the local overlay of pending edits and
/// for the snapshot an acknowledgement updates.
pub(crate) fn apply_sheet_op(
    sheet: &mut Option<SheetState>,
    op: &Op,
    owner: Uuid,
    device: Uuid,
    stamp: Stamp<'_>,
) {
    let (seq, applied) = match stamp {
        Stamp::Pending => (None, None),
        Stamp::Acked { seq, applied } => (Some(seq), applied),
    };
    let bump = |s: &mut SheetState| {
        if let Some(q) = seq {
            s.revision = s.revision.max(q);
        }
    };
    match op {
        Op::SetAnswers {
            sheet: key,
            answers,
        } => {
            let s = sheet.get_or_insert_with(|| SheetState::empty(key, owner));
            for e in answers {
                if applied.is_some_and(|a| !a.contains(&e.criterion)) {
                    continue;
                }
                let rev = seq
                    .unwrap_or_else(|| s.answers.get(&e.criterion).map_or(e.base_rev, |a| a.rev));
                s.answers.insert(
                    e.criterion.clone(),
                    AnswerState {
                        answer: e.answer.clone(),
                        rev,
                        device_id: device,
                    },
                );
            }
            bump(s);
        }
        Op::SetNote {
            sheet: key, note, ..
        } if applied.is_none() => {
            let s = sheet.get_or_insert_with(|| SheetState::empty(key, owner));
            s.note = note.clone();
            if let Some(q) = seq {
                s.note_rev = q;
            }
            bump(s);
        }
        Op::Submit { .. } => {
            if let Some(s) = sheet.as_mut() {
                s.status = SheetStatus::Submitted;
            }
        }
        Op::Reopen { reason, .. } => {
            if let Some(s) = sheet.as_mut() {
                s.status = SheetStatus::Reopened;
                s.reopen_reason = Some(reason.clone());
            }
        }
        Op::ResolveConflict {
            conflict_id,
            answer,
            note,
            ..
        } => {
            if let Some(s) = sheet.as_mut() {
                let field = s
                    .conflicts
                    .iter_mut()
                    .find(|c| c.id == *conflict_id)
                    .map(|c| {
                        c.resolved = true;
                        c.field.clone()
                    });
                match (field, answer, note) {
                    (Some(ConflictField::Answer { criterion, .. }), Some(a), _) => {
                        let rev =
                            seq.unwrap_or_else(|| s.answers.get(&criterion).map_or(0, |x| x.rev));
                        s.answers.insert(
                            criterion,
                            AnswerState {
                                answer: a.clone(),
                                rev,
                                device_id: device,
                            },
                        );
                    }
                    (Some(ConflictField::Note { .. }), _, Some(n)) => {
                        s.note = n.clone();
                        if let Some(q) = seq {
                            s.note_rev = q;
                        }
                    }
                    _ => {}
                }
                bump(s);
            }
        }
        _ => {}
    }
}

/// The sheet as this device shows it: the server snapshot (or nothing) with
/// the pending mutations of that slot applied in id order.
pub(crate) fn sheet_view(
    server: Option<SheetState>,
    owner: Uuid,
    pending: &[Mutation],
    device: Uuid,
) -> Option<SheetState> {
    let mut sheet = server;
    for m in pending {
        apply_sheet_op(&mut sheet, &m.op, owner, device, Stamp::Pending);
    }
    sheet
}

/// Criteria with an edit still waiting for the server.
pub(crate) fn pending_criteria(pending: &[Mutation]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for m in pending {
        if let Op::SetAnswers { answers, .. } = &m.op {
            out.extend(answers.iter().map(|a| a.criterion.clone()));
        }
    }
    out
}

pub(crate) fn participation_view(
    server: Option<ParticipationInfo>,
    pending: &[Mutation],
) -> Option<ParticipationInfo> {
    let mut p = server;
    for m in pending {
        if let Op::SetParticipation {
            round_id,
            product_id,
            user_id,
            participation,
            reason,
        } = &m.op
        {
            p = Some(ParticipationInfo {
                round_id: *round_id,
                product_id: *product_id,
                user_id: *user_id,
                participation: *participation,
                reason: reason.clone(),
            });
        }
    }
    p
}

/// Decisions: a pending finalize or release shows at once; the result is the
/// one the chair computed locally (`local_result`) until the server's arrives.
pub(crate) fn decision_view(
    server: Option<DecisionInfo>,
    previous_local: Option<DecisionInfo>,
    pending: &[Mutation],
    me: Uuid,
) -> Option<DecisionInfo> {
    let mut d = server;
    for m in pending {
        match &m.op {
            Op::Finalize {
                round_id,
                product_id,
                note,
                ..
            } => {
                let x = d.get_or_insert_with(|| DecisionInfo {
                    round_id: *round_id,
                    product_id: *product_id,
                    finalized: false,
                    released: false,
                    result: None,
                    note: String::new(),
                    decided_by: me,
                });
                x.finalized = true;
                x.note = note.clone();
                if x.result.is_none() {
                    x.result = previous_local.as_ref().and_then(|p| p.result.clone());
                }
            }
            Op::Release {
                round_id,
                product_id,
            } => {
                let x = d.get_or_insert_with(|| DecisionInfo {
                    round_id: *round_id,
                    product_id: *product_id,
                    finalized: true,
                    released: false,
                    result: previous_local.as_ref().and_then(|p| p.result.clone()),
                    note: String::new(),
                    decided_by: me,
                });
                x.released = true;
            }
            _ => {}
        }
    }
    d
}

/// Every sheet id a mutation names (to re-key unsent mutations).
pub(crate) fn rekey_op(op: &mut Op, old: Uuid, new: Uuid) {
    let fix = |id: &mut Uuid| {
        if *id == old {
            *id = new;
        }
    };
    match op {
        Op::SetAnswers { sheet, .. } | Op::SetNote { sheet, .. } => fix(&mut sheet.sheet_id),
        Op::Submit { sheet_id } | Op::Reopen { sheet_id, .. } => fix(sheet_id),
        Op::ResolveConflict { sheet_id, .. } => fix(sheet_id),
        Op::Finalize {
            consensus_sheet: Some(s),
            ..
        } => fix(s),
        _ => {}
    }
}

/// The sheet id a mutation is about, if any.
pub(crate) fn sheet_of(op: &Op) -> Option<Uuid> {
    match op {
        Op::SetAnswers { sheet, .. } | Op::SetNote { sheet, .. } => Some(sheet.sheet_id),
        Op::Submit { sheet_id } | Op::Reopen { sheet_id, .. } => Some(*sheet_id),
        Op::ResolveConflict { sheet_id, .. } => Some(*sheet_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocop_shared::rubric::RubricRef;
    use ocop_shared::wire::SheetKey;
    use ocop_shared::wire::{Answer, AnswerEdit};

    fn key() -> SheetKey {
        SheetKey {
            sheet_id: Uuid::from_u128(1),
            round_id: Uuid::from_u128(2),
            product_id: Uuid::from_u128(3),
            rubric: RubricRef {
                id: "r".into(),
                version: 1,
            },
        }
    }

    fn set(id: u64, c: &str, o: &str, base: u64) -> Mutation {
        Mutation {
            id,
            client_time: None,
            op: Op::SetAnswers {
                sheet: key(),
                answers: vec![AnswerEdit {
                    criterion: c.into(),
                    answer: Answer {
                        option: Some(o.into()),
                        ..Default::default()
                    },
                    base_rev: base,
                }],
            },
        }
    }

    #[test]
    fn pending_edits_are_laid_over_a_pulled_snapshot() {
        let dev = Uuid::from_u128(9);
        let other = Uuid::from_u128(8);
        let mut server = SheetState::empty(&key(), Uuid::from_u128(7));
        server.answers.insert(
            "1.1".into(),
            AnswerState {
                answer: Answer {
                    option: Some("a".into()),
                    ..Default::default()
                },
                rev: 5,
                device_id: other,
            },
        );
        server.answers.insert(
            "1.2".into(),
            AnswerState {
                answer: Answer {
                    option: Some("x".into()),
                    ..Default::default()
                },
                rev: 6,
                device_id: other,
            },
        );
        let pending = vec![
            set(1, "1.1", "b", 5),
            set(2, "1.1", "c", 5),
            set(3, "2.1", "z", 0),
        ];
        let v = sheet_view(Some(server), Uuid::from_u128(7), &pending, dev).unwrap();
        assert_eq!(v.answers["1.1"].answer.option.as_deref(), Some("c"));
        assert_eq!(v.answers["1.1"].rev, 5, "keeps the server revision as base");
        assert_eq!(v.answers["1.2"].answer.option.as_deref(), Some("x"));
        assert_eq!(v.answers["2.1"].answer.option.as_deref(), Some("z"));
        assert_eq!(
            pending_criteria(&pending).into_iter().collect::<Vec<_>>(),
            vec!["1.1", "2.1"]
        );
    }

    #[test]
    fn a_sheet_nobody_pushed_yet_is_built_from_its_key() {
        let v = sheet_view(
            None,
            Uuid::from_u128(7),
            &[set(1, "1.1", "b", 0)],
            Uuid::nil(),
        )
        .unwrap();
        assert_eq!(v.id, Uuid::from_u128(1));
        assert_eq!(v.owner_id, Uuid::from_u128(7));
        assert_eq!(v.status, SheetStatus::Draft);
    }

    #[test]
    fn rekeying_changes_only_the_old_sheet_id() {
        let mut m = set(1, "1.1", "b", 0);
        rekey_op(&mut m.op, Uuid::from_u128(1), Uuid::from_u128(42));
        assert_eq!(sheet_of(&m.op), Some(Uuid::from_u128(42)));
        rekey_op(&mut m.op, Uuid::from_u128(1), Uuid::from_u128(43));
        assert_eq!(sheet_of(&m.op), Some(Uuid::from_u128(42)));
    }
}
