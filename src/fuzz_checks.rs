//! The properties the fuzz targets check (`fuzz/`), one function per target,
//! kept in the library so that `tests/integration/fuzz_regressions.rs`
//! replays every saved input (`fuzz/regressions/<target>/`) in the ordinary
//! test run. Each function must return normally for every input: a panic or
//! a failed assertion is a finding.

use serde_json::Value;

/// AuthZEN request bodies: the body checks, single and batch parsing and
/// batch default merging.
pub fn authzen_request(data: &[u8]) {
    let Ok(body) = crate::api::json::parse_json::<Value>(data, 32) else {
        return;
    };
    let _ = crate::pdp::request::single(&body);
    if let Ok(batch) = crate::pdp::request::batch(&body) {
        for item in batch.items {
            let _ = item.complete(&batch.defaults);
        }
    }
}

/// `act` claims and compact JWTs: a parsed chain is never deeper than the
/// limit.
pub fn act_and_jwt(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<Value>(data)
        && let Ok(chain) = crate::workflow::parse_act(&v, 8)
    {
        assert!(chain.len() <= 8, "act chain deeper than its limit");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::workflow::TokenVerifier::unverified().read(text);
    }
}

/// Catalog bodies (MCP `tools/list`, Agent Skills, A2A cards): an accepted
/// catalog has unique, non-empty names.
pub fn catalog(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(c) = crate::catalog::parse_catalog(&body, crate::catalog::Limits::default()) {
        let mut names: Vec<&str> = c.entries.iter().map(|e| e.name.as_str()).collect();
        assert!(names.iter().all(|n| !n.is_empty()), "empty entry name");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), c.entries.len(), "duplicate entry names");
        for e in &c.entries {
            let _ = crate::catalog::entry_text(e);
        }
    }
}

/// Request text: segmentation and the shape validators return in-bounds
/// spans on character boundaries.
pub fn request_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for (s, e) in crate::extraction::segment::segment(text) {
        assert!(s <= e && e <= text.len(), "clause out of bounds");
        assert!(
            text.is_char_boundary(s) && text.is_char_boundary(e),
            "clause off a character boundary"
        );
    }
    for span in crate::text::find_shaped(text) {
        assert!(
            span.start < span.end && span.end <= text.len(),
            "span out of bounds"
        );
        assert!(
            text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
            "span off a character boundary"
        );
    }
}

/// `SKILL.md` front matter.
pub fn skill_md(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::catalog::parse_skill_md(text);
    }
}

/// Step reports: decoding and turning them into observed steps (with the
/// `act` claim and token inside).
pub fn step_report(data: &[u8]) {
    let Ok(input) = crate::api::json::parse_json::<crate::api::wire::StepInput>(data, 32) else {
        return;
    };
    let _ = crate::workflow::observe(
        input.into(),
        &crate::workflow::TokenVerifier::unverified(),
        16,
    );
}

/// Stored records read back from disk: workflows, steps, catalogs and
/// embedding rows; a decoded step re-encodes to an equal step.
pub fn stored_records(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::workflow::Workflow>(data);
    let _ = serde_json::from_slice::<crate::storage::StoredCatalog>(data);
    let _ = crate::storage::decode_vectors("fuzz", data);
    if let Ok(step) = serde_json::from_slice::<crate::workflow::Step>(data) {
        let again: crate::workflow::Step = serde_json::to_vec(&step)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| step.clone());
        assert_eq!(again.hash, step.hash, "a step changed across a round trip");
        let _ = step.compute_hash();
    }
}

/// A fuzz target's check.
pub type Check = fn(&[u8]);

/// Every target by name, for the regression replay.
pub const TARGETS: &[(&str, Check)] = &[
    ("act_and_jwt", act_and_jwt),
    ("authzen_request", authzen_request),
    ("catalog", catalog),
    ("request_text", request_text),
    ("skill_md", skill_md),
    ("step_report", step_report),
    ("stored_records", stored_records),
];
