//! Step reports: decoding and turning them into observed steps (with the
//! `act` claim and token inside) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = telos::api::json::parse_json::<telos::workflow::tracker::StepInput>(data, 32) else {
        return;
    };
    let _ = telos::workflow::tracker::observe(input, &telos::workflow::TokenVerifier::unverified(), 16);
});
