//! Step reports: decoding and turning them into observed steps (with the
//! `act` claim and token inside) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::step_report(data);
});
