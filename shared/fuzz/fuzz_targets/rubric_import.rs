//! The rubric importer never panics, and whatever it accepts validates again
//! after a serialize/load round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ocop_shared::validate::{load_rubric, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(loaded) = load_rubric(text) {
        let again = serde_json::to_string(&loaded.rubric).unwrap();
        let back = load_rubric(&again).expect("an accepted rubric reloads");
        assert_eq!(back.rubric, loaded.rubric);
        assert!(validate(&back.rubric).iter().all(|i| i.severity != ocop_shared::validate::Severity::Error));
    }
});
