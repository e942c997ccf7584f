//! Shared helpers: an in-process app over a temporary store, and request
//! helpers for `tower::ServiceExt::oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use telos::api::{AppState, router};
use telos::config::LimitArgs;
use telos::extraction::keyword::KeywordEncoder;
use telos::extraction::runtime::Calibration;
use telos::extraction::{ExtractionConfig, Extractor};
use telos::service::Service;
use telos::storage::SledStore;

/// Default request limits, smaller where tests probe them.
pub fn limits() -> LimitArgs {
    LimitArgs {
        max_body_bytes: 64 * 1024,
        max_prompt_chars: 500,
        max_catalog_entries: 20,
        max_inline_tools: 8,
        max_arguments_bytes: 4096,
        header_read_timeout_secs: 5,
        max_connections: 64,
        max_concurrent_requests: 64,
        max_json_depth: 32,
        request_timeout_secs: 10,
    }
}

/// Service settings matching [`limits`].
pub fn service_config() -> telos::service::ServiceConfig {
    telos::service::ServiceConfig {
        catalog_limits: telos::catalog::Limits {
            max_entries: limits().max_catalog_entries,
            ..Default::default()
        },
        max_inline_tools: limits().max_inline_tools,
        ..Default::default()
    }
}

/// A service over `store` with `config` whose extractor is the keyword
/// encoder (no model needed).
pub fn keyword_service(
    store: Arc<dyn telos::storage::Store>,
    config: telos::service::ServiceConfig,
) -> Arc<Service> {
    let service = Arc::new(Service::new(store, config));
    let enc = KeywordEncoder::new(Calibration {
        scale: 10.0,
        bias: -2.0,
    });
    service.set_extractor(Extractor::new(Arc::new(enc), ExtractionConfig::default()));
    service
}

/// API keys `(client, tenant, key, roles)` as `--api-keys` would load them
/// (each key stored by its sha256).
pub fn api_keys(keys: &[(&str, &str, &str, &[&str])]) -> telos::auth::ApiKeys {
    use sha2::{Digest, Sha256};
    let file: Vec<Value> = keys
        .iter()
        .map(|(client, tenant, key, roles)| {
            serde_json::json!({"client": client, "tenant": tenant, "roles": roles,
                               "sha256": hex::encode(Sha256::digest(key.as_bytes()))})
        })
        .collect();
    telos::auth::ApiKeys::from_json(&Value::Array(file).to_string()).unwrap()
}

/// A banking catalog: the two side effects a request to pay an invoice and
/// email the receipt asks for (`transfer_money`, `send_email`), one it does
/// not (`change_password`), and two reads.
pub fn bank_catalog() -> Value {
    serde_json::json!({"tools": [
        {"name": "transfer_money", "description": "Pay an invoice or bill: transfer money to an account",
         "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}, "iban": {"type": "string"}}},
         "annotations": {"readOnlyHint": false}},
        {"name": "send_email", "description": "Send email receipt message",
         "inputSchema": {"type": "object", "properties": {"to": {"type": "string", "format": "email"}}},
         "annotations": {"readOnlyHint": false}},
        {"name": "change_password", "description": "Change account password", "annotations": {"readOnlyHint": false}},
        {"name": "get_invoice", "description": "Look up the details of a document", "annotations": {"readOnlyHint": true}},
        {"name": "read_vault", "description": "Read stored secrets", "annotations": {"readOnlyHint": true}}
    ]})
}

/// An app whose extractor is the keyword encoder (no model needed).
pub fn app() -> (Router, Arc<Service>) {
    app_with(None)
}

/// The same app with Cedar base policies loaded from `policies`.
pub fn app_with(policies: Option<&std::path::Path>) -> (Router, Arc<Service>) {
    let store = Arc::new(SledStore::temporary().unwrap());
    let service = keyword_service(store, service_config());
    let state = AppState {
        service: Arc::clone(&service),
        limits: limits().into(),
        prometheus: telos::telemetry::prometheus(),
        pdp: Arc::new(telos::pdp::Pdp::new(
            policies.map(|p| telos::pdp::BasePolicy::load(p).unwrap()),
            false,
        )),
        public_url: None,
        auth: telos::auth::Authenticator::open(),
        limiter: None,
        metrics_public: true,
    };
    (router(state), service)
}

/// Sends one request and returns the status and JSON body (Null if none).
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&v).unwrap())
        }
        None => Body::empty(),
    };
    send_raw(app, req.body(body).unwrap()).await
}

/// Sends a prepared request.
pub async fn send_raw(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    use tower::ServiceExt;
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, json)
}

/// The travel catalog of the fixtures.
pub fn travel_catalog() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/intents/travel/catalog.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// An app over `store` with `pdp`, the keyword encoder standing in for
/// the model.
pub fn app_from(store: Arc<dyn telos::storage::Store>, pdp: telos::pdp::Pdp) -> Router {
    let service = keyword_service(store, service_config());
    router(AppState {
        service,
        limits: limits().into(),
        prometheus: telos::telemetry::prometheus(),
        pdp: Arc::new(pdp),
        public_url: None,
        auth: telos::auth::Authenticator::open(),
        limiter: None,
        metrics_public: true,
    })
}
