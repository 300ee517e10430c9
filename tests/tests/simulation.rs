//! Deterministic simulation: one server, five devices (a chair, a member with
//! two devices, two more members), random operations and random delivery
//! faults, then heal and quiesce, and check that
//! - every device converges to the server's state (what that user may see),
//! - every edit the app acknowledged to its user is on the server (in some
//!   accepted revision) or recorded as a flagged conflict or shown to the user
//!   as "needs attention"; no mutation was applied twice,
//! - no outbox is stuck.
//!
//! Each schedule is generated from a seed, printed when it fails, and shrunk
//! to a minimal list of steps. `OCOP_SIM_SCHEDULES` (default 256) and
//! `OCOP_SIM_SEED` (first seed, default 1) choose the schedules:
//! `OCOP_SIM_SCHEDULES=10000 cargo test --release -p ocop-tests --test simulation -- --nocapture`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ocop_app::Device;
use ocop_shared::bundled;
use ocop_shared::rubric::Rubric;
use ocop_shared::wire::{Answer, ConflictField, Entity, Op, SheetState};
use ocop_tests::proxy::FaultRates;
use ocop_tests::world::{PRODUCTS, Template, World, system};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Failing seeds found before, minimized; always run.
/// 22267: a member's offline edit reaching the server after the chair
/// finalized the product is refused (locked) and shown to the member; the
/// check once wrongly required a server sheet to exist.
const REGRESSION_SEEDS: &[u64] = &[22267];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Answer {
        dev: usize,
        product: usize,
        criterion: usize,
        option: usize,
    },
    Note {
        dev: usize,
        product: usize,
        criterion: usize,
        text: u32,
    },
    Attach {
        dev: usize,
        product: usize,
        criterion: usize,
        blob: u32,
    },
    FillAndSubmit {
        dev: usize,
        product: usize,
    },
    Reopen {
        product: usize,
        member_dev: usize,
    },
    Finalize {
        product: usize,
    },
    Sync {
        dev: usize,
    },
    Offline {
        dev: usize,
        offline: bool,
    },
    Flaky {
        dev: usize,
        flaky: bool,
    },
    KillDevice {
        dev: usize,
    },
    RestartServer,
    ClockSkew {
        dev: usize,
        seconds: i64,
    },
}

fn schedule(seed: u64) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.random_range(20..60);
    let scorers = [0usize, 1, 2, 3, 4];
    (0..n)
        .map(|_| {
            let dev = scorers[rng.random_range(0..scorers.len())];
            let product = rng.random_range(0..PRODUCTS);
            match rng.random_range(0..100) {
                0..=29 => Step::Answer {
                    dev,
                    product,
                    criterion: rng.random_range(0..31),
                    option: rng.random_range(0..6),
                },
                30..=36 => Step::Note {
                    dev,
                    product,
                    criterion: rng.random_range(0..31),
                    text: rng.random_range(0..1000),
                },
                37..=39 => Step::Attach {
                    dev,
                    product,
                    criterion: rng.random_range(0..31),
                    blob: rng.random_range(0..3),
                },
                40..=47 => Step::FillAndSubmit { dev, product },
                48..=50 => Step::Reopen {
                    product,
                    member_dev: rng.random_range(1..5),
                },
                51..=54 => Step::Finalize { product },
                55..=79 => Step::Sync { dev },
                80..=84 => Step::Offline {
                    dev,
                    offline: rng.random_bool(0.6),
                },
                85..=89 => Step::Flaky {
                    dev,
                    flaky: rng.random_bool(0.7),
                },
                90..=93 => Step::KillDevice { dev },
                94..=95 => Step::RestartServer,
                _ => Step::ClockSkew {
                    dev,
                    seconds: [-86_400, 86_400, -3_600, 0][rng.random_range(0..4)],
                },
            }
        })
        .collect()
}

fn rubric_of(world: &World, product: usize) -> Rubric {
    let id = &world.demo.products[product].rubric.id;
    bundled::scoreable()
        .into_iter()
        .find(|r| &r.id == id)
        .expect("bundled rubric")
}

/// The last value each device showed its user for (product, criterion).
type Acked = BTreeMap<(usize, usize, String), Answer>;

fn record(acked: &mut Acked, d: &Device, dev: usize, product: usize, pid: Uuid, code: &str) {
    if let Ok(v) = d.sheet(pid)
        && let Some(a) = v.sheet.answers.get(code)
    {
        acked.insert((dev, product, code.to_string()), a.answer.clone());
    }
}

