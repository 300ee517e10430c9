//! JSON request bodies decoded with failures in the one error shape:
//! malformed → 400 naming where parsing stopped (the path inside the body).
//! Used by the HTTP extractor and by a store that decodes a push itself (see
//! [`crate::store::Store::push_body`]).

use serde::de::DeserializeOwned;

use crate::error::Error;

/// Decodes `bytes` as a `T`; a failure names where it stopped.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    // Fast path first; only a failure pays for tracking the path.
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(first) => Err(failure::<T>(bytes, first)),
    }
}

/// The error for a body that `serde_json` refused with `first`: decoded again,
/// tracking the path, to say where.
pub fn failure<T: DeserializeOwned>(bytes: &[u8], first: serde_json::Error) -> Error {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let parsed: std::result::Result<T, _> = serde_path_to_error::deserialize(de);
    match parsed {
        // The value parsed; what failed is the text after it.
        Ok(_) => Error::BadRequest(format!(
            "malformed json at (body): {}",
            first.to_string().to_lowercase()
        )),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            Error::BadRequest(format!(
                "malformed json at {}: {}",
                if path == "." {
                    "(body)".to_string()
                } else {
                    path
                },
                inner.to_string().to_lowercase()
            ))
        }
    }
}
