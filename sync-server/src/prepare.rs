//! The part of a push that needs no database, done before the writer lock.
//!
//! The writer is one thread; everything it does is paid once per sheet by
//! every device waiting behind it. What can be worked out from the request
//! alone is worked out here instead, on the pushing thread (and, for a large
//! push, on a second thread as well): each mutation's hash (idempotency), and
//! for a write that would create a sheet, the checks of its answers against
//! the rubric and the sheet's JSON snapshot.
//!
//! A sheet's snapshot carries the push's `seq` (every answer's `rev` and the
//! sheet's `revision`), which only the writer knows. So the snapshot is
//! encoded and compressed with a placeholder number where the seq goes, and
//! the writer stores that with the seq beside it (see [`seq_frame`]); reading
//! a stored body puts the seq in place ([`fill_into`]). What is prepared is a
//! guess: the writer uses it only when the sheet turns out to be new (see
//! `set_answers` in `sqlite.rs`) and otherwise takes the ordinary path, which
//! makes every check again.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ocop_shared::rubric::{Rubric, RubricRef};
use ocop_shared::score::check_answer;
use ocop_shared::wire::{Answer, AnswerEdit, AnswerState, Mutation, Op, SheetKey, SheetStatus};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, Result};

/// What is known of one mutation before the writer takes it.
pub(crate) struct Prepared {
    /// SHA-256 of the mutation's canonical JSON (compared on a resend).
    pub hash: String,
    /// The snapshot it makes if its sheet is new (`None`: not a candidate,
    /// or an answer the rubric refuses, left for the writer to refuse).
    pub sheet: Option<NewSheet>,
    /// The mutation's JSON text, when its decoded answers were dropped
    /// while it waits for the writer (see `push_body` in `sqlite.rs`).
    pub text: Option<Box<str>>,
}

/// A new sheet's snapshot, compressed with a placeholder for its seq.
pub(crate) struct NewSheet {
    /// The compressed [`Template`]'s JSON.
    pub packed: Vec<u8>,
    /// The evidence photos its answers name.
    pub attachments: BTreeSet<String>,
}

/// A new sheet's snapshot JSON with [`PLACEHOLDER`] where its seq goes.
pub(crate) struct Template {
    json: String,
}

/// Where the placeholder stands for a seq in `json`: after `"rev":` or
/// `"revision":`. Numbers never stand inside a JSON string, and a quote
/// inside a string is always escaped, so that is the field itself.
fn holes(json: &str) -> Vec<usize> {
    memchr::memmem::find_iter(json.as_bytes(), PLACEHOLDER_TEXT)
        .filter(|&at| {
            let before = &json.as_bytes()[..at];
            before.ends_with(b"\"rev\":") || before.ends_with(b"\"revision\":")
        })
        .collect()
}

/// Appends a template's JSON to `out` with `seq` in place of the
/// placeholder: the same text as encoding the sheet with `seq` (a property
/// test holds it to that).
pub(crate) fn fill_into(json: &str, seq: u64, out: &mut String) {
    let digits = seq.to_string();
    let mut from = 0;
    for h in holes(json) {
        out.push_str(&json[from..h]);
        out.push_str(&digits);
        from = h + PLACEHOLDER_TEXT.len();
    }
    out.push_str(&json[from..]);
}

/// zstd's first skippable-frame magic (RFC 8878, 3.1.2): a decoder skips
/// such a frame, so a stored template is still a zstd stream; this one
/// carries the seq to put in place.
const SEQ_FRAME_MAGIC: u32 = 0x184D_2A50;

/// A body as stored: `seq` in a skippable frame, then the compressed template.
pub(crate) fn seq_frame(seq: u64, packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + packed.len());
    out.extend_from_slice(&SEQ_FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(packed);
    out
}

