//! Decoding a push request (what the server reads from any device) never
//! panics, and a decoded request re-encodes to an equal value. Splitting a
//! push body into its mutations (what the server does before decoding any)
//! never panics, and agrees with serde: it takes a body whose mutations are
//! all JSON exactly when serde reads the body as a protocol number and a
//! list of JSON values, with the same places.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ocop_shared::split::split_push;
use ocop_shared::wire::{PushRequest, PushResponse};
use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct Raw<'a> {
    protocol: u32,
    #[serde(borrow)]
    mutations: Vec<&'a RawValue>,
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<PushRequest>(data) {
        let text = serde_json::to_vec(&req).unwrap();
        assert_eq!(serde_json::from_slice::<PushRequest>(&text).unwrap(), req);
    }
    if let Ok(resp) = serde_json::from_slice::<PushResponse>(data) {
        let text = serde_json::to_vec(&resp).unwrap();
        assert_eq!(serde_json::from_slice::<PushResponse>(&text).unwrap(), resp);
    }
    let mut ranges = Vec::new();
    let split = split_push(data, |r| ranges.push(r));
    let all_json = ranges.iter().all(|r| {
        std::str::from_utf8(&data[r.clone()])
            .is_ok_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok())
    });
    let serde = serde_json::from_slice::<Raw<'_>>(data).ok().map(|raw| {
        let base = data.as_ptr() as usize;
        let places: Vec<_> = raw
            .mutations
            .iter()
            .map(|m| {
                let at = m.get().as_ptr() as usize - base;
                at..at + m.get().len()
            })
            .collect();
        (raw.protocol, places)
    });
    match (split, serde) {
        (Ok((protocol, n)), Some((p, places))) => {
            assert!(all_json);
            assert_eq!((protocol, n), (p, places.len()));
            assert_eq!(ranges, places);
        }
        (Ok(_), None) => assert!(!all_json, "the splitter took a body serde refuses"),
        (Err(_), Some(_)) => panic!("the splitter refused a body serde reads"),
        (Err(_), None) => {}
    }
});
