//! Caller authentication, roles and tenant isolation over the HTTP API:
//! 401 without a credential, 403 without the role, a foreign tenant's
//! workflow answers as unknown, nothing is stored for a rejected request,
//! and a client over its rate limit gets 429 with `Retry-After`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::common::{api_keys, keyword_service, limits, send_raw, service_config, travel_catalog};

const KEYS: [(&str, &str, &str, &[&str]); 6] = [
    ("admin-a", "acme", "k-admin-a", &["admin"]),
    ("fe-a", "acme", "k-fe-a", &["frontend"]),
    ("pep-a", "acme", "k-pep-a", &["pep"]),
    ("an-a", "acme", "k-an-a", &["analyst"]),
    ("admin-b", "globex", "k-admin-b", &["admin"]),
    (
        "all-b",
        "globex",
        "k-all-b",
        &["frontend", "pep", "analyst"],
    ),
];

fn app(rate: Option<(u32, u32)>) -> Router {
    app_with_pdp(rate, telos::pdp::Pdp::new(None, false))
}

fn app_with_pdp(rate: Option<(u32, u32)>, pdp: telos::pdp::Pdp) -> Router {
    let keys = api_keys(&KEYS);
    let store = Arc::new(telos::storage::SledStore::temporary().unwrap());
    let service = keyword_service(store, service_config());
    telos::api::router(telos::api::AppState {
        service,
        limits: limits().into(),
        prometheus: None,
        pdp: Arc::new(pdp),
        public_url: None,
        auth: telos::auth::Authenticator::new(Some(keys), None),
        limiter: rate.map(|(r, b)| {
            Arc::new(telos::api::RateLimiter::new(
                std::num::NonZeroU32::new(r).unwrap(),
                std::num::NonZeroU32::new(b).unwrap(),
            ))
        }),
        metrics_public: false,
    })
}

async fn call(
    app: &Router,
    key: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    send_raw(app, req.body(body).unwrap()).await
}

fn intent_body() -> Value {
    json!({"subject": {"type": "user", "id": "alice"}, "prompt": "book a flight to Paris", "catalog": "travel"})
}

