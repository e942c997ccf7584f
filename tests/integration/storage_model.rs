//! Both stores checked against a simple model (a `BTreeMap`), across
//! reopen: every flushed workflow, step and drift entry reads back exactly,
//! in order, after the database is closed and opened again. The sled store
//! in a temporary directory; the PostgreSQL store on a throw-away cluster
//! (`pg_cluster`), its tables dropped before each case so the embedded
//! migrations run every time.

use proptest::prelude::*;
use std::collections::BTreeMap;
use telos::storage::{PgStore, SledStore, Store};
use telos::workflow::{Observed, Step, StepKind, Workflow};

#[derive(Debug, Clone)]
enum Op {
    Create,
    Append {
        workflow: usize,
        divergent: bool,
        payload: String,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Create),
        6 => (0usize..4, any::<bool>(), "[a-z]{0,12}").prop_map(|(workflow, divergent, payload)| Op::Append { workflow, divergent, payload }),
        1 => Just(Op::Reopen),
    ]
}

pub(crate) fn workflow(n: usize) -> Workflow {
    let mut w: Workflow = serde_json::from_value(serde_json::json!({
        "id": uuid::Uuid::from_u128(n as u128 + 1),
        "tenant": if n.is_multiple_of(2) { "acme" } else { "globex" },
        "subject": {"type": "user", "id": format!("user{n}")},
        "intent": {"subject": {"type": "user", "id": format!("user{n}")}, "evaluations": [], "tools": [], "entities": [],
                   "clauses": [], "speech_act": "question", "model": {"name": "m", "sha256": "s", "grant_threshold": 0.5, "read_threshold": 0.5}},
        "catalog": {"entries": []},
        "entry_scores": [],
        "created_at": "2026-01-01T00:00:00Z",
        "closed": false,
        "genesis": "",
        "ledger": 2
    }))
    .unwrap();
    w.genesis = w.genesis_hash();
    w
}

pub(crate) fn step(seq: u64, prev: &str, divergent: bool, payload: &str) -> Step {
    let mut s = Step {
        seq,
        observed: Observed {
            actor: telos::intent::Subject::new("agent", "a"),
            chain: vec![],
            sub: None,
            token_verified: false,
            kind: StepKind::Tool,
            name: format!("tool_{payload}"),
            arguments: serde_json::Map::new(),
            outcome: None,
            at: "2026-01-01T00:00:00Z".into(),
        },
        received_at: "2026-01-01T00:00:00Z".into(),
        verdict: if divergent {
            telos::workflow::Verdict::Divergent
        } else {
            telos::workflow::Verdict::Allowed
        },
        reasons: vec![],
        prev_hash: prev.to_string(),
        hash: String::new(),
    };
    s.hash = s.compute_hash();
    s
}

fn check(
    store: &dyn Store,
    workflows: &[Workflow],
    model: &BTreeMap<(usize, u64), Step>,
    drift: &[(String, uuid::Uuid, u64)],
) {
    for (i, w) in workflows.iter().enumerate() {
        assert_eq!(
            store.get_workflow(&w.tenant, &w.id).unwrap().as_ref(),
            Some(w)
        );
        let other = if w.tenant == "acme" { "globex" } else { "acme" };
        assert_eq!(
            store.get_workflow(other, &w.id).unwrap(),
            None,
            "tenants never mix"
        );
        let want: Vec<&Step> = model.range((i, 0)..(i, u64::MAX)).map(|(_, s)| s).collect();
        let got = store.steps(&w.id, 1, usize::MAX).unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), want);
        assert!(telos::workflow::verify_chain(w, &got).is_ok());
        // The head moved with every step, in the same write.
        let head = store.head(&w.tenant, &w.id).unwrap().unwrap();
        assert_eq!(head.seq, got.len() as u64);
        assert_eq!(
            head.hash,
            got.last().map_or(w.genesis.clone(), |s| s.hash.clone())
        );
    }
    for tenant in ["acme", "globex"] {
        let want: Vec<(uuid::Uuid, u64)> = drift
            .iter()
            .rev()
            .filter(|(t, _, _)| t == tenant)
            .map(|(_, id, seq)| (*id, *seq))
            .collect();
        let got: Vec<(uuid::Uuid, u64)> = store
            .drift(tenant, None, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| (e.workflow_id, e.seq))
            .collect();
        assert_eq!(got, want, "drift index of {tenant}, newest first");
        // Pages of two, each continuing after the last one's cursor.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store.drift(tenant, cursor.as_deref(), 2).unwrap();
            paged.extend(page.iter().map(|e| (e.workflow_id, e.seq)));
            match page.last() {
                Some(last) if page.len() == 2 => cursor = Some(last.cursor.clone()),
                _ => break,
            }
        }
        assert_eq!(paged, want, "drift pages of {tenant}");
    }
}

