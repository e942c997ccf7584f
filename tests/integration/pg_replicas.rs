//! Several telos replicas on one PostgreSQL database (a throw-away cluster,
//! see `pg_cluster`): one hash chain per workflow whichever replica takes
//! the step, every judgement made on the current chain, and no
//! acknowledged step lost when a replica is killed.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use telos::intent::Subject;
use telos::service::tracker::{Tracker, TrackerConfig};
use telos::storage::{PgStore, Store};
use telos::workflow::{Judgement, StepReport, TokenVerifier, Workflow};

use crate::crash::{HttpClient, Server, call, start_with, wait_ready};
use crate::pg_cluster::Cluster;

/// (workflow, seq) → hash, as acknowledged.
type Acked = Arc<Mutex<HashMap<(String, u64), String>>>;

fn workflow(n: u128) -> Workflow {
    let mut w: Workflow = serde_json::from_value(json!({
        "id": uuid::Uuid::from_u128(n), "tenant": "acme",
        "subject": {"type": "user", "id": "alice"},
        "intent": {"subject": {"type": "user", "id": "alice"}, "evaluations": [], "tools": [], "entities": [],
                   "clauses": [], "speech_act": "question", "model": {"name": "m", "sha256": "s", "grant_threshold": 0.5, "read_threshold": 0.5}},
        "catalog": {"entries": []}, "entry_scores": [],
        "allowed_agents": ["nobody"],
        "created_at": "2026-01-01T00:00:00Z", "closed": false, "genesis": "", "ledger": 2
    }))
    .unwrap();
    w.genesis = w.genesis_hash();
    w
}

/// Whether the judgement says the (not allowed) agent `fin` acted in the
/// workflow before: the delegation graph the judgement was made on.
fn seen_before(j: &Judgement) -> bool {
    let evidence = j
        .reasons
        .iter()
        .find_map(|r| r.evidence.get("seen_before"))
        .expect("an unexpected_actor reason");
    evidence.as_bool().unwrap()
}

fn tracker(url: &str) -> (Arc<dyn Store>, Tracker) {
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(url, 2).unwrap());
    let t = Tracker::new(
        Arc::clone(&store),
        TokenVerifier::unverified(),
        TrackerConfig::default(),
    );
    (store, t)
}

fn report() -> StepReport {
    StepReport {
        actor: Some(Subject::new("agent", "fin")),
        tool: Some("get_invoice".into()),
        ..StepReport::default()
    }
}

/// Replica B caches a workflow, replica A appends: B's next evaluation
/// reads the head and reloads, and B's next step, judged on the stale
/// view, is refused by the head's compare-and-set, judged again on the
/// chain A extended, and stored after A's step.
#[tokio::test]
async fn a_stale_replica_judges_on_the_current_chain() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("stale");
    let (store, a) = tracker(&url);
    let (_, b) = tracker(&url);
    let (w1, w2) = (workflow(1), workflow(2));
    store.put_workflow(&w1).unwrap();
    store.put_workflow(&w2).unwrap();

    // Evaluation: B loads w1, A appends, B sees A's step.
    let observed = b.observe(report()).unwrap();
    assert!(!seen_before(
        &b.evaluate("acme", &w1.id, &observed).await.unwrap()
    ));
    a.record("acme", &w1.id, a.observe(report()).unwrap())
        .await
        .unwrap();
    assert!(
        seen_before(&b.evaluate("acme", &w1.id, &observed).await.unwrap()),
        "B judged on its stale cache"
    );

    // Recording: B loads w2 (empty), A appends step 1, B records.
    assert!(!seen_before(
        &b.evaluate("acme", &w2.id, &observed).await.unwrap()
    ));
    let one = a
        .record("acme", &w2.id, a.observe(report()).unwrap())
        .await
        .unwrap();
    let two = b
        .record("acme", &w2.id, b.observe(report()).unwrap())
        .await
        .unwrap();
    assert_eq!(two.seq, 2);
    assert_eq!(two.prev_hash, one.hash, "B's step links to A's");
    assert!(
        two.reasons
            .iter()
            .any(|r| r.evidence.get("seen_before") == Some(&json!(true))),
        "B's step was judged again on the chain with A's step: {:?}",
        two.reasons
    );
    // And A, now stale, goes through the same path.
    let three = a
        .record("acme", &w2.id, a.observe(report()).unwrap())
        .await
        .unwrap();
    assert_eq!((three.seq, three.prev_hash), (3, two.hash));
    let report = telos::service::ledger::verify_store(&*store).unwrap();
    assert!(report.broken.is_empty(), "{report:#?}");
    assert_eq!(report.steps, 4);
}

