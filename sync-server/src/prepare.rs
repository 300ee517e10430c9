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
use ocop_shared::score::{AnswerParts, check_answer_parts};
use ocop_shared::split::{SplitError, split_push};
use ocop_shared::wire::{Answer, AnswerEdit, AnswerState, Mutation, Op, SheetKey, SheetStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};

/// SHA-256 of a value's canonical JSON, encoded straight into the hasher
/// (a push hashes every mutation; no intermediate string).
pub(crate) fn json_sha256_hex<T: Serialize>(v: &T) -> Result<String> {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // serde_json writes a token at a time; one buffered update per 8 KB is
    // several times cheaper than hundreds of tiny ones per mutation.
    let mut w = std::io::BufWriter::with_capacity(8192, HashWriter(Sha256::new()));
    serde_json::to_writer(&mut w, v)?;
    let w = w
        .into_inner()
        .map_err(|e| Error::Internal(format!("hashing a mutation: {}", e.error())))?;
    Ok(hex::encode(w.0.finalize()))
}

/// SHA-256 of bytes, hex.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A sheet-answers mutation's canonical JSON (the text serde encodes of the
/// [`Mutation`]) and where each answer's JSON stands in it. Encoded once: the
/// mutation's hash is of this text, and a new sheet's snapshot copies its
/// answers out of it instead of encoding them a second time (the second
/// encoding was ~7% of the server's CPU in a push of new sheets, perf).
pub(crate) struct Encoded {
    json: Vec<u8>,
    /// The `answer` of each edit, in the edits' order.
    answers: Vec<std::ops::Range<usize>>,
}

impl Encoded {
    /// The JSON of edit `i`'s answer.
    fn answer(&self, i: usize) -> &[u8] {
        &self.json[self.answers[i].clone()]
    }
}

/// Encodes a sheet-answers mutation as serde encodes [`Mutation`] (field
/// order, omitted `client_time`, externally tagged operation; a property
/// test holds the two to the same text), noting where each answer stands.
pub(crate) fn encode_set_answers(
    id: u64,
    client_time: Option<&str>,
    sheet: &SheetKey,
    edits: &[EditRef<'_>],
) -> Result<Encoded> {
    let mut json = Vec::with_capacity(256 + edits.len() * 128);
    let mut answers = Vec::with_capacity(edits.len());
    json.extend_from_slice(b"{\"id\":");
    json.extend_from_slice(id.to_string().as_bytes());
    if let Some(t) = client_time {
        json.extend_from_slice(b",\"client_time\":");
        serde_json::to_writer(&mut json, t)?;
    }
    json.extend_from_slice(b",\"op\":{\"set_answers\":{\"sheet\":");
    serde_json::to_writer(&mut json, sheet)?;
    json.extend_from_slice(b",\"answers\":[");
    for (i, e) in edits.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(b"{\"criterion\":");
        write_json_str(&mut json, e.criterion)?;
        json.extend_from_slice(b",\"answer\":");
        let from = json.len();
        e.answer.write_json(&mut json)?;
        answers.push(from..json.len());
        json.extend_from_slice(b",\"base_rev\":");
        json.extend_from_slice(e.base_rev.to_string().as_bytes());
        json.push(b'}');
    }
    json.extend_from_slice(b"]}}}");
    Ok(Encoded { json, answers })
}

/// Appends `s` as a JSON string, as serde_json writes it. A string with
/// nothing to escape (nearly every note, code and option) is copied whole
/// after a scan the compiler vectorizes; serde_json's escaping goes a byte
/// at a time through a table (~9% of a push's instructions, callgrind).
fn write_json_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    if needs_escape(s.as_bytes()) {
        serde_json::to_writer(out, s)?;
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
    Ok(())
}

