//! The push-body splitter's reference: serde's reading of a push, and the
//! splitter's own, side by side. Shared by the splitter's property test
//! (`shared/tests/split.rs`) and its fuzz target
//! (`shared/fuzz/fuzz_targets/push_decode.rs`), which include this file.

use ocop_shared::split::split_push;
use serde_json::value::RawValue;

pub type Places = Vec<std::ops::Range<usize>>;

/// The reference: a push read by serde (keys in any order, unknown keys
/// ignored, a key twice refused), each mutation as raw JSON.
pub fn serde_reads(body: &[u8]) -> Option<((u32, usize), Places)> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        protocol: u32,
        #[serde(borrow)]
        mutations: Vec<&'a RawValue>,
    }
    let raw: Raw<'_> = serde_json::from_slice(body).ok()?;
    let base = body.as_ptr() as usize;
    let places: Places = raw
        .mutations
        .iter()
        .map(|m| {
            let at = m.get().as_ptr() as usize - base;
            at..at + m.get().len()
        })
        .collect();
    Some(((raw.protocol, places.len()), places))
}

/// What the splitter finds, and whether every mutation it found is UTF-8 and
/// JSON (what preparing it checks first).
pub fn splits(body: &[u8]) -> Option<((u32, usize), Places, bool)> {
    let mut places = Vec::new();
    let got = split_push(body, |r| places.push(r)).ok()?;
    let valid = places.iter().all(|r| {
        std::str::from_utf8(&body[r.clone()])
            .is_ok_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok())
    });
    Some((got, places, valid))
}
