//! Decoding a push request (what the server reads from any device) never
//! panics, and a decoded request re-encodes to an equal value. Splitting a
//! push body into its mutations (what the server does before decoding any)
//! never panics, and agrees with serde: it takes a body whose mutations are
//! all JSON exactly when serde reads the body as a protocol number and a
//! list of JSON values, with the same places.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ocop_shared::wire::{PushRequest, PushResponse};

// The splitter's reference, shared with its property test.
#[path = "../../tests/common/split_oracle.rs"]
mod split_oracle;
use split_oracle::{serde_reads, splits};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<PushRequest>(data) {
        let text = serde_json::to_vec(&req).unwrap();
        assert_eq!(serde_json::from_slice::<PushRequest>(&text).unwrap(), req);
    }
    if let Ok(resp) = serde_json::from_slice::<PushResponse>(data) {
        let text = serde_json::to_vec(&resp).unwrap();
        assert_eq!(serde_json::from_slice::<PushResponse>(&text).unwrap(), resp);
    }
    match (splits(data), serde_reads(data)) {
        (Some((got, ranges, all_json)), Some((want, places))) => {
            assert!(all_json);
            assert_eq!(got, want);
            assert_eq!(ranges, places);
        }
        (Some((_, _, all_json)), None) => {
            assert!(!all_json, "the splitter took a body serde refuses")
        }
        (None, Some(_)) => panic!("the splitter refused a body serde reads"),
        (None, None) => {}
    }
});