async fn setup(app: &Router) -> String {
    let (s, b) = call(
        app,
        Some("k-admin-a"),
        "PUT",
        "/v1/catalogs/travel",
        Some(travel_catalog()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = call(
        app,
        Some("k-fe-a"),
        "POST",
        "/v1/workflows",
        Some(intent_body()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["workflow_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn missing_credentials_are_401_and_open_routes_stay_open() {
    let app = app(None);
    for (method, uri) in [
        ("GET", "/v1/catalogs/travel"),
        ("POST", "/v1/intents"),
        ("POST", "/v1/workflows"),
        ("GET", "/v1/drift"),
        ("POST", "/access/v1/evaluation"),
        ("GET", "/metrics"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        use tower::ServiceExt;
        let resp = app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(resp.headers().get("www-authenticate").is_some());
    }
    let (s, b) = call(&app, Some("wrong-key"), "GET", "/v1/drift", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credential"))
    );
    for uri in ["/healthz", "/readyz", "/.well-known/authzen-configuration"] {
        let (s, _) = call(&app, None, "GET", uri, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn each_route_needs_its_role() {
    let app = app(None);
    let wf = setup(&app).await;
    let step =
        json!({"actor": {"type": "agent", "id": "a"}, "tool": "search_flights", "arguments": {}});
    let eval = json!({"subject": {"type": "agent", "id": "a"}, "action": {"name": "search_flights"},
                      "resource": {"type": "tool", "id": "search_flights"}, "context": {"workflow_id": wf}});
    let routes: Vec<(&str, String, Option<Value>, &[&str])> = vec![
        (
            "PUT",
            "/v1/catalogs/other".into(),
            Some(travel_catalog()),
            &["k-admin-a"],
        ),
        (
            "GET",
            "/v1/catalogs/travel".into(),
            None,
            &["k-admin-a", "k-fe-a", "k-an-a"],
        ),
        (
            "POST",
            "/v1/intents".into(),
            Some(intent_body()),
            &["k-fe-a"],
        ),
        (
            "POST",
            "/v1/workflows".into(),
            Some(intent_body()),
            &["k-fe-a"],
        ),
        (
            "POST",
            format!("/v1/workflows/{wf}/steps"),
            Some(step),
            &["k-pep-a"],
        ),
        ("GET", format!("/v1/workflows/{wf}"), None, &["k-an-a"]),
        (
            "GET",
            format!("/v1/workflows/{wf}/report"),
            None,
            &["k-an-a"],
        ),
        ("GET", "/v1/drift".into(), None, &["k-an-a"]),
        (
            "POST",
            "/access/v1/evaluation".into(),
            Some(eval),
            &["k-pep-a"],
        ),
    ];
    for (method, uri, body, allowed) in routes {
        for key in ["k-admin-a", "k-fe-a", "k-pep-a", "k-an-a"] {
            let (s, b) = call(&app, Some(key), method, &uri, body.clone()).await;
            if allowed.contains(&key) {
                assert!(s.is_success(), "{key} {method} {uri}: {s} {b}");
            } else {
                assert_eq!(
                    (s, b["error"]["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("forbidden")),
                    "{key} {method} {uri}"
                );
            }
        }
    }
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let app = app(None);
    let wf = setup(&app).await;
    call(&app, Some("k-pep-a"), "POST", &format!("/v1/workflows/{wf}/steps"),
         Some(json!({"actor": {"type": "agent", "id": "a"}, "tool": "cancel_booking", "arguments": {}}))).await;
    let (s, _) = call(
        &app,
        Some("k-an-a"),
        "GET",
        &format!("/v1/workflows/{wf}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for (method, uri, body) in [
        ("GET", format!("/v1/workflows/{wf}"), None),
        ("GET", format!("/v1/workflows/{wf}/report"), None),
        (
            "POST",
            format!("/v1/workflows/{wf}/steps"),
            Some(json!({"actor": {"type": "agent", "id": "a"}, "tool": "x"})),
        ),
        ("POST", format!("/v1/workflows/{wf}/close"), None),
        (
            "POST",
            format!("/v1/workflows/{wf}/authorization_details"),
            Some(json!({"actor": {"type": "agent", "id": "a"}})),
        ),
    ] {
        let (s, b) = call(&app, Some("k-all-b"), method, &uri, body).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_workflow")),
            "{uri}"
        );
    }
    let (s, _) = call(&app, Some("k-admin-b"), "GET", "/v1/catalogs/travel", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, drift_a) = call(&app, Some("k-an-a"), "GET", "/v1/drift", None).await;
    assert_eq!(drift_a["items"].as_array().unwrap().len(), 1);
    let (_, drift_b) = call(&app, Some("k-all-b"), "GET", "/v1/drift", None).await;
    assert!(drift_b["items"].as_array().unwrap().is_empty());
    let eval = json!({"subject": {"type": "agent", "id": "a"}, "action": {"name": "search_flights"},
                      "resource": {"type": "tool", "id": "search_flights"}, "context": {"workflow_id": wf}});
    let (_, d) = call(
        &app,
        Some("k-all-b"),
        "POST",
        "/access/v1/evaluation",
        Some(eval),
    )
    .await;
    assert_eq!(
        d["decision"], false,
        "a foreign workflow is unknown to the PDP: {d}"
    );
}

#[tokio::test]
async fn rejected_requests_store_nothing() {
    let app = app(None);
    let wf = setup(&app).await;
    let (s, _) = call(
        &app,
        Some("k-fe-a"),
        "PUT",
        "/v1/catalogs/sneaky",
        Some(travel_catalog()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&app, Some("k-admin-a"), "GET", "/v1/catalogs/sneaky", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let step =
        json!({"actor": {"type": "agent", "id": "a"}, "tool": "cancel_booking", "arguments": {}});
    for key in [None, Some("k-an-a"), Some("bogus")] {
        let (s, _) = call(
            &app,
            key,
            "POST",
            &format!("/v1/workflows/{wf}/steps"),
            Some(step.clone()),
        )
        .await;
        assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN);
    }
    let (_, w) = call(
        &app,
        Some("k-an-a"),
        "GET",
        &format!("/v1/workflows/{wf}"),
        None,
    )
    .await;
    assert!(w["steps"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let app = app(Some((1, 3)));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let req = Request::builder()
            .uri("/v1/drift")
            .header("authorization", "Bearer k-an-a")
            .body(Body::empty())
            .unwrap();
        use tower::ServiceExt;
        let resp = app.clone().oneshot(req).await.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
        }
        statuses.push(resp.status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        2
    );
    // Another client has its own bucket.
    let (s, _) = call(&app, Some("k-all-b"), "GET", "/v1/drift", None).await;
    assert_eq!(s, StatusCode::OK);
}

/// AuthZEN searches list only the caller's tenant's entities (and shared
/// ones), and an evaluation naming another tenant's entity is denied.
#[tokio::test]
async fn searches_are_scoped_to_the_callers_tenant() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        r#"permit(principal, action == Action::"read", resource);"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("entities.json"),
        json!([
            {"uid": {"type": "record", "id": "acme-plan"}, "attrs": {"tenant": "acme"}, "parents": []},
            {"uid": {"type": "record", "id": "globex-plan"}, "attrs": {"tenant": "globex"}, "parents": []},
            {"uid": {"type": "record", "id": "handbook"}, "attrs": {}, "parents": []}
        ])
        .to_string(),
    )
    .unwrap();
    let pdp = telos::pdp::Pdp::new(
        Some(telos::pdp::BasePolicy::load(dir.path()).unwrap()),
        false,
    );
    let app = app_with_pdp(None, pdp);
    let search = json!({"subject": {"type": "user", "id": "u"}, "action": {"name": "read"}, "resource": {"type": "record"}});
    let ids = |b: &Value| {
        let mut v: Vec<String> = b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let (s, a) = call(
        &app,
        Some("k-pep-a"),
        "POST",
        "/access/v1/search/resource",
        Some(search.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(ids(&a), vec!["acme-plan", "handbook"]);
    let (s, b) = call(
        &app,
        Some("k-all-b"),
        "POST",
        "/access/v1/search/resource",
        Some(search),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(ids(&b), vec!["globex-plan", "handbook"]);
    let eval = |id: &str| json!({"subject": {"type": "user", "id": "u"}, "action": {"name": "read"}, "resource": {"type": "record", "id": id}});
    let (_, d) = call(
        &app,
        Some("k-all-b"),
        "POST",
        "/access/v1/evaluation",
        Some(eval("acme-plan")),
    )
    .await;
    assert_eq!(d["decision"], false, "{d}");
    let (_, d) = call(
        &app,
        Some("k-pep-a"),
        "POST",
        "/access/v1/evaluation",
        Some(eval("acme-plan")),
    )
    .await;
    assert_eq!(d["decision"], true, "{d}");
}
