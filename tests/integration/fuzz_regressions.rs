//! Replays every saved fuzz input (`fuzz/regressions/<target>/*`: minimised
//! crashers and a small seed of each target's minimised corpus) through the
//! same checks the fuzz targets run, so a fixed finding stays fixed.

use std::path::Path;
use telos::fuzz_checks::TARGETS;

#[test]
fn saved_fuzz_inputs_pass_their_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (name, check) in TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{name}: {} fails its check",
                path.display()
            );
            replayed += 1;
        }
    }
    // Every target keeps some inputs: a missing directory is a packaging error.
    for (name, _) in TARGETS {
        assert!(
            root.join(name).is_dir(),
            "fuzz/regressions/{name} is missing"
        );
    }
    assert!(replayed >= TARGETS.len());
}
