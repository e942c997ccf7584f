//! The PDP fails closed: an evaluation with no workflow, or with a
//! workflow the tenant does not have, is denied unless a base policy
//! explicitly permits it (no workflow) — and an unknown workflow is denied
//! even then. `--allow-without-workflow` opts out for the first case only.

use axum::Router;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use telos::pdp::{BasePolicy, Pdp};
use telos::storage::SledStore;

use crate::common::{app_from, send};

fn app(pdp: Pdp) -> Router {
    app_from(Arc::new(SledStore::temporary().unwrap()), pdp)
}

/// A policy directory holding `text`.
fn policies(text: &str) -> (tempfile::TempDir, BasePolicy) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.cedar"), text).unwrap();
    let base = BasePolicy::load(dir.path()).unwrap();
    (dir, base)
}

fn delete_everything(context: Value) -> Value {
    json!({"subject": {"type": "agent", "id": "stranger"},
           "action": {"name": "tools/call"},
           "resource": {"type": "tool", "id": "delete_everything", "properties": {"arguments": {}}},
           "context": context})
}

async fn decide(app: &Router, body: Value) -> Value {
    let (s, b) = send(app, "POST", "/access/v1/evaluation", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

#[tokio::test]
async fn no_workflow_and_no_base_policy_is_a_deny() {
    let app = app(Pdp::new(None, false));
    let d = decide(&app, delete_everything(json!({}))).await;
    assert_eq!(d["decision"], false, "{d}");
    assert!(
        d["context"]["reason_user"]["403"]
            .as_str()
            .unwrap()
            .contains("outside a workflow"),
        "{d}"
    );
    // In a batch too, and for every item.
    let (s, b) = send(
        &app,
        "POST",
        "/access/v1/evaluations",
        Some(json!({"subject": {"type": "agent", "id": "stranger"},
                    "evaluations": [{"action": {"name": "read"}, "resource": {"type": "doc", "id": "1"}},
                                    {"action": {"name": "write"}, "resource": {"type": "doc", "id": "1"}}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["evaluations"],
        json!([{"decision": false}, {"decision": false}])
    );
}

#[tokio::test]
async fn the_operator_may_opt_out() {
    let app = app(Pdp::new(None, false).allow_without_workflow(true));
    let d = decide(&app, delete_everything(json!({}))).await;
    assert_eq!(d["decision"], true, "{d}");
}

#[tokio::test]
async fn a_base_policy_decides_without_a_workflow() {
    let (_dir, base) =
        policies(r#"permit(principal == agent::"reader", action == Action::"read", resource);"#);
    let app = app(Pdp::new(Some(base), false));
    let read = json!({"subject": {"type": "agent", "id": "reader"}, "action": {"name": "read"},
                      "resource": {"type": "doc", "id": "1"}});
    assert_eq!(decide(&app, read).await["decision"], true);
    // Cedar's default deny: nothing permits it.
    assert_eq!(
        decide(&app, delete_everything(json!({}))).await["decision"],
        false
    );
}

#[tokio::test]
async fn an_unknown_workflow_is_denied_whatever_the_base_policy_and_the_flag() {
    let (_dir, base) = policies("permit(principal, action, resource);");
    for pdp in [
        Pdp::new(None, false),
        Pdp::new(None, false).allow_without_workflow(true),
        Pdp::new(Some(base), false).allow_without_workflow(true),
    ] {
        let app = app(pdp);
        for wf in [
            json!(uuid::Uuid::now_v7().to_string()),
            json!("not-a-uuid"),
            json!(7),
        ] {
            let d = decide(&app, delete_everything(json!({"workflow_id": wf}))).await;
            assert_eq!(d["decision"], false, "{wf}: {d}");
        }
    }
}
