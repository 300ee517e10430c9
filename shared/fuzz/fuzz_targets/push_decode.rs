//! Decoding a push request (what the server reads from any device) never
//! panics, and a decoded request re-encodes to an equal value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ocop_shared::wire::{PushRequest, PushResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<PushRequest>(data) {
        let text = serde_json::to_vec(&req).unwrap();
        assert_eq!(serde_json::from_slice::<PushRequest>(&text).unwrap(), req);
    }
    if let Ok(resp) = serde_json::from_slice::<PushResponse>(data) {
        let text = serde_json::to_vec(&resp).unwrap();
        assert_eq!(serde_json::from_slice::<PushResponse>(&text).unwrap(), resp);
    }
});
