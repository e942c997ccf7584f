//! Catalog bodies (MCP tools/list, Agent Skills, A2A cards): validation
//! never panics, and an accepted catalog has unique, non-empty names.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(c) = telos::catalog::parse_catalog(&body, telos::catalog::Limits::default()) {
        let mut names: Vec<&str> = c.entries.iter().map(|e| e.name.as_str()).collect();
        assert!(names.iter().all(|n| !n.is_empty()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.entries.len());
        for e in &c.entries {
            let _ = telos::catalog::entry_text(e);
        }
    }
});
