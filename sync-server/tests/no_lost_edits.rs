//! Property: whatever order two devices of one member (and a second member)
//! push their edits in, with or without pulling in between, no edit is lost:
//! every accepted edit is the current value, a stored revision, or a flagged
//! conflict — and resending everything changes nothing.

use ocop_shared::wire::{
    AccountRole, Answer, AnswerEdit, ConflictField, CouncilRole, CreateProductRequest,
    CreateRoundRequest, CreateUserRequest, EnrolRequest, EnrolmentCodeRequest, Entity, Level,
    Mutation, Op, Outcome, PROTOCOL_VERSION, PushRequest, RosterLine, SetRosterRequest, SheetKey,
    SheetState,
};
use ocop_sync_server::sqlite::SqliteStore;
use ocop_sync_server::{Principal, Store};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Step {
    device: usize,
    criterion: usize,
    option: usize,
    pull_first: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (0..2usize, 0..3usize, 0..3usize, any::<bool>()).prop_map(
        |(device, criterion, option, pull_first)| Step {
            device,
            criterion,
            option,
            pull_first,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn no_edit_is_lost_whatever_the_interleaving(steps in proptest::collection::vec(step(), 1..12)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.sqlite3")).unwrap();
        store.install_bundled_rubrics().unwrap();
        let sys = Principal::system();
        let rubric = ocop_shared::bundled::scoreable().remove(0);
        let round = store.create_round(&sys, &CreateRoundRequest { name: "r".into(), level: Level::Province, province: "Hà Tĩnh".into(), starts_on: "2026-01-01".into(), ends_on: "2026-01-02".into(), council: Default::default() }).unwrap();
        let user = store.create_user(&sys, &CreateUserRequest { username: "u".into(), full_name: "U".into(), role: AccountRole::Assessor, password: None }).unwrap();
        store.set_roster(&sys, round.id, &SetRosterRequest { members: vec![RosterLine { user_id: user.id, role: CouncilRole::Member }] }).unwrap();
        let product = store.create_product(&sys, &CreateProductRequest { round_id: round.id, code: "SP".into(), name: "P".into(), producer: "x".into(), commune: "x".into(), district: "x".into(), province: "x".into(), group: rubric.group.clone(), subgroup: rubric.subgroup.clone(), rubric: rubric.reference() }).unwrap();
        let devices: Vec<Principal> = (0..2).map(|i| {
            let code = store.issue_enrolment_code(&sys, &EnrolmentCodeRequest { user_id: user.id, ttl_minutes: None }, "http://x").unwrap().code;
            let t = store.enrol(&EnrolRequest { code, device_name: format!("d{i}") }).unwrap();
            store.authenticate(&t.token).unwrap().unwrap()
        }).collect();
        // Each device's own sheet id (offline start) and its view of revisions.
        let sheet_ids = [Uuid::now_v7(), Uuid::now_v7()];
        let mut seen: [std::collections::BTreeMap<String, u64>; 2] = Default::default();
        let mut sent: Vec<(usize, Mutation)> = Vec::new();
        let criteria: Vec<_> = rubric.criteria().map(|(_, _, c)| c.clone()).take(3).collect();
        let mut accepted = 0usize;
        let mut conflicted = 0usize;
        for (i, s) in steps.iter().enumerate() {
            if s.pull_first {
                let p = store.pull(&devices[s.device], 0, 100_000).unwrap();
                for c in p.changes {
                    if let Entity::Sheet(sheet) = c.entity {
                        seen[s.device] = sheet.answers.iter().map(|(k, v)| (k.clone(), v.rev)).collect();
                    }
                }
            }
            let c = &criteria[s.criterion];
            let opt = c.options().nth(s.option.min(c.options().count() - 1)).unwrap().id.clone();
            let m = Mutation { id: i as u64 + 1, client_time: None, op: Op::SetAnswers {
                sheet: SheetKey { sheet_id: sheet_ids[s.device], round_id: round.id, product_id: product.id, rubric: rubric.reference() },
                answers: vec![AnswerEdit { criterion: c.code.clone(), answer: Answer { option: Some(opt), note: format!("step {i}"), ..Answer::default() }, base_rev: seen[s.device].get(&c.code).copied().unwrap_or(0) }],
            }};
            let r = store.push(&devices[s.device], &PushRequest { protocol: PROTOCOL_VERSION, mutations: vec![m.clone()] }).unwrap();
            match &r.results[0].outcome {
                Outcome::Applied { seq, .. } => { accepted += 1; seen[s.device].insert(c.code.clone(), *seq); }
                Outcome::Conflict { .. } => conflicted += 1,
                o => prop_assert!(false, "unexpected {o:?}"),
            }
            sent.push((s.device, m));
        }
        let sheets: Vec<SheetState> = store.pull(&devices[0], 0, 100_000).unwrap().changes.into_iter().filter_map(|c| match c.entity { Entity::Sheet(s) => Some(*s), _ => None }).collect();
        prop_assert_eq!(sheets.len(), 1, "both devices' sheets are one canonical sheet");
        let sheet = &sheets[0];
        let revisions = store.sheet_revisions(&devices[0], sheet.id).unwrap();
        prop_assert_eq!(revisions.len(), steps.len(), "one revision per accepted push");
        prop_assert_eq!(sheet.conflicts.len(), conflicted);
        // Every edit's note is somewhere: a revision's answer or a conflict's theirs.
        for (i, _) in steps.iter().enumerate() {
            let note = format!("step {i}");
            let in_revision = revisions.iter().any(|r| r.answers.values().any(|a| a.answer.note == note));
            let in_conflict = sheet.conflicts.iter().any(|c| matches!(&c.field, ConflictField::Answer { theirs, .. } if theirs.note == note));
            prop_assert!(in_revision || in_conflict, "edit {} lost", i);
        }
        prop_assert_eq!(accepted + conflicted, steps.len());
        // Resending everything (any order) is all duplicates and changes nothing.
        let before = store.table_counts().unwrap();
        for (d, m) in sent.iter().rev() {
            let r = store.push(&devices[*d], &PushRequest { protocol: PROTOCOL_VERSION, mutations: vec![m.clone()] }).unwrap();
            let is_duplicate = matches!(r.results[0].outcome, Outcome::Duplicate { .. });
            prop_assert!(is_duplicate);
        }
        let after = store.table_counts().unwrap();
        prop_assert_eq!(after["sheet_revisions"], before["sheet_revisions"]);
        prop_assert_eq!(after["entities"], before["entities"]);
    }
}
