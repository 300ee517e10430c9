//! Random operation scripts on three devices of one member, synced in random
//! order through a real server: afterwards every device holds the same
//! sheets, nothing is pending, and every open conflict is visible everywhere.
//! The seed is printed; rerun one with `OCOP_SEED=<n>`.

mod common;

use common::*;
use ocop_app::Keep;
use ocop_shared::wire::SheetState;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

async fn run(seed: u64) {
    eprintln!("seed {seed}");
    let s = server().await;
    let u = &s.demo.members()[6];
    let mut devs = Vec::new();
    for _ in 0..3 {
        let d = device(&s.srv.url, u).await;
        sync(&d.dev).await;
        devs.push(d);
    }
    let products = [s.demo.product_ids[6], s.demo.product_ids[7]];
    let mut rng = StdRng::seed_from_u64(seed);
    for step in 0..40 {
        let d = &devs[rng.random_range(0..devs.len())].dev;
        let p = products[rng.random_range(0..products.len())];
        match rng.random_range(0..10) {
            0..=5 => {
                let (c, o) = option(d, p, rng.random_range(0..4), rng.random_range(0..4));
                d.set_answer(p, &c, Some(&o)).unwrap();
            }
            6 => d.set_note(p, &format!("ghi chú {step}")).unwrap(),
            7 | 8 => {
                sync(d).await;
            }
            _ => {
                if let Some(c) = d.conflicts().unwrap().first() {
                    let keep = if rng.random_bool(0.5) {
                        Keep::Current
                    } else {
                        Keep::Other
                    };
                    d.resolve_conflict(c.sheet_id, c.conflict_id, keep).unwrap();
                }
            }
        }
    }
    // Heal: everyone syncs until nothing moves.
    for _ in 0..3 {
        for d in &devs {
            sync(&d.dev).await;
        }
    }
    for p in products {
        let views: Vec<SheetState> = devs.iter().map(|d| d.dev.sheet(p).unwrap().sheet).collect();
        for v in &views[1..] {
            assert_eq!(v, &views[0], "seed {seed}: devices diverge on {p}");
        }
    }
    eprintln!(
        "seed {seed}: {} open conflicts, {} answers, {} set aside",
        devs[0].dev.status().unwrap().conflicts,
        products
            .iter()
            .map(|p| devs[0].dev.sheet(*p).unwrap().sheet.answers.len())
            .sum::<usize>(),
        devs.iter()
            .map(|d| d.dev.needs_attention().unwrap().len())
            .sum::<usize>()
    );
    for d in &devs {
        let st = d.dev.status().unwrap();
        assert_eq!(st.pending, 0, "seed {seed}");
        assert_eq!(
            st.conflicts,
            devs[0].dev.status().unwrap().conflicts,
            "seed {seed}"
        );
        // Only a resolve that raced another resolve may be refused.
        for a in d.dev.needs_attention().unwrap() {
            assert!(
                matches!(
                    a.mutation.as_ref().map(|m| &m.op),
                    Some(ocop_shared::wire::Op::ResolveConflict { .. })
                ),
                "seed {seed}: unexpected rejection {a:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_edit_scripts_on_three_devices_converge_to_the_same_sheets() {
    match std::env::var("OCOP_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => run(seed).await,
        None => {
            for seed in 1..=6 {
                run(seed).await;
            }
        }
    }
}