async fn run_step(world: &mut World, step: Step, acked: &mut Acked, trace: &mut String) {
    let _ = writeln!(trace, "{step:?}");
    match step {
        Step::Answer {
            dev,
            product,
            criterion,
            option,
        } => {
            let r = rubric_of(world, product);
            let (_, _, c) = r.criteria().nth(criterion).expect("criterion");
            let opts: Vec<_> = c.options().collect();
            let o = &opts[option % opts.len()].id;
            let pid = world.product(product);
            let d = world.devs[dev].d();
            if d.set_answer(pid, &c.code, Some(o)).is_ok() {
                record(acked, d, dev, product, pid, &c.code);
            }
        }
        Step::Note {
            dev,
            product,
            criterion,
            text,
        } => {
            let r = rubric_of(world, product);
            let (_, _, c) = r.criteria().nth(criterion).expect("criterion");
            let pid = world.product(product);
            let d = world.devs[dev].d();
            if d.set_answer_note(
                pid,
                &c.code,
                &format!("Ghi chú số {text}: đã kiểm tra hồ sơ"),
            )
            .is_ok()
            {
                record(acked, d, dev, product, pid, &c.code);
            }
        }
        Step::Attach {
            dev,
            product,
            criterion,
            blob,
        } => {
            let r = rubric_of(world, product);
            let (_, _, c) = r.criteria().nth(criterion).expect("criterion");
            let pid = world.product(product);
            let d = world.devs[dev].d();
            let bytes = format!(
                "ảnh minh chứng {blob} — {}",
                "x".repeat(2000 + blob as usize)
            )
            .into_bytes();
            if d.add_attachment(pid, &c.code, &bytes, "image/jpeg").is_ok() {
                record(acked, d, dev, product, pid, &c.code);
            }
        }
        Step::FillAndSubmit { dev, product } => {
            let r = rubric_of(world, product);
            let pid = world.product(product);
            let d = world.devs[dev].d();
            for (_, _, c) in r.criteria() {
                let answered = d.sheet(pid).map(|v| {
                    v.sheet
                        .answers
                        .get(&c.code)
                        .is_some_and(|a| a.answer.option.is_some())
                });
                if matches!(answered, Ok(false)) {
                    let o = &c.options().last().expect("options").id;
                    if d.set_answer(pid, &c.code, Some(o)).is_ok() {
                        record(acked, d, dev, product, pid, &c.code);
                    }
                }
            }
            let _ = d.submit(pid);
        }
        Step::Reopen {
            product,
            member_dev,
        } => {
            let pid = world.product(product);
            let owner = world.user_id(member_dev);
            let _ = world.devs[0]
                .d()
                .reopen(pid, owner, "Chênh lệch điểm, đề nghị chấm lại");
        }
        Step::Finalize { product } => {
            let pid = world.product(product);
            let _ = world.devs[0]
                .d()
                .finalize(pid, "Hội đồng thống nhất kết quả");
        }
        Step::Sync { dev } => {
            let _ = world.devs[dev].d().sync_now().await;
        }
        Step::Offline { dev, offline } => world.devs[dev].proxy.set_offline(offline),
        Step::Flaky { dev, flaky } => world.devs[dev].proxy.set_rates(if flaky {
            FaultRates::FLAKY
        } else {
            FaultRates::NONE
        }),
        Step::KillDevice { dev } => world.devs[dev].kill_and_reopen(),
        Step::RestartServer => world.restart_server().await,
        Step::ClockSkew { dev, seconds } => skew(world.devs[dev].d(), seconds),
    }
}

fn skew(d: &Device, seconds: i64) {
    d.set_clock_skew(seconds);
}

/// Heals every fault and syncs until nothing moves; `Err` if an outbox stays stuck.
async fn quiesce(world: &mut World) -> Result<(), String> {
    for d in &world.devs {
        d.proxy.set_offline(false);
        d.proxy.set_rates(FaultRates::NONE);
        skew(d.d(), 0);
    }
    for round in 0..12 {
        let mut moved = false;
        for (i, d) in world.devs.iter().enumerate() {
            match d.d().sync_now().await {
                Ok(r) => {
                    moved |=
                        r.acknowledged + r.pulled_changes + r.rejected + r.attachments_uploaded > 0
                }
                Err(e) => {
                    return Err(format!(
                        "device {i}: sync failed after healing (round {round}): {e}"
                    ));
                }
            }
        }
        if !moved {
            for (i, d) in world.devs.iter().enumerate() {
                let s = d.d().status().map_err(|e| e.to_string())?;
                if s.pending > 0 {
                    return Err(format!(
                        "device {i}: {} mutations stuck in the outbox",
                        s.pending
                    ));
                }
            }
            return Ok(());
        }
    }
    Err("still changing after 12 sync rounds".into())
}

fn server_sheets(world: &World) -> Vec<SheetState> {
    let page = world
        .store()
        .pull(&system(), 0, 1_000_000)
        .expect("pull as system");
    page.changes
        .into_iter()
        .filter_map(|c| match c.entity {
            Entity::Sheet(s) => Some(*s),
            _ => None,
        })
        .collect()
}

