//! `act` claims and compact JWTs: parsing never panics, and a parsed chain
//! is never deeper than the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::act_and_jwt(data);
});
