//! The audit log lists every pushed mutation once: from its idempotency row
//! (schema 9) or, for pushes stored before, from its audit row; newest
//! first, beside the other entries.

mod common;

use common::StoreWorld;
use ocop_sync_server::{Principal, Store};

#[test]
fn every_pushed_mutation_is_listed_once_newest_first_beside_older_audit_rows() {
    let w = StoreWorld::new();
    let (user, device) = (w.who.user.id.to_string(), w.who.device_id.to_string());
    // A push as schema 8 stored it: an audit row, and an idempotency row
    // without its operation.
    let db = rusqlite::Connection::open(&w.path).unwrap();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    db.execute(
        r#"INSERT INTO audit (at, user_id, device_id, action, detail, seq)
           VALUES (?3, ?1, ?2, 'push:set_answers',
                   '{"mutation_id":7,"outcome":{"status":"applied","seq":1},"status":"applied"}', 1)"#,
        [&user, &device, &at],
    )
    .unwrap();
    db.execute(
        r#"INSERT INTO applied_mutations (device_id, mutation_id, body_hash, outcome, at)
           VALUES (?1, 7, 'h', '{"status":"applied","seq":1}', ?2)"#,
        [&device, &at],
    )
    .unwrap();
    // Now: a whole sheet (applied), an edit on a stale base (a conflict),
    // an answer to a criterion the sheet does not have (rejected).
    let whole: Vec<(String, usize)> = w.codes().into_iter().map(|c| (c, 0)).collect();
    let mut unknown = w.set(10, vec![("1.2".into(), 0)]);
    if let ocop_shared::wire::Op::SetAnswers { answers, .. } = &mut unknown.op {
        answers[0].criterion = "9.99".into();
    }
    let r = w.push_any(vec![
        w.set(8, whole),
        w.set(9, vec![("1.2".into(), 1)]),
        unknown,
    ]);
    let seqs: Vec<Option<u64>> = r
        .results
        .iter()
        .map(|x| match x.outcome {
            ocop_shared::wire::Outcome::Applied { seq, .. }
            | ocop_shared::wire::Outcome::Conflict { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    assert!(
        seqs[0].is_some() && seqs[1].is_some() && seqs[2].is_none(),
        "{r:?}"
    );

    let all = w.sqlite.audit(&Principal::system(), 1000).unwrap();
    let pushed: Vec<_> = all
        .iter()
        .filter(|a| a.action.starts_with("push:"))
        .collect();
    let ids: Vec<u64> = pushed
        .iter()
        .map(|a| a.detail["mutation_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{pushed:?}");
    for id in [7, 8, 9, 10] {
        assert_eq!(
            ids.iter().filter(|&&i| i == id).count(),
            1,
            "mutation {id}: {ids:?}"
        );
    }
    for (id, status, seq, own_row) in [
        (7, "applied", Some(1), true),
        (8, "applied", seqs[0], false),
        (9, "applied", seqs[1], false),
        (10, "rejected", None, false),
    ] {
        let a = pushed
            .iter()
            .find(|a| a.detail["mutation_id"] == id)
            .unwrap();
        assert_eq!(a.action, "push:set_answers");
        assert_eq!(a.detail["status"], status, "{a:?}");
        assert_eq!(a.seq, seq, "{a:?}");
        assert_eq!((a.user_id, a.device_id), (w.who.user.id, w.who.device_id));
        assert_eq!(a.id > 0, own_row, "{a:?}");
    }
    assert!(all.iter().any(|a| a.action == "enrol"));
    assert!(all.windows(2).all(|p| p[0].at >= p[1].at), "newest first");
    // A limit keeps the newest.
    let two = w.sqlite.audit(&Principal::system(), 2).unwrap();
    assert_eq!(
        two.iter().map(|a| a.id).collect::<Vec<_>>(),
        all[..2].iter().map(|a| a.id).collect::<Vec<_>>()
    );
}
