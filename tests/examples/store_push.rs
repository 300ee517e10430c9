//! Where push time goes: the benchmark's "push N to an empty server" workload
//! (100 members × 100 products, full 31-criterion sheets with notes) through
//! the store alone, without HTTP; JSON decoding alone; and the "push 100
//! changed sheets" phase (one criterion edited on each of a member's sheets).
//!
//! `cargo run --release -p ocop-tests --example store_push [REPEATS]` prints
//! each repeat and the median (each repeat uses a new server directory).

use std::time::{Duration, Instant};

use ocop_shared::wire::*;
use ocop_sync_server::Options;
use ocop_tests::load::{ADMIN_PASSWORD, member_sheets, setup};

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    // STORE_PUSH_MEMBERS: fewer members (each pushes 100 sheets), to profile
    // under valgrind in minutes.
    let members = std::env::var("STORE_PUSH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let products = 100;
    let n = members * products;
    let (mut decode, mut push, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    // On-CPU time of this (the writing) thread: steadier than wall time on a
    // VM whose speed drifts, and without the checkpointer's thread.
    let mut cpu = Vec::new();
    // On-CPU time of every thread of the process (the checkpointer's and
    // the push's second preparing thread included): what the machine's two
    // cores pay.
    let mut proc_cpu = Vec::new();
    // Bytes this process wrote to files while pushing (WAL frames and the
    // checkpoints copying them): unlike time, the same from run to run, so
    // a change to what a sheet writes shows in one run.
    let mut written = Vec::new();
    // On-CPU time of the checkpoint thread (copying WAL pages into the
    // database file, and its fsyncs).
    let mut checkpointer = Vec::new();
    for r in 0..repeats {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = setup(tmp.path(), members, products);
        let state = ocop_sync_server::open_blocking(
            tmp.path(),
            Options {
                admin_password: Some(ADMIN_PASSWORD.into()),
                public_url: None,
            },
        )
        .expect("open");
        let store = state.store.as_ref();
        let bodies: Vec<(String, Vec<u8>)> = (0..members)
            .map(|m| {
                let req = PushRequest {
                    protocol: PROTOCOL_VERSION,
                    mutations: member_sheets(&s, m),
                };
                (
                    s.members[m].clone(),
                    serde_json::to_vec(&req).expect("encode"),
                )
            })
            .collect();
        let t = Instant::now();
        let reqs: Vec<PushRequest> = bodies
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).expect("decode"))
            .collect();
        decode.push(t.elapsed());
        let who: Vec<_> = bodies
            .iter()
            .map(|(tok, _)| store.authenticate(tok).expect("auth").expect("device"))
            .collect();
        let t = Instant::now();
        let cpu0 = thread_cpu_ns();
        let proc0 = process_cpu_ms();
        let wchar0 = written_bytes();
        let ckpt0 = thread_named_cpu_ms("ocop-checkpoint");
        for (req, who) in reqs.iter().zip(&who) {
            let resp = store.push(who, req).expect("push");
            assert!(
                resp.results
                    .iter()
                    .all(|x| matches!(x.outcome, Outcome::Applied { .. })),
                "{:?}",
                resp.results[0]
            );
        }
        push.push(t.elapsed());
        cpu.push(thread_cpu_ns() - cpu0);
        proc_cpu.push(process_cpu_ms() - proc0);
        written.push(written_bytes() - wchar0);
        checkpointer.push(thread_named_cpu_ms("ocop-checkpoint") - ckpt0);
        // 100 changed sheets: member 0 edits one criterion on each of its
        // sheets (fresh base), one push, 11 times; the median.
        let page = store.pull(&who[0], 0, 10_000).expect("pull");
        let mine: Vec<SheetState> = page
            .changes
            .into_iter()
            .filter_map(|c| match c.entity {
                Entity::Sheet(s) if s.owner_id == who[0].user.id => Some(*s),
                _ => None,
            })
            .collect();
        let mut times = Vec::new();
        // STORE_PUSH_EDIT_ROUNDS=N runs more rounds (for a profile of edits).
        let rounds: u64 = std::env::var("STORE_PUSH_EDIT_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(11);
        for round in 0..rounds {
            let req = PushRequest {
                protocol: PROTOCOL_VERSION,
                mutations: mine
                    .iter()
                    .enumerate()
                    .map(|(i, st)| Mutation {
                        id: 10_000 + round * 100 + i as u64,
                        client_time: None,
                        op: Op::SetAnswers {
                            sheet: SheetKey {
                                sheet_id: st.id,
                                round_id: st.round_id,
                                product_id: st.product_id,
                                rubric: st.rubric.clone(),
                            },
                            answers: vec![AnswerEdit {
                                criterion: "1.2".into(),
                                answer: Answer {
                                    option: Some(if round % 2 == 0 { "a" } else { "b" }.into()),
                                    ..Default::default()
                                },
                                base_rev: st.answers["1.2"].rev,
                            }],
                        },
                    })
                    .collect(),
            };
            let t = Instant::now();
            let resp = store.push(&who[0], &req).expect("push");
            times.push(t.elapsed());
            assert!(
                resp.results
                    .iter()
                    .all(|x| matches!(x.outcome, Outcome::Applied { .. }))
            );
        }
        times.sort();
        changed.push(times[times.len() / 2]);
        // Pull N to the chair, split into the server's part (page JSON,
        // zstd at level 1 as the HTTP layer does) and the device's part
        // (decompress, decode).
        let chair = store.authenticate(&s.chair).expect("auth").expect("chair");
        let (mut cursor, mut pages) = (0, Vec::new());
        let t = Instant::now();
        loop {
            let page = store
                .pull_json(&chair, cursor, DEFAULT_PULL_LIMIT)
                .expect("pull");
            pages.push(page.json);
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        let t_rows = t.elapsed();
        let t = Instant::now();
        let packed: Vec<Vec<u8>> = pages
            .iter()
            .map(|p| zstd::bulk::compress(p.as_bytes(), 1).expect("zstd"))
            .collect();
        let t_zip = t.elapsed();
        let t = Instant::now();
        let plain: Vec<Vec<u8>> = packed
            .iter()
            .map(|z| zstd::decode_all(&z[..]).expect("unzstd"))
            .collect();
        let t_unzip = t.elapsed();
        let t = Instant::now();
        let mut sheets = 0;
        for json in &plain {
            let page: PullResponse = serde_json::from_slice(json).expect("decode");
            sheets += page.changes.len();
        }
        let t_dev = t.elapsed();
        println!(
            "pull {sheets} changes in {} pages: server rows+JSON {:.1} ms, zstd {:.1} ms ({} B); device unzstd {:.1} ms, decode {:.1} ms",
            pages.len(),
            ms(t_rows),
            ms(t_zip),
            packed.iter().map(Vec::len).sum::<usize>(),
            ms(t_unzip),
            ms(t_dev)
        );
        if std::env::var_os("STORE_PUSH_KEEP").is_some() {
            println!("kept {}", tmp.keep().display());
        }
        println!(
            "repeat {r}: decode {n} sheet mutations {:.1} ms ({:.0}/s); store.push {n} new sheets {:.1} ms ({:.0}/s, writer on CPU {:.1} ms); 100 changed sheets {:.2} ms",
            ms(decode[r]),
            rate(n, decode[r]),
            ms(push[r]),
            rate(n, push[r]),
            cpu[r] as f64 / 1e6,
            ms(changed[r])
        );
    }
    decode.sort();
    push.sort();
    cpu.sort();
    proc_cpu.sort();
    changed.sort();
    written.sort();
    checkpointer.sort();
    let (d, p, c) = (decode[repeats / 2], push[repeats / 2], changed[repeats / 2]);
    println!(
        "median of {repeats}: decode {:.0}/s, store.push {:.0}/s ({:.1} µs per sheet; writer on CPU {:.1} µs per sheet, process on CPU {:.1} µs per sheet, checkpointer {:.1} µs per sheet, {:.0} B written per sheet), 100 changed sheets {:.2} ms",
        rate(n, d),
        rate(n, p),
        p.as_secs_f64() * 1e6 / n as f64,
        cpu[repeats / 2] as f64 / 1e3 / n as f64,
        proc_cpu[repeats / 2] as f64 * 1e3 / n as f64,
        checkpointer[repeats / 2] as f64 * 1e3 / n as f64,
        written[repeats / 2] as f64 / n as f64,
        ms(c)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Milliseconds every thread of this process has run on a CPU, user and
/// system (`/proc/self/stat`, clock ticks of 10 ms), 0 where unavailable.
fn process_cpu_ms() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks * 10)
        })
        .unwrap_or(0)
}

/// Milliseconds the threads of this process named `name` have run on a
/// CPU, user and system (`/proc/self/task/*/stat`, clock ticks of 10 ms).
fn thread_named_cpu_ms(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some((f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) * 10)
        })
        .sum()
}

/// Bytes this process has written through `write`-like calls
/// (`/proc/self/io` `wchar`, Linux), 0 where unavailable.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`,
/// Linux), 0 where unavailable.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
