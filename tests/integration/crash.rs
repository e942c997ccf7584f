//! Crash safety: the real binary is killed with SIGKILL, repeatedly, while
//! clients report steps concurrently. After every restart each acknowledged
//! step is present with the verdict and hash it was acknowledged with, and
//! `telos verify` finds every hash chain intact.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;
/// (workflow, seq) → (verdict, hash), as acknowledged.
type Acked = Arc<Mutex<HashMap<(String, u64), (String, String)>>>;

/// A `telos serve` child process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

fn start(data: &Path) -> Server {
    start_with(&["--data-dir", data.to_str().unwrap()])
}

/// Starts `telos serve` on a free loopback port with `args`.
pub(crate) fn start_with(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_telos"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .env("TELOS_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
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
            // Errors of the server go to the test's output.
            if line.contains("ERROR") && !line.contains("readyz") {
                eprintln!("telos serve: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server printed its address");
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

pub(crate) async fn call(
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
            body.map(|b| b.to_string()).unwrap_or_default(),
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

pub(crate) async fn wait_ready(client: &HttpClient, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok((200, _)) = call(client, "GET", &format!("{base}/readyz"), None).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server not ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_steps_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let catalog: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/intents/banking/catalog.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let acked: Acked = Arc::default();
    let mut workflows: Vec<String> = Vec::new();
    for round in 0..3 {
        let server = start(dir.path());
        wait_ready(&client, &server.base).await;
        if round == 0 {
            let (s, b) = call(
                &client,
                "PUT",
                &format!("{}/v1/catalogs/banking", server.base),
                Some(&catalog),
            )
            .await
            .unwrap();
            assert_eq!(s, 200, "{b}");
            for i in 0..4 {
                let body = json!({"subject": {"type": "user", "id": format!("user{i}")},
                                  "prompt": "Pay my electricity bill of $84.20 to Voltra", "catalog": "banking"});
                let (s, b) = call(
                    &client,
                    "POST",
                    &format!("{}/v1/workflows", server.base),
                    Some(&body),
                )
                .await
                .unwrap();
                assert_eq!(s, 201, "{b}");
                workflows.push(b["workflow_id"].as_str().unwrap().to_string());
            }
        }
        let stop = Instant::now() + Duration::from_millis(1500 + 500 * round);
        let mut tasks = Vec::new();
        for (k, wf) in workflows.iter().cycle().take(8).enumerate() {
            let (client, base, wf, acked) = (
                client.clone(),
                server.base.clone(),
                wf.clone(),
                Arc::clone(&acked),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < stop {
                    n += 1;
                    let tool = if n % 3 == 0 { "delete_payee" } else { "get_balance" };
                    let body = json!({"actor": {"type": "agent", "id": format!("agent{k}")}, "tool": tool, "arguments": {"n": n}});
                    match call(&client, "POST", &format!("{base}/v1/workflows/{wf}/steps"), Some(&body)).await {
                        Ok((201, b)) => {
                            let seq = b["step"].as_u64().unwrap();
                            let v = (b["verdict"].as_str().unwrap().to_string(), b["hash"].as_str().unwrap().to_string());
                            acked.lock().unwrap().insert((wf.clone(), seq), v);
                        }
                        Ok((status, b)) => panic!("unexpected {status}: {b}"),
                        Err(_) => break, // the server died under us
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        let mut server = server;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_telos"))
            .args(["verify", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "verify failed after round {round}: {text}"
        );
        assert!(text.contains(" 0 broken"), "{text}");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "too few steps acknowledged: {}",
        acked.len()
    );
    let server = start(dir.path());
    wait_ready(&client, &server.base).await;
    for wf in &workflows {
        // Every page of the workflow's steps (`next_cursor` pages on).
        let mut stored: HashMap<u64, (String, String)> = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                Some(c) => format!("{}/v1/workflows/{wf}?limit=1000&cursor={c}", server.base),
                None => format!("{}/v1/workflows/{wf}?limit=1000", server.base),
            };
            let (s, b) = call(&client, "GET", &uri, None).await.unwrap();
            assert_eq!(s, 200);
            for st in b["steps"].as_array().unwrap() {
                stored.insert(
                    st["seq"].as_u64().unwrap(),
                    (
                        st["verdict"].as_str().unwrap().into(),
                        st["hash"].as_str().unwrap().into(),
                    ),
                );
            }
            match b["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        for ((w, seq), v) in acked.iter().filter(|((w, _), _)| w == wf) {
            assert_eq!(
                stored.get(seq),
                Some(v),
                "acknowledged step {w}#{seq} lost or changed"
            );
        }
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
