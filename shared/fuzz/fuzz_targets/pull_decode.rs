//! Decoding a pull page (what a device reads from the server) never panics,
//! and a decoded page re-encodes to an equal value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ocop_shared::wire::PullResponse;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = serde_json::from_slice::<PullResponse>(data) {
        let text = serde_json::to_vec(&page).unwrap();
        assert_eq!(serde_json::from_slice::<PullResponse>(&text).unwrap(), page);
    }
});
