//! Replays every saved fuzz input (`fuzz/regressions/<target>/*`: minimised
//! crashers and a small seed of each target's minimised corpus) through the
//! same checks the fuzz targets run, so a fixed finding stays fixed.

use std::path::Path;
use telos::fuzz_checks::TARGETS;

/// Every saved input passes its target's check, and every target keeps at
/// least one input that gets past decoding to the property it checks (a
/// directory of inputs every parser rejects would replay nothing).
#[test]
fn saved_fuzz_inputs_pass_their_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut failures = Vec::new();
    for (name, check) in TARGETS {
        let dir = root.join(name);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("fuzz/regressions/{name}: {e}"));
        let mut reached = 0usize;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            match std::panic::catch_unwind(|| check(&data)) {
                Ok(true) => reached += 1,
                Ok(false) => {}
                Err(_) => failures.push(format!("{name}: {} fails its check", path.display())),
            }
        }
        if reached == 0 {
            failures.push(format!(
                "{name}: no saved input reaches the property (add a seed the parser accepts)"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A tampered step whose hashes are not ASCII (the stored_records crasher)
/// is accepted by the decoder and renders without panicking.
#[test]
fn a_non_ascii_stored_hash_is_replayed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/stored_records/crash-non-ascii-hash");
    let data = std::fs::read(path).unwrap();
    assert!(telos::fuzz_checks::stored_records(&data));
}