fn device_token(world: &World, dev: usize) -> String {
    let c = rusqlite::Connection::open(world.devs[dev].dir.join("ocop.sqlite"))
        .expect("open device db");
    c.query_row("SELECT value FROM meta WHERE key = 'token'", [], |r| {
        r.get(0)
    })
    .expect("token")
}

fn check(world: &World, acked: &Acked) -> Result<(), String> {
    let store = world.store();
    // 1. Convergence: each device holds exactly what the server lets its user see.
    for (i, d) in world.devs.iter().enumerate() {
        let who = store
            .authenticate(&device_token(world, i))
            .map_err(|e| e.to_string())?
            .ok_or("token refused")?;
        let page = store.pull(&who, 0, 1_000_000).map_err(|e| e.to_string())?;
        let mut want: BTreeMap<Uuid, SheetState> = BTreeMap::new();
        let mut decisions = BTreeMap::new();
        for c in page.changes {
            match c.entity {
                Entity::Sheet(s) => {
                    want.insert(s.id, *s);
                }
                Entity::Decision(dd) => {
                    decisions.insert(dd.product_id, *dd);
                }
                _ => {}
            }
        }
        let mut have: BTreeMap<Uuid, SheetState> = BTreeMap::new();
        for p in 0..world.demo.product_ids.len() {
            for s in d
                .d()
                .sheets_of_product(world.product(p))
                .map_err(|e| e.to_string())?
            {
                have.insert(s.id, s);
            }
            let local = d
                .d()
                .decision_of(world.product(p))
                .map_err(|e| e.to_string())?;
            if local.as_ref() != decisions.get(&world.product(p)) {
                return Err(format!(
                    "device {i}: decision of product {p} differs from the server's"
                ));
            }
        }
        if have != want {
            let only_here: Vec<_> = have.keys().filter(|k| !want.contains_key(k)).collect();
            let only_there: Vec<_> = want.keys().filter(|k| !have.contains_key(k)).collect();
            let differ: Vec<_> = have
                .iter()
                .filter(|(k, v)| want.get(k).is_some_and(|w| w != *v))
                .map(|(k, _)| k)
                .collect();
            return Err(format!(
                "device {i} did not converge: only on device {only_here:?}, only on server {only_there:?}, different {differ:?}"
            ));
        }
    }
    // 2. Every acknowledged edit is on the server, a flagged conflict, or shown as needing attention.
    let sheets = server_sheets(world);
    for ((dev, product, code), value) in acked {
        let owner = world.user_id(*dev);
        let pid = world.product(*product);
        // No sheet on the server is fine only if the device was told its
        // writes were refused (e.g. the product was finalized before they came).
        let sheet = sheets
            .iter()
            .find(|s| s.product_id == pid && s.owner_id == owner);
        let revisions = match sheet {
            Some(sheet) => store
                .sheet_revisions(&system(), sheet.id)
                .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let in_history = revisions
            .iter()
            .any(|r| r.answers.get(code).is_some_and(|a| &a.answer == value));
        let in_conflicts = sheet.is_some_and(|sheet| {
            sheet.conflicts.iter().any(|c| {
                matches!(&c.field, ConflictField::Answer { criterion, theirs } if criterion == code && theirs == value)
                    && c.device_id == world.devs[*dev].device_id
            })
        });
        let attention = world.devs[*dev]
            .d()
            .needs_attention()
            .map_err(|e| e.to_string())?;
        let refused = attention
            .iter()
            .any(|a| match a.mutation.as_ref().map(|m| &m.op) {
                Some(Op::SetAnswers { sheet, answers }) => {
                    sheet.product_id == pid
                        && answers
                            .iter()
                            .any(|e| &e.criterion == code && &e.answer == value)
                }
                _ => false,
            });
        if !(in_history || in_conflicts || refused) {
            return Err(format!(
                "device {dev}: acknowledged answer {code} = {value:?} of product {product} is lost"
            ));
        }
    }
    // 3. No mutation applied twice.
    let db = rusqlite::Connection::open(world.server_dir().join(ocop_sync_server::DB_FILE))
        .map_err(|e| e.to_string())?;
    let dups: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT device_id, mutation_id FROM sheet_revisions GROUP BY 1, 2 HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if dups > 0 {
        return Err(format!("{dups} mutations were applied more than once"));
    }
    Ok(())
}

/// What a schedule exercised, to show the faults really happened.
#[derive(Debug, Default)]
struct Stats {
    acked: usize,
    conflicts: usize,
    refused: usize,
    faults: usize,
    requests: usize,
}

async fn run(template: &Template, seed: u64, steps: &[Step]) -> Result<Stats, String> {
    let mut world = World::from_template(template, seed).await;
    let mut acked = Acked::new();
    let mut trace = String::new();
    for s in steps {
        run_step(&mut world, *s, &mut acked, &mut trace).await;
    }
    if std::env::var_os("OCOP_SIM_VERBOSE").is_some() {
        eprintln!("seed {seed} steps:\n{trace}");
    }
    quiesce(&mut world).await?;
    check(&world, &acked)?;
    let mut st = Stats {
        acked: acked.len(),
        ..Stats::default()
    };
    st.conflicts = server_sheets(&world)
        .iter()
        .map(|s| s.conflicts.len())
        .sum();
    for d in &world.devs {
        let attention = d.d().needs_attention().map_err(|e| e.to_string())?;
        if std::env::var_os("OCOP_SIM_VERBOSE").is_some() {
            for a in &attention {
                eprintln!(
                    "seed {seed}: refused {}: {} — {}",
                    a.code,
                    a.reason,
                    serde_json::to_string(&a.mutation).unwrap_or_default()
                );
            }
        }
        st.refused += attention.len();
        let log = d.proxy.log();
        st.requests += log.len();
        st.faults += log
            .iter()
            .filter(|(_, f)| *f != ocop_tests::proxy::Fault::Pass)
            .count();
    }
    Ok(st)
}

/// Removes steps while the failure persists (bounded).
/// Removes steps while `fails` still holds (delta debugging, bounded to 150 runs).
async fn minimize<F, Fut>(mut steps: Vec<Step>, mut fails: F) -> Vec<Step>
where
    F: FnMut(Vec<Step>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut chunk = steps.len() / 2;
    let mut tries = 0;
    while chunk >= 1 && tries < 150 {
        let mut i = 0;
        let mut removed = false;
        while i < steps.len() && tries < 150 {
            let mut cand = steps.clone();
            cand.drain(i..(i + chunk).min(steps.len()));
            tries += 1;
            if fails(cand.clone()).await {
                steps = cand;
                removed = true;
            } else {
                i += chunk;
            }
        }
        if !removed {
            chunk /= 2;
        }
    }
    steps
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run_seeds(seeds: impl Iterator<Item = u64>) {
    let template = Template::build().await;
    let mut ran = 0;
    let mut total = Stats::default();
    for seed in seeds {
        let steps = schedule(seed);
        match run(&template, seed, &steps).await {
            Ok(st) => {
                total.acked += st.acked;
                total.conflicts += st.conflicts;
                total.refused += st.refused;
                total.faults += st.faults;
                total.requests += st.requests;
            }
            Err(e) => {
                eprintln!("seed {seed} failed: {e}\nminimizing…");
                let min = minimize(steps, |cand| {
                    let t = &template;
                    async move { run(t, seed, &cand).await.is_err() }
                })
                .await;
                let again = run(&template, seed, &min).await.err().unwrap_or_default();
                panic!(
                    "simulation seed {seed} failed: {e}\nminimal schedule ({} steps, fails with: {again}):\n{min:#?}\nadd {seed} to REGRESSION_SEEDS once fixed",
                    min.len()
                );
            }
        }
        ran += 1;
        if ran % 500 == 0 {
            eprintln!("{ran} schedules converged so far (last seed {seed})");
        }
    }
    eprintln!(
        "{ran} schedules converged: {} acknowledged edits checked, {} conflicts flagged, {} refusals shown, {} of {} requests faulted",
        total.acked, total.conflicts, total.refused, total.faults, total.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_converge_and_lose_nothing_under_random_faults() {
    let n = env_u64("OCOP_SIM_SCHEDULES", 256);
    let first = env_u64("OCOP_SIM_SEED", 1);
    eprintln!("simulation: seeds {first}..{}", first + n);
    run_seeds(first..first + n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_seeds_still_converge() {
    run_seeds(REGRESSION_SEEDS.iter().copied()).await;
}

/// The shrinker keeps exactly the steps a failure needs.
#[tokio::test]
async fn minimizer_keeps_only_the_steps_a_failure_needs() {
    let steps = schedule(42);
    let mut with = steps.clone();
    with.insert(7, Step::RestartServer);
    with.insert(19, Step::Finalize { product: 1 });
    // A synthetic failure: a restart followed later by a finalize of product 1.
    let fails = |s: Vec<Step>| async move {
        let r = s.iter().position(|x| *x == Step::RestartServer);
        let f = s.iter().rposition(|x| *x == Step::Finalize { product: 1 });
        matches!((r, f), (Some(r), Some(f)) if r < f)
    };
    let min = minimize(with, fails).await;
    assert_eq!(
        min,
        vec![Step::RestartServer, Step::Finalize { product: 1 }]
    );
}
