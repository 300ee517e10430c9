//! A chair's fresh device pulling a round that spans several pages. The app
//! asks for the next page as soon as a page's headers name it, and reads and
//! decodes that page on its own task while it stores the current one
//! (`app/core/src/sync.rs`); whatever the overlap, the device must end holding
//! exactly what the server holds, with its cursor at the server's last seq.

use std::collections::BTreeMap;

use ocop_app::Device;
use ocop_shared::wire::{
    DEFAULT_PULL_LIMIT, EnrolmentCodeRequest, Entity, PROTOCOL_VERSION, PushRequest, SheetState,
};
use ocop_sync_server::{Principal, testing};
use ocop_tests::load::{member_sheets, setup};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_device_pulling_many_pages_holds_every_sheet_the_server_holds() {
    const MEMBERS: usize = 6;
    const PRODUCTS: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), MEMBERS, PRODUCTS);
    let srv = testing::spawn(dir.path()).await.unwrap();
    let store = srv.state.store.clone();

    // Every member scores every product (through the store: the pull is
    // what is tested here), 50 sheets a push: a push is one seq, and a page
    // never splits one seq, so smaller pushes make pages close to the limit.
    for (m, token) in s.members.iter().enumerate() {
        let who = store.authenticate(token).unwrap().unwrap();
        let mutations = member_sheets(&s, m);
        for chunk in mutations.chunks(50) {
            store
                .push(
                    &who,
                    &PushRequest {
                        protocol: PROTOCOL_VERSION,
                        mutations: chunk.to_vec(),
                    },
                )
                .unwrap();
        }
    }

    // What the chair may see, as the server holds it.
    let chair = store.authenticate(&s.chair).unwrap().unwrap();
    let all = store.pull(&chair, 0, 1_000_000).unwrap();
    assert!(!all.has_more);
    let expected: BTreeMap<Uuid, SheetState> = all
        .changes
        .iter()
        .filter_map(|c| match &c.entity {
            Entity::Sheet(sh) => Some((sh.id, (**sh).clone())),
            _ => None,
        })
        .collect();
    assert_eq!(expected.len(), MEMBERS * PRODUCTS);
    assert!(
        all.changes.len() > 2 * DEFAULT_PULL_LIMIT,
        "the round spans at least three pages ({} changes)",
        all.changes.len()
    );

    // The chair's new laptop, enrolled with a code.
    let code = store
        .issue_enrolment_code(
            &Principal::system(),
            &EnrolmentCodeRequest {
                user_id: chair.user.id,
                ttl_minutes: None,
            },
            &srv.url,
        )
        .unwrap();
    let ddir = tempfile::tempdir().unwrap();
    let d = Device::open(ddir.path()).unwrap();
    d.enrol(&srv.url, &code.code, "chair laptop").await.unwrap();
    let report = tokio::time::timeout(std::time::Duration::from_secs(120), d.sync_now())
        .await
        .expect("the pull ends")
        .unwrap();

    assert_eq!(report.pulled_changes, all.changes.len() as u64);
    assert!(
        report.pull_requests >= 3,
        "{} requests for {} changes",
        report.pull_requests,
        all.changes.len()
    );
    let mut held: BTreeMap<Uuid, SheetState> = BTreeMap::new();
    for p in &s.products {
        for sh in d.sheets_of_product(p.id).unwrap() {
            assert!(held.insert(sh.id, sh).is_none(), "a sheet held twice");
        }
    }
    assert_eq!(
        held.len(),
        expected.len(),
        "every sheet arrived, none twice"
    );
    for (id, want) in &expected {
        assert_eq!(
            held.get(id),
            Some(want),
            "sheet {id} as the server holds it"
        );
    }
    assert_eq!(d.status().unwrap().pending, 0);

    // Nothing new: the next sync asks for one page and brings nothing.
    let again = d.sync_now().await.unwrap();
    assert_eq!((again.pull_requests, again.pulled_changes), (1, 0));
}
