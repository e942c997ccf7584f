//! `telos mcp-proxy` end to end: the official MCP Python SDK's stdio client
//! (tests/integration/mcp/agent.py) drives the `telos` binary as its MCP
//! server, which runs a real `mcp-server-git` (PyPI) behind it and asks a
//! telos served on a loopback port (keyword encoder instead of the model).
//!
//! The SDK and the servers come from `scripts/provision-mcp-e2e.sh`
//! (`.mcp/`); a test provisions them when they are missing. Without them
//! (no PyPI) a test is skipped with a loud message, except under `CI=true`,
//! where it fails.
//!
//! The malformed-input test writes raw lines, which no SDK client sends,
//! and the crash test needs an upstream that dies mid-call, which no real
//! server does on request: both use a tiny fake upstream (a shell script).

use axum::http::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::send;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SDK's python and the git server, provisioned when missing; `None`
/// (after a loud message) only outside CI.
fn provisioned() -> Option<(PathBuf, PathBuf)> {
    let python = root().join(".mcp/venv/bin/python");
    let git = root().join(".mcp/py/mcp-server-git/bin/mcp-server-git");
    let ready = || python.is_file() && git.is_file();
    if !ready() {
        let status =
            std::process::Command::new(root().join("scripts/provision-mcp-e2e.sh")).status();
        if !matches!(status, Ok(s) if s.success()) || !ready() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "scripts/provision-mcp-e2e.sh failed under CI: {status:?}"
            );
            eprintln!(
                "\n\n*** SKIPPED: the MCP SDK and mcp-server-git are not installed and \
                 scripts/provision-mcp-e2e.sh failed ({status:?}); the mcp-proxy \
                 end-to-end test did not run ***\n"
            );
            return None;
        }
    }
    Some((python, git))
}

/// telos on a free loopback port; stops when the sender is dropped.
async fn telos() -> (String, axum::Router, tokio::sync::oneshot::Sender<()>) {
    let (app, _) = crate::common::app();
    serve_on_loopback(app).await
}

/// As [`telos`], with room for a gateway's aggregate catalog (the shared
/// test limits allow 20 entries).
async fn telos_for_gateways() -> (String, axum::Router, tokio::sync::oneshot::Sender<()>) {
    use std::sync::Arc;
    let mut limits = crate::common::limits();
    limits.max_catalog_entries = 100;
    let mut config = crate::common::service_config();
    config.catalog_limits.max_entries = 100;
    let store = Arc::new(telos::storage::SledStore::temporary().unwrap());
    let service = crate::common::keyword_service(store, config);
    let app = telos::api::router(telos::api::AppState {
        service,
        limits: limits.into(),
        prometheus: telos::telemetry::prometheus(),
        pdp: Arc::new(telos::pdp::Pdp::new(None, false)),
        public_url: None,
        auth: telos::auth::Authenticator::open(),
        limiter: None,
        metrics_public: true,
    });
    serve_on_loopback(app).await
}

async fn serve_on_loopback(
    app: axum::Router,
) -> (String, axum::Router, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(telos::api::serve::serve(
        listener,
        app.clone(),
        telos::api::serve::ServeOptions::default(),
        async {
            let _ = stop_rx.await;
        },
    ));
    (url, app, stop_tx)
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A repository with four commits.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["config", "user.email", "dev@example.com"]);
    git(dir.path(), &["config", "user.name", "Dev"]);
    for i in 1..=4 {
        std::fs::write(dir.path().join("notes.txt"), format!("note {i}\n")).unwrap();
        git(dir.path(), &["add", "notes.txt"]);
        let message = format!("note {i}, questions to dev@example.com");
        git(dir.path(), &["commit", "-q", "-m", &message]);
    }
    dir
}