/// Whether serde_json escapes anything in `b`: a quote, a backslash or a
/// control character (below U+0020; nothing else is escaped).
fn needs_escape(b: &[u8]) -> bool {
    let special = |c: u8| c < 0x20 || c == b'"' || c == b'\\';
    // No early exit inside a chunk, so that the check of one is vector code.
    let mut chunks = b.chunks_exact(32);
    for c in &mut chunks {
        if c.iter().fold(false, |any, &x| any | special(x)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&x| special(x))
}

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

/// A new sheet's snapshot JSON with [`PLACEHOLDER_TEXT`] where its seq goes.
pub(crate) struct Template {
    json: Vec<u8>,
}

/// Where the placeholder stands for a seq in `json`: after `"rev":` or
/// `"revision":`. Numbers never stand inside a JSON string, and a quote
/// inside a string is always escaped, so that is the field itself.
fn holes(json: &[u8]) -> Vec<usize> {
    memchr::memmem::find_iter(json, PLACEHOLDER_TEXT)
        .filter(|&at| {
            let before = &json[..at];
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
    for h in holes(json.as_bytes()) {
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

/// A body as stored before schema 10: `seq` in a skippable frame, then the
/// compressed template (still read).
#[cfg(test)]
pub(crate) fn seq_frame(seq: u64, packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + packed.len());
    out.extend_from_slice(&SEQ_FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(packed);
    out
}

/// A new sheet's body as stored (schema 10): `seq` and the write that made
/// the sheet (its mutation id and device) in a skippable frame, then the
/// compressed template. The sheet keeps no revision row for that write; its
/// next write makes one from this body (see `write_sheet_rows`).
pub(crate) fn origin_frame(seq: u64, mutation_id: u64, device: Uuid, packed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + packed.len());
    out.extend_from_slice(&SEQ_FRAME_MAGIC.to_le_bytes());
    out.extend_from_slice(&32u32.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&mutation_id.to_le_bytes());
    out.extend_from_slice(device.as_bytes());
    out.extend_from_slice(packed);
    out
}

/// The seq and the compressed template of a body made by [`origin_frame`]
/// (or, before schema 10, by `seq_frame`); `None` for any other body.
pub(crate) fn split_seq_frame(b: &[u8]) -> Option<(u64, &[u8])> {
    if b.len() < 16 || b[..4] != SEQ_FRAME_MAGIC.to_le_bytes() {
        return None;
    }
    let len = match u32::from_le_bytes(b[4..8].try_into().ok()?) {
        8 => 8,
        32 if b.len() >= 40 => 32,
        _ => return None,
    };
    let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
    Some((seq, &b[8 + len..]))
}

/// The write that made a body made by [`origin_frame`]: its mutation id and
/// device; `None` for any other body.
pub(crate) fn frame_origin(b: &[u8]) -> Option<(u64, Uuid)> {
    split_seq_frame(b)?;
    if b[4..8] != 32u32.to_le_bytes() {
        return None;
    }
    let mutation_id = u64::from_le_bytes(b[16..24].try_into().ok()?);
    let device = Uuid::from_slice(&b[24..40]).ok()?;
    Some((mutation_id, device))
}

/// A sheet-answers mutation decoded with its text borrowed from the
/// request's JSON instead of copied out of it (a 31-answer sheet is ~100
/// strings); [`encode_set_answers`] writes the text serde encodes of the
/// [`Mutation`] it stands for, so its hash is the mutation's. Codes, options and
/// photo hashes are borrowed as they are, so one written with an escape
/// does not decode this way: such a mutation, and any other operation, is
/// decoded as a [`Mutation`] instead.
#[derive(Deserialize)]
pub(crate) struct MutationRef<'a> {
    id: u64,
    #[serde(default, borrow)]
    client_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    op: OpRef<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OpRef<'a> {
    SetAnswers {
        sheet: SheetKey,
        #[serde(borrow)]
        answers: Vec<EditRef<'a>>,
    },
}

/// [`AnswerEdit`], borrowed.
#[derive(Deserialize)]
pub(crate) struct EditRef<'a> {
    criterion: &'a str,
    #[serde(borrow)]
    answer: AnswerRef<'a>,
    base_rev: u64,
}

/// [`Answer`], borrowed (the same fields and defaults; encoded, with the
/// same omissions, by [`AnswerRef::write_json`]).
#[derive(Deserialize)]
pub(crate) struct AnswerRef<'a> {
    #[serde(default)]
    option: Option<&'a str>,
    #[serde(default)]
    knockout: bool,
    #[serde(default, borrow)]
    note: Cow<'a, str>,
    #[serde(default, borrow)]
    attachments: Vec<&'a str>,
}

impl<'a> EditRef<'a> {
    /// An owned edit, borrowed.
    pub fn of(e: &'a AnswerEdit) -> EditRef<'a> {
        EditRef {
            criterion: &e.criterion,
            answer: AnswerRef {
                option: e.answer.option.as_deref(),
                knockout: e.answer.knockout,
                note: Cow::Borrowed(&e.answer.note),
                attachments: e.answer.attachments.iter().map(String::as_str).collect(),
            },
            base_rev: e.base_rev,
        }
    }

    fn into_owned(self) -> AnswerEdit {
        AnswerEdit {
            criterion: self.criterion.to_string(),
            answer: Answer {
                option: self.answer.option.map(str::to_string),
                knockout: self.answer.knockout,
                note: self.answer.note.into_owned(),
                attachments: self
                    .answer
                    .attachments
                    .iter()
                    .map(|h| h.to_string())
                    .collect(),
            },
            base_rev: self.base_rev,
        }
    }
}

impl AnswerRef<'_> {
    /// Appends the answer's JSON as serde encodes it (its fields in order,
    /// the same ones omitted), its strings through [`write_json_str`].
    fn write_json(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(b"{\"option\":");
        match self.option {
            Some(o) => write_json_str(out, o)?,
            None => out.extend_from_slice(b"null"),
        }
        if self.knockout {
            out.extend_from_slice(b",\"knockout\":true");
        }
        if !self.note.is_empty() {
            out.extend_from_slice(b",\"note\":");
            write_json_str(out, &self.note)?;
        }
        if !self.attachments.is_empty() {
            out.extend_from_slice(b",\"attachments\":[");
            for (i, h) in self.attachments.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, h)?;
            }
            out.push(b']');
        }
        out.push(b'}');
        Ok(())
    }

    fn parts(&self) -> AnswerParts<'_, std::iter::Copied<std::slice::Iter<'_, &str>>> {
        AnswerParts {
            option: self.option,
            knockout: self.knockout,
            note: &self.note,
            attachments: self.attachments.iter().copied(),
        }
    }
}