/// The seq and the compressed template of a body made by [`seq_frame`];
/// `None` for any other body.
pub(crate) fn split_seq_frame(b: &[u8]) -> Option<(u64, &[u8])> {
    if b.len() < 16 || b[..4] != SEQ_FRAME_MAGIC.to_le_bytes() || b[4..8] != 8u32.to_le_bytes() {
        return None;
    }
    let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
    Some((seq, &b[16..]))
}

/// Stands for the seq while encoding: no write ever gets this seq (the
/// counter would have to count to 2^64 - 1).
const PLACEHOLDER: u64 = u64::MAX;
const PLACEHOLDER_TEXT: &str = "18446744073709551615";

impl Template {
    /// Encodes the sheet `key` that `owner` writing from `device` creates
    /// with `edits`, if every edit carries no base and the rubric accepts
    /// every answer; with the photos it names.
    pub fn build(
        key: &SheetKey,
        edits: &[AnswerEdit],
        owner: Uuid,
        device: Uuid,
        rubric: &Rubric,
    ) -> Result<Option<(Template, BTreeSet<String>)>> {
        if edits.iter().any(|e| e.base_rev != 0)
            || edits
                .iter()
                .any(|e| check_answer(rubric, &e.criterion, &e.answer).is_err())
        {
            return Ok(None);
        }
        // The answers borrowed from the request, the last of a criterion
        // named twice winning (as `first_answers` does).
        let answers: BTreeMap<&str, &Answer> = edits
            .iter()
            .map(|e| (e.criterion.as_str(), &e.answer))
            .collect();
        let attachments = answers
            .values()
            .flat_map(|a| a.attachments.iter().cloned())
            .collect();
        let json = serde_json::to_string(&NewSheetJson {
            id: key.sheet_id,
            round_id: key.round_id,
            product_id: key.product_id,
            owner_id: owner,
            rubric: &key.rubric,
            status: SheetStatus::Draft,
            answers: AnswersJson {
                devices: if answers.is_empty() {
                    &[]
                } else {
                    std::slice::from_ref(&device)
                },
                criteria: &answers,
            },
            note: "",
            note_rev: 0,
            revision: PLACEHOLDER,
        })?;
        // Anything but one hole per answer and one for the revision and
        // the writer encodes the sheet itself.
        if holes(&json).len() != answers.len() + 1 {
            return Ok(None);
        }
        Ok(Some((Template { json }, attachments)))
    }

    /// The template JSON as it is (placeholders in place).
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// A new sheet as [`SheetState`] encodes it, its answers borrowed from the
/// request instead of copied into a sheet (a property test holds the two
/// encodings to the same text).
#[derive(Serialize)]
struct NewSheetJson<'a> {
    id: Uuid,
    round_id: Uuid,
    product_id: Uuid,
    owner_id: Uuid,
    rubric: &'a RubricRef,
    status: SheetStatus,
    answers: AnswersJson<'a>,
    note: &'a str,
    note_rev: u64,
    revision: u64,
}

/// [`ocop_shared::wire::compact_answers`] of a first write: one device,
/// every answer at the placeholder.
#[derive(Serialize)]
struct AnswersJson<'a> {
    devices: &'a [Uuid],
    #[serde(serialize_with = "criteria_json")]
    criteria: &'a BTreeMap<&'a str, &'a Answer>,
}

fn criteria_json<S: serde::Serializer>(
    c: &&BTreeMap<&str, &Answer>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Compact<'a> {
        answer: &'a Answer,
        rev: u64,
        d: usize,
    }
    s.collect_map(c.iter().map(|(code, answer)| {
        (
            code,
            Compact {
                answer,
                rev: PLACEHOLDER,
                d: 0,
            },
        )
    }))
}

/// The answers of a sheet's first write, which applies every edit (the last
/// of a criterion named twice winning) at `seq`.
pub(crate) fn first_answers(
    edits: &[AnswerEdit],
    seq: u64,
    device: Uuid,
) -> BTreeMap<String, AnswerState> {
    edits
        .iter()
        .map(|e| {
            let state = AnswerState {
                answer: e.answer.clone(),
                rev: seq,
                device_id: device,
            };
            (e.criterion.clone(), state)
        })
        .collect()
}