fn banking_catalog() -> Value {
    serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/intents/banking/catalog.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

/// `replicas` servers on database `url`, ready, with the banking catalog
/// and three workflows (created on different replicas).
async fn start_replicas(
    client: &HttpClient,
    url: &str,
    replicas: usize,
    data: &std::path::Path,
) -> (Vec<Server>, Vec<String>) {
    let servers: Vec<Server> = (0..replicas)
        .map(|i| {
            let dir = data.join(format!("r{i}"));
            start_with(&[
                "--database-url",
                url,
                "--database-connections",
                "4",
                "--data-dir",
                dir.to_str().unwrap(),
            ])
        })
        .collect();
    for s in &servers {
        wait_ready(client, &s.base).await;
    }
    let (status, body) = call(
        client,
        "PUT",
        &format!("{}/v1/catalogs/banking", servers[0].base),
        Some(&banking_catalog()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut workflows = Vec::new();
    for i in 0..3 {
        let body = json!({"subject": {"type": "user", "id": format!("user{i}")},
                          "prompt": "Pay my electricity bill of $84.20 to Voltra", "catalog": "banking"});
        let base = &servers[i % replicas].base;
        let (s, b) = call(client, "POST", &format!("{base}/v1/workflows"), Some(&body))
            .await
            .unwrap();
        assert_eq!(s, 201, "{b}");
        workflows.push(b["workflow_id"].as_str().unwrap().to_string());
    }
    (servers, workflows)
}

/// Two clients per replica per workflow post steps until `stop`; every
/// acknowledgement is recorded (a seq acknowledged twice is a fork). A
/// client of replica `doomed` stops at its first transport error.
fn load(
    client: &HttpClient,
    servers: &[Server],
    workflows: &[String],
    stop: Instant,
    acked: &Acked,
) -> Vec<tokio::task::JoinHandle<usize>> {
    let mut tasks = Vec::new();
    for wf in workflows {
        for (r, server) in servers.iter().enumerate() {
            for k in 0..2 {
                let (client, base, wf, acked) = (
                    client.clone(),
                    server.base.clone(),
                    wf.clone(),
                    Arc::clone(acked),
                );
                tasks.push(tokio::spawn(async move {
                    let mut n = 0;
                    while Instant::now() < stop {
                        n += 1;
                        let tool = if n % 3 == 0 {
                            "delete_payee"
                        } else {
                            "get_balance"
                        };
                        let body = json!({"actor": {"type": "agent", "id": format!("agent{r}{k}")},
                                          "tool": tool, "arguments": {"n": n}});
                        let url = format!("{base}/v1/workflows/{wf}/steps");
                        match call(&client, "POST", &url, Some(&body)).await {
                            Ok((201, b)) => {
                                let seq = b["step"].as_u64().unwrap();
                                let hash = b["hash"].as_str().unwrap().to_string();
                                let before = acked.lock().unwrap().insert((wf.clone(), seq), hash);
                                assert!(
                                    before.is_none(),
                                    "{wf} step {seq} acknowledged twice: a fork"
                                );
                            }
                            Ok((status, b)) => panic!("replica {r}: unexpected {status}: {b}"),
                            Err(_) => return n, // the replica died under us
                        }
                    }
                    n
                }));
            }
        }
    }
    tasks
}

/// Every acknowledged step is stored with its hash, the stored seqs run
/// 1..=n without a gap, nothing was stored that was not acknowledged
/// (when `exact`), and `telos verify` passes on the database.
async fn check_ledger(
    client: &HttpClient,
    base: &str,
    url: &str,
    workflows: &[String],
    acked: &Acked,
    exact: bool,
) {
    let acked = acked.lock().unwrap().clone();
    for wf in workflows {
        let (s, b) = call(
            client,
            "GET",
            &format!("{base}/v1/workflows/{wf}?limit=1000"),
            None,
        )
        .await
        .unwrap();
        assert_eq!(s, 200, "{b}");
        let stored: Vec<(u64, String)> = b["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|st| {
                (
                    st["seq"].as_u64().unwrap(),
                    st["hash"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (i, (seq, _)) in stored.iter().enumerate() {
            assert_eq!(*seq, i as u64 + 1, "{wf}: seqs have a gap or a repeat");
        }
        let stored: HashMap<u64, String> = stored.into_iter().collect();
        let mine: Vec<_> = acked.iter().filter(|((w, _), _)| w == wf).collect();
        for ((w, seq), hash) in &mine {
            assert_eq!(
                stored.get(seq),
                Some(*hash),
                "acknowledged step {w}#{seq} lost or changed"
            );
        }
        if exact {
            assert_eq!(
                stored.len(),
                mine.len(),
                "{wf}: unacknowledged steps stored"
            );
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_telos"))
        .args(["verify", "--database-url", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 broken"), "{text}");
}

fn kill(mut s: Server) {
    s.child.kill().unwrap();
    s.child.wait().unwrap();
}

/// Two, then three replicas on one database take concurrent steps for the
/// same workflows through every replica: no fork (no seq acknowledged
/// twice), no lost step, no gap, and `telos verify` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_chain_per_workflow() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for replicas in [2, 3] {
        let url = cluster.database(&format!("replicas{replicas}"));
        let (servers, workflows) = start_replicas(&client, &url, replicas, data.path()).await;
        let acked: Acked = Arc::default();
        let stop = Instant::now() + Duration::from_millis(2000);
        let sent: usize = {
            let mut n = 0;
            for t in load(&client, &servers, &workflows, stop, &acked) {
                n += t.await.unwrap();
            }
            n
        };
        let count = acked.lock().unwrap().len();
        assert_eq!(count, sent, "every step sent was acknowledged");
        assert!(count > 3 * replicas * 2, "too few steps: {count}");
        // Read through the last replica: it sees every other replica's steps.
        check_ledger(
            &client,
            &servers[replicas - 1].base,
            &url,
            &workflows,
            &acked,
            true,
        )
        .await;
        servers.into_iter().for_each(kill);
    }
}

/// SIGKILL one of two replicas while both take steps: the survivor goes
/// on, and every step acknowledged by either is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_under_load_loses_no_acknowledged_step() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let url = cluster.database("sigkill");
    let (mut servers, workflows) = start_replicas(&client, &url, 2, data.path()).await;
    let acked: Acked = Arc::default();
    let stop = Instant::now() + Duration::from_millis(2500);
    let tasks = load(&client, &servers, &workflows, stop, &acked);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = acked.lock().unwrap().len();
    kill(servers.remove(0)); // SIGKILL
    for t in tasks {
        t.await.unwrap();
    }
    let after = acked.lock().unwrap().len();
    assert!(before > 0, "no step acknowledged before the kill");
    assert!(after > before, "the surviving replica took no step");
    // A step the killed replica committed but never answered may be
    // stored without an acknowledgement: `exact` is off.
    check_ledger(&client, &servers[0].base, &url, &workflows, &acked, false).await;
    servers.into_iter().for_each(kill);
}

/// `telos migrate` copies a sled ledger (catalogs, workflows, steps and
/// their drift keys) into PostgreSQL, verifies it there, and a second run
/// copies nothing more.
#[test]
fn a_sled_ledger_migrates_to_postgres() {
    use crate::storage_model::{step, workflow};
    use telos::storage::SledStore;
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("migrate");
    let dir = tempfile::tempdir().unwrap();
    let catalog = telos::storage::StoredCatalog {
        catalog: telos::catalog::parse_catalog(
            &json!({"tools": [{"name": "a"}, {"name": "b"}]}),
            telos::catalog::Limits::default(),
        )
        .unwrap(),
        model_sha256: "abc".into(),
        vectors: vec![vec![0.5, -1.0], vec![1.0, 0.25]],
    };
    let mut workflows = Vec::new();
    {
        let sled = SledStore::open(dir.path()).unwrap();
        sled.put_catalog("acme", "mail", &catalog).unwrap();
        for n in 0..3 {
            let w = workflow(n);
            sled.put_workflow(&w).unwrap();
            let mut prev = w.genesis.clone();
            for seq in 1..=(n as u64 * 5 + 1) {
                let s = step(seq, &prev, seq % 2 == 0, "x");
                sled.append_step(&w.tenant, &w.id, &s, (seq % 2 == 0).then_some(seq))
                    .unwrap();
                prev = s.hash;
            }
            workflows.push(w);
        }
        sled.flush().unwrap();
    }
    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_telos"))
            .args([
                "migrate",
                "--from",
                dir.path().to_str().unwrap(),
                "--to",
                &url,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let first = migrate();
    assert!(
        first.contains("1 catalogs, 3 workflows, 18 steps copied; 3 workflows, 18 steps in the database, 0 broken, 0 heads differ"),
        "{first}"
    );
    let sled = SledStore::open(dir.path()).unwrap();
    let pg = PgStore::connect(&url, 1).unwrap();
    assert_eq!(pg.get_catalog("acme", "mail").unwrap(), Some(catalog));
    for w in &workflows {
        assert_eq!(pg.get_workflow(&w.tenant, &w.id).unwrap().as_ref(), Some(w));
        assert_eq!(
            pg.steps(&w.id, 1, 1000).unwrap(),
            sled.steps(&w.id, 1, 1000).unwrap()
        );
        assert_eq!(
            pg.head(&w.tenant, &w.id).unwrap(),
            sled.head(&w.tenant, &w.id).unwrap()
        );
    }
    for tenant in ["acme", "globex"] {
        let keys = |entries: Vec<telos::storage::DriftEntry>| {
            let mut k: Vec<_> = entries.iter().map(|e| (e.workflow_id, e.seq)).collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(pg.drift(tenant, None, 1000).unwrap()),
            keys(sled.drift(tenant, None, 1000).unwrap())
        );
    }
    drop(sled);
    let again = migrate();
    assert!(again.contains("3 workflows, 0 steps copied"), "{again}");
}

/// Failover: a primary with a synchronous standby (streaming replication
/// on loopback, `synchronous_commit = on`), a replica whose URL names both
/// (`target_session_attrs=read-write`), steps posted for 5 s; the primary
/// is SIGKILLed under load and the standby promoted. telos reconnects to
/// the promoted standby, every request is answered 201, and every
/// acknowledged step is on the new primary, whose ledger verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_synchronous_standby_loses_no_acknowledged_step() {
    let Some(primary) = Cluster::start() else {
        return;
    };
    primary.database("failover");
    let standby = primary.standby();
    let url = format!(
        "postgres://telos@127.0.0.1:{},127.0.0.1:{}/failover?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let data = tempfile::tempdir().unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let (servers, workflows) = start_replicas(&client, &url, 1, data.path()).await;
    let acked: Acked = Arc::default();
    let stop = Instant::now() + Duration::from_millis(5000);
    let tasks = load(&client, &servers, &workflows, stop, &acked);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = acked.lock().unwrap().len();
    primary.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    standby.promote();
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    let after = acked.lock().unwrap().len();
    assert!(before > 0, "no step acknowledged before the failover");
    assert!(after > before, "no step acknowledged after the failover");
    assert_eq!(after, sent, "every step sent was acknowledged");
    check_ledger(&client, &servers[0].base, &url, &workflows, &acked, true).await;
    servers.into_iter().for_each(kill);
}
