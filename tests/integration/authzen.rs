//! AuthZEN 1.0 over HTTP: the working group's interop decision files (Todo
//! and API gateway) replayed case by case against the Cedar fixtures in
//! `fixtures/authzen/`, and the final-1.0 certification scenario
//! (openid/authzen `certification/authorization-api-1_0-scenario.md`):
//! required decisions, batch semantics, 400s, headers, search, discovery.

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::PathBuf;

use crate::common::{app_with, send, send_raw};

const EVALUATION: &str = "/access/v1/evaluation";
const EVALUATIONS: &str = "/access/v1/evaluations";
const SEARCH_SUBJECT: &str = "/access/v1/search/subject";
const SEARCH_RESOURCE: &str = "/access/v1/search/resource";
const SEARCH_ACTION: &str = "/access/v1/search/action";

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/authzen")
        .join(rel)
}

fn app_for(policies: &str) -> Router {
    app_with(Some(&fixture(policies))).0
}

/// Cedar evaluation errors a single deny reports (telos puts them in
/// `context.reason_admin["403"].errors`); a fixture policy must have none.
fn policy_errors(resp: &Value) -> Vec<Value> {
    resp["context"]["reason_admin"]["403"]["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

// ---------------------------------------------------------------- interop

/// What a replay of one decision file found.
struct Replay {
    single: (usize, usize),
    batch: (usize, usize),
    failures: Vec<String>,
}

/// Sends every `evaluation` case to the single endpoint (the `decision`
/// must equal `expected`) and every `evaluations` case to the batch
/// endpoint (the `evaluations` array must equal `expected` exactly, as the
/// working group's harness compares it).
async fn replay(policies: &str, decisions: &str) -> Replay {
    let app = app_for(policies);
    let file: Value = serde_json::from_slice(&std::fs::read(fixture(decisions)).unwrap()).unwrap();
    let mut r = Replay {
        single: (0, 0),
        batch: (0, 0),
        failures: vec![],
    };
    let singles = file["evaluation"].as_array().cloned().unwrap_or_default();
    for (i, case) in singles.iter().enumerate() {
        r.single.1 += 1;
        let (status, body) = send(&app, "POST", EVALUATION, Some(case["request"].clone())).await;
        if status == StatusCode::OK
            && body["decision"] == case["expected"]
            && policy_errors(&body).is_empty()
        {
            r.single.0 += 1;
        } else {
            r.failures.push(format!(
                "evaluation[{i}]: expected {} got {status} {body}\n  request: {}",
                case["expected"], case["request"]
            ));
        }
    }
    let batches = file["evaluations"].as_array().cloned().unwrap_or_default();
    for (i, case) in batches.iter().enumerate() {
        r.batch.1 += 1;
        let (status, body) = send(&app, "POST", EVALUATIONS, Some(case["request"].clone())).await;
        if status == StatusCode::OK && body["evaluations"] == case["expected"] {
            r.batch.0 += 1;
        } else {
            r.failures.push(format!(
                "evaluations[{i}]: expected {} got {status} {body}\n  request: {}",
                case["expected"], case["request"]
            ));
        }
    }
    println!(
        "{decisions}: {}/{} single, {}/{} batch",
        r.single.0, r.single.1, r.batch.0, r.batch.1
    );
    r
}

#[tokio::test]
async fn interop_todo_scenario_matches_every_decision() {
    let r = replay(
        "todo",
        "interop/authzen-todo-backend-decisions-authorization-api-1_0-02.json",
    )
    .await;
    assert!(r.failures.is_empty(), "{}", r.failures.join("\n"));
    assert_eq!((r.single, r.batch), ((40, 40), (3, 3)));
}

#[tokio::test]
async fn interop_api_gateway_scenario_matches_every_decision() {
    let r = replay("gateway", "interop/authzen-api-gateways-decisions.json").await;
    assert!(r.failures.is_empty(), "{}", r.failures.join("\n"));
    assert_eq!((r.single, r.batch), ((25, 25), (0, 0)));
}

#[tokio::test]
async fn interop_todo_subject_search() {
    // Who may create a todo: the editors and the admin, found in entities.json.
    let app = app_for("todo");
    let (status, body) = send(
        &app,
        "POST",
        SEARCH_SUBJECT,
        Some(
            json!({"subject": {"type": "user"}, "action": {"name": "can_create_todo"},
                    "resource": {"type": "todo", "id": "todo-1"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids = ids(&body);
    ids.sort();
    assert_eq!(
        ids,
        [
            "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
            "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
        ]
    );
}

// ----------------------------------------------------------- certification

fn cert() -> Router {
    app_for("cert")
}

fn user(id: &str) -> Value {
    json!({"type": "user", "id": id})
}

fn admin(id: &str) -> Value {
    json!({"type": "user", "id": id, "properties": {"role": "admin"}})
}

fn record(id: &str) -> Value {
    json!({"type": "record", "id": id})
}

fn record_with(id: &str, status: &str) -> Value {
    json!({"type": "record", "id": id, "properties": {"status": status}})
}

fn act(name: &str) -> Value {
    json!({"name": name})
}

fn eval(subject: Value, action: Value, resource: Value) -> Value {
    json!({"subject": subject, "action": action, "resource": resource})
}

/// The decision of one single evaluation; asserts the response shape: 200,
/// a boolean `decision` and at most an object `context` besides it.
async fn decide(app: &Router, body: Value) -> bool {
    let (status, resp) = send(app, "POST", EVALUATION, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body} -> {resp}");
    let obj = resp.as_object().unwrap();
    assert!(
        obj.keys().all(|k| k == "decision" || k == "context"),
        "{resp}"
    );
    if let Some(ctx) = obj.get("context") {
        assert!(ctx.is_object(), "{resp}");
    }
    assert!(policy_errors(&resp).is_empty(), "{body} -> {resp}");
    resp["decision"]
        .as_bool()
        .unwrap_or_else(|| panic!("{body} -> {resp}"))
}

async fn batch(app: &Router, body: Value) -> Value {
    let (status, resp) = send(app, "POST", EVALUATIONS, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body} -> {resp}");
    resp
}

#[tokio::test]
async fn cert_required_decisions() {
    let app = cert();
    let cases = [
        // Core: identifier fields only (rules 1-4).
        (eval(user("alice"), act("read"), record("record-1")), true),
        (eval(user("alice"), act("write"), record("record-1")), true),
        (eval(user("bob"), act("read"), record("record-1")), true),
        (eval(user("bob"), act("write"), record("record-1")), false),
        // Properties (rules 5-8).
        (
            eval(
                user("alice"),
                act("write"),
                record_with("record-2", "archived"),
            ),
            false,
        ),
        (
            eval(
                admin("bob"),
                act("write"),
                record_with("record-2", "archived"),
            ),
            true,
        ),
        (
            eval(
                user("alice"),
                json!({"name": "delete", "properties": {"soft": true}}),
                record("record-1"),
            ),
            true,
        ),
        (
            eval(
                user("alice"),
                json!({"name": "delete", "properties": {"soft": false}}),
                record("record-1"),
            ),
            false,
        ),
        // Archived by the directory alone, and by a property alone.
        (eval(user("alice"), act("write"), record("record-2")), false),
        (eval(user("bob"), act("write"), record("record-2")), true),
        (
            eval(
                user("alice"),
                act("write"),
                record_with("record-1", "archived"),
            ),
            false,
        ),
        // A property may narrow but never widen: alice claiming admin is
        // still no admin; bob claiming a lesser role is no admin either.
        (
            eval(
                admin("alice"),
                act("write"),
                record_with("record-2", "archived"),
            ),
            false,
        ),
        (
            eval(
                json!({"type": "user", "id": "bob", "properties": {"role": "viewer"}}),
                act("write"),
                record_with("record-2", "archived"),
            ),
            false,
        ),
        (
            eval(
                user("alice"),
                act("write"),
                record_with("record-2", "active"),
            ),
            false,
        ),
        // Deletes: soft only, and not on archived records (for non-admins).
        (
            eval(user("alice"), act("delete"), record("record-1")),
            false,
        ),
        (
            eval(
                user("alice"),
                json!({"name": "delete", "properties": {"soft": true}}),
                record("record-2"),
            ),
            false,
        ),
        // Unknown subjects get nothing.
        (
            eval(user("mallory"), act("read"), record("record-1")),
            false,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(decide(&app, body.clone()).await, expected, "{body}");
    }
}

#[tokio::test]
async fn cert_structural_single_requests() {
    let app = cert();
    // 2.2.3: optional context does not change the decision.
    let mut with_ctx = eval(user("alice"), act("read"), record("record-1"));
    with_ctx["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    assert!(decide(&app, with_ctx).await);
    // 2.2.8: additional properties.
    assert!(
        decide(
            &app,
            eval(
                json!({"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}}),
                json!({"name": "read", "properties": {"method": "GET"}}),
                json!({"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}}),
            ),
        )
        .await
    );
    // 2.2.9: unknown fields are ignored, at the top and inside entities.
    let mut unknown = eval(
        json!({"type": "user", "id": "alice", "nickname": "al"}),
        json!({"name": "read", "verb": "GET"}),
        json!({"type": "record", "id": "record-1", "shelf": 3}),
    );
    unknown["foo"] = json!("bar");
    unknown["futureField"] = json!({"nested": true});
    assert!(decide(&app, unknown).await);
    // A deny is a 200 with `decision: false`, never an HTTP error.
    let (status, body) = send(
        &app,
        "POST",
        EVALUATION,
        Some(eval(user("bob"), act("write"), record("record-1"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["decision"], json!(false), "{body}");
}

#[tokio::test]
async fn cert_batch_decisions_and_defaults() {
    let app = cert();
    let exact = [
        // 3.2.2: bob reads but does not write record-1, in request order.
        (
            json!({"subject": user("bob"), "resource": record("record-1"),
                   "evaluations": [{"action": act("read")}, {"action": act("write")}]}),
            json!([{"decision": true}, {"decision": false}]),
        ),
        // 3.2.3: resource properties per item.
        (
            json!({"subject": user("alice"), "action": act("write"),
                   "evaluations": [{"resource": record_with("record-1", "active")},
                                   {"resource": record_with("record-2", "archived")}]}),
            json!([{"decision": true}, {"decision": false}]),
        ),
        // 3.2.4: subject properties per item.
        (
            json!({"action": act("write"), "resource": record_with("record-2", "archived"),
                   "evaluations": [{"subject": user("alice")}, {"subject": admin("bob")}]}),
            json!([{"decision": false}, {"decision": true}]),
        ),
        // 3.2.5: no defaults at all.
        (
            json!({"evaluations": [eval(user("alice"), act("read"), record("record-1")),
                                   eval(user("bob"), act("write"), record("record-1"))]}),
            json!([{"decision": true}, {"decision": false}]),
        ),
        // 3.2.7: `{}` inherits every default; a given entity replaces its
        // default whole (record-2's properties do not merge with record-1's).
        (
            json!({"subject": user("alice"), "action": act("write"),
                   "resource": record_with("record-1", "active"),
                   "evaluations": [{}, {"resource": record_with("record-2", "archived")}]}),
            json!([{"decision": true}, {"decision": false}]),
        ),
        // Per-item override of subject and action together with defaults.
        (
            json!({"subject": user("alice"), "action": act("read"), "resource": record("record-1"),
                   "evaluations": [{}, {"subject": user("bob"), "action": act("write")},
                                   {"action": {"name": "delete", "properties": {"soft": true}}}]}),
            json!([{"decision": true}, {"decision": false}, {"decision": true}]),
        ),
    ];
    for (body, expected) in exact {
        let resp = batch(&app, body.clone()).await;
        assert_eq!(resp["evaluations"], expected, "{body} -> {resp}");
        assert!(resp.get("decision").is_none(), "{resp}");
    }

    // 3.2.1 and 3.2.6: structure only; context defaults and overrides are accepted.
    for body in [
        json!({"subject": user("alice"), "action": act("read"),
               "evaluations": [{"resource": record("record-1")}, {"resource": record("record-2")}]}),
        json!({"subject": user("alice"), "action": act("read"),
               "context": {"time": "2025-06-27T18:03-07:00"},
               "evaluations": [{"resource": record("record-1")},
                               {"resource": record("record-2"),
                                "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}]}),
    ] {
        let resp = batch(&app, body.clone()).await;
        let items = resp["evaluations"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{resp}");
        assert!(items.iter().all(|i| i["decision"].is_boolean()), "{resp}");
    }

    // 3.4.1: an item missing a field fails alone, as `decision: false`.
    let resp = batch(
        &app,
        json!({"subject": user("alice"), "action": act("read"),
               "options": {"evaluations_semantic": "execute_all"},
               "evaluations": [{"resource": record("record-1")}, {}]}),
    )
    .await;
    let items = resp["evaluations"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{resp}");
    assert_eq!(items[0], json!({"decision": true}));
    assert_eq!(items[1]["decision"], json!(false));
    assert!(items[1]["context"].is_object(), "{resp}");

    // 3.4.2 / 3.4.3: no or empty `evaluations` answers like the single API.
    for extra in [None, Some(json!([]))] {
        let mut body = eval(user("alice"), act("read"), record("record-1"));
        if let Some(e) = extra {
            body["evaluations"] = e;
        }
        assert_eq!(batch(&app, body).await, json!({"decision": true}));
    }
}

#[tokio::test]
async fn cert_batch_semantics() {
    let app = cert();
    // permit, deny, permit, deny
    let items = json!([
        {"subject": user("alice"), "action": act("read")},
        {"subject": user("bob"), "action": act("write")},
        {"subject": user("alice"), "action": act("write")},
        {"subject": user("mallory"), "action": act("read")},
    ]);
    let with = |semantic: Option<&str>, items: &Value| {
        let mut body = json!({"resource": record("record-1"), "evaluations": items});
        if let Some(s) = semantic {
            body["options"] = json!({"evaluations_semantic": s});
        }
        body
    };
    let all =
        json!([{"decision": true}, {"decision": false}, {"decision": true}, {"decision": false}]);
    for semantic in [None, Some("execute_all")] {
        let resp = batch(&app, with(semantic, &items)).await;
        assert_eq!(resp["evaluations"], all, "{semantic:?}");
    }
    let resp = batch(&app, with(Some("deny_on_first_deny"), &items)).await;
    assert_eq!(
        resp["evaluations"],
        json!([{"decision": true}, {"decision": false}])
    );
    let denies_first = json!([
        {"subject": user("bob"), "action": act("write")},
        {"subject": user("mallory"), "action": act("read")},
        {"subject": user("bob"), "action": act("read")},
        {"subject": user("alice"), "action": act("read")},
    ]);
    let resp = batch(&app, with(Some("permit_on_first_permit"), &denies_first)).await;
    assert_eq!(
        resp["evaluations"],
        json!([{"decision": false}, {"decision": false}, {"decision": true}])
    );
    // No early stop: every item is answered.
    let resp = batch(&app, with(Some("deny_on_first_deny"), &json!([{"subject": user("alice"), "action": act("read")}, {"subject": user("bob"), "action": act("read")}]))).await;
    assert_eq!(
        resp["evaluations"],
        json!([{"decision": true}, {"decision": true}])
    );
    // An unknown semantic is a bad request.
    let (status, _) = send(
        &app,
        "POST",
        EVALUATIONS,
        Some(with(Some("first_come_first_served"), &items)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn raw(uri: &str, content_type: Option<&str>, body: &'static str) -> Request<Body> {
    let mut req = Request::builder().method("POST").uri(uri);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn cert_malformed_requests_are_400() {
    let app = cert();
    let s = user("alice");
    let a = act("read");
    let r = record("record-1");
    let bodies = [
        // 2.4.1 missing required fields
        json!({"action": a, "resource": r}),
        json!({"subject": s, "resource": r}),
        json!({"subject": s, "action": a}),
        // 2.4.2 missing required sub-fields
        eval(json!({"id": "alice"}), a.clone(), r.clone()),
        eval(json!({"type": "user"}), a.clone(), r.clone()),
        eval(s.clone(), json!({}), r.clone()),
        eval(s.clone(), a.clone(), json!({"id": "record-1"})),
        eval(s.clone(), a.clone(), json!({"type": "record"})),
        // 2.4.6 invalid field types
        eval(json!("alice"), a.clone(), r.clone()),
        eval(s.clone(), json!({"name": 123}), r.clone()),
        eval(json!({"type": "user", "id": 7}), a.clone(), r.clone()),
        eval(
            s.clone(),
            a.clone(),
            json!({"type": ["record"], "id": "record-1"}),
        ),
        json!({"subject": s, "action": a, "resource": r, "context": "yesterday"}),
        json!([]),
    ];
    for body in bodies {
        for uri in [EVALUATION, EVALUATIONS] {
            let (status, resp) = send(&app, "POST", uri, Some(body.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body} -> {resp}");
            assert!(resp["error"]["message"].is_string(), "{resp}");
        }
    }
    let valid = r#"{"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}}"#;
    for (content_type, body, what) in [
        (Some("text/plain"), valid, "non-JSON content type"),
        (
            Some("application/x-www-form-urlencoded"),
            valid,
            "form content type",
        ),
        (None, valid, "no content type"),
        (Some("application/json"), "", "empty body"),
        (
            Some("application/json"),
            "{\"subject\": {",
            "malformed JSON",
        ),
        (Some("application/json"), "not json", "not JSON at all"),
    ] {
        for uri in [EVALUATION, EVALUATIONS] {
            let (status, resp) = send_raw(&app, raw(uri, content_type, body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {what} -> {resp}");
        }
    }
    // The same valid body with the right content type is fine.
    let (status, resp) = send_raw(&app, raw(EVALUATION, Some("application/json"), valid)).await;
    assert_eq!((status, resp), (StatusCode::OK, json!({"decision": true})));
}

/// Sends a request and returns status, headers and JSON body.
async fn send_with_headers(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    use tower::ServiceExt;
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

fn post_json(uri: &str, body: &Value, request_id: Option<&str>) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(CONTENT_TYPE, "application/json");
    if let Some(id) = request_id {
        req = req.header("X-Request-ID", id);
    }
    req.body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

#[tokio::test]
async fn cert_request_id_is_echoed_and_answers_are_idempotent() {
    let app = cert();
    let body = eval(user("alice"), act("read"), record("record-1"));
    let search =
        json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1")});
    let batch_body = json!({"subject": user("bob"), "resource": record("record-1"),
               "evaluations": [{"action": act("read")}, {"action": act("write")}]});
    for (uri, body) in [
        (EVALUATION, &body),
        (EVALUATIONS, &batch_body),
        (SEARCH_SUBJECT, &search),
        (EVALUATION, &json!({"subject": "alice"})),
    ] {
        let id = "3f1c9a52-7d2e-4c44-9a8b-interop-cert";
        let (status, headers, resp) = send_with_headers(&app, post_json(uri, body, Some(id))).await;
        assert_eq!(
            headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            Some(id),
            "{uri} {status} {resp}"
        );
        if status == StatusCode::OK {
            assert_eq!(
                headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{uri}"
            );
        }
    }
    // Without the header the request still succeeds.
    let (status, _, resp) = send_with_headers(&app, post_json(EVALUATION, &body, None)).await;
    assert_eq!((status, resp), (StatusCode::OK, json!({"decision": true})));

    // 2.6: the same request gives the same answer, every time.
    for req in [
        eval(user("alice"), act("read"), record("record-1")),
        eval(user("bob"), act("write"), record("record-1")),
        eval(
            admin("bob"),
            act("write"),
            record_with("record-2", "archived"),
        ),
    ] {
        let (_, first) = send(&app, "POST", EVALUATION, Some(req.clone())).await;
        for _ in 0..5 {
            let (status, again) = send(&app, "POST", EVALUATION, Some(req.clone())).await;
            assert_eq!((status, &again), (StatusCode::OK, &first), "{req}");
        }
    }
    let (_, first) = send(&app, "POST", EVALUATIONS, Some(batch_body.clone())).await;
    for _ in 0..3 {
        let (_, again) = send(&app, "POST", EVALUATIONS, Some(batch_body.clone())).await;
        assert_eq!(again, first);
    }
}

/// The `id`s (or action `name`s) of a search response, after checking its
/// shape: `results` is an array and `page.next_token` a string.
fn ids(resp: &Value) -> Vec<String> {
    let results = resp["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{resp}"));
    assert!(resp["page"]["next_token"].is_string(), "{resp}");
    results
        .iter()
        .map(|r| {
            r.get("id")
                .or_else(|| r.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{resp}"))
                .to_string()
        })
        .collect()
}

async fn search(app: &Router, uri: &str, body: Value) -> Value {
    let (status, resp) = send(app, "POST", uri, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{uri} {body} -> {resp}");
    resp
}

#[tokio::test]
async fn cert_subject_search() {
    let app = cert();
    let ctx = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    // 4.2.1-4.2.3 (S1): `subject.id` and `context` change nothing.
    let base =
        json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1")});
    let expected = search(&app, SEARCH_SUBJECT, base.clone()).await;
    let mut found = ids(&expected);
    found.sort();
    assert_eq!(found, ["alice", "bob"], "{expected}");
    assert!(
        expected["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["type"] == "user")
    );
    let mut with_ctx = base.clone();
    with_ctx["context"] = ctx;
    let mut with_id = base.clone();
    with_id["subject"] = user("alice");
    for body in [with_ctx, with_id] {
        assert_eq!(search(&app, SEARCH_SUBJECT, body).await, expected);
    }
    // 4.2.4 (S4): who may write an archived record: bob only.
    let resp = search(
        &app,
        SEARCH_SUBJECT,
        json!({"subject": {"type": "user"}, "action": act("write"),
               "resource": record_with("record-2", "archived")}),
    )
    .await;
    assert_eq!(ids(&resp), ["bob"]);
    // Who may write record-1: alice only.
    let resp = search(
        &app,
        SEARCH_SUBJECT,
        json!({"subject": {"type": "user"}, "action": act("write"), "resource": record("record-1")}),
    )
    .await;
    assert_eq!(ids(&resp), ["alice"]);
}

#[tokio::test]
async fn cert_resource_search() {
    let app = cert();
    // 4.3.1-4.3.3 (S2).
    let base =
        json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"}});
    let expected = search(&app, SEARCH_RESOURCE, base.clone()).await;
    let mut found = ids(&expected);
    found.sort();
    assert_eq!(found, ["record-1", "record-2"], "{expected}");
    assert!(
        expected["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["type"] == "record")
    );
    let mut with_ctx = base.clone();
    with_ctx["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    let mut with_id = base.clone();
    with_id["resource"] = record("record-1");
    for body in [with_ctx, with_id] {
        assert_eq!(search(&app, SEARCH_RESOURCE, body).await, expected);
    }
    // 4.3.4 (S5): what may admin bob write: the archived record.
    let resp = search(
        &app,
        SEARCH_RESOURCE,
        json!({"subject": admin("bob"), "action": act("write"), "resource": {"type": "record"}}),
    )
    .await;
    assert_eq!(ids(&resp), ["record-2"]);
    // And alice: her active record.
    let resp = search(
        &app,
        SEARCH_RESOURCE,
        json!({"subject": user("alice"), "action": act("write"), "resource": {"type": "record"}}),
    )
    .await;
    assert_eq!(ids(&resp), ["record-1"]);
}

#[tokio::test]
async fn cert_action_search() {
    let app = cert();
    // 4.4.1-4.4.2 (S3): no `action` key; delete needs `soft`, so not listed.
    let base = json!({"subject": user("alice"), "resource": record("record-1")});
    let expected = search(&app, SEARCH_ACTION, base.clone()).await;
    let mut found = ids(&expected);
    found.sort();
    assert_eq!(found, ["read", "write"], "{expected}");
    let mut with_ctx = base.clone();
    with_ctx["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    assert_eq!(search(&app, SEARCH_ACTION, with_ctx).await, expected);
    // 4.4.3 (S6).
    let resp = search(
        &app,
        SEARCH_ACTION,
        json!({"subject": admin("bob"), "resource": record_with("record-2", "archived")}),
    )
    .await;
    let mut found = ids(&resp);
    found.sort();
    assert_eq!(found, ["read", "write"], "{resp}");
    // bob on record-1: read only.
    let resp = search(
        &app,
        SEARCH_ACTION,
        json!({"subject": user("bob"), "resource": record("record-1")}),
    )
    .await;
    assert_eq!(ids(&resp), ["read"]);
}

#[tokio::test]
async fn cert_search_pagination() {
    let app = cert();
    let body = |page: Value| {
        json!({"subject": {"type": "user"}, "action": act("read"),
               "resource": record("record-1"), "page": page})
    };
    let first = search(&app, SEARCH_SUBJECT, body(json!({"limit": 1}))).await;
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 1, "{first}");
    let token = first["page"]["next_token"].as_str().unwrap().to_string();
    assert!(!token.is_empty(), "more results exist: {first}");
    // 4.5.2: the follow-up carries only the token.
    let second = search(&app, SEARCH_SUBJECT, body(json!({"token": token}))).await;
    let second_ids = ids(&second);
    assert_eq!(second["page"]["next_token"], "", "last page: {second}");
    let mut all: Vec<_> = first_ids.into_iter().chain(second_ids).collect();
    all.sort();
    assert_eq!(all, ["alice", "bob"]);
    // One page holds everything: next_token is "" at once.
    let whole = search(&app, SEARCH_SUBJECT, body(json!({"limit": 10}))).await;
    assert_eq!(ids(&whole).len(), 2);
    assert_eq!(whole["page"]["next_token"], "");
    // Pagination works the same on resource and action search.
    let resp = search(
        &app,
        SEARCH_RESOURCE,
        json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"},
               "page": {"limit": 1}}),
    )
    .await;
    assert_eq!(ids(&resp).len(), 1);
    let token = resp["page"]["next_token"].as_str().unwrap().to_string();
    let resp = search(
        &app,
        SEARCH_RESOURCE,
        json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"},
               "page": {"token": token, "limit": 1}}),
    )
    .await;
    assert_eq!(ids(&resp).len(), 1);
    assert_eq!(resp["page"]["next_token"], "");
    // A token the PDP never issued is a bad request.
    let (status, _) = send(
        &app,
        "POST",
        SEARCH_SUBJECT,
        Some(body(json!({"token": "not-a-token"}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cert_search_empty_results_and_errors() {
    let app = cert();
    // 4.6: unknown ids and unknown types give empty results, on every endpoint.
    for (uri, body) in [
        (
            SEARCH_ACTION,
            json!({"subject": user("nonexistent-user"), "resource": record("record-1")}),
        ),
        (
            SEARCH_SUBJECT,
            json!({"subject": {"type": "spaceship"}, "action": act("read"), "resource": record("record-1")}),
        ),
        (
            SEARCH_SUBJECT,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-9")}),
        ),
        (
            SEARCH_RESOURCE,
            json!({"subject": user("nonexistent-user"), "action": act("read"), "resource": {"type": "record"}}),
        ),
        (
            SEARCH_RESOURCE,
            json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "spaceship"}}),
        ),
        (
            SEARCH_ACTION,
            json!({"subject": {"type": "spaceship", "id": "x"}, "resource": record("record-1")}),
        ),
    ] {
        let resp = search(&app, uri, body).await;
        assert_eq!(resp["results"], json!([]), "{uri} {resp}");
        assert_eq!(resp["page"]["next_token"], "");
    }
    // 4.7: missing fields and missing input ids are 400s.
    for (uri, body) in [
        (
            SEARCH_SUBJECT,
            json!({"subject": {"type": "user"}, "resource": record("record-1")}),
        ),
        (
            SEARCH_RESOURCE,
            json!({"action": act("read"), "resource": {"type": "record"}}),
        ),
        (
            SEARCH_SUBJECT,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": {"type": "record"}}),
        ),
        (
            SEARCH_RESOURCE,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": {"type": "record"}}),
        ),
        (
            SEARCH_ACTION,
            json!({"subject": {"type": "user"}, "resource": record("record-1")}),
        ),
        (
            SEARCH_SUBJECT,
            json!({"action": act("read"), "resource": record("record-1")}),
        ),
        (
            SEARCH_RESOURCE,
            json!({"subject": user("alice"), "resource": {"type": "record"}}),
        ),
        (
            SEARCH_RESOURCE,
            json!({"subject": user("alice"), "action": act("read")}),
        ),
        (SEARCH_ACTION, json!({"resource": record("record-1")})),
        (
            SEARCH_SUBJECT,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1"),
                   "page": {"limit": -1}}),
        ),
    ] {
        let (status, resp) = send(&app, "POST", uri, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body} -> {resp}");
    }
}

/// Certification 4.7.1 requires a 400 for an action search without
/// `resource`; telos instead searches tool names (resource `tool::"*"`).
#[tokio::test]
async fn cert_action_search_without_resource_is_400() {
    let app = cert();
    let (status, resp) = send(
        &app,
        "POST",
        SEARCH_ACTION,
        Some(json!({"subject": user("alice")})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
}

#[tokio::test]
async fn cert_discovery_document() {
    let app = cert();
    let req = Request::builder()
        .method("GET")
        .uri("/.well-known/authzen-configuration")
        .header("host", "pdp.example.com")
        .body(Body::empty())
        .unwrap();
    let (status, headers, doc) = send_with_headers(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let pdp = doc["policy_decision_point"].as_str().unwrap();
    assert_eq!(pdp, "http://pdp.example.com");
    for (key, path) in [
        ("access_evaluation_endpoint", EVALUATION),
        ("access_evaluations_endpoint", EVALUATIONS),
        ("search_subject_endpoint", SEARCH_SUBJECT),
        ("search_resource_endpoint", SEARCH_RESOURCE),
        ("search_action_endpoint", SEARCH_ACTION),
    ] {
        assert_eq!(doc[key], format!("{pdp}{path}"), "{key}: {doc}");
        // Every advertised endpoint is served: an empty JSON object is a
        // 400 from the endpoint, not a 404 or 405.
        let (status, resp) = send(&app, "POST", path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} -> {resp}");
    }
    // Nothing advertised that is not served; capabilities, if any, are strings.
    for (key, value) in doc.as_object().unwrap() {
        assert!(
            key == "policy_decision_point"
                || key.ends_with("_endpoint")
                || (key == "capabilities"
                    && value
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string))),
            "{key}: {value}"
        );
        if key.ends_with("_endpoint") {
            assert!(value.as_str().unwrap().starts_with(pdp), "{key}");
        }
    }
}
