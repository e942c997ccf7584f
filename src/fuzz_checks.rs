//! The properties the fuzz targets check (`fuzz/`), one function per target,
//! kept in the library so that `tests/integration/fuzz_regressions.rs`
//! replays every saved input (`fuzz/regressions/<target>/`) in the ordinary
//! test run. Each function must return normally for every input: a panic or
//! a failed assertion is a finding. Each returns whether the input got past
//! decoding to the property it checks, so the replay can insist that every
//! target keeps inputs that exercise that property (an input every parser
//! rejects proves only that rejection does not panic).

use serde_json::Value;

/// AuthZEN request bodies: the body checks, single and batch parsing and
/// batch default merging.
pub fn authzen_request(data: &[u8]) -> bool {
    let Ok(body) = crate::api::json::parse_json::<Value>(data, 32) else {
        return false;
    };
    let single = crate::pdp::request::single(&body).is_ok();
    let mut batched = false;
    if let Ok(batch) = crate::pdp::request::batch(&body) {
        batched = true;
        for item in batch.items {
            let _ = item.complete(&batch.defaults);
        }
    }
    single || batched
}

/// `act` claims and compact JWTs: a parsed chain is never deeper than the
/// limit.
pub fn act_and_jwt(data: &[u8]) -> bool {
    let mut reached = false;
    if let Ok(v) = serde_json::from_slice::<Value>(data)
        && let Ok(chain) = crate::workflow::parse_act(&v, 8)
    {
        assert!(chain.len() <= 8, "act chain deeper than its limit");
        reached = true;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        reached |= crate::workflow::TokenVerifier::unverified()
            .read(text)
            .is_ok();
    }
    reached
}

/// Catalog bodies (MCP `tools/list`, Agent Skills, A2A cards): an accepted
/// catalog has unique, non-empty names.
pub fn catalog(data: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return false;
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
        return true;
    }
    false
}

/// Request text: segmentation and the shape validators return in-bounds
/// spans on character boundaries.
pub fn request_text(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
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
    true
}

/// `SKILL.md` front matter.
pub fn skill_md(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| crate::catalog::parse_skill_md(text).is_ok())
}

/// Step reports: decoding and turning them into observed steps (with the
/// `act` claim and token inside).
pub fn step_report(data: &[u8]) -> bool {
    let Ok(input) = crate::api::json::parse_json::<crate::api::wire::StepInput>(data, 32) else {
        return false;
    };
    crate::workflow::observe(
        input.into(),
        &crate::workflow::TokenVerifier::unverified(),
        16,
    )
    .is_ok()
}

/// Stored records read back from disk: workflows, steps, catalogs and
/// embedding rows decode or fail without panicking. A decoded step
/// re-encodes to an equal step whose recomputed hash is unchanged (what
/// `telos verify` recomputes is what was written), and its stored hashes,
/// whatever bytes they hold, render in a report and its chain check.
pub fn stored_records(data: &[u8]) -> bool {
    let mut reached = serde_json::from_slice::<crate::workflow::Workflow>(data).is_ok();
    reached |= serde_json::from_slice::<crate::storage::StoredCatalog>(data).is_ok();
    reached |= crate::storage::decode_vectors("fuzz", data).is_ok();
    if let Ok(step) = serde_json::from_slice::<crate::workflow::Step>(data) {
        let bytes = serde_json::to_vec(&step);
        assert!(bytes.is_ok(), "a decoded step does not encode");
        let again = bytes
            .ok()
            .map(|b| serde_json::from_slice::<crate::workflow::Step>(&b));
        assert!(
            matches!(again, Some(Ok(_))),
            "a re-encoded step does not decode"
        );
        if let Some(Ok(again)) = again {
            assert_eq!(again, step, "a step changed across a round trip");
            assert_eq!(
                again.compute_hash(),
                step.compute_hash(),
                "a step's hash changed across a round trip"
            );
        }
        for hash in [&step.hash, &step.prev_hash] {
            let status = crate::drift::report::ChainStatus {
                verified: false,
                first_broken: Some(step.seq),
                head: hash.clone(),
                length: step.seq,
            };
            let _ = status.short_head();
        }
        reached = true;
    }
    reached
}

/// A fuzz target's check.
pub type Check = fn(&[u8]) -> bool;

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
