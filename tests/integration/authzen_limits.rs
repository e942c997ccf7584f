//! Bounds on AuthZEN requests: items per batch, context size, search
//! results, and long batches yield so a timeout can fire.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use telos::pdp::{BasePolicy, Limits, Pdp, request};
use telos::storage::SledStore;

use crate::common::{app_from, send};

/// A permit-all policy and `users` entities of type `user`.
fn policies(users: usize) -> (tempfile::TempDir, BasePolicy) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.cedar"),
        "permit(principal, action, resource);",
    )
    .unwrap();
    let entities: Vec<Value> = (0..users)
        .map(
            |i| json!({"uid": {"type": "user", "id": format!("u{i}")}, "attrs": {}, "parents": []}),
        )
        .collect();
    std::fs::write(
        dir.path().join("entities.json"),
        serde_json::to_vec(&entities).unwrap(),
    )
    .unwrap();
    let base = BasePolicy::load(dir.path()).unwrap();
    (dir, base)
}

fn app(users: usize, limits: Limits) -> (tempfile::TempDir, Router) {
    let (dir, base) = policies(users);
    let pdp = Pdp::new(Some(base), false).with_limits(limits);
    (
        dir,
        app_from(Arc::new(SledStore::temporary().unwrap()), pdp),
    )
}

fn batch(n: usize, context: Value) -> Value {
    json!({"subject": {"type": "user", "id": "u0"}, "action": {"name": "read"}, "context": context,
           "evaluations": (0..n).map(|i| json!({"resource": {"type": "doc", "id": i.to_string()}})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn batches_contexts_and_searches_are_capped() {
    let (_dir, app) = app(
        10,
        Limits {
            request: request::Limits {
                max_batch_items: 5,
                max_context_bytes: 100,
            },
            max_search_results: 3,
        },
    );
    let (s, b) = send(
        &app,
        "POST",
        "/access/v1/evaluations",
        Some(batch(5, json!({}))),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["evaluations"].as_array().unwrap().len(), 5);
    let (s, b) = send(
        &app,
        "POST",
        "/access/v1/evaluations",
        Some(batch(6, json!({}))),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let big = json!({"note": "x".repeat(200)});
    let (s, b) = send(
        &app,
        "POST",
        "/access/v1/evaluations",
        Some(batch(1, big.clone())),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = send(
        &app,
        "POST",
        "/access/v1/evaluation",
        Some(
            json!({"subject": {"type": "user", "id": "u0"}, "action": {"name": "read"},
                    "resource": {"type": "doc", "id": "1"}, "context": big}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = send(
        &app,
        "POST",
        "/access/v1/search/subject",
        Some(
            json!({"subject": {"type": "user"}, "action": {"name": "read"},
                    "resource": {"type": "doc", "id": "1"}}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["results"].as_array().unwrap().len(), 3, "{b}");
    assert_eq!(b["page"]["total"], 3, "{b}");
}

/// On a single-threaded runtime a future that never yields cannot be
/// timed out: the timer is only looked at between polls. A long batch
/// (evaluations that need no workflow never await anything) must yield.
#[tokio::test(flavor = "current_thread")]
async fn a_long_batch_yields_so_its_timeout_can_fire() {
    let (_dir, app) = app(1, Limits::default());
    let body = serde_json::to_vec(&batch(1000, json!({}))).unwrap();
    let req = || {
        Request::builder()
            .method("POST")
            .uri("/access/v1/evaluations")
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap()
    };
    use tower::ServiceExt;
    // The whole batch takes well over the timeout…
    let started = std::time::Instant::now();
    let resp = app.clone().oneshot(req()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let took = started.elapsed();
    let timeout = Duration::from_millis(2);
    assert!(took > timeout * 5, "the batch took only {took:?}");
    // …so a timeout fires part-way.
    let cut = tokio::time::timeout(timeout, app.oneshot(req())).await;
    assert!(cut.is_err(), "the batch ran to the end without yielding");
}
