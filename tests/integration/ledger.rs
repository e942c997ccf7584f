//! `telos verify` on a data directory: every broken workflow named with
//! its reason, a non-zero exit status, and directories written in ledger
//! format 1 migrated on open.

use std::process::Command;
use telos::storage::{SledStore, Store};
use telos::workflow::{Observed, Step, StepKind, Workflow};
use uuid::Uuid;

fn workflow(n: u128, ledger: u32) -> Workflow {
    let mut w: Workflow = serde_json::from_value(serde_json::json!({
        "id": Uuid::from_u128(n),
        "tenant": "acme",
        "subject": {"type": "user", "id": "alice"},
        "intent": {"subject": {"type": "user", "id": "alice"}, "evaluations": [], "tools": [], "entities": [],
                   "clauses": [], "speech_act": "question", "model": {"name": "m", "sha256": "s", "grant_threshold": 0.5, "read_threshold": 0.5}},
        "catalog": {"entries": []},
        "entry_scores": [],
        "created_at": "2026-01-01T00:00:00Z",
        "closed": false,
        "genesis": "",
        "ledger": ledger
    }))
    .unwrap();
    w.genesis = w.genesis_hash();
    w
}

fn step(seq: u64, prev: &str) -> Step {
    let mut s = Step {
        seq,
        observed: Observed {
            actor: telos::intent::Subject::new("agent", "fin"),
            chain: vec![],
            sub: None,
            token_verified: false,
            kind: StepKind::Tool,
            name: format!("tool_{seq}"),
            arguments: serde_json::Map::new(),
            outcome: None,
            at: "2026-01-01T00:00:00Z".into(),
        },
        received_at: "2026-01-01T00:00:00Z".into(),
        verdict: telos::workflow::Verdict::Allowed,
        reasons: vec![],
        prev_hash: prev.to_string(),
        hash: String::new(),
    };
    s.hash = s.compute_hash();
    s
}

fn steps(n: u64, w: &Workflow) -> Vec<Step> {
    let mut prev = w.genesis.clone();
    (1..=n)
        .map(|seq| {
            let s = step(seq, &prev);
            prev = s.hash.clone();
            s
        })
        .collect()
}

fn step_key(id: &Uuid, seq: u64) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn verify(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telos"))
        .args(["verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_names_every_broken_workflow_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (workflow(1, 2), workflow(2, 2), workflow(3, 2));
    {
        let store = SledStore::open(dir.path()).unwrap();
        for w in [&a, &b, &c] {
            store.put_workflow(w).unwrap();
            for s in steps(3, w) {
                store.append_step("acme", &w.id, &s, None).unwrap();
            }
        }
        // a: the last step removed. c: the first step edited.
        store.raw_set("steps", &step_key(&a.id, 3), None).unwrap();
        let mut s1 = steps(1, &c).remove(0);
        s1.observed.name = "tool_x".into();
        store
            .raw_set(
                "steps",
                &step_key(&c.id, 1),
                Some(&serde_json::to_vec(&s1).unwrap()),
            )
            .unwrap();
        store.flush().unwrap();
    }
    let (ok, text) = verify(dir.path());
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "BROKEN  acme/{} at step 3: the head is at step 3 but the chain ends at step 2",
            a.id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "BROKEN  acme/{} at step 1: step 1 does not match its hash",
            c.id
        )),
        "{text}"
    );
    assert!(!text.contains(&b.id.to_string()), "{text}");
    assert!(text.contains("3 workflows, 8 steps, 2 broken"), "{text}");
}

#[test]
fn format_1_directories_are_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let old = workflow(7, 1);
    {
        // Write what telos wrote before heads existed: a workflow record
        // without `ledger`, steps, no head, no format marker.
        let store = SledStore::open(dir.path()).unwrap();
        let mut record = serde_json::to_value(&old).unwrap();
        record.as_object_mut().unwrap().remove("ledger");
        let mut key = b"acme\0".to_vec();
        key.extend_from_slice(old.id.as_bytes());
        store
            .raw_set(
                "workflows",
                &key,
                Some(&serde_json::to_vec(&record).unwrap()),
            )
            .unwrap();
        for s in steps(2, &old) {
            store
                .raw_set(
                    "steps",
                    &step_key(&old.id, s.seq),
                    Some(&serde_json::to_vec(&s).unwrap()),
                )
                .unwrap();
        }
        store.raw_set("meta", b"ledger_format", None).unwrap();
        assert_eq!(store.head("acme", &old.id).unwrap(), None);
        store.flush().unwrap();
    }
    let (ok, text) = verify(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("1 workflow(s) in ledger format 1"), "{text}");
    assert!(text.contains("1 workflows, 2 steps, 0 broken"), "{text}");
    let store = SledStore::open(dir.path()).unwrap();
    let head = store.head("acme", &old.id).unwrap().unwrap();
    assert_eq!(head.seq, 2);
    assert_eq!(
        store.get_workflow("acme", &old.id).unwrap().unwrap().ledger,
        1
    );
}

