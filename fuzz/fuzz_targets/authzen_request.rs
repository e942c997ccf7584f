//! AuthZEN request bodies: the body checks, single and batch parsing, and
//! batch default merging never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = telos::api::json::parse_json::<serde_json::Value>(data, 32) else {
        return;
    };
    let _ = telos::pdp::request::single(&body);
    if let Ok(batch) = telos::pdp::request::batch(&body) {
        for item in batch.items {
            let _ = item.complete(&batch.defaults);
        }
    }
});
