//! `SKILL.md` front matter: parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = telos::catalog::parse_skill_md(text);
    }
});
