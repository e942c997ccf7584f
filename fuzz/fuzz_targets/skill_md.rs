//! `SKILL.md` front matter: parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = telos::fuzz_checks::skill_md(data);
});