/// What [`prepare_all`] needs besides the mutations.
pub(crate) struct PrepareCtx<R, P> {
    pub owner: Uuid,
    pub device: Uuid,
    /// A published rubric (`None`: unknown, or not published; then no
    /// snapshot is prepared and the writer says why).
    pub rubric: R,
    /// A snapshot as stored.
    pub pack: P,
}

/// A push's mutation read from what the request carries, its hash, and the
/// JSON text it was decoded from (`None`: it came decoded).
pub(crate) type Read<'a> = (Cow<'a, Mutation>, String, Option<&'a str>);

/// A push carrying this many answers is prepared on two threads (the
/// machine's second core would otherwise wait for the writer); a smaller one
/// is not worth a thread (100 one-answer edits were slower split: store_push
/// example, two of three interleaved pairs).
const SPLIT_AT_ANSWERS: usize = 1_000;

/// A push body this large (~1,000 answers with notes) is read and prepared
/// on two threads.
pub(crate) const SPLIT_AT_BYTES: usize = 64 * 1024;

/// Whether a push of decoded mutations is worth a second thread.
pub(crate) fn worth_splitting(mutations: &[Mutation]) -> bool {
    let answers: usize = mutations
        .iter()
        .map(|m| match &m.op {
            Op::SetAnswers { answers, .. } => answers.len(),
            _ => 1,
        })
        .sum();
    answers >= SPLIT_AT_ANSWERS
}

/// Reads (with `read`) and prepares one item of a push; gives back the
/// mutation `read` made (not one it borrowed).
pub(crate) fn prepare_one<'x, R, P>(
    read: Read<'x>,
    cx: &PrepareCtx<R, P>,
) -> Result<(Option<Mutation>, Prepared)>
where
    R: Fn(&RubricRef) -> Option<Arc<Rubric>>,
    P: Fn(&str) -> Result<Vec<u8>>,
{
    let (m, hash, text) = read;
    let sheet = match &m.op {
        Op::SetAnswers { sheet, answers } => match (cx.rubric)(&sheet.rubric) {
            Some(r) => match Template::build(sheet, answers, cx.owner, cx.device, &r)? {
                Some((t, attachments)) => Some(NewSheet {
                    packed: (cx.pack)(t.json())?,
                    attachments,
                }),
                None => None,
            },
            None => None,
        },
        _ => None,
    };
    // While the push waits for the writer (behind hundreds of others
    // when hundreds of devices push at once), a new sheet whose snapshot
    // is prepared keeps its text, about half its decoded answers' size,
    // instead of the answers: only its first write goes without them.
    // Done here, on the preparing threads, where freeing the answers
    // costs the one device pushing nothing (after preparing, it was
    // ~4% of a 100-sheet push's time).
    let mut kept = None;
    let made = match m {
        Cow::Owned(mut m) => {
            if sheet.is_some()
                && let (Some(text), Op::SetAnswers { answers, .. }) = (text, &mut m.op)
            {
                *answers = Vec::new();
                kept = Some(text.into());
            }
            Some(m)
        }
        Cow::Borrowed(_) => None,
    };
    Ok((
        made,
        Prepared {
            hash,
            sheet,
            text: kept,
        },
    ))
}

/// Reads (with `read`) and prepares every item of a push, on two threads if
/// `split`; gives back the mutations `read` made (not those it borrowed).
pub(crate) fn prepare_all<T, F, R, P>(
    items: &[T],
    split: bool,
    cx: &PrepareCtx<R, P>,
    read: F,
) -> Result<Vec<(Option<Mutation>, Prepared)>>
where
    T: Sync,
    F: for<'x> Fn(&'x T) -> Result<Read<'x>> + Sync,
    R: Fn(&RubricRef) -> Option<Arc<Rubric>> + Sync,
    P: Fn(&str) -> Result<Vec<u8>> + Sync,
{
    let one = |item: &T| prepare_one(read(item)?, cx);
    let run = |ms: &[T]| ms.iter().map(one).collect::<Result<Vec<_>>>();
    if !split || items.len() < 2 {
        return run(items);
    }
    let (a, b) = items.split_at(items.len() / 2);
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| run(b));
        let mine = run(a);
        (mine, other.join())
    });
    let mut out = a?;
    out.extend(b.map_err(|_| {
        crate::error::Error::Internal("preparing a push failed on its second thread".into())
    })??);
    Ok(out)
}

