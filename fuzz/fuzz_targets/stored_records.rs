//! Stored records read back from disk: decoding workflows, steps, catalogs
//! and embedding rows never panics, and a decoded step re-encodes to an
//! equal step.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::stored_records(data);
});