/// Reads a mutation from its JSON text and prepares it: a sheet-answers
/// mutation through [`MutationRef`] (no copy of its answers; a new sheet's
/// answers are then left out of the mutation given back, and its text kept
/// in [`Prepared::text`] for the writer, as while waiting, see
/// [`prepare_one`]), any other as a [`Mutation`].
pub(crate) fn prepare_json<R, P>(text: &str, cx: &PrepareCtx<R, P>) -> Result<(Mutation, Prepared)>
where
    R: Fn(&RubricRef) -> Option<Arc<Rubric>>,
    P: Fn(&[u8]) -> Result<Vec<u8>>,
{
    let Ok(m) = serde_json::from_str::<MutationRef<'_>>(text) else {
        let decoded: Mutation =
            serde_json::from_str(text).map_err(|e| Error::BadRequest(e.to_string()))?;
        return match prepare_one((Cow::Owned(decoded), None), cx)? {
            (Some(m), p) => Ok((m, p)),
            (None, _) => Err(Error::Internal("a decoded mutation went missing".into())),
        };
    };
    let OpRef::SetAnswers { sheet, answers } = m.op;
    // Hashed on its canonical JSON, not on the bytes that came: a resend of
    // the same change encoded otherwise (keys in another order) is still the
    // same mutation (tests/crash_recovery.rs).
    let enc = encode_set_answers(m.id, m.client_time.as_deref(), &sheet, &answers)?;
    let hash = sha256_hex(&enc.json);
    let prepared = new_sheet(cx, &sheet, &answers, &enc)?;
    let (answers, text) = match prepared {
        Some(_) => (Vec::new(), Some(text.into())),
        None => (answers.into_iter().map(EditRef::into_owned).collect(), None),
    };
    Ok((
        Mutation {
            id: m.id,
            client_time: m.client_time.map(Cow::into_owned),
            op: Op::SetAnswers { sheet, answers },
        },
        Prepared {
            hash,
            sheet: prepared,
            text,
        },
    ))
}

/// Stands for the seq while encoding: `u64::MAX`, which no write ever gets
/// (the counter would have to count to 2^64 - 1).
const PLACEHOLDER_TEXT: &str = "18446744073709551615";

