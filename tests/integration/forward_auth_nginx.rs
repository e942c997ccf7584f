//! `/v1/forward-auth` behind a real nginx (Debian's `nginx` and
//! `libnginx-mod-http-js`, installed by `scripts/provision-proxy.sh`) in
//! front of a real MCP Streamable-HTTP server built with the official MCP
//! Python SDK (tests/integration/mcp/http_server.py), driven by the SDK's
//! client (tests/integration/mcp/http_agent.py). nginx runs with the
//! config of docs/gateways/ written to a temporary prefix, on a free
//! loopback port, and is stopped at the end.
//!
//! Without nginx or the SDK (not root, no registry) the test is skipped
//! with a loud message, except under `CI=true`, where it fails.

use axum::http::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::send;
use crate::forward_auth::notes_workflow;

const NGINX: &str = "/usr/sbin/nginx";
const NJS: &str = "/usr/lib/nginx/modules/ngx_http_js_module.so";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn provision(script: &str, ready: &dyn Fn() -> bool, what: &str) -> bool {
    if ready() {
        return true;
    }
    let status = std::process::Command::new(root().join(script)).status();
    if matches!(status, Ok(s) if s.success()) && ready() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{script} failed under CI: {status:?}"
    );
    eprintln!(
        "\n\n*** SKIPPED: {what} is not installed and {script} failed ({status:?}); \
         the forward-auth test behind nginx did not run ***\n"
    );
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(port: u16, what: &str, child: &mut tokio::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// docs/gateways/nginx.conf and telos.js, filled in, in `prefix`.
fn nginx_config(prefix: &Path, listen: u16, telos: u16, mcp: u16) -> PathBuf {
    let template = std::fs::read_to_string(root().join("docs/gateways/nginx.conf")).unwrap();
    let conf = template
        .replace("@PREFIX@", prefix.to_str().unwrap())
        .replace("@LISTEN@", &format!("127.0.0.1:{listen}"))
        .replace("@TELOS@", &format!("127.0.0.1:{telos}"))
        .replace("@MCP@", &format!("127.0.0.1:{mcp}"))
        .replace("@TELOS_AUTHORIZATION@", "");
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    std::fs::copy(
        root().join("docs/gateways/telos.js"),
        prefix.join("telos.js"),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_forwards_the_requested_call_and_refuses_the_divergent_one() {
    let python = root().join(".mcp/venv/bin/python");
    if !provision(
        "scripts/provision-mcp-e2e.sh",
        &|| python.is_file(),
        "the MCP Python SDK",
    ) || !provision(
        "scripts/provision-proxy.sh",
        &|| Path::new(NGINX).is_file() && Path::new(NJS).is_file(),
        "nginx with njs",
    ) {
        return;
    }
    let started = Instant::now();

    // telos, recording permitted evaluations (`--record-evaluations`).
    let store = std::sync::Arc::new(telos::storage::SledStore::temporary().unwrap());
    let app = crate::common::app_from(store, telos::pdp::Pdp::new(None, true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let telos_port = listener.local_addr().unwrap().port();
    let (_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(telos::api::serve::serve(
        listener,
        app.clone(),
        telos::api::serve::ServeOptions::default(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let wf = notes_workflow(&app).await;

    // The MCP server, with two notes.
    let notes = tempfile::tempdir().unwrap();
    std::fs::write(notes.path().join("groceries.txt"), "milk, eggs\n").unwrap();
    std::fs::write(notes.path().join("plans.txt"), "move in May\n").unwrap();
    let mcp_port = free_port();
    let mut server = tokio::process::Command::new(&python)
        .arg(root().join("tests/integration/mcp/http_server.py"))
        .arg(mcp_port.to_string())
        .arg(notes.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // nginx in front of it, asking telos.
    let prefix = tempfile::tempdir().unwrap();
    let nginx_port = free_port();
    let conf = nginx_config(prefix.path(), nginx_port, telos_port, mcp_port);
    let mut nginx = tokio::process::Command::new(NGINX)
        .arg("-p")
        .arg(prefix.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.path().join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for(mcp_port, "the MCP server", &mut server).await;
    wait_for(nginx_port, "nginx", &mut nginx).await;

    // The SDK client through nginx: the read is served, the delete refused.
    let calls = json!([
        {"tool": "read_note", "arguments": {"name": "groceries"}},
        {"tool": "delete_note", "arguments": {"name": "plans"}},
    ]);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&python)
            .arg(root().join("tests/integration/mcp/http_agent.py"))
            .arg(format!("http://127.0.0.1:{nginx_port}/mcp"))
            .arg(&wf)
            .arg("agent:assistant")
            .arg(calls.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the agent did not finish in 60 s")
    .unwrap();
    let errors = std::fs::read_to_string(prefix.path().join("error.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "agent failed: {}\nnginx: {errors}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out["tools"], json!(["delete_note", "read_note"]), "{out}");
    let read = &out["calls"][0];
    assert_eq!(
        (read["ok"].as_bool(), read["is_error"].as_bool()),
        (Some(true), Some(false)),
        "{out}"
    );
    assert_eq!(read["text"], "milk, eggs\n", "{out}");
    let delete = &out["calls"][1];
    assert_eq!(delete["ok"], false, "{out}");
    assert_eq!(delete["code"], -32001, "{out}");
    assert!(
        delete["message"].as_str().unwrap().contains("delete_note"),
        "{out}"
    );
    assert_eq!(
        delete["data"],
        json!({"workflow_id": wf, "tool": "delete_note", "reasons": ["tool_outside_intent"]}),
        "{out}"
    );

    // The delete never reached the server; nginx answered it 403.
    let log = std::fs::read_to_string(notes.path().join("calls.log")).unwrap();
    assert_eq!(log, "read_note groceries\n");
    assert!(notes.path().join("plans.txt").is_file());
    let access = std::fs::read_to_string(prefix.path().join("access.log")).unwrap();
    assert!(access.contains("\"POST /mcp HTTP/1.1\" 403 "), "{access}");

    // The report shows both: the permitted call (recorded, as the PDP
    // records permits with --record-evaluations) and the refused one as a
    // blocked divergent step, which is also in /v1/drift.
    let (s, report) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{report}");
    assert_eq!(steps[0]["name"], "read_note");
    assert_eq!(steps[0]["actor"]["id"], "assistant");
    assert_eq!(steps[0]["verdict"], "allowed");
    assert_eq!(steps[1]["name"], "delete_note");
    assert_eq!(steps[1]["verdict"], "divergent");
    assert_eq!(steps[1]["outcome"]["blocked"], true, "{report}");
    let (_, drift) = send(&app, "GET", "/v1/drift", None).await;
    let items = drift["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{drift}");
    assert_eq!(items[0]["step"]["name"], "delete_note", "{drift}");

    nginx.kill().await.unwrap();
    server.kill().await.unwrap();
    eprintln!(
        "forward_auth_nginx: {:.1} s from telos start to nginx stopped",
        started.elapsed().as_secs_f64()
    );
}