/// Applies `ops` to the store `open` opens (again on every `Reopen`) and to
/// the model, then checks the store against the model, before and after a
/// last reopen.
fn run_model(ops: Vec<Op>, open: &dyn Fn() -> Box<dyn Store>) {
    let mut store = open();
    let mut workflows: Vec<Workflow> = Vec::new();
    let mut model: BTreeMap<(usize, u64), Step> = BTreeMap::new();
    let mut drift: Vec<(String, uuid::Uuid, u64)> = Vec::new();
    let mut clock = 1_000u64;
    for op in ops {
        match op {
            Op::Create => {
                let w = workflow(workflows.len());
                store.put_workflow(&w).unwrap();
                workflows.push(w);
            }
            Op::Append {
                workflow: k,
                divergent,
                payload,
            } => {
                if workflows.is_empty() {
                    continue;
                }
                let i = k % workflows.len();
                let w = &workflows[i];
                let last = model
                    .range((i, 0)..(i, u64::MAX))
                    .next_back()
                    .map(|(_, s)| s.clone());
                let seq = last.as_ref().map_or(1, |s| s.seq + 1);
                let prev = last.map_or_else(|| w.genesis.clone(), |s| s.hash);
                let s = step(seq, &prev, divergent, &payload);
                clock += 1;
                store
                    .append_step(&w.tenant, &w.id, &s, divergent.then_some(clock))
                    .unwrap();
                if divergent {
                    drift.push((w.tenant.clone(), w.id, seq));
                }
                model.insert((i, seq), s);
            }
            Op::Reopen => {
                store.flush().unwrap();
                drop(store);
                store = open();
            }
        }
        store.flush().unwrap();
    }
    check(&*store, &workflows, &model, &drift);
    drop(store);
    let store = open();
    check(&*store, &workflows, &model, &drift);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_a_btreemap_across_reopen(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        run_model(ops, &|| Box::new(SledStore::open(dir.path()).unwrap()));
    }
}

/// The same model on PostgreSQL: one cluster for every case, the tables
/// dropped before each, so every case also runs the migrations.
#[test]
fn pg_store_matches_a_btreemap_across_reopen() {
    use proptest::test_runner::{Config, TestRunner};
    let Some(cluster) = crate::pg_cluster::Cluster::start() else {
        return;
    };
    let url = cluster.database("model");
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            cluster.psql(
                "model",
                "DROP TABLE IF EXISTS telos_schema, telos_catalogs, telos_workflows, telos_heads, \
                 telos_steps, telos_drift, telos_checkpoints",
            );
            run_model(ops, &|| Box::new(PgStore::connect(&url, 2).unwrap()));
            Ok(())
        })
        .unwrap();
    // The migrations ran and are recorded once.
    assert_eq!(
        cluster
            .psql("model", "SELECT version, name FROM telos_schema")
            .trim(),
        "1|ledger"
    );
}

/// A second writer's append to the same workflow is refused with a
/// conflict and stores nothing; the same step written again is accepted
/// (a retry after a lost answer).
#[test]
fn pg_appends_are_a_compare_and_set_on_the_head() {
    let Some(cluster) = crate::pg_cluster::Cluster::start() else {
        return;
    };
    let url = cluster.database("cas");
    let a = PgStore::connect(&url, 2).unwrap();
    let b = PgStore::connect(&url, 2).unwrap();
    let w = workflow(0);
    a.put_workflow(&w).unwrap();
    let one_a = step(1, &w.genesis, false, "a");
    let one_b = step(1, &w.genesis, true, "b");
    a.append_step(&w.tenant, &w.id, &one_a, None).unwrap();
    // Idempotent: the same step again (from either replica) is a no-op.
    b.append_step(&w.tenant, &w.id, &one_a, None).unwrap();
    let err = b
        .append_step(&w.tenant, &w.id, &one_b, Some(5))
        .unwrap_err();
    assert!(
        matches!(
            err,
            telos::storage::StorageError::Conflict {
                expected: 0,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(b.steps(&w.id, 1, 10).unwrap(), vec![one_a.clone()]);
    assert!(
        b.drift(&w.tenant, None, 10).unwrap().is_empty(),
        "the refused step's drift key was not written"
    );
    // A step that skips one is refused too.
    let three = step(3, &one_a.hash, false, "c");
    assert!(b.append_step(&w.tenant, &w.id, &three, None).is_err());
    assert_eq!(b.head(&w.tenant, &w.id).unwrap().unwrap().seq, 1);
}

/// A broken link is found and named.
#[test]
fn verify_names_the_first_broken_link() {
    let w = workflow(0);
    let s1 = step(1, &w.genesis, false, "a");
    let s2 = step(2, &s1.hash, false, "b");
    let mut s3 = step(3, &s2.hash, false, "c");
    assert!(telos::workflow::verify_chain(&w, &[s1.clone(), s2.clone(), s3.clone()]).is_ok());
    s3.observed.name = "tampered".into();
    assert_eq!(
        telos::workflow::verify_chain(&w, &[s1.clone(), s2.clone(), s3]),
        Err(3)
    );
    assert_eq!(
        telos::workflow::verify_chain(&w, &[s1, step(3, &s2.hash, false, "c")]),
        Err(2),
        "a removed step breaks the chain"
    );
}
