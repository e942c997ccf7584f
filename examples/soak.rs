//! A bounded soak test on loopback: runs `target/release/telos serve` on a
//! throw-away data directory, drives a mixed load (intents, workflows,
//! steps, AuthZEN evaluations) from several clients for `--seconds`,
//! SIGKILLs and restarts the server every `--kill-every` seconds, and at
//! the end checks that every acknowledged step is present, unchanged, and
//! that `telos verify` finds every hash chain intact.
//!
//! ```sh
//! cargo build --release --bin telos --example soak
//! target/release/examples/soak --seconds 300 --kill-every 30 --clients 16
//! ```

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;
type Ledger = Arc<Mutex<HashMap<(String, u64), String>>>;

struct Opts {
    seconds: u64,
    kill_every: u64,
    clients: usize,
    binary: String,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        seconds: 300,
        kill_every: 30,
        clients: 16,
        binary: "target/release/telos".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => o.seconds = v.parse().map_err(|e| format!("{e}"))?,
            "--kill-every" => o.kill_every = v.parse().map_err(|e| format!("{e}"))?,
            "--clients" => o.clients = v.parse().map_err(|e| format!("{e}"))?,
            "--binary" => o.binary = v,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

fn start(binary: &str, data: &std::path::Path) -> Result<(Child, String), String> {
    let mut child = Command::new(binary)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {binary}: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(i) = line.find("addr=") {
                let addr: String = line[i + 5..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the server printed no address")?;
    Ok((child, format!("http://{addr}")))
}

async fn call(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(Value::to_string).unwrap_or_default(),
        )))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

async fn ready(client: &HttpClient, base: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok((200, _)) = call(client, "GET", &format!("{base}/readyz"), None).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("soak: FAILED: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let o = opts()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let catalog: Value = serde_json::from_slice(
        &std::fs::read("fixtures/intents/banking/catalog.json")
            .map_err(|e| format!("run from the repository root: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    let ledger: Ledger = Arc::default();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut workflows: Vec<String> = Vec::new();
    let end = Instant::now() + Duration::from_secs(o.seconds);
    let mut kills = 0;
    while Instant::now() < end {
        let (mut child, base) = start(&o.binary, dir.path())?;
        if !ready(&client, &base).await {
            return Err("server not ready".into());
        }
        if workflows.is_empty() {
            call(
                &client,
                "PUT",
                &format!("{base}/v1/catalogs/banking"),
                Some(&catalog),
            )
            .await?;
        }
        let running = Arc::new(AtomicBool::new(true));
        let round_end = (Instant::now() + Duration::from_secs(o.kill_every)).min(end);
        let mut tasks = Vec::new();
        for k in 0..o.clients {
            let (client, base, ledger, running) = (
                client.clone(),
                base.clone(),
                Arc::clone(&ledger),
                Arc::clone(&running),
            );
            let mut mine: Option<String> = workflows.get(k).cloned();
            tasks.push(tokio::spawn(async move {
                let mut local: BTreeMap<String, usize> = BTreeMap::new();
                let mut n = 0u64;
                while running.load(Ordering::Relaxed) && Instant::now() < round_end {
                    n += 1;
                    let outcome = match (n % 10, &mine) {
                        (0, _) | (_, None) => {
                            let body = json!({"subject": {"type": "user", "id": format!("user{k}")},
                                              "prompt": "Pay my electricity bill of $84.20 to Voltra and tell me the balance", "catalog": "banking"});
                            let r = call(&client, "POST", &format!("{base}/v1/workflows"), Some(&body)).await;
                            if let Ok((201, b)) = &r {
                                mine = b["workflow_id"].as_str().map(str::to_string);
                            }
                            ("workflow", r)
                        }
                        (1, Some(_)) => {
                            let body = json!({"subject": {"type": "user", "id": "u"}, "prompt": "what is my balance?", "catalog": "banking"});
                            ("intent", call(&client, "POST", &format!("{base}/v1/intents"), Some(&body)).await)
                        }
                        (2 | 3, Some(wf)) => {
                            let body = json!({"subject": {"type": "agent", "id": format!("agent{k}")}, "action": {"name": "tools/call"},
                                              "resource": {"type": "tool", "id": "get_balance", "properties": {"arguments": {}}},
                                              "context": {"workflow_id": wf}});
                            ("evaluation", call(&client, "POST", &format!("{base}/access/v1/evaluation"), Some(&body)).await)
                        }
                        (_, Some(wf)) => {
                            let tool = if n.is_multiple_of(7) { "add_payee" } else { "get_balance" };
                            let body = json!({"actor": {"type": "agent", "id": format!("agent{k}")}, "tool": tool, "arguments": {"n": n}});
                            let r = call(&client, "POST", &format!("{base}/v1/workflows/{wf}/steps"), Some(&body)).await;
                            if let Ok((201, b)) = &r
                                && let (Some(seq), Some(hash)) = (b["step"].as_u64(), b["hash"].as_str())
                                && let Ok(mut l) = ledger.lock()
                            {
                                l.insert((wf.clone(), seq), hash.to_string());
                            }
                            ("step", r)
                        }
                    };
                    let key = match outcome.1 {
                        Ok((s, _)) => format!("{} {s}", outcome.0),
                        Err(_) => format!("{} connection-error", outcome.0),
                    };
                    *local.entry(key).or_default() += 1;
                }
                (mine, local)
            }));
        }
        tokio::time::sleep(round_end.saturating_duration_since(Instant::now())).await;
        child.kill().map_err(|e| e.to_string())?; // SIGKILL, mid-load
        child.wait().map_err(|e| e.to_string())?;
        kills += 1;
        running.store(false, Ordering::Relaxed);
        let mut next = Vec::new();
        for t in tasks {
            let (mine, local) = t.await.map_err(|e| e.to_string())?;
            next.extend(mine);
            for (k, v) in local {
                *counts.entry(k).or_default() += v;
            }
        }
        workflows = next;
        let out = Command::new(&o.binary)
            .args(["verify", "--data-dir"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "verify failed after kill {kills}: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    // Final check: every acknowledged step is there, unchanged.
    let (mut child, base) = start(&o.binary, dir.path())?;
    if !ready(&client, &base).await {
        return Err("server not ready".into());
    }
    let ledger = ledger.lock().map_err(|_| "ledger poisoned")?.clone();
    let mut by_wf: HashMap<&str, Vec<(u64, &str)>> = HashMap::new();
    for ((wf, seq), hash) in &ledger {
        by_wf.entry(wf).or_default().push((*seq, hash));
    }
    let mut lost = 0usize;
    for (wf, acked) in &by_wf {
        // Every page of the workflow's steps (`next_cursor` pages on).
        let mut stored: HashMap<u64, String> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                Some(c) => format!("{base}/v1/workflows/{wf}?limit=1000&cursor={c}"),
                None => format!("{base}/v1/workflows/{wf}?limit=1000"),
            };
            let (_, b) = call(&client, "GET", &uri, None).await?;
            for s in b["steps"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let (Some(seq), Some(hash)) = (s["seq"].as_u64(), s["hash"].as_str()) {
                    stored.insert(seq, hash.to_string());
                }
            }
            match b["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        lost += acked
            .iter()
            .filter(|(seq, hash)| stored.get(seq).map(String::as_str) != Some(*hash))
            .count();
    }
    child.kill().map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;
    let out = Command::new(&o.binary)
        .args(["verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    println!(
        "soak: {} s, {} SIGKILLs, {} clients",
        o.seconds, kills, o.clients
    );
    for (k, v) in &counts {
        println!("  {k:<28} {v}");
    }
    println!(
        "  acknowledged steps {} in {} workflows, lost or changed {lost}",
        ledger.len(),
        by_wf.len()
    );
    print!("  verify: {}", String::from_utf8_lossy(&out.stdout));
    if lost > 0 || !out.status.success() {
        return Err(format!("{lost} acknowledged steps lost or changed"));
    }
    println!("soak: OK");
    Ok(())
}