fn cli(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_telos"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A consistent rewrite (the last step removed and the head moved back
/// with it, or a step replaced and the chain re-hashed after it) passes
/// `verify` alone; the signed checkpoint names it.
#[test]
fn signed_checkpoints_catch_consistent_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("checkpoint.key");
    let (ok, text) = cli(&["keygen".as_ref(), "--out".as_ref(), secret.as_os_str()]);
    assert!(ok, "{text}");
    let public = keys.path().join("checkpoint.key.pub");
    let (ok, _) = cli(&["keygen".as_ref(), "--out".as_ref(), secret.as_os_str()]);
    assert!(!ok, "keygen never overwrites a key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (a, b, c) = (workflow(1, 2), workflow(2, 2), workflow(3, 2));
    let verify_cp = |public: &std::path::Path| {
        cli(&[
            "verify".as_ref(),
            "--data-dir".as_ref(),
            dir.path().as_os_str(),
            "--checkpoints".as_ref(),
            public.as_os_str(),
        ])
    };
    {
        let store = SledStore::open(dir.path()).unwrap();
        for w in [&a, &b, &c] {
            store.put_workflow(w).unwrap();
            for s in steps(3, w) {
                store.append_step("acme", &w.id, &s, None).unwrap();
            }
        }
        let key = telos::service::checkpoint::read_signing_key(&secret).unwrap();
        let cp = telos::service::checkpoint::checkpoint(&store, &key)
            .unwrap()
            .unwrap();
        assert_eq!(cp.heads.len(), 3);
        assert!(
            telos::service::checkpoint::checkpoint(&store, &key)
                .unwrap()
                .is_none(),
            "no new checkpoint while no head moved"
        );
        store.flush().unwrap();
    }
    let (ok, text) = verify_cp(&public);
    assert!(ok, "{text}");
    assert!(
        text.contains("signature valid") && text.contains(" 0 broken"),
        "{text}"
    );
    {
        let store = SledStore::open(dir.path()).unwrap();
        let mut key = b"acme\0".to_vec();
        // a: truncated to 2 steps, head moved back consistently.
        key.extend_from_slice(a.id.as_bytes());
        store.raw_set("steps", &step_key(&a.id, 3), None).unwrap();
        let head = serde_json::json!({"seq": 2, "hash": steps(2, &a)[1].hash});
        store
            .raw_set("heads", &key, Some(&serde_json::to_vec(&head).unwrap()))
            .unwrap();
        // b: step 2 replaced and everything after it re-hashed.
        let mut chain = steps(3, &b);
        chain[1].observed.name = "tool_x".into();
        chain[1].hash = chain[1].compute_hash();
        chain[2].prev_hash = chain[1].hash.clone();
        chain[2].hash = chain[2].compute_hash();
        for s in &chain[1..] {
            store
                .raw_set(
                    "steps",
                    &step_key(&b.id, s.seq),
                    Some(&serde_json::to_vec(s).unwrap()),
                )
                .unwrap();
        }
        let mut bkey = b"acme\0".to_vec();
        bkey.extend_from_slice(b.id.as_bytes());
        let head = serde_json::json!({"seq": 3, "hash": chain[2].hash});
        store
            .raw_set("heads", &bkey, Some(&serde_json::to_vec(&head).unwrap()))
            .unwrap();
        // c grows normally after the checkpoint: not a finding.
        let next = {
            let mut s = steps(4, &c).remove(3);
            s.hash = s.compute_hash();
            s
        };
        store.append_step("acme", &c.id, &next, None).unwrap();
        store.flush().unwrap();
    }
    let (ok, text) = verify(dir.path());
    assert!(
        ok,
        "the rewrites are consistent, so the ledger alone verifies: {text}"
    );
    let (ok, text) = verify_cp(&public);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "acme/{}: against the checkpoint: the head moved backwards from step 3 to step 2",
            a.id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "acme/{}: against the checkpoint: the head at step 3 changed",
            b.id
        )),
        "{text}"
    );
    assert!(!text.contains(&c.id.to_string()), "{text}");
    // Another key's public half does not verify the checkpoint.
    let other = keys.path().join("other.key");
    assert!(cli(&["keygen".as_ref(), "--out".as_ref(), other.as_os_str()]).0);
    let (ok, text) = verify_cp(&keys.path().join("other.key.pub"));
    assert!(!ok);
    assert!(
        text.contains("does not verify with the given public key"),
        "{text}"
    );
}

/// `serve --checkpoint-key` signs a checkpoint of the heads on its own and
/// makes it durable before logging it: after a SIGKILL, `verify
/// --checkpoints` finds it valid and covering every workflow.
#[test]
fn the_server_signs_checkpoints_at_its_interval() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("k");
    assert!(cli(&["keygen".as_ref(), "--out".as_ref(), secret.as_os_str()]).0);
    {
        let store = SledStore::open(dir.path()).unwrap();
        for w in [workflow(1, 2), workflow(2, 2)] {
            store.put_workflow(&w).unwrap();
            for s in steps(2, &w) {
                store.append_step("acme", &w.id, &s, None).unwrap();
            }
        }
        store.flush().unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_telos"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--checkpoint-interval-secs",
            "1",
            "--data-dir",
        ])
        .arg(dir.path())
        .arg("--checkpoint-key")
        .arg(&secret)
        .env("RUST_LOG", "info")
        .env("TELOS_LOG_FORMAT", "text")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("checkpoint signed") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("the server logged a checkpoint");
    assert!(line.contains("workflows=2"), "{line}");
    let (ok, text) = cli(&[
        "verify".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--checkpoints".as_ref(),
        keys.path().join("k.pub").as_os_str(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("(2 workflows, digest") && text.contains("signature valid"),
        "{text}"
    );
}
