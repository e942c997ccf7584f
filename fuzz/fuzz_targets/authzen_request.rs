//! AuthZEN request bodies: the body checks, single and batch parsing, and
//! batch default merging never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::authzen_request(data);
});
