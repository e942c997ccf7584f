//! `/v1/forward-auth` in process: what a forward-auth proxy sends, what it
//! gets back, and that the decision is the PDP's (the same reason as
//! `POST /access/v1/evaluation`, the same recording). The test behind a
//! real nginx is `forward_auth_nginx`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::common::{app_from, send};

/// The notes server's `tools/list` (tests/integration/mcp/http_server.py).
pub fn notes_catalog() -> Value {
    json!({"tools": [
        {"name": "read_note", "description": "Read a note and return its text.",
         "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
         "annotations": {"readOnlyHint": true}},
        {"name": "delete_note", "description": "Delete a note permanently.",
         "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
         "annotations": {"destructiveHint": true}}
    ]})
}

/// Registers the notes catalog and opens a workflow for a request to read
/// a note; returns its id.
pub async fn notes_workflow(app: &Router) -> String {
    let (s, b) = send(app, "PUT", "/v1/catalogs/notes", Some(notes_catalog())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send(
        app,
        "POST",
        "/v1/workflows",
        Some(
            json!({"subject": {"type": "user", "id": "ana"}, "catalog": "notes",
                    "prompt": "Read my note about the groceries", "agents": ["assistant"]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["workflow_id"].as_str().unwrap().to_string()
}

fn app(record_evaluations: bool) -> Router {
    let store = Arc::new(telos::storage::SledStore::temporary().unwrap());
    app_from(store, telos::pdp::Pdp::new(None, record_evaluations))
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": {"name": "groceries"}}})
}

/// Sends a forward-auth request; returns status, headers and JSON body.
async fn ask(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    use tower::ServiceExt;
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(Value::String(raw)) => Body::from(raw),
        Some(v) => Body::from(v.to_string()),
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

async fn steps(app: &Router, wf: &str) -> Vec<Value> {
    let (s, r) = send(app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["steps"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_in_intent_call_is_allowed_and_a_divergent_one_is_denied_with_the_pdps_reason() {
    let app = app(false);
    let wf = notes_workflow(&app).await;
    let nginx = [
        ("x-original-method", "POST"),
        ("x-original-uri", "/mcp"),
        ("x-telos-workflow", wf.as_str()),
        ("x-telos-agent", "agent:assistant"),
    ];
    let (s, hd, b) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &nginx,
        Some(call(7, "read_note")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h(&hd, "x-telos-decision"), "allow");
    assert_eq!(b, json!({"decision": true, "tools": ["read_note"]}));

    let (s, hd, b) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &nginx,
        Some(call(8, "delete_note")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(h(&hd, "x-telos-decision"), "deny");
    assert_eq!(h(&hd, "x-telos-reasons"), "tool_outside_intent");
    assert_eq!(h(&hd, "x-telos-workflow"), wf);
    assert_eq!(h(&hd, "content-type"), "application/json");
    // The body is the JSON-RPC error an MCP client shows.
    assert_eq!(b["jsonrpc"], "2.0");
    assert_eq!(b["id"], 8);
    assert_eq!(b["error"]["code"], -32001);
    assert_eq!(
        b["error"]["data"],
        json!({"workflow_id": wf, "tool": "delete_note", "reasons": ["tool_outside_intent"]})
    );
    let reason = b["error"]["message"].as_str().unwrap().to_string();
    assert!(reason.contains("delete_note"), "{reason}");
    assert_eq!(h(&hd, "x-telos-reason"), reason);

    // The same question to the AuthZEN endpoint gets the same reason.
    let (s, d) = send(
        &app,
        "POST",
        "/access/v1/evaluation",
        Some(json!({"subject": {"type": "agent", "id": "assistant"},
                    "action": {"name": "tools/call"},
                    "resource": {"type": "tool", "id": "delete_note", "properties": {"arguments": {"name": "groceries"}}},
                    "context": {"workflow_id": wf}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(d["decision"], false);
    assert_eq!(d["context"]["reason_user"]["403"], reason.as_str());

    // An agent the workflow does not allow is denied even the read.
    let mut other = nginx;
    other[3] = ("x-telos-agent", "agent:intruder");
    let (s, hd, _) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &other,
        Some(call(9, "read_note")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h(&hd, "x-telos-reasons"), "unexpected_actor");

    // The proxy blocks what was denied, so each denied attempt is in the
    // ledger as a blocked divergent step and in /v1/drift; the permitted
    // read is not recorded (without --record-evaluations the proxy's
    // permit is not a step).
    let steps = steps(&app, &wf).await;
    let seen: Vec<_> = steps
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["actor"]["id"].as_str().unwrap(),
                s["verdict"].as_str().unwrap(),
                s["outcome"]["blocked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("delete_note", "assistant", "divergent", true),
            ("read_note", "intruder", "divergent", true)
        ],
        "{steps:?}"
    );
    let (s, drift) = send(&app, "GET", "/v1/drift", None).await;
    assert_eq!(s, StatusCode::OK, "{drift}");
    let tools: Vec<_> = drift["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["step"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(tools, ["read_note", "delete_note"], "{drift}");
}

#[tokio::test]
async fn other_mcp_messages_pass_and_a_batch_is_judged_by_its_calls() {
    let app = app(false);
    let wf = notes_workflow(&app).await;
    // No workflow or agent is needed for what is not a tool call.
    for body in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 0, "result": {}}),
    ] {
        let (s, hd, b) = ask(
            &app,
            "POST",
            "/v1/forward-auth",
            &[("x-original-method", "POST")],
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (s, h(&hd, "x-telos-decision")),
            (StatusCode::OK, "allow"),
            "{body}"
        );
        assert_eq!(b["tools"], json!([]));
    }
    // The SSE stream (GET) and the end of a session (DELETE) carry no body.
    for method in ["GET", "DELETE"] {
        let (s, _, _) = ask(
            &app,
            "GET",
            "/v1/forward-auth",
            &[("x-forwarded-method", method), ("x-forwarded-uri", "/mcp")],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{method}");
    }
    // A batch with a divergent call is denied as a whole.
    let (s, _, b) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &[
            ("x-telos-workflow", wf.as_str()),
            ("x-telos-agent", "agent:assistant"),
        ],
        Some(json!([call(1, "read_note"), call(2, "delete_note")])),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(b["id"], 2);
}

#[tokio::test]
async fn envoy_style_requests_carry_the_original_path_and_method() {
    let app = app(false);
    let wf = notes_workflow(&app).await;
    // Envoy's ext_authz HTTP service: the original method, the original
    // path appended to the route, the body when `with_request_body` is on.
    let hs = [
        ("x-telos-workflow", wf.as_str()),
        ("x-telos-agent", "assistant"),
    ];
    let (s, _, b) = ask(
        &app,
        "POST",
        "/v1/forward-auth/mcp",
        &hs,
        Some(call(3, "read_note")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, _) = ask(
        &app,
        "POST",
        "/v1/forward-auth/mcp",
        &hs,
        Some(call(4, "delete_note")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn missing_or_unknown_workflows_fail_closed_and_bad_input_is_a_400() {
    let app = app(false);
    notes_workflow(&app).await;
    let agent = ("x-telos-agent", "agent:assistant");
    // No workflow and no base policy: denied, as the PDP denies.
    let (s, hd, b) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &[agent],
        Some(call(1, "read_note")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(h(&hd, "x-telos-reasons"), "no_workflow");
    assert!(
        h(&hd, "x-telos-reason").contains("outside a workflow"),
        "{hd:?}"
    );
    for unknown in ["0190d5a0-0000-7000-8000-000000000000", "not-a-uuid"] {
        let (s, hd, b) = ask(
            &app,
            "POST",
            "/v1/forward-auth",
            &[agent, ("x-telos-workflow", unknown)],
            Some(call(1, "read_note")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{unknown}: {b}");
        assert_eq!(h(&hd, "x-telos-reasons"), "unknown_workflow");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown workflow")
        );
    }
    let wf = "0190d5a0-0000-7000-8000-000000000000";
    // Over --max-body-bytes: 413, named.
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "read_note", "arguments": {"name": "x".repeat(70_000)}}});
    let (s, _, b) = ask(&app, "POST", "/v1/forward-auth", &[agent], Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert_eq!(b["error"]["code"], "body_too_large");
    for (headers, body, needle) in [
        (vec![("x-original-method", "POST")], None, "none was sent"),
        (
            vec![agent],
            Some(Value::String("{not json".into())),
            "key must be a string",
        ),
        (
            vec![agent],
            Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}})),
            "params.name",
        ),
        (
            vec![agent],
            Some(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": [1]}}),
            ),
            "params.arguments",
        ),
        (
            vec![agent],
            Some(Value::String("\"text\"".into())),
            "not a JSON-RPC message",
        ),
        (
            vec![("x-telos-workflow", wf)],
            Some(call(1, "read_note")),
            "X-Telos-Agent",
        ),
    ] {
        let (s, _, b) = ask(&app, "POST", "/v1/forward-auth", &headers, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{needle}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

#[tokio::test]
async fn with_record_evaluations_permits_are_recorded_as_the_pdp_records_them() {
    let app = app(true);
    let wf = notes_workflow(&app).await;
    let hs = [
        ("x-telos-workflow", wf.as_str()),
        ("x-telos-agent", "agent:assistant"),
    ];
    let (s, _, _) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &hs,
        Some(call(1, "read_note")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &hs,
        Some(call(2, "delete_note")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let steps = steps(&app, &wf).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0]["name"], "read_note");
    assert_eq!(steps[0]["actor"]["id"], "assistant");
    assert_eq!(steps[0]["verdict"], "allowed");
    assert!(steps[0].get("outcome").is_none(), "{steps:?}");
    assert_eq!(steps[1]["name"], "delete_note");
    assert_eq!(steps[1]["outcome"]["blocked"], true);
}

#[tokio::test]
async fn the_agent_can_come_from_the_delegated_token() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let app = app(false);
    let wf = notes_workflow(&app).await;
    // Without --jwks the claims are read unverified (and say so).
    let token = |sub: &str, actor: &str| {
        encode(
            &Header::default(),
            &json!({"sub": sub, "act": {"sub": actor}, "exp": 4_000_000_000u64}),
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap()
    };
    for (sub, actor, status, reasons) in [
        ("ana", "assistant", StatusCode::OK, ""),
        ("ana", "intruder", StatusCode::FORBIDDEN, "unexpected_actor"),
        (
            "bob",
            "assistant",
            StatusCode::FORBIDDEN,
            "subject_mismatch",
        ),
    ] {
        let bearer = format!("Bearer {}", token(sub, actor));
        let (s, hd, b) = ask(
            &app,
            "POST",
            "/v1/forward-auth",
            &[
                ("x-telos-workflow", wf.as_str()),
                ("x-telos-token", bearer.as_str()),
            ],
            Some(call(1, "read_note")),
        )
        .await;
        assert_eq!(s, status, "{sub} {actor}: {b}");
        assert_eq!(h(&hd, "x-telos-reasons"), reasons, "{sub} {actor}");
    }
    let (s, _, b) = ask(
        &app,
        "POST",
        "/v1/forward-auth",
        &[
            ("x-telos-workflow", wf.as_str()),
            ("x-telos-token", "not-a-jwt"),
        ],
        Some(call(1, "read_note")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

#[tokio::test]
async fn a_base_policy_sees_the_original_request_and_can_permit_without_a_workflow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        r#"permit(principal, action, resource);
forbid(principal, action, resource) when { context.request has http && context.request.http.uri like "/admin*" };"#,
    )
    .unwrap();
    let base = telos::pdp::BasePolicy::load(dir.path()).unwrap();
    let store = Arc::new(telos::storage::SledStore::temporary().unwrap());
    let app = app_from(store, telos::pdp::Pdp::new(Some(base), false));
    let ask_at = |uri: &'static str| {
        let app = app.clone();
        async move {
            ask(
                &app,
                "POST",
                "/v1/forward-auth",
                &[
                    ("x-original-uri", uri),
                    ("x-original-method", "POST"),
                    ("x-telos-agent", "agent:assistant"),
                ],
                Some(call(1, "read_note")),
            )
            .await
        }
    };
    // No workflow: the base policy's explicit permit decides, as in the PDP.
    let (s, _, b) = ask_at("/mcp").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, hd, b) = ask_at("/admin/mcp").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(h(&hd, "x-telos-reasons"), "base_policy_deny");
}