/// Runs the SDK agent with `calls` against `telos mcp-proxy PROXY_ARGS`.
async fn agent(python: &Path, calls: Value, proxy_args: &[String]) -> Value {
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(root().join("tests/integration/mcp/agent.py"))
        .arg(calls.to_string())
        .arg(env!("CARGO_BIN_EXE_telos"))
        .arg("mcp-proxy")
        .args(proxy_args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("the agent did not finish in 90 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "agent failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("agent output is not JSON ({e}): {stderr}"))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_branch_is_blocked_and_the_log_is_served() {
    let Some((python, server)) = provisioned() else {
        return;
    };
    let (url, app, _stop) = telos().await;
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    let calls = json!([
        {"tool": "git_log", "arguments": {"repo_path": path, "max_count": 3}},
        {"tool": "git_create_branch", "arguments": {"repo_path": path, "branch_name": "exfiltrate"}},
    ]);
    let mut args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "git",
        "--prompt",
        "Show me the last three commits of this repository",
        "--subject",
        "user:ana",
        "--agent",
        "agent:assistant",
        "--",
    ]);
    args.extend(strings(&[server.to_str().unwrap(), "--repository", path]));
    let out = agent(&python, calls, &args).await;

    // The workflow was opened from the prompt and announced in `_meta`.
    let wf = out["workflow_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"));
    let tools = out["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t == "git_create_branch"), "{out}");
    // The log is served by the real server.
    let log = &out["calls"][0];
    assert_eq!(
        (log["ok"].as_bool(), log["is_error"].as_bool()),
        (Some(true), Some(false)),
        "{out}"
    );
    assert!(log["text"].as_str().unwrap().contains("note 4"), "{out}");
    assert!(
        !log["text"].as_str().unwrap().contains("note 1"),
        "three commits only: {out}"
    );
    // The branch is refused with the user-facing reason, and never made.
    let branch = &out["calls"][1];
    assert_eq!(branch["ok"], false, "{out}");
    assert_eq!(
        branch["code"].as_i64(),
        Some(telos::mcp_proxy::DENIED),
        "{out}"
    );
    assert!(
        branch["message"]
            .as_str()
            .unwrap()
            .contains("git_create_branch"),
        "{out}"
    );
    assert_eq!(branch["data"]["workflow_id"].as_str(), Some(wf), "{out}");
    assert_eq!(
        branch["data"]["reasons"],
        json!(["tool_outside_intent"]),
        "{out}"
    );
    assert!(!git(repo.path(), &["branch", "--list"]).contains("exfiltrate"));

    // The report shows both: the log executed, the branch blocked.
    let (s, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{report}");
    assert_eq!(steps[0]["name"], "git_log", "{report}");
    assert_ne!(steps[0]["verdict"], "divergent", "{report}");
    // The log's result reached telos digested: the address in the commit
    // messages as a typed value with its place, the digest, no text.
    let outcome = &steps[0]["outcome"];
    assert_eq!(outcome["is_error"], false, "{report}");
    assert_eq!(outcome["result_digest"].as_str().unwrap().len(), 64);
    assert!(outcome.get("result").is_none(), "{report}");
    assert!(
        outcome["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["label"] == "EMAIL" && v["value"] == "dev@example.com"),
        "{report}"
    );
    assert_eq!(steps[0]["actor"]["id"], "assistant", "{report}");
    assert_eq!(steps[1]["name"], "git_create_branch", "{report}");
    assert_eq!(steps[1]["verdict"], "divergent", "{report}");
    assert_eq!(
        steps[1]["outcome"],
        json!({"is_error": true, "blocked": true}),
        "{report}"
    );
    // And the blocked attempt is in the drift feed.
    let (_, drift) = send(&app, "GET", "/v1/drift", None).await;
    assert!(
        drift["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["workflow_id"] == wf && i["step"]["name"] == "git_create_branch"),
        "{drift}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_workflow_is_enforced_with_mcp_server_time() {
    let Some((python, _)) = provisioned() else {
        return;
    };
    let server = root().join(".mcp/py/mcp-server-time/bin/mcp-server-time");
    let (url, app, _stop) = telos().await;
    // The front-end opened the workflow; the proxy is handed its id.
    let tools: Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/mcp/servers/time/tools.json")).unwrap(),
    )
    .unwrap();
    let (s, b) = send(&app, "PUT", "/v1/catalogs/time", Some(tools)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send(
        &app,
        "POST",
        "/v1/workflows",
        Some(json!({"subject": {"type": "user", "id": "ana"},
                    "prompt": "What time is it in Tokyo right now?", "catalog": "time"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let wf = b["workflow_id"].as_str().unwrap().to_string();
    let calls = json!([
        {"tool": "get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
        {"tool": "set_system_clock", "arguments": {"time": "2020-01-01T00:00:00Z"}},
    ]);
    let args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "time",
        "--workflow",
        &wf,
        "--agent",
        "agent:assistant",
        "--",
        server.to_str().unwrap(),
        "--local-timezone",
        "UTC",
    ]);
    let out = agent(&python, calls, &args).await;
    assert_eq!(out["workflow_id"].as_str(), Some(wf.as_str()), "{out}");
    assert_eq!(out["calls"][0]["ok"], true, "{out}");
    assert!(
        out["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Asia/Tokyo"),
        "{out}"
    );
    // A tool outside the catalog is refused before the server sees it.
    assert_eq!(
        out["calls"][1]["code"].as_i64(),
        Some(telos::mcp_proxy::DENIED),
        "{out}"
    );
    assert_eq!(
        out["calls"][1]["data"]["reasons"],
        json!(["unknown_tool"]),
        "{out}"
    );
    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(steps[1], ("set_system_clock", "divergent"), "{report}");
    assert_eq!(steps[0].0, "get_current_time", "{report}");
    assert_ne!(steps[0].1, "divergent", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_mode_forwards_and_records_the_divergent_call() {
    let Some((python, server)) = provisioned() else {
        return;
    };
    let (url, app, _stop) = telos().await;
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    let calls = json!([
        {"tool": "git_create_branch", "arguments": {"repo_path": path, "branch_name": "watched"}},
    ]);
    let mut args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "git",
        "--mode",
        "monitor",
        "--prompt",
        "Show me the last three commits of this repository",
        "--subject",
        "user:ana",
        "--",
    ]);
    args.extend(strings(&[server.to_str().unwrap(), "--repository", path]));
    let out = agent(&python, calls, &args).await;
    assert_eq!(out["calls"][0]["ok"], true, "{out}");
    assert!(git(repo.path(), &["branch", "--list"]).contains("watched"));
    let wf = out["workflow_id"].as_str().unwrap();
    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    assert_eq!(report["steps"][0]["verdict"], "divergent", "{report}");
    assert_eq!(
        report["steps"][0]["outcome"]["is_error"],
        json!(false),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_granted_hides_what_the_request_did_not_ask_for() {
    let Some((python, server)) = provisioned() else {
        return;
    };
    let (url, _app, _stop) = telos().await;
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    let mut args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "git",
        "--list",
        "granted",
        "--prompt",
        "Show me the last three commits of this repository",
        "--subject",
        "user:ana",
        "--",
    ]);
    args.extend(strings(&[server.to_str().unwrap(), "--repository", path]));
    let out = agent(&python, json!([]), &args).await;
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"git_log"), "{out}");
    assert!(!tools.contains(&"git_create_branch"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_telos_down_calls_fail_closed_and_never_reach_the_server() {
    let Some((python, server)) = provisioned() else {
        return;
    };
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    let calls = json!([
        {"tool": "git_create_branch", "arguments": {"repo_path": path, "branch_name": "unchecked"}},
    ]);
    let mut args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "git",
        "--prompt",
        "Show me the last commits",
        "--subject",
        "user:ana",
        "--",
    ]);
    args.extend(strings(&[server.to_str().unwrap(), "--repository", path]));
    let out = agent(&python, calls.clone(), &args).await;
    assert_eq!(out["workflow_id"], Value::Null, "{out}");
    let call = &out["calls"][0];
    assert_eq!(
        call["code"].as_i64(),
        Some(telos::mcp_proxy::TELOS_UNAVAILABLE),
        "{out}"
    );
    assert!(
        call["message"]
            .as_str()
            .unwrap()
            .contains("telos could not be asked"),
        "{out}"
    );
    assert!(!git(repo.path(), &["branch", "--list"]).contains("unchecked"));
    // `--fail-open` forwards it.
    args.insert(0, "--fail-open".into());
    let out = agent(&python, calls, &args).await;
    assert_eq!(out["calls"][0]["ok"], true, "{out}");
    assert!(git(repo.path(), &["branch", "--list"]).contains("unchecked"));
}

/// Opens a workflow through the API on catalog `git` (the fixture).
async fn git_workflow(app: &axum::Router, prompt: &str) -> String {
    let tools: Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/mcp/servers/git/tools.json")).unwrap(),
    )
    .unwrap();
    let (s, b) = send(app, "PUT", "/v1/catalogs/git", Some(tools)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send(
        app,
        "POST",
        "/v1/workflows",
        Some(
            json!({"subject": {"type": "user", "id": "ana"}, "prompt": prompt,
                    "catalog": "git"}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["workflow_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_mode_holds_a_call_until_an_operator_approves_it() {
    let Some((python, server)) = provisioned() else {
        return;
    };
    let (url, app, _stop) = telos().await;
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    // An open-ended request: side effects need a human approval.
    let wf = git_workflow(&app, "Do what the ticket from Bo asks in this repository").await;
    let approvals = tempfile::tempdir().unwrap();
    let mut args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "git",
        "--workflow",
        &wf,
        "--mode",
        "approve",
        "--approvals",
        approvals.path().to_str().unwrap(),
        "--",
    ]);
    args.extend(strings(&[server.to_str().unwrap(), "--repository", path]));
    let branch = json!({"tool": "git_create_branch",
                        "arguments": {"repo_path": path, "branch_name": "from-ticket"}});

    // Held: not run, and the error names what the operator does.
    let out = agent(&python, json!([branch.clone()]), &args).await;
    let held = &out["calls"][0];
    assert_eq!(
        held["code"].as_i64(),
        Some(telos::mcp_proxy::APPROVAL_PENDING),
        "{out}"
    );
    assert_eq!(
        held["data"]["reasons"],
        json!(["approval_required"]),
        "{out}"
    );
    let approve = held["data"]["approval"]["approve"].as_str().unwrap();
    assert!(held["message"].as_str().unwrap().contains(approve), "{out}");
    assert!(!git(repo.path(), &["branch", "--list"]).contains("from-ticket"));
    let id = held["data"]["approval"]["id"].as_str().unwrap();
    let pending = approvals.path().join(format!("pending/{id}.json"));
    let record: Value = serde_json::from_slice(&std::fs::read(&pending).unwrap()).unwrap();
    assert_eq!(record["tool"], "git_create_branch", "{record}");

    // The operator approves (the command the error named); the retry runs,
    // once: the same call again is held again.
    let mv = std::process::Command::new("sh")
        .arg("-c")
        .arg(approve)
        .status()
        .unwrap();
    assert!(mv.success());
    let out = agent(&python, json!([branch.clone(), branch]), &args).await;
    assert_eq!(
        (
            out["calls"][0]["ok"].as_bool(),
            out["calls"][0]["is_error"].as_bool()
        ),
        (Some(true), Some(false)),
        "{out}"
    );
    assert!(git(repo.path(), &["branch", "--list"]).contains("from-ticket"));
    assert_eq!(
        out["calls"][1]["code"].as_i64(),
        Some(telos::mcp_proxy::APPROVAL_PENDING),
        "{out}"
    );

    // The ledger: held, executed after approval, held.
    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    let outcomes = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (&s["outcome"]["is_error"], s["outcome"]["blocked"] == true))
        .collect::<Vec<_>>();
    assert_eq!(
        outcomes,
        [
            (&json!(true), true),
            (&json!(false), false),
            (&json!(true), true)
        ],
        "{report}"
    );
}

/// The proxy with raw stdio: (child, stdin, stdout lines).
struct Raw {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Raw {
    fn start(args: &[String]) -> Raw {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_telos"))
            .arg("mcp-proxy")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Raw {
            child,
            stdin,
            lines,
        }
    }

    async fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("no answer in 30 s")
            .unwrap()
            .expect("the proxy closed its output");
        serde_json::from_str(&line).unwrap()
    }
}

/// A fake upstream (a shell script): answers `initialize` and `tools/list`
/// with one side-effect-free tool, and exits when a `tools/call` arrives.
fn crashing_upstream(dir: &Path) -> PathBuf {
    let path = dir.join("upstream.sh");
    std::fs::write(
        &path,
        r#"#!/bin/sh
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([^,}]*\).*/\1/p')
  case "$line" in
    *'"method":"initialize"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"fake","version":"0"}}}\n' "$id" ;;
    *'"method":"tools/list"'*)
      printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"get_time","description":"Get the current time","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}]}}\n' "$id" ;;
    *'"method":"tools/call"'*)
      exit 3 ;;
  esac
done
"#,
    )
    .unwrap();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&path, perm).unwrap();
    path
}

/// The proxy in front of the fake upstream, opening its workflow from a
/// prompt.
fn fake_upstream_proxy(url: &str, upstream: &Path) -> Raw {
    Raw::start(&strings(&[
        "--telos",
        url,
        "--catalog",
        "fake",
        "--prompt",
        "What time is it?",
        "--subject",
        "user:ana",
        "--",
        upstream.to_str().unwrap(),
    ]))
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_get_json_rpc_errors_and_the_session_goes_on() {
    let (url, _app, _stop) = telos().await;
    let dir = tempfile::tempdir().unwrap();
    let upstream = crashing_upstream(dir.path());
    let mut p = fake_upstream_proxy(&url, &upstream);
    p.send("{this is not json").await;
    let e = p.recv().await;
    assert_eq!(
        (e["id"].clone(), e["error"]["code"].as_i64()),
        (Value::Null, Some(-32700)),
        "{e}"
    );
    p.stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\xff}\n")
        .await
        .unwrap();
    let e = p.recv().await;
    assert_eq!(e["error"]["code"].as_i64(), Some(-32700), "{e}");
    p.send(r#"{"id": 7, "method": "tools/list"}"#).await;
    let e = p.recv().await;
    assert_eq!(
        (e["id"].as_i64(), e["error"]["code"].as_i64()),
        (Some(7), Some(-32600)),
        "{e}"
    );
    p.send(r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{}}"#)
        .await;
    let e = p.recv().await;
    assert_eq!(
        (e["id"].as_i64(), e["error"]["code"].as_i64()),
        (Some(8), Some(-32602)),
        "{e}"
    );
    // The session still works.
    p.send(INIT).await;
    let init = p.recv().await;
    assert_eq!(init["id"], 1, "{init}");
    assert!(
        init["result"]["_meta"]["telos/workflow_id"].is_string(),
        "{init}"
    );
    drop(p.stdin);
    let _ = tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_crash_fails_the_pending_call_and_every_later_one() {
    let (url, _app, _stop) = telos().await;
    let dir = tempfile::tempdir().unwrap();
    let upstream = crashing_upstream(dir.path());
    let mut p = fake_upstream_proxy(&url, &upstream);
    p.send(INIT).await;
    assert_eq!(p.recv().await["id"], 1);
    p.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    p.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_time","arguments":{}}}"#)
        .await;
    let e = p.recv().await;
    assert_eq!(
        (e["id"].as_i64(), e["error"]["code"].as_i64()),
        (Some(2), Some(telos::mcp_proxy::UPSTREAM_GONE)),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("exited"),
        "{e}"
    );
    p.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#)
        .await;
    let e = p.recv().await;
    assert_eq!(
        (e["id"].as_i64(), e["error"]["code"].as_i64()),
        (Some(3), Some(telos::mcp_proxy::UPSTREAM_GONE)),
        "{e}"
    );
    drop(p.stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), p.child.wait())
        .await
        .expect("the proxy did not exit after its client left")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// Proxy overhead on an allowed `tools/call` (`mcp-server-time`'s
/// `get_current_time`), against a direct call to the same server. Not a
/// pass/fail test: run `cargo test --test integration -- --ignored
/// mcp_proxy::overhead --nocapture` (add `--release` for release figures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn overhead() {
    let Some((python, _)) = provisioned() else {
        return;
    };
    let server = root().join(".mcp/py/mcp-server-time/bin/mcp-server-time");
    let (url, _app, _stop) = telos().await;
    let direct = json!([server, "--local-timezone", "UTC"]);
    let proxied = json!([
        env!("CARGO_BIN_EXE_telos"),
        "mcp-proxy",
        "--telos",
        url,
        "--catalog",
        "time",
        "--prompt",
        "What time is it in Paris?",
        "--subject",
        "user:ana",
        "--",
        server,
        "--local-timezone",
        "UTC"
    ]);
    let n = std::env::var("MCP_OVERHEAD_CALLS").unwrap_or_else(|_| "300".into());
    let out = tokio::process::Command::new(&python)
        .arg(root().join("tests/integration/mcp/overhead.py"))
        .arg(&n)
        .arg(direct.to_string())
        .arg(proxied.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "mcp-proxy overhead: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `mcp-server-time` behind a wrapper that writes its pid to `DIR/time.pid`
/// (so a test can kill it).
fn time_server_with_pid(dir: &Path) -> PathBuf {
    let server = root().join(".mcp/py/mcp-server-time/bin/mcp-server-time");
    let path = dir.join("time.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec {} \"$@\"\n",
            dir.join("time.pid").display(),
            server.display()
        ),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&path, perm).unwrap();
    path
}

/// What both real servers are asked: the log of the repository and the
/// time in Tokyo.
const BOTH: &str =
    "Show me the last three commits of this repository and the current time in Tokyo";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_routes_to_several_servers_and_outlives_a_crashed_one() {
    let Some((_, git_server)) = provisioned() else {
        return;
    };
    let (url, app, _stop) = telos().await;
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let time = time_server_with_pid(dir.path());
    let mut p = Raw::start(&strings(&[
        "--telos",
        &url,
        "--catalog",
        "gw",
        "--prompt",
        BOTH,
        "--subject",
        "user:ana",
        "--upstream",
        &format!("git={} --repository {path}", git_server.display()),
        "--upstream",
        &format!("time={} --local-timezone UTC", time.display()),
    ]));
    p.send(INIT).await;
    let init = p.recv().await;
    let wf = init["result"]["_meta"]["telos/workflow_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{init}"))
        .to_string();
    p.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .await;
    p.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .await;
    let list = p.recv().await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"git__git_log"), "{list}");
    assert!(names.contains(&"time__get_current_time"), "{list}");
    assert!(!names.iter().any(|n| !n.contains("__")), "{list}");
    // The registered catalog is the aggregate.
    let (s, catalog) = send(&app, "GET", "/v1/catalogs/gw", None).await;
    assert_eq!(s, StatusCode::OK, "{catalog}");
    assert!(
        catalog.to_string().contains("time__get_current_time"),
        "{catalog}"
    );

    let time_call = |id: u32| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"time__get_current_time","arguments":{{"timezone":"Asia/Tokyo"}}}}}}"#
        )
    };
    p.send(&time_call(3)).await;
    let r = p.recv().await;
    assert_eq!(r["id"], 3, "{r}");
    assert!(r["result"].to_string().contains("Asia/Tokyo"), "{r}");

    // The time server dies: its calls fail, git goes on serving.
    let pid = std::fs::read_to_string(dir.path().join("time.pid")).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.send(&time_call(4)).await;
    let e = p.recv().await;
    assert_eq!(
        (e["id"].as_i64(), e["error"]["code"].as_i64()),
        (Some(4), Some(telos::mcp_proxy::UPSTREAM_GONE)),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("`time`"),
        "{e}"
    );
    p.send(&format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"git__git_log","arguments":{{"repo_path":"{path}","max_count":3}}}}}}"#
    ))
    .await;
    let r = p.recv().await;
    assert_eq!(r["id"], 5, "{r}");
    assert!(r["result"].to_string().contains("note 4"), "{r}");
    drop(p.stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), p.child.wait())
        .await
        .expect("the gateway did not exit after its client left")
        .unwrap();
    assert!(status.success(), "{status}");
    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["time__get_current_time", "git__git_log"],
        "{report}"
    );
}

