//! Catalog bodies (MCP tools/list, Agent Skills, A2A cards): validation
//! never panics, and an accepted catalog has unique, non-empty names.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::catalog(data);
});