/// A push handed to the writer before it is prepared: its mutations are
/// read and prepared a few at a time, in order, by a helper thread and by the
/// writer itself whenever the next mutation it needs is not ready, so the
/// writer's work on the first sheets overlaps the preparing of the last ones.
/// One device pushing after another otherwise waits for all of prepare, then
/// for all of the write, each on one of the machine's two cores (see
/// `docs/sync-protocol.md`, "Measured performance").
pub(crate) struct Streamed {
    body: axum::body::Bytes,
    /// Where each mutation's JSON stands in `body`.
    ranges: Vec<std::ops::Range<usize>>,
    slots: Vec<std::sync::OnceLock<std::result::Result<(Mutation, Prepared), Error>>>,
    /// The next chunk nobody has claimed yet.
    next: std::sync::atomic::AtomicUsize,
    /// Signalled whenever a chunk is filled.
    filled: (std::sync::Mutex<()>, std::sync::Condvar),
    /// Nanoseconds [`Streamed::get`] spent preparing or waiting for a
    /// mutation that was not ready (the push's `prepare` step).
    waited: std::sync::atomic::AtomicU64,
}

/// Mutations claimed at once: small, so the writer's first wait is short,
/// and large enough that claiming costs nothing next to preparing them.
const STREAM_CHUNK: usize = 8;

