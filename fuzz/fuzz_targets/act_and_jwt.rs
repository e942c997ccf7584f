//! `act` claims and compact JWTs: parsing never panics, and a parsed chain
//! is never deeper than the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(chain) = telos::workflow::parse_act(&v, 8)
    {
        assert!(chain.len() <= 8);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = telos::workflow::TokenVerifier::unverified().read(text);
    }
});
