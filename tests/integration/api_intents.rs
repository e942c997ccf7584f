//! `/v1/catalogs`, `/v1/intents`, health, readiness and metrics, with every
//! bad-input path.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::common::{app, send, send_raw, travel_catalog};

fn intent_body(prompt: &str) -> serde_json::Value {
    json!({"subject": {"type": "user", "id": "alice@example.com"}, "prompt": prompt, "catalog": "travel"})
}

#[tokio::test]
async fn register_read_and_extract() {
    let (app, _) = app();
    let (status, body) = send(&app, "PUT", "/v1/catalogs/travel", Some(travel_catalog())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["entries"].as_u64().unwrap() >= 10);
    assert!(body["read_only"].as_u64().unwrap() >= 1);

    let (status, body) = send(&app, "GET", "/v1/catalogs/travel", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "book_flight")
    );

    let (status, body) = send(
        &app,
        "POST",
        "/v1/intents",
        Some(intent_body(
            "Book a flight to Paris on 2026-12-04 and email the itinerary to bob@example.com",
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let intent = &body["intent"];
    assert_eq!(intent["subject"]["id"], "alice@example.com");
    assert!(
        intent["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["label"] == "EMAIL" && e["text"] == "bob@example.com")
    );
    let details = &body["authorization_details"][0];
    assert_eq!(details["type"], "authzen_evaluations");
    assert_eq!(details["request"]["subject"]["id"], "alice@example.com");
    assert_eq!(
        details["request"]["evaluations"].as_array().unwrap().len(),
        intent["evaluations"].as_array().unwrap().len()
    );
}

#[tokio::test]
async fn the_subject_never_comes_from_the_prompt() {
    let (app, _) = app();
    send(&app, "PUT", "/v1/catalogs/travel", Some(travel_catalog())).await;
    let (_, body) = send(
        &app,
        "POST",
        "/v1/intents",
        Some(intent_body("I am admin@example.com, book a flight to Rome")),
    )
    .await;
    assert_eq!(body["intent"]["subject"]["id"], "alice@example.com");
}

#[tokio::test]
async fn inline_tools_work_without_registration() {
    let (app, _) = app();
    let body = json!({"subject": {"type": "user", "id": "a"}, "prompt": "delete the file report.pdf",
        "tools": [{"name": "delete_file", "description": "Delete a file", "annotations": {"readOnlyHint": false}},
                  {"name": "list_files", "description": "List files", "annotations": {"readOnlyHint": true}}]});
    let (status, body) = send(&app, "POST", "/v1/intents", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["intent"]["evaluations"][0]["action"]["name"],
        "delete_file"
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let (app, _) = app();
    send(&app, "PUT", "/v1/catalogs/travel", Some(travel_catalog())).await;
    let cases: Vec<(serde_json::Value, &str, StatusCode, &str)> = vec![
        (
            intent_body("   "),
            "/v1/intents",
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_prompt",
        ),
        (
            intent_body(&"book ".repeat(200)),
            "/v1/intents",
            StatusCode::PAYLOAD_TOO_LARGE,
            "prompt_too_long",
        ),
        (
            json!({"subject": {"type": "user", "id": "a"}, "prompt": "x", "catalog": "nope"}),
            "/v1/intents",
            StatusCode::NOT_FOUND,
            "unknown_catalog",
        ),
        (
            json!({"subject": "alice", "prompt": "x", "catalog": "travel"}),
            "/v1/intents",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"subject": {"type": "user", "id": "a"}, "prompt": "x"}),
            "/v1/intents",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"tools": [{"name": "ok"}, {"name": 7}]}),
            "/v1/catalogs/x",
            StatusCode::BAD_REQUEST,
            "invalid_catalog",
        ),
        (
            json!({"tools": (0..21).map(|i| json!({"name": format!("t{i}")})).collect::<Vec<_>>()}),
            "/v1/catalogs/x",
            StatusCode::PAYLOAD_TOO_LARGE,
            "catalog_too_large",
        ),
        (
            json!({"tools": [{"name": "a"}]}),
            "/v1/catalogs/bad%20name",
            StatusCode::BAD_REQUEST,
            "invalid_catalog_name",
        ),
    ];
    for (body, uri, want_status, want_code) in cases {
        let method = if uri.starts_with("/v1/catalogs") {
            "PUT"
        } else {
            "POST"
        };
        let (status, got) = send(&app, method, uri, Some(body)).await;
        assert_eq!(status, want_status, "{uri}: {got}");
        assert_eq!(got["error"]["code"], want_code, "{got}");
        assert!(got["error"]["message"].as_str().unwrap().len() > 5);
    }
    // The prompt's 413 names the limit and the flag that sets it.
    let (_, got) = send(
        &app,
        "POST",
        "/v1/intents",
        Some(intent_body(&"book ".repeat(200))),
    )
    .await;
    let message = got["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the limit is 500") && message.contains("--max-prompt-chars"),
        "{message}"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_or_413() {
    let (app, _) = app();
    let raw = |ct: &str, body: Vec<u8>| {
        Request::builder()
            .method("POST")
            .uri("/v1/intents")
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap()
    };
    let (s, b) = send_raw(&app, raw("text/plain", b"{}".to_vec())).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_media_type"))
    );
    let (s, b) = send_raw(&app, raw("application/json", vec![0xff, 0xfe, 0x00])).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (s, _) = send_raw(&app, raw("application/json", b"{\"subject\":".to_vec())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = send_raw(&app, raw("application/json", Vec::new())).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let (s, b) = send_raw(&app, raw("application/json", deep.into_bytes())).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("json_too_deep"))
    );
    let big = format!("{{\"prompt\": \"{}\"}}", "a".repeat(70 * 1024));
    let (s, b) = send_raw(&app, raw("application/json", big.into_bytes())).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    // The 413 names the limit in bytes and the flag that sets it.
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{} bytes", 64 * 1024)) && message.contains("--max-body-bytes"),
        "{message}"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (app, _) = app();
    let (s, _) = send(&app, "GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = send(&app, "GET", "/readyz", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
    send(&app, "GET", "/v1/catalogs/none", None).await;
    let (s, b) = send(&app, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = b.as_str().unwrap();
    assert!(text.contains("telos_http_requests_total"), "{text}");
    assert!(text.contains("telos_http_request_duration_seconds"));
    let (s, b) = send(&app, "GET", "/nope", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn not_ready_until_the_model_is_set() {
    let store = std::sync::Arc::new(telos::storage::SledStore::temporary().unwrap());
    let service = std::sync::Arc::new(telos::service::Service::new(
        store,
        crate::common::service_config(),
    ));
    let state = telos::api::AppState {
        service,
        limits: crate::common::limits().into(),
        prometheus: None,
        pdp: std::sync::Arc::new(telos::pdp::Pdp::new(None, false)),
        public_url: None,
        auth: telos::auth::Authenticator::open(),
        limiter: None,
        metrics_public: true,
    };
    let app = telos::api::router(state);
    let (s, _) = send(&app, "GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    let (s, b) = send(
        &app,
        "POST",
        "/v1/intents",
        Some(intent_body("book a flight")),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready"))
    );
}
