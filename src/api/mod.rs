//! The HTTP API (axum). Handlers parse input, call one service function
//! and map the result; wire types live in [`wire`]; every error is an
//! [`ApiError`]. Only this module touches axum.

mod authn;
mod authzen;
pub mod error;
mod forward_auth;
mod handlers;
mod issuance;
pub mod json;
pub mod serve;
pub mod ui;
pub mod wire;
mod workflows;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Authenticator, Caller, Role};
use crate::pdp::Pdp;
use crate::service::Service;
pub use error::ApiError;

pub use authn::RateLimiter;

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: Arc<Service>,
    /// Request limits.
    pub limits: Limits,
    /// Renders `/metrics`, when a recorder is installed.
    pub prometheus: Option<PrometheusHandle>,
    /// The AuthZEN decision point.
    pub pdp: Arc<Pdp>,
    /// The base URL published in the AuthZEN discovery document; the
    /// request's `Host` when unset.
    pub public_url: Option<String>,
    /// Authenticates callers.
    pub auth: Authenticator,
    /// Per-client request rate limit, when configured.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Whether `/metrics` is served without credentials.
    pub metrics_public: bool,
}

/// What a client may send (`serve` fills it from its flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Longest prompt in characters.
    pub max_prompt_chars: usize,
    /// Largest `arguments` of a step report, in bytes of JSON.
    pub max_arguments_bytes: usize,
    /// Deepest JSON nesting accepted in a body.
    pub max_json_depth: usize,
    /// Requests in progress at most; beyond it requests get 429.
    pub max_concurrent_requests: usize,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_secs: u64,
}

/// The router with every route, limit and layer, and the web app with
/// its default settings.
pub fn router(state: AppState) -> Router {
    router_with(state, ui::UiConfig::default())
}

/// [`router`] with the web app's settings.
pub fn router_with(state: AppState, ui_config: ui::UiConfig) -> Router {
    let timeout = Duration::from_secs(state.limits.request_timeout_secs);
    let max_body = state.limits.max_body_bytes;
    let inflight = Arc::new(tokio::sync::Semaphore::new(
        state.limits.max_concurrent_requests.max(1),
    ));
    Router::new()
        .route(
            "/v1/catalogs/{name}",
            put(handlers::put_catalog).get(handlers::get_catalog),
        )
        .route("/v1/intents", post(handlers::post_intent))
        .route("/v1/workflows", post(workflows::create))
        .route("/v1/workflows/{id}", get(workflows::get))
        .route("/v1/workflows/{id}/steps", post(workflows::report_step))
        .route("/v1/workflows/{id}/close", post(workflows::close))
        .route("/v1/workflows/{id}/report", get(workflows::report))
        .route(
            "/v1/workflows/{id}/authorization_details",
            post(issuance::authorization_details),
        )
        .route("/v1/drift", get(workflows::drift))
        .route(forward_auth::PATH, any(forward_auth::check))
        .route("/v1/forward-auth/{*path}", any(forward_auth::check))
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations))
        .route("/access/v1/search/subject", post(authzen::search_subject))
        .route("/access/v1/search/resource", post(authzen::search_resource))
        .route("/access/v1/search/action", post(authzen::search_action))
        .route(
            "/.well-known/authzen-configuration",
            get(authzen::configuration),
        )
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .merge(ui::router(state.clone(), ui_config))
        .fallback(handlers::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let inflight = Arc::clone(&inflight);
            async move {
                // Health checks are never shed: an orchestrator must see a
                // live process as live, however loaded.
                if matches!(req.uri().path(), "/healthz" | "/readyz") {
                    return next.run(req).await;
                }
                // Load shedding: beyond the limit, answer 429 at once.
                match inflight.try_acquire_owned() {
                    Ok(_permit) => next.run(req).await,
                    Err(_) => ApiError::Overloaded.into_response(),
                }
            }
        }))
        .layer(middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let path = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("request", method = %req.method(), path)
        }))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .with_state(state)
}

/// Counts requests and records their latency by route and status.
async fn record_metrics(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("path", path), ("method", method), ("status", status)];
    metrics::counter!("telos_http_requests_total", &labels).increment(1);
    metrics::histogram!("telos_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Fails unless the caller has one of `roles`.
pub fn need(caller: &Caller, roles: &[Role]) -> Result<(), ApiError> {
    if roles.iter().any(|r| caller.roles.contains(r)) {
        Ok(())
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden {
            code: "forbidden",
            message: format!("this route needs one of the roles {}", names.join(", ")),
        })
    }
}
