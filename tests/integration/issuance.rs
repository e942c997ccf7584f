//! `POST /v1/workflows/{id}/authorization_details`: the permitted part of
//! the intent for the actor a token is being issued to, the denied quads
//! with their reasons, and nothing recorded. (A foreign tenant's workflow:
//! `api_auth::tenants_never_see_each_other`.)

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::common::{app_from, send, travel_catalog};

/// The base policy: everyone may do anything, except that the intern may
/// not book hotels.
fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.cedar"),
        r#"permit(principal, action, resource);
forbid(principal == agent::"intern", action == Action::"book_hotel", resource);"#,
    )
    .unwrap();
    let base = telos::pdp::BasePolicy::load(dir.path()).unwrap();
    let store = Arc::new(telos::storage::SledStore::temporary().unwrap());
    // Permits would be recorded if issuance recorded anything.
    let app = app_from(store, telos::pdp::Pdp::new(Some(base), true));
    (app, dir)
}

async fn workflow(app: &Router) -> (String, Value) {
    let (s, b) = send(app, "PUT", "/v1/catalogs/travel", Some(travel_catalog())).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send(
        app,
        "POST",
        "/v1/workflows",
        Some(
            json!({"subject": {"type": "user", "id": "ana"}, "catalog": "travel",
                    "prompt": "book a flight to Paris and book a hotel there",
                    "agents": ["planner", "intern"]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (b["workflow_id"].as_str().unwrap().to_string(), b)
}

fn names(evaluations: &Value) -> Vec<String> {
    let mut v: Vec<String> = evaluations
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"]["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

async fn issue(app: &Router, wf: &str, actor: &str) -> (StatusCode, Value) {
    send(
        app,
        "POST",
        &format!("/v1/workflows/{wf}/authorization_details"),
        Some(json!({"actor": {"type": "agent", "id": actor}})),
    )
    .await
}

#[tokio::test]
async fn the_token_carries_only_what_policy_and_intent_permit_the_actor() {
    let (app, _dir) = app();
    let (wf, created) = workflow(&app).await;
    let all = names(&created["authorization_details"][0]["request"]["evaluations"]);
    assert_eq!(all, vec!["book_flight", "book_hotel"], "{created}");

    // The planner gets every quad: the same details as at creation.
    let (s, b) = issue(&app, &wf, "planner").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["workflow_id"], wf.as_str());
    assert_eq!(
        b["authorization_details"], created["authorization_details"],
        "{b}"
    );
    assert_eq!(b["denied"], json!([]));

    // The base policy forbids the intern hotels: that quad is denied.
    let (s, b) = issue(&app, &wf, "intern").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let details = &b["authorization_details"][0];
    assert_eq!(details["type"], "authzen_evaluations");
    assert_eq!(details["request"]["context"]["workflow_id"], wf.as_str());
    assert_eq!(details["request"]["subject"]["id"], "ana");
    assert_eq!(
        names(&details["request"]["evaluations"]),
        vec!["book_flight"]
    );
    let denied = b["denied"].as_array().unwrap();
    assert_eq!(denied.len(), 1, "{b}");
    assert_eq!(denied[0]["action"]["name"], "book_hotel");
    assert_eq!(denied[0]["reasons"], json!(["base_policy_deny"]));
    assert!(
        denied[0]["reason_user"]
            .as_str()
            .unwrap()
            .contains("book_hotel")
    );

    // An agent the workflow does not allow gets nothing, with the reason.
    let (s, b) = issue(&app, &wf, "stranger").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["authorization_details"][0]["request"]["evaluations"],
        json!([])
    );
    let denied = b["denied"].as_array().unwrap();
    assert_eq!(denied.len(), 2, "{b}");
    assert!(
        denied
            .iter()
            .all(|d| d["reasons"] == json!(["unexpected_actor"])),
        "{b}"
    );

    // Asking recorded nothing (the PDP records permits here).
    let (_, r) = send(&app, "GET", &format!("/v1/workflows/{wf}/report"), None).await;
    assert_eq!(r["steps"], json!([]), "{r}");
}

#[tokio::test]
async fn unknown_workflows_and_bad_bodies_are_refused() {
    let (app, _dir) = app();
    let (wf, _) = workflow(&app).await;
    for unknown in ["0190d5a0-0000-7000-8000-000000000000", "nope"] {
        let (s, b) = issue(&app, unknown, "planner").await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_workflow")),
            "{b}"
        );
    }
    let (s, b) = send(
        &app,
        "POST",
        &format!("/v1/workflows/{wf}/authorization_details"),
        Some(json!({"actor": "planner"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // A delegation chain deeper than allowed is judged, not trusted.
    let (s, b) = send(
        &app,
        "POST",
        &format!("/v1/workflows/{wf}/authorization_details"),
        Some(json!({"actor": {"type": "agent", "id": "planner"},
                    "act": {"sub": "planner", "act": {"sub": "planner"}}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["authorization_details"][0]["request"]["evaluations"],
        json!([])
    );
    assert!(
        b["denied"][0]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("delegation_cycle")),
        "{b}"
    );
}
