//! Verifying a whole store's ledger (`telos verify`): every workflow record
//! against its genesis, every step chain, every head; each workflow checked
//! on its own so one broken or undecodable record never hides another.

use serde::Serialize;

use crate::storage::{StorageError, Store};
use crate::workflow::{LedgerBreak, verify_ledger};

/// A workflow whose ledger does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenWorkflow {
    /// `tenant/id`, or the raw key when it is not one.
    pub key: String,
    /// The first step concerned (0: the workflow record or its genesis).
    pub at: u64,
    /// What is wrong.
    pub reason: String,
}

/// The result of verifying a store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerReport {
    /// Workflow records (and orphaned heads) examined.
    pub workflows: usize,
    /// Stored steps examined.
    pub steps: usize,
    /// Workflows in ledger format 1 (genesis over id, subject and intent
    /// only; migrated on open).
    pub legacy: usize,
    /// Every broken workflow, in key order.
    pub broken: Vec<BrokenWorkflow>,
    /// Workflows whose last step was written without its head: an append
    /// a crash interrupted (`tenant/id` and the step). That step was never
    /// acknowledged; the tracker completes the append when it next loads
    /// the workflow.
    pub interrupted: Vec<(String, u64)>,
}

/// Verifies every workflow of `store`. Fails only when the store itself
/// cannot be read; broken records are listed, not raised.
pub fn verify_store(store: &dyn Store) -> Result<LedgerReport, StorageError> {
    let mut report = LedgerReport::default();
    for record in store.ledger()? {
        report.workflows += 1;
        let fail = |b: LedgerBreak| BrokenWorkflow {
            key: record.key.clone(),
            at: b.at,
            reason: b.reason,
        };
        let workflow = match &record.workflow {
            Ok(w) => w,
            Err(e) => {
                report.broken.push(fail(LedgerBreak {
                    at: 0,
                    reason: e.clone(),
                }));
                continue;
            }
        };
        if record.id != Some(workflow.id) || record.tenant != workflow.tenant {
            report.broken.push(fail(LedgerBreak {
                at: 0,
                reason: format!(
                    "the record stored under this key is workflow {}/{}: it was moved",
                    workflow.tenant, workflow.id
                ),
            }));
            continue;
        }
        if workflow.ledger < 2 {
            report.legacy += 1;
        }
        let head = match &record.head {
            Ok(h) => h.as_ref(),
            Err(e) => {
                report.broken.push(fail(LedgerBreak {
                    at: 0,
                    reason: e.clone(),
                }));
                continue;
            }
        };
        let steps = store.stored_steps(&workflow.id)?;
        report.steps += steps.len();
        match verify_ledger(workflow, head, &steps) {
            Err(b) => report.broken.push(fail(b)),
            Ok(Some(seq)) => report.interrupted.push((record.key.clone(), seq)),
            Ok(None) => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support;
    use crate::storage::SledStore;
    use crate::workflow::{Step, Verdict, Workflow};

    fn workflow(n: u128, tenant: &str) -> Workflow {
        test_support::workflow(
            n,
            tenant,
            serde_json::json!({"allowed_agents": ["fin"], "context": {"channel": "web"}}),
        )
    }

    fn step(seq: u64, prev: &str, name: &str) -> Step {
        test_support::step(seq, prev, name, Verdict::Divergent)
    }
    use uuid::Uuid;

    /// A store with workflows 1 and 2 of tenant `t`, three divergent steps
    /// each (so each step has a drift key too).
    fn store() -> SledStore {
        let store = SledStore::temporary().unwrap();
        for n in [1, 2] {
            let w = workflow(n, "t");
            store.put_workflow(&w).unwrap();
            let mut prev = w.genesis.clone();
            for seq in 1..=3 {
                let s = step(seq, &prev, &format!("tool_{seq}"));
                store
                    .append_step("t", &w.id, &s, Some(seq * 1000 + n as u64))
                    .unwrap();
                prev = s.hash;
            }
        }
        store
    }

    fn step_key(n: u128, seq: u64) -> Vec<u8> {
        let mut k = Uuid::from_u128(n).as_bytes().to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    fn step_value(store: &SledStore, n: u128, seq: u64) -> Vec<u8> {
        let key = step_key(n, seq);
        store
            .raw_entries("steps")
            .unwrap()
            .into_iter()
            .find(|(k, _)| *k == key)
            .unwrap()
            .1
    }

    fn only_broken(store: &SledStore) -> BrokenWorkflow {
        let report = verify_store(store).unwrap();
        assert_eq!(report.workflows, 2);
        assert_eq!(report.broken.len(), 1, "{report:#?}");
        assert_eq!(
            report.broken[0].key,
            format!("t/{}", Uuid::from_u128(1)),
            "{report:#?}"
        );
        report.broken[0].clone()
    }

    #[test]
    fn an_intact_store_verifies() {
        let report = verify_store(&store()).unwrap();
        assert_eq!((report.workflows, report.steps, report.legacy), (2, 6, 0));
        assert!(report.broken.is_empty(), "{report:#?}");
    }

    #[test]
    fn an_edited_step_is_named() {
        let store = store();
        let v = String::from_utf8(step_value(&store, 1, 2)).unwrap();
        let edited = v.replace("tool_2", "tool_x");
        store
            .raw_set("steps", &step_key(1, 2), Some(edited.as_bytes()))
            .unwrap();
        let b = only_broken(&store);
        assert_eq!(b.at, 2);
        assert!(b.reason.contains("edited"), "{b:?}");
    }

    #[test]
    fn a_deleted_step_is_named() {
        let store = store();
        store.raw_set("steps", &step_key(1, 2), None).unwrap();
        let b = only_broken(&store);
        assert_eq!(b.at, 2);
        assert!(b.reason.contains("removed"), "{b:?}");
    }

    #[test]
    fn reordered_steps_are_named() {
        let store = store();
        let (one, two) = (step_value(&store, 1, 1), step_value(&store, 1, 2));
        store.raw_set("steps", &step_key(1, 1), Some(&two)).unwrap();
        store.raw_set("steps", &step_key(1, 2), Some(&one)).unwrap();
        let b = only_broken(&store);
        assert_eq!(b.at, 1);
        assert!(b.reason.contains("moved"), "{b:?}");
        // Reordered and renumbered: the links no longer hold.
        let store2 = self::store();
        let mut s2: Step = serde_json::from_slice(&step_value(&store2, 1, 2)).unwrap();
        let mut s1: Step = serde_json::from_slice(&step_value(&store2, 1, 1)).unwrap();
        std::mem::swap(&mut s1.seq, &mut s2.seq);
        store2
            .raw_set(
                "steps",
                &step_key(1, 1),
                Some(&serde_json::to_vec(&s2).unwrap()),
            )
            .unwrap();
        store2
            .raw_set(
                "steps",
                &step_key(1, 2),
                Some(&serde_json::to_vec(&s1).unwrap()),
            )
            .unwrap();
        let b = only_broken(&store2);
        assert_eq!(b.at, 1);
        assert!(b.reason.contains("reordered"), "{b:?}");
    }

    #[test]
    fn truncated_last_steps_are_named() {
        let store = store();
        // Remove the last two steps and their drift keys: every remaining
        // link verifies, only the head shows what happened.
        for seq in [2, 3] {
            store.raw_set("steps", &step_key(1, seq), None).unwrap();
        }
        for (k, _) in store.raw_entries("drift_by_time").unwrap() {
            if k.ends_with(&step_key(1, 2)) || k.ends_with(&step_key(1, 3)) {
                store.raw_set("drift_by_time", &k, None).unwrap();
            }
        }
        let steps = store.stored_steps(&Uuid::from_u128(1)).unwrap();
        let wf = store
            .get_workflow("t", &Uuid::from_u128(1))
            .unwrap()
            .unwrap();
        let steps: Vec<Step> = steps.into_iter().map(|(_, s)| s.unwrap()).collect();
        assert!(crate::workflow::verify_chain(&wf, &steps).is_ok());
        let b = only_broken(&store);
        assert_eq!(b.at, 2);
        assert!(
            b.reason.contains("head is at step 3") && b.reason.contains("ends at step 1"),
            "{b:?}"
        );
        // Every step removed, the head too: the workflow record remains.
        store.raw_set("steps", &step_key(1, 1), None).unwrap();
        let mut key = b"t\0".to_vec();
        key.extend_from_slice(Uuid::from_u128(1).as_bytes());
        store.raw_set("heads", &key, None).unwrap();
        let b = only_broken(&store);
        assert!(b.reason.contains("no head"), "{b:?}");
    }

    #[test]
    fn the_genesis_commits_to_the_workflow_record() {
        for (field, value) in [
            ("allowed_agents", serde_json::json!(["fin", "mallory"])),
            ("context", serde_json::json!({"channel": "api"})),
            (
                "catalog",
                serde_json::to_value(
                    crate::catalog::parse_catalog(
                        &serde_json::json!({"tools": [{"name": "wire_money", "description": "Send money"}]}),
                        crate::catalog::Limits::default(),
                    )
                    .unwrap(),
                )
                .unwrap(),
            ),
            ("catalog_name", serde_json::json!("other")),
        ] {
            let store = store();
            let mut key = b"t\0".to_vec();
            key.extend_from_slice(Uuid::from_u128(1).as_bytes());
            let (_, v) = store
                .raw_entries("workflows")
                .unwrap()
                .into_iter()
                .find(|(k, _)| *k == key)
                .unwrap();
            let mut w: serde_json::Value = serde_json::from_slice(&v).unwrap();
            w[field] = value;
            assert!(serde_json::from_value::<Workflow>(w.clone()).is_ok(), "{field}");
            store
                .raw_set("workflows", &key, Some(&serde_json::to_vec(&w).unwrap()))
                .unwrap();
            let b = only_broken(&store);
            assert_eq!(b.at, 0, "{field}");
            assert!(b.reason.contains("genesis"), "{field}: {b:?}");
        }
    }

    #[test]
    fn every_broken_workflow_is_named_and_corrupt_records_do_not_stop_it() {
        let store = store();
        let mut key = b"t\0".to_vec();
        key.extend_from_slice(Uuid::from_u128(1).as_bytes());
        store
            .raw_set("workflows", &key, Some(b"\xff not json"))
            .unwrap();
        // A tampered, non-ASCII hash in the other workflow.
        let mut s: Step = serde_json::from_slice(&step_value(&store, 2, 3)).unwrap();
        s.hash = "é".repeat(40);
        store
            .raw_set(
                "steps",
                &step_key(2, 3),
                Some(&serde_json::to_vec(&s).unwrap()),
            )
            .unwrap();
        let report = verify_store(&store).unwrap();
        assert_eq!(report.broken.len(), 2, "{report:#?}");
        assert!(report.broken[0].reason.contains("does not decode"));
        assert_eq!(report.broken[1].at, 3);
    }

    #[tokio::test]
    async fn the_tracker_does_not_extend_a_truncated_chain() {
        let store = std::sync::Arc::new(store());
        store.raw_set("steps", &step_key(1, 3), None).unwrap();
        let tracker = crate::service::tracker::Tracker::new(
            store.clone(),
            crate::workflow::TokenVerifier::unverified(),
            crate::service::tracker::TrackerConfig::default(),
        );
        let observed = step(9, "", "tool_9").observed;
        let err = tracker
            .record("t", &Uuid::from_u128(1), observed.clone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("telos verify"), "{err}");
        // The intact workflow still takes steps.
        let s = tracker
            .record("t", &Uuid::from_u128(2), observed)
            .await
            .unwrap();
        assert_eq!(s.seq, 4);
        assert!(verify_store(&*store).unwrap().broken.len() == 1);
    }
}
