//! Push and pull decoders under arbitrary input (the stable-Rust companion of
//! the cargo-fuzz targets in `shared/fuzz/`): no panic, and whatever decodes
//! re-encodes to an equal value.

use ocop_shared::wire::{PullResponse, PushRequest, PushResponse};
use proptest::prelude::*;

fn golden(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/wire")
            .join(name),
    )
    .unwrap()
}

/// The splitter never panics, and what it finds in a body the full decoder
/// reads is that body's mutations: as many, each decoding to the same one.
fn splits(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut places = Vec::new();
    let split = ocop_shared::split::split_push(bytes, |r| places.push(r));
    if let Ok(req) = serde_json::from_slice::<PushRequest>(bytes) {
        prop_assert_eq!(split, Ok((req.protocol, req.mutations.len())));
        for (r, m) in places.iter().zip(&req.mutations) {
            let one: ocop_shared::wire::Mutation =
                serde_json::from_slice(&bytes[r.clone()]).unwrap();
            prop_assert_eq!(&one, m);
        }
    }
    Ok(())
}

fn roundtrips<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        let again: T = serde_json::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
        prop_assert_eq!(again, v);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        splits(&bytes)?;
        roundtrips::<PushRequest>(&bytes)?;
        roundtrips::<PushResponse>(&bytes)?;
        roundtrips::<PullResponse>(&bytes)?;
    }

    /// Golden documents with bytes flipped, cut or spliced: the nearest
    /// misses to valid input, where decoders break most often.
    #[test]
    fn mutated_golden_documents_never_panic_the_decoders(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let name = ["push-request.json", "push-response.json", "pull-response.json"][which];
        let mut bytes = golden(name).into_bytes();
        for (at, b, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = b,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, b),
            }
        }
        splits(&bytes)?;
        roundtrips::<PushRequest>(&bytes)?;
        roundtrips::<PushResponse>(&bytes)?;
        roundtrips::<PullResponse>(&bytes)?;
    }
}