impl Streamed {
    /// The mutations of `body` that stand at `ranges` (each a JSON text).
    pub fn new(body: axum::body::Bytes, ranges: Vec<std::ops::Range<usize>>) -> Streamed {
        let slots = ranges.iter().map(|_| std::sync::OnceLock::new()).collect();
        Streamed {
            body,
            ranges,
            slots,
            next: std::sync::atomic::AtomicUsize::new(0),
            filled: (std::sync::Mutex::new(()), std::sync::Condvar::new()),
            waited: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// How long [`Streamed::get`] prepared or waited for mutations not ready.
    pub fn waited(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.waited.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Claims the next chunk and prepares it with `prep` (from a mutation's
    /// JSON text); `false` once every chunk is claimed.
    pub fn fill_next(&self, prep: &dyn Fn(&str) -> Result<(Mutation, Prepared)>) -> bool {
        let k = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let from = k.saturating_mul(STREAM_CHUNK);
        if from >= self.len() {
            return false;
        }
        let to = (from + STREAM_CHUNK).min(self.len());
        // Fills (with an error) what a panic left unfilled, and wakes the
        // waiting writer either way: a claimed chunk is always filled.
        struct Fill<'a>(&'a Streamed, std::ops::Range<usize>);
        impl Drop for Fill<'_> {
            fn drop(&mut self) {
                for i in self.1.clone() {
                    let _ = self.0.slots[i].set(Err(Error::Internal(
                        "preparing this push failed on the server; send it again".into(),
                    )));
                }
                drop(self.0.filled.0.lock().unwrap_or_else(|p| p.into_inner()));
                self.0.filled.1.notify_all();
            }
        }
        let _fill = Fill(self, from..to);
        for i in from..to {
            let made = std::str::from_utf8(&self.body[self.ranges[i].clone()])
                .map_err(|e| Error::BadRequest(e.to_string()))
                .and_then(prep);
            let _ = self.slots[i].set(made);
        }
        true
    }

    /// Mutation `i` and what was prepared of it, preparing chunks with
    /// `prep` while it is not ready and there are chunks left to claim,
    /// then waiting for whoever claimed it.
    pub fn get(
        &self,
        i: usize,
        prep: &dyn Fn(&str) -> Result<(Mutation, Prepared)>,
    ) -> Result<(&Mutation, &Prepared)> {
        if self.slots[i].get().is_none() {
            let from = std::time::Instant::now();
            while self.slots[i].get().is_none() && self.fill_next(prep) {}
            let mut g = self.filled.0.lock().unwrap_or_else(|p| p.into_inner());
            while self.slots[i].get().is_none() {
                g = self.filled.1.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            drop(g);
            let ns = u64::try_from(from.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.waited
                .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        }
        match self.slots[i].get() {
            Some(Ok((m, p))) => Ok((m, p)),
            // The error once more (an error is not `Clone`): what the caller
            // tells apart is a request the server cannot read.
            Some(Err(Error::BadRequest(e))) => Err(Error::BadRequest(e.clone())),
            Some(Err(e)) => Err(Error::Internal(e.to_string())),
            None => Err(Error::Internal("a prepared mutation went missing".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocop_shared::wire::SheetState;
    use proptest::prelude::*;

    fn rubric() -> Rubric {
        ocop_shared::validate::load_rubric(ocop_shared::bundled::FOOD_PROCESSED_CEREAL_1048)
            .expect("the bundled sheet loads")
            .rubric
    }

    fn key(r: &Rubric) -> SheetKey {
        SheetKey {
            sheet_id: Uuid::now_v7(),
            round_id: Uuid::now_v7(),
            product_id: Uuid::now_v7(),
            rubric: RubricRef {
                id: r.id.clone(),
                version: r.version,
            },
        }
    }

    /// Edits answering the first `n` criteria with their first option and
    /// the given note (any text, quotes and placeholder digits included).
    fn edits(r: &Rubric, n: usize, note: &str) -> Vec<AnswerEdit> {
        r.criteria()
            .map(|(_, _, c)| c)
            .take(n)
            .map(|c| AnswerEdit {
                criterion: c.code.clone(),
                answer: Answer {
                    option: c.options().next().map(|o| o.id.clone()),
                    knockout: false,
                    note: note.to_string(),
                    attachments: Vec::new(),
                },
                base_rev: 0,
            })
            .collect()
    }

    proptest! {
        #[test]
        fn a_filled_snapshot_is_the_sheet_encoded_with_its_seq(
            seq in 1u64..u64::MAX,
            n in 0usize..40,
            note in "(\\PC|\"rev\":18446744073709551615|\\\\){0,40}",
            again in proptest::option::of("\\PC{0,8}"),
        ) {
            let r = rubric();
            let key = key(&r);
            let (owner, device) = (Uuid::now_v7(), Uuid::now_v7());
            let mut e = edits(&r, n, &note);
            // A criterion named twice: the last one wins.
            if let (Some(again), Some(first)) = (again, e.first().cloned()) {
                e.push(AnswerEdit {
                    answer: Answer { note: again, ..first.answer },
                    ..first
                });
            }
            let (prepared, _) = Template::build(&key, &e, owner, device, &r)
                .expect("encodes")
                .expect("a candidate");
            let mut expected = SheetState::empty(&key, owner);
            expected.answers = first_answers(&e, seq, device);
            expected.revision = seq;
            let json = serde_json::to_string(&expected).unwrap();
            let mut filled = String::new();
            fill_into(prepared.json(), seq, &mut filled);
            prop_assert_eq!(&filled, &json);
            let stored = seq_frame(seq, b"packed");
            prop_assert_eq!(split_seq_frame(&stored), Some((seq, &b"packed"[..])));
        }
    }

    #[test]
    fn an_edit_with_a_base_or_an_answer_the_rubric_refuses_is_not_prepared() {
        let r = rubric();
        let key = key(&r);
        let mut based = edits(&r, 3, "");
        based[1].base_rev = 7;
        assert!(
            Template::build(&key, &based, Uuid::now_v7(), Uuid::now_v7(), &r)
                .unwrap()
                .is_none()
        );
        let mut wrong = edits(&r, 3, "");
        wrong[2].answer.option = Some("no such option".into());
        assert!(
            Template::build(&key, &wrong, Uuid::now_v7(), Uuid::now_v7(), &r)
                .unwrap()
                .is_none()
        );
    }

    /// `n` submit mutations as one JSON array body, and where each stands.
    fn streamed(n: usize) -> Streamed {
        let mut body = String::from("[");
        let mut ranges = Vec::new();
        for id in 0..n {
            if id > 0 {
                body.push(',');
            }
            let text = serde_json::to_string(&Mutation {
                id: id as u64,
                client_time: None,
                op: Op::Submit {
                    sheet_id: Uuid::now_v7(),
                },
            })
            .unwrap();
            ranges.push(body.len()..body.len() + text.len());
            body.push_str(&text);
        }
        body.push(']');
        Streamed::new(axum::body::Bytes::from(body), ranges)
    }

    fn decode(text: &str) -> Result<(Mutation, Prepared)> {
        let m: Mutation =
            serde_json::from_str(text).map_err(|e| Error::BadRequest(e.to_string()))?;
        let hash = format!("hash of {}", m.id);
        Ok((
            m,
            Prepared {
                hash,
                sheet: None,
                text: None,
            },
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Whatever the helpers manage before the writer asks, the writer
        /// gets every mutation, in order, each prepared once.
        #[test]
        fn a_streamed_push_gives_every_mutation_in_order_prepared_once(
            n in 1usize..60,
            helpers in 0usize..3,
        ) {
            let s = streamed(n);
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let prep = |t: &str| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                decode(t)
            };
            let got: Vec<(u64, String)> = std::thread::scope(|sc| {
                for _ in 0..helpers {
                    sc.spawn(|| while s.fill_next(&prep) {});
                }
                (0..n)
                    .map(|i| {
                        let (m, p) = s.get(i, &prep).unwrap();
                        (m.id, p.hash.clone())
                    })
                    .collect()
            });
            let want: Vec<(u64, String)> =
                (0..n as u64).map(|id| (id, format!("hash of {id}"))).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), n);
        }
    }

    /// A mutation that does not decode is the writer's `BadRequest` when it
    /// gets there; those before it are still given.
    #[test]
    fn a_streamed_mutation_that_does_not_decode_is_a_bad_request() {
        let mut body = b"[".to_vec();
        body.extend_from_slice(br#"{"id":1,"op":{"submit":{"sheet_id":5}}}"#);
        body.push(b']');
        let inside = 1..body.len() - 1;
        let s = Streamed::new(axum::body::Bytes::from(body.clone()), vec![inside]);
        match s.get(0, &decode) {
            Err(Error::BadRequest(e)) => assert!(e.contains("invalid type"), "{e}"),
            other => panic!("{:?}", other.map(|(m, _)| m.id)),
        }
    }

    /// A helper that panics while preparing still fills the chunk it
    /// claimed (with an error), so the writer waiting for it is answered
    /// instead of waiting forever.
    #[test]
    fn a_helper_that_panics_leaves_no_writer_waiting() {
        let s = streamed(20);
        let boom = |_: &str| -> Result<(Mutation, Prepared)> { panic!("preparing failed") };
        // The helper claims the first chunk and panics inside it.
        let helper = std::thread::scope(|sc| sc.spawn(|| s.fill_next(&boom)).join());
        assert!(helper.is_err(), "the helper panicked");
        match s.get(0, &decode) {
            Err(Error::Internal(e)) => assert!(e.contains("send it again"), "{e}"),
            other => panic!("{:?}", other.map(|(m, _)| m.id)),
        }
        // The chunks nobody claimed are prepared by the writer.
        assert_eq!(s.get(19, &decode).unwrap().0.id, 19);
    }
}