impl Template {
    /// Encodes the sheet `key` that `owner` writing from `device` creates
    /// with `edits` (encoded in `enc`), if every edit carries no base and
    /// the rubric accepts every answer; with the photos it names.
    pub fn build(
        key: &SheetKey,
        edits: &[EditRef<'_>],
        enc: &Encoded,
        owner: Uuid,
        device: Uuid,
        rubric: &Rubric,
    ) -> Result<Option<(Template, BTreeSet<String>)>> {
        if edits.iter().any(|e| e.base_rev != 0)
            || edits
                .iter()
                .any(|e| check_answer_parts(rubric, e.criterion, &e.answer.parts()).is_err())
        {
            return Ok(None);
        }
        // Each criterion's edit, the last of a criterion named twice winning
        // (as `first_answers` does), in the codes' order.
        let answers: BTreeMap<&str, usize> = edits
            .iter()
            .enumerate()
            .map(|(i, e)| (e.criterion, i))
            .collect();
        let attachments = answers
            .values()
            .flat_map(|&i| edits[i].answer.attachments.iter().map(|h| h.to_string()))
            .collect();
        // The text serde encodes of the new `SheetState` (its answers in the
        // compact shape, see `ocop_shared::wire::compact_answers`; a property
        // test holds the two to the same text): ids and codes through serde,
        // each answer copied from the mutation's JSON.
        let mut json = Vec::with_capacity(enc.json.len() + 512);
        json.extend_from_slice(b"{\"id\":");
        serde_json::to_writer(&mut json, &key.sheet_id)?;
        json.extend_from_slice(b",\"round_id\":");
        serde_json::to_writer(&mut json, &key.round_id)?;
        json.extend_from_slice(b",\"product_id\":");
        serde_json::to_writer(&mut json, &key.product_id)?;
        json.extend_from_slice(b",\"owner_id\":");
        serde_json::to_writer(&mut json, &owner)?;
        json.extend_from_slice(b",\"rubric\":");
        serde_json::to_writer(&mut json, &key.rubric)?;
        json.extend_from_slice(b",\"status\":");
        serde_json::to_writer(&mut json, &SheetStatus::Draft)?;
        json.extend_from_slice(b",\"answers\":{\"devices\":[");
        if !answers.is_empty() {
            serde_json::to_writer(&mut json, &device)?;
        }
        json.extend_from_slice(b"],\"criteria\":{");
        for (n, (code, &i)) in answers.iter().enumerate() {
            if n > 0 {
                json.push(b',');
            }
            write_json_str(&mut json, code)?;
            json.extend_from_slice(b":{\"answer\":");
            json.extend_from_slice(enc.answer(i));
            json.extend_from_slice(b",\"rev\":");
            json.extend_from_slice(PLACEHOLDER_TEXT.as_bytes());
            json.extend_from_slice(b",\"d\":0}");
        }
        // No `note_rev`: 0 is left off (see `SheetState::note_rev`).
        json.extend_from_slice(b"}},\"note\":\"\",\"revision\":");
        json.extend_from_slice(PLACEHOLDER_TEXT.as_bytes());
        json.push(b'}');
        // UTF-8 by construction (serde's text and the mutation's, spliced at
        // ASCII), so not checked again: the check was ~4% of a push.
        // One hole per answer and one for the revision: a quote inside a
        // string is always escaped, so no note or code can make another.
        debug_assert_eq!(holes(&json).len(), answers.len() + 1);
        Ok(Some((Template { json }, attachments)))
    }

    /// The template JSON as it is (placeholders in place).
    pub fn json(&self) -> &[u8] {
        &self.json
    }
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

/// A push's mutation read from what the request carries, and the JSON text
/// it was decoded from (`None`: it came decoded).
pub(crate) type Read<'a> = (Cow<'a, Mutation>, Option<&'a str>);

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

/// The snapshot, compressed, of the sheet `key` if `edits` (encoded in
/// `enc`) are its first write (see [`Template::build`]); `None` if its
/// rubric is not known here.
fn new_sheet<R, P>(
    cx: &PrepareCtx<R, P>,
    key: &SheetKey,
    edits: &[EditRef<'_>],
    enc: &Encoded,
) -> Result<Option<NewSheet>>
where
    R: Fn(&RubricRef) -> Option<Arc<Rubric>>,
    P: Fn(&[u8]) -> Result<Vec<u8>>,
{
    let Some(r) = (cx.rubric)(&key.rubric) else {
        return Ok(None);
    };
    let Some((t, attachments)) = Template::build(key, edits, enc, cx.owner, cx.device, &r)? else {
        return Ok(None);
    };
    Ok(Some(NewSheet {
        packed: (cx.pack)(t.json())?,
        attachments,
    }))
}

/// Reads (with `read`) and prepares one item of a push; gives back the
/// mutation `read` made (not one it borrowed).
pub(crate) fn prepare_one<'x, R, P>(
    read: Read<'x>,
    cx: &PrepareCtx<R, P>,
) -> Result<(Option<Mutation>, Prepared)>
where
    R: Fn(&RubricRef) -> Option<Arc<Rubric>>,
    P: Fn(&[u8]) -> Result<Vec<u8>>,
{
    let (m, text) = read;
    let (hash, sheet) = match &m.op {
        Op::SetAnswers { sheet, answers } => {
            let edits: Vec<EditRef<'_>> = answers.iter().map(EditRef::of).collect();
            let enc = encode_set_answers(m.id, m.client_time.as_deref(), sheet, &edits)?;
            (sha256_hex(&enc.json), new_sheet(cx, sheet, &edits, &enc)?)
        }
        _ => (json_sha256_hex(&*m)?, None),
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
pub(crate) fn prepare_all<T, F>(
    items: &[T],
    split: bool,
    one: F,
) -> Result<Vec<(Option<Mutation>, Prepared)>>
where
    T: Sync,
    F: Fn(&T) -> Result<(Option<Mutation>, Prepared)> + Sync,
{
    let run = |ms: &[T]| ms.iter().map(&one).collect::<Result<Vec<_>>>();
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
/// `docs/sync-protocol.md`, "Measured performance"). The helper starts on
/// the first mutations while the body is still being scanned for the rest
/// ([`Streamed::scan`]).
pub(crate) struct Streamed {
    body: axum::body::Bytes,
    /// Where each mutation's JSON stands in `body`, as the scan finds them.
    ranges: Vec<std::sync::OnceLock<std::ops::Range<usize>>>,
    /// How many ranges are known, and whether the scan is over.
    scan: std::sync::Mutex<Scan>,
    /// Signalled when a chunk's ranges are known and when the scan ends.
    scanned: std::sync::Condvar,
    slots: Vec<std::sync::OnceLock<std::result::Result<(Mutation, Prepared), Error>>>,
    /// The next chunk nobody has claimed yet.
    next: std::sync::atomic::AtomicUsize,
    /// Signalled whenever a chunk is filled.
    filled: (std::sync::Mutex<()>, std::sync::Condvar),
    /// Nanoseconds [`Streamed::get`] spent preparing or waiting for a
    /// mutation that was not ready (the push's `prepare` step).
    waited: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Scan {
    known: usize,
    over: bool,
}

/// Mutations claimed at once: small, so the writer's first wait is short,
/// and large enough that claiming costs nothing next to preparing them.
const STREAM_CHUNK: usize = 8;

impl Streamed {
    /// A push in `body` of at most `cap` mutations, none found yet.
    pub fn new(body: axum::body::Bytes, cap: usize) -> Streamed {
        Streamed {
            body,
            ranges: (0..cap).map(|_| std::sync::OnceLock::new()).collect(),
            scan: std::sync::Mutex::new(Scan::default()),
            scanned: std::sync::Condvar::new(),
            slots: (0..cap).map(|_| std::sync::OnceLock::new()).collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
            filled: (std::sync::Mutex::new(()), std::sync::Condvar::new()),
            waited: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn scan_state(&self) -> std::sync::MutexGuard<'_, Scan> {
        self.scan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the next mutation's place; nothing past the cap (such a push
    /// is refused: its count and `len` differ).
    pub fn found(&self, at: std::ops::Range<usize>) {
        let mut scan = self.scan_state();
        let i = scan.known;
        if i >= self.ranges.len() || self.ranges[i].set(at).is_err() {
            return;
        }
        scan.known += 1;
        if scan.known.is_multiple_of(STREAM_CHUNK) {
            self.scanned.notify_all();
        }
    }

    /// No more mutations: the ones found are the push.
    pub fn finish(&self) {
        self.scan_state().over = true;
        self.scanned.notify_all();
    }

    /// Reads a push body `{"protocol": .., "mutations": [..]}` (in any key
    /// order, other keys ignored as the full decoder ignores them), recording
    /// each mutation's place as it is found so that preparing can start;
    /// gives the protocol and how many mutations there were (recorded up to
    /// the cap). The scan is finished whatever happens, so nobody waits for
    /// more.
    pub fn scan(&self) -> std::result::Result<(u32, usize), SplitError> {
        struct Finish<'a>(&'a Streamed);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.finish();
            }
        }
        let _finish = Finish(self);
        split_push(&self.body, |at| self.found(at))
    }

    /// How many mutations were found (all of them, once the scan is over).
    pub fn len(&self) -> usize {
        self.scan_state().known
    }

    /// How long [`Streamed::get`] prepared or waited for mutations not ready.
    pub fn waited(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.waited.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Claims the next chunk and prepares it with `prep` (from a mutation's
    /// JSON text), waiting for the scan to find it; `false` once every
    /// chunk is claimed.
    pub fn fill_next(&self, prep: &dyn Fn(&str) -> Result<(Mutation, Prepared)>) -> bool {
        let k = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let from = k.saturating_mul(STREAM_CHUNK);
        let to = {
            let mut scan = self.scan_state();
            while !scan.over && scan.known < from.saturating_add(STREAM_CHUNK) {
                scan = self.scanned.wait(scan).unwrap_or_else(|p| p.into_inner());
            }
            (from + STREAM_CHUNK).min(scan.known)
        };
        if from >= to {
            return false;
        }
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
            let at = self.ranges[i].get().cloned().unwrap_or_default();
            let made = std::str::from_utf8(&self.body[at])
                .map_err(|e| Error::BadRequest(e.to_string()))
                .and_then(prep);
            let _ = self.slots[i].set(made);
        }
        true
    }

    /// Mutation `i` (of a push whose scan is over) and what was prepared of
    /// it, preparing chunks with `prep` while it is not ready and there are
    /// chunks left to claim, then waiting for whoever claimed it.
    pub fn get(
        &self,
        i: usize,
        prep: &dyn Fn(&str) -> Result<(Mutation, Prepared)>,
    ) -> Result<(&Mutation, &Prepared)> {
        if i >= self.len() {
            return Err(Error::Internal(format!(
                "mutation {i} was never found in the push"
            )));
        }
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

    fn refs(e: &[AnswerEdit]) -> Vec<EditRef<'_>> {
        e.iter().map(EditRef::of).collect()
    }

    /// The template of a first write of `e` to `key`, if the rubric takes it.
    fn template(
        key: &SheetKey,
        e: &[AnswerEdit],
        owner: Uuid,
        device: Uuid,
        r: &Rubric,
    ) -> Option<(Template, BTreeSet<String>)> {
        let edits = refs(e);
        let enc = encode_set_answers(1, None, key, &edits).expect("encodes");
        Template::build(key, &edits, &enc, owner, device, r).expect("encodes")
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
            let (prepared, _) = template(&key, &e, owner, device, &r).expect("a candidate");
            let mut expected = SheetState::empty(&key, owner);
            expected.answers = first_answers(&e, seq, device);
            expected.revision = seq;
            let json = serde_json::to_string(&expected).unwrap();
            let mut filled = String::new();
            fill_into(std::str::from_utf8(prepared.json()).unwrap(), seq, &mut filled);
            prop_assert_eq!(&filled, &json);
            let stored = seq_frame(seq, b"packed");
            prop_assert_eq!(split_seq_frame(&stored), Some((seq, &b"packed"[..])));
            prop_assert_eq!(frame_origin(&stored), None);
            let (mutation, device) = (seq / 3, Uuid::now_v7());
            let stored = origin_frame(seq, mutation, device, b"packed");
            prop_assert_eq!(split_seq_frame(&stored), Some((seq, &b"packed"[..])));
            prop_assert_eq!(frame_origin(&stored), Some((mutation, device)));
        }
    }

    #[test]
    fn an_edit_with_a_base_or_an_answer_the_rubric_refuses_is_not_prepared() {
        let r = rubric();
        let key = key(&r);
        let mut based = edits(&r, 3, "");
        based[1].base_rev = 7;
        assert!(template(&key, &based, Uuid::now_v7(), Uuid::now_v7(), &r).is_none());
        let mut wrong = edits(&r, 3, "");
        wrong[2].answer.option = Some("no such option".into());
        assert!(template(&key, &wrong, Uuid::now_v7(), Uuid::now_v7(), &r).is_none());
    }

    /// A push body of `n` submit mutations.
    fn push_body(n: usize) -> axum::body::Bytes {
        let mutations: Vec<Mutation> = (0..n as u64)
            .map(|id| Mutation {
                id,
                client_time: None,
                op: Op::Submit {
                    sheet_id: Uuid::now_v7(),
                },
            })
            .collect();
        let body = serde_json::to_vec(&ocop_shared::wire::PushRequest {
            protocol: 1,
            mutations,
        })
        .unwrap();
        axum::body::Bytes::from(body)
    }

    /// [`push_body`] of `n`, scanned.
    fn streamed(n: usize) -> Streamed {
        let s = Streamed::new(push_body(n), n);
        assert_eq!(s.scan().unwrap(), (1, n));
        s
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
            // The helpers are waiting before the body is scanned.
            let s = Streamed::new(push_body(n), n);
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let prep = |t: &str| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                decode(t)
            };
            let got: Vec<(u64, String)> = std::thread::scope(|sc| {
                for _ in 0..helpers {
                    sc.spawn(|| while s.fill_next(&prep) {});
                }
                assert_eq!(s.scan().unwrap(), (1, n));
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
        let body = br#"{"mutations":[{"id":1,"op":{"submit":{"sheet_id":5}}}],"protocol":1}"#;
        let s = Streamed::new(axum::body::Bytes::from_static(body), 10);
        assert_eq!(s.scan().unwrap(), (1, 1));
        match s.get(0, &decode) {
            Err(Error::BadRequest(e)) => assert!(e.contains("invalid type"), "{e}"),
            other => panic!("{:?}", other.map(|(m, _)| m.id)),
        }
    }

    fn answer_strategy() -> impl Strategy<Value = Answer> {
        (
            proptest::option::of(prop_oneof!["[a-z0-9.]{1,6}", "\\PC{0,4}"]),
            any::<bool>(),
            "(\\PC|\"|\\\\|\n|\u{1}){0,30}",
            proptest::collection::vec(prop_oneof!["[0-9a-f]{64}", "\\PC{0,3}"], 0..3),
        )
            .prop_map(|(option, knockout, note, attachments)| Answer {
                option,
                knockout,
                note,
                attachments,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Read through the borrowed decoder or not, a mutation is the one
        /// the full decoder reads, with the hash of its canonical JSON:
        /// whatever its text holds (escapes, quotes, control characters in
        /// any string), whichever way its keys are ordered; a new sheet's
        /// (answers the rubric takes, `valid`) with its snapshot prepared.
        #[test]
        fn a_mutation_read_from_its_text_is_the_decoded_one_with_its_hash(
            answers in proptest::collection::vec(
                ("(\\PC|\"){1,5}", answer_strategy(), 0u64..3), 0..6),
            valid in proptest::option::of((1usize..32, "(\\PC|\"|\\\\|\n){0,20}")),
            client_time in proptest::option::of("\\PC{0,10}"),
            reorder in any::<bool>(),
            rubric_known in any::<bool>(),
        ) {
            let r = Arc::new(rubric());
            let mut k = key(&r);
            if !rubric_known {
                k.rubric.version += 1;
            }
            let answers: Vec<AnswerEdit> = match &valid {
                Some((n, note)) => edits(&r, *n, note),
                None => answers
                    .into_iter()
                    .map(|(criterion, answer, base_rev)| AnswerEdit { criterion, answer, base_rev })
                    .collect(),
            };
            let mutation = Mutation {
                id: 7,
                client_time,
                op: Op::SetAnswers { sheet: k, answers },
            };
            // serde_json's own map orders keys: another order than the struct's.
            let text = if reorder {
                serde_json::to_string(&serde_json::to_value(&mutation).unwrap()).unwrap()
            } else {
                serde_json::to_string(&mutation).unwrap()
            };
            let cx = PrepareCtx {
                owner: Uuid::now_v7(),
                device: Uuid::now_v7(),
                rubric: |x: &RubricRef| (x.version == r.version).then(|| r.clone()),
                pack: |j: &[u8]| Ok(j.to_vec()),
            };
            let (got, prepared) = prepare_json(&text, &cx).unwrap();
            prop_assert_eq!(&prepared.hash, &json_sha256_hex(&mutation).unwrap());
            // Answers the rubric takes make a snapshot; an unknown rubric none.
            if valid.is_some() && rubric_known {
                prop_assert!(prepared.sheet.is_some());
            }
            if !rubric_known {
                prop_assert!(prepared.sheet.is_none());
            }
            // A new sheet's answers travel as its text, and only there.
            let got = match &prepared.text {
                Some(t) => {
                    let Op::SetAnswers { answers, .. } = &got.op else {
                        panic!("not a sheet write: {got:?}")
                    };
                    prop_assert!(answers.is_empty());
                    prop_assert_eq!(got.id, mutation.id);
                    serde_json::from_str::<Mutation>(t).unwrap()
                }
                None => got,
            };
            prop_assert_eq!(got, mutation);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Whatever it holds and wherever (in a 32-byte chunk or the rest),
        /// a string is written as serde_json writes it.
        #[test]
        fn a_string_is_written_as_serde_writes_it(
            s in prop_oneof![
                "(\\PC|\"|\\\\|\n|\u{1}|\u{1f}|\u{7f}|\u{2028}){0,100}",
                "[a-zà-ỹ ]{0,80}(\"|\\\\|\t)?[a-z ]{0,40}",
            ],
        ) {
            let mut ours = Vec::new();
            write_json_str(&mut ours, &s).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// The mutation's text encoded once for its hash and its snapshot is
        /// serde's, and each noted range is that answer's JSON.
        #[test]
        fn a_sheet_mutation_encodes_as_serde_encodes_it(
            answers in proptest::collection::vec(
                ("(\\PC|\"){1,5}", answer_strategy(), any::<u64>()), 0..6),
            id in any::<u64>(),
            client_time in proptest::option::of("(\\PC|\"){0,10}"),
        ) {
            let r = rubric();
            let sheet = key(&r);
            let answers: Vec<AnswerEdit> = answers
                .into_iter()
                .map(|(criterion, answer, base_rev)| AnswerEdit { criterion, answer, base_rev })
                .collect();
            let enc = encode_set_answers(id, client_time.as_deref(), &sheet, &refs(&answers))
                .unwrap();
            let mutation = Mutation {
                id,
                client_time,
                op: Op::SetAnswers { sheet, answers },
            };
            prop_assert_eq!(
                String::from_utf8(enc.json.clone()).unwrap(),
                serde_json::to_string(&mutation).unwrap()
            );
            let Op::SetAnswers { answers, .. } = &mutation.op else { unreachable!() };
            for (i, e) in answers.iter().enumerate() {
                let alone = serde_json::to_vec(&e.answer).unwrap();
                prop_assert_eq!(enc.answer(i), alone.as_slice());
            }
        }
    }

    /// The rubric's own answers, borrowed or not, make the same template.
    #[test]
    fn a_sheet_read_borrowed_makes_the_template_of_the_decoded_one() {
        let r = Arc::new(rubric());
        let k = key(&r);
        let mutation = Mutation {
            id: 1,
            client_time: None,
            op: Op::SetAnswers {
                sheet: k,
                answers: edits(&r, 31, "ghi chú \"có\" dấu\n"),
            },
        };
        let text = serde_json::to_string(&mutation).unwrap();
        let cx = PrepareCtx {
            owner: Uuid::now_v7(),
            device: Uuid::now_v7(),
            rubric: |_: &RubricRef| Some(r.clone()),
            pack: |j: &[u8]| Ok(j.to_vec()),
        };
        let (_, borrowed) = prepare_json(&text, &cx).unwrap();
        let (_, decoded) = prepare_one((Cow::Owned(mutation.clone()), None), &cx).unwrap();
        let (b, d) = (borrowed.sheet.unwrap(), decoded.sheet.unwrap());
        assert_eq!(b.packed, d.packed);
        assert_eq!(borrowed.hash, decoded.hash);
    }

    /// A body that stops making sense halfway ends the scan with its error;
    /// helpers waiting for more mutations are let go, having prepared only
    /// what was found.
    #[test]
    fn a_scan_that_fails_lets_the_waiting_helpers_go() {
        let whole = push_body(30);
        let cut = axum::body::Bytes::from(whole[..whole.len() * 2 / 3].to_vec());
        let s = Streamed::new(cut, 30);
        let prepared = std::thread::scope(|sc| {
            let helper = sc.spawn(|| {
                let mut k = 0;
                while s.fill_next(&decode) {
                    k += 1;
                }
                k
            });
            assert!(s.scan().is_err());
            helper.join().unwrap()
        });
        let found = s.len();
        assert!((1..30).contains(&found), "{found}");
        assert_eq!(prepared, found.div_ceil(STREAM_CHUNK));
    }

    /// The scan reads a push as the full decoder does: keys in any order,
    /// other keys ignored, and what the decoder refuses it refuses.
    #[rstest::rstest]
    #[case::mutations_first(r#"{"mutations":[{"id":1,"op":{"submit":{"sheet_id":"0194e0b6-0000-7000-8000-000000000000"}}}],"protocol":1}"#, Some((1, 1)))]
    #[case::other_keys_ignored(r#"{"protocol":1,"x":[1,{"a":2}],"mutations":[]}"#, Some((1, 0)))]
    #[case::no_protocol(r#"{"mutations":[]}"#, None)]
    #[case::no_mutations(r#"{"protocol":1}"#, None)]
    #[case::twice(r#"{"protocol":1,"mutations":[],"mutations":[]}"#, None)]
    #[case::not_a_list(r#"{"protocol":1,"mutations":{}}"#, None)]
    #[case::trailing(r#"{"protocol":1,"mutations":[]} x"#, None)]
    #[case::spaced(" {\n \"protocol\" : 1 ,\t\"mutations\" : [ ] }\r\n", Some((1, 0)))]
    #[case::escaped_key(r#"{"proto\u0063ol":1,"mutations":[]}"#, Some((1, 0)))]
    #[case::protocol_not_a_number(r#"{"protocol":"1","mutations":[]}"#, None)]
    #[case::protocol_fraction(r#"{"protocol":1.0,"mutations":[]}"#, None)]
    #[case::ignored_value_not_json(r#"{"protocol":1,"x":[1,],"mutations":[]}"#, None)]
    #[case::missing_comma(r#"{"protocol":1 "mutations":[]}"#, None)]
    #[case::trailing_comma(r#"{"protocol":1,"mutations":[],}"#, None)]
    #[case::empty_object(r#"{}"#, None)]
    #[case::not_an_object(r#"[]"#, None)]
    #[case::unterminated_string(r#"{"protocol":1,"mutations":["#, None)]
    fn a_scan_reads_a_push_as_the_decoder_does(
        #[case] body: &str,
        #[case] want: Option<(u32, usize)>,
    ) {
        let s = Streamed::new(axum::body::Bytes::from(body.to_string()), 10);
        assert_eq!(s.scan().ok(), want);
        let decoded = serde_json::from_str::<ocop_shared::wire::PushRequest>(body);
        assert_eq!(decoded.is_ok(), want.is_some(), "{decoded:?}");
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
