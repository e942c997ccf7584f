//! Request text: segmentation and the shape validators never panic and
//! always return in-bounds spans on character boundaries.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::request_text(data);
});