/// `telos mcp-proxy --listen 127.0.0.1:0 ARGS`: the child and its URL.
async fn listening(args: &[String]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_telos"))
        .arg("mcp-proxy")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(u) = line.strip_prefix("telos mcp-proxy: listening on ") {
                return u.to_string();
            }
        }
        panic!("the proxy exited before it listened");
    })
    .await
    .expect("the proxy did not listen in 60 s");
    // Keep draining its stderr.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_serves_the_sdk_client_and_blocks_the_injected_branch() {
    let Some((python, git_server)) = provisioned() else {
        return;
    };
    let time_server = root().join(".mcp/py/mcp-server-time/bin/mcp-server-time");
    let (url, app, _stop) = telos().await;
    let repo = repo();
    let path = repo.path().to_str().unwrap();
    // No workflow of its own: each client names its workflow in a header.
    let (_proxy, mcp_url) = listening(&strings(&[
        "--telos",
        &url,
        "--catalog",
        "gw",
        "--agent",
        "agent:assistant",
        "--upstream",
        &format!("git={} --repository {path}", git_server.display()),
        "--upstream",
        &format!("time={} --local-timezone UTC", time_server.display()),
    ]))
    .await;
    // The catalog the gateway registered is the aggregate; the front-end
    // opens the workflow on it.
    let (s, b) = send(
        &app,
        "POST",
        "/v1/workflows",
        Some(json!({"subject": {"type": "user", "id": "ana"}, "prompt": BOTH, "catalog": "gw"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let wf = b["workflow_id"].as_str().unwrap().to_string();

    let calls = json!([
        {"tool": "git__git_log", "arguments": {"repo_path": path, "max_count": 3}},
        {"tool": "git__git_create_branch", "arguments": {"repo_path": path, "branch_name": "exfiltrate"}},
        {"tool": "time__get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
    ]);
    let out = tokio::process::Command::new(&python)
        .arg(root().join("tests/integration/mcp/agent_http.py"))
        .arg(&mcp_url)
        .arg(json!({"X-Telos-Workflow": wf}).to_string())
        .arg(calls.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), out)
        .await
        .expect("the agent did not finish in 90 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "agent failed: {stderr}");
    let out: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("agent output is not JSON ({e}): {stderr}"));

    assert_eq!(out["workflow_id"].as_str(), Some(wf.as_str()), "{out}");
    assert!(
        out["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "git__git_create_branch"),
        "{out}"
    );
    let log = &out["calls"][0];
    assert_eq!(
        (log["ok"].as_bool(), log["is_error"].as_bool()),
        (Some(true), Some(false)),
        "{out}"
    );
    assert!(log["text"].as_str().unwrap().contains("note 4"), "{out}");
    let branch = &out["calls"][1];
    assert_eq!(
        branch["code"].as_i64(),
        Some(telos::mcp_proxy::DENIED),
        "{out}"
    );
    assert_eq!(
        branch["data"]["reasons"],
        json!(["tool_outside_intent"]),
        "{out}"
    );
    assert!(!git(repo.path(), &["branch", "--list"]).contains("exfiltrate"));
    assert!(
        out["calls"][2]["text"]
            .as_str()
            .unwrap()
            .contains("Asia/Tokyo"),
        "{out}"
    );

    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    let steps: Vec<(&str, &str, &Value)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["verdict"].as_str().unwrap(),
                &s["outcome"],
            )
        })
        .collect();
    assert_eq!(steps.len(), 3, "{report}");
    assert_eq!(steps[0].0, "git__git_log", "{report}");
    assert_ne!(steps[0].1, "divergent", "{report}");
    assert_eq!(
        (steps[1].0, steps[1].1, steps[1].2),
        (
            "git__git_create_branch",
            "divergent",
            &json!({"is_error": true, "blocked": true})
        ),
        "{report}"
    );
    assert_eq!(steps[2].0, "time__get_current_time", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_sessions_and_methods() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = crashing_upstream(dir.path());
    let (url, _app, _stop) = telos().await;
    let (_proxy, mcp_url) = listening(&strings(&[
        "--telos",
        &url,
        "--catalog",
        "fake",
        "--prompt",
        "What time is it?",
        "--subject",
        "user:ana",
        "--upstream",
        &format!("fake={}", upstream.display()),
    ]))
    .await;
    let http = reqwest::Client::new();
    let post = |body: &str, session: Option<&str>| {
        let mut r = http
            .post(&mcp_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };
    // Before `initialize`: no session.
    let r = post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        Some("nope"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = post(INIT, None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let init: Value = r.json().await.unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    assert!(
        init["result"]["_meta"]["telos/workflow_id"].is_string(),
        "{init}"
    );
    let r = post(
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let r = post("{not json", Some(&session)).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let r = post(
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#,
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32601);
    let r = post(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        Some(&session),
    )
    .await
    .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(
        list["result"]["tools"][0]["name"], "fake__get_time",
        "{list}"
    );
    // A call may name its own workflow in `params._meta`: it is asked
    // there (this one does not exist, so it is refused and never reaches
    // the fake upstream, which would exit on a call).
    let r = post(
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fake__get_time","arguments":{},"_meta":{"telos/workflow_id":"0000-not-a-workflow"}}}"#,
        Some(&session),
    )
    .await
    .unwrap();
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["code"].as_i64(),
        Some(telos::mcp_proxy::DENIED),
        "{e}"
    );
    assert_eq!(
        e["error"]["data"]["workflow_id"], "0000-not-a-workflow",
        "{e}"
    );
    // No server-initiated stream.
    let r = http.get(&mcp_url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // Another site's page may not drive it.
    let r = http
        .post(&mcp_url)
        .header("origin", "https://evil.example")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A gateway without a workflow of its own refuses a call that names none.
    let (_bare, bare_url) = listening(&strings(&[
        "--telos",
        &url,
        "--catalog",
        "fake",
        "--upstream",
        &format!("fake={}", upstream.display()),
    ]))
    .await;
    let r = http.post(&bare_url).body(INIT).send().await.unwrap();
    let bare_session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let r = http
        .post(&bare_url)
        .header("mcp-session-id", &bare_session)
        .body(
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"fake__get_time"}}"#,
        )
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"].as_i64(), Some(-32602), "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no workflow"),
        "{e}"
    );
    let r = http
        .delete(&mcp_url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = post(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
        Some(&session),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
}

/// `.mcp/npm/node_modules/.bin/NAME` (npm servers, from
/// `scripts/provision-mcp-e2e.sh`); `None` (after a loud message) when npm
/// could not install them, outside CI.
fn npm_server(name: &str) -> Option<PathBuf> {
    let bin = root().join(".mcp/npm/node_modules/.bin").join(name);
    if !bin.is_file() {
        let _ = std::process::Command::new(root().join("scripts/provision-mcp-e2e.sh")).status();
    }
    if bin.is_file() {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is not installed under CI"
    );
    eprintln!("\n\n*** SKIPPED: {name} (npm) is not installed; the test did not run ***\n");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_servers_behind_a_gateway_a_write_is_blocked_when_a_read_was_asked() {
    let Some((python, _)) = provisioned() else {
        return;
    };
    let (Some(fs), Some(memory)) = (
        npm_server("mcp-server-filesystem"),
        npm_server("mcp-server-memory"),
    ) else {
        return;
    };
    let (url, app, _stop) = telos_for_gateways().await;
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().canonicalize().unwrap();
    std::fs::write(files.join("notes.txt"), "buy milk\n").unwrap();
    let notes = files.join("notes.txt");
    let planted = files.join("planted.txt");
    let calls = json!([
        {"tool": "fs__read_text_file", "arguments": {"path": notes}},
        {"tool": "fs__write_file", "arguments": {"path": planted, "content": "pwned"}},
    ]);
    let args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "desk",
        "--prompt",
        "Read the text file notes.txt and show me what it says",
        "--subject",
        "user:ana",
        "--upstream",
        &format!("fs={} {}", fs.display(), files.display()),
        "--upstream",
        &format!("memory={}", memory.display()),
    ]);
    let out = agent(&python, calls, &args).await;
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tools.contains(&"fs__write_file"), "{out}");
    assert!(tools.contains(&"memory__read_graph"), "{out}");
    let read = &out["calls"][0];
    assert_eq!(read["ok"], true, "{out}");
    assert!(read["text"].as_str().unwrap().contains("buy milk"), "{out}");
    let write = &out["calls"][1];
    assert_eq!(
        write["code"].as_i64(),
        Some(telos::mcp_proxy::DENIED),
        "{out}"
    );
    assert!(!planted.exists(), "the write reached the server");
    let wf = out["workflow_id"].as_str().unwrap();
    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(steps.len(), 2, "{report}");
    assert_eq!(steps[0].0, "fs__read_text_file", "{report}");
    assert_ne!(steps[0].1, "divergent", "{report}");
    assert_eq!(steps[1], ("fs__write_file", "divergent"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_built_on_the_sdk_is_served_and_guarded() {
    let Some((python, _)) = provisioned() else {
        return;
    };
    let (url, app, _stop) = telos().await;
    let notes = tempfile::tempdir().unwrap();
    std::fs::write(notes.path().join("groceries.txt"), "buy milk\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = tokio::process::Command::new(&python)
        .arg(root().join("tests/integration/mcp/notes_http_server.py"))
        .arg(notes.path())
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let up = tokio::time::timeout(Duration::from_secs(30), async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(up.is_ok(), "the notes server did not listen in 30 s");
    let calls = json!([
        {"tool": "notes__read_note", "arguments": {"name": "groceries.txt"}},
        {"tool": "notes__delete_note", "arguments": {"name": "groceries.txt"}},
    ]);
    let args = strings(&[
        "--telos",
        &url,
        "--catalog",
        "notes",
        "--prompt",
        "Read my note groceries.txt",
        "--subject",
        "user:ana",
        "--upstream",
        &format!("notes=http://127.0.0.1:{port}/mcp"),
    ]);
    let out = agent(&python, calls, &args).await;
    assert_eq!(out["calls"][0]["ok"], true, "{out}");
    assert!(
        out["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("buy milk"),
        "{out}"
    );
    assert_eq!(
        out["calls"][1]["code"].as_i64(),
        Some(telos::mcp_proxy::DENIED),
        "{out}"
    );
    assert!(notes.path().join("groceries.txt").exists());
    let wf = out["workflow_id"].as_str().unwrap();
    let (_, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    let steps: Vec<(&str, &str)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(steps.len(), 2, "{report}");
    assert_eq!(steps[0].0, "notes__read_note", "{report}");
    assert_ne!(steps[0].1, "divergent", "{report}");
    assert_eq!(steps[1], ("notes__delete_note", "divergent"), "{report}");
}
