//! Authentication middleware: every `/v1` and `/access` request (and
//! `/metrics` unless it is public) must present a credential; the
//! authenticated [`Caller`] is put in the request's extensions for handlers
//! to take, and each client is held to its rate limit. Health, readiness and
//! the AuthZEN discovery document stay open. A rejected request reaches no
//! handler, so nothing is stored for it.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use std::num::NonZeroU32;

use super::{ApiError, AppState};
use crate::auth::{Caller, Presented, bearer};

/// A per-client token bucket.
pub struct RateLimiter {
    inner: governor::RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
    clock: DefaultClock,
}

impl RateLimiter {
    /// `per_second` requests a second per client, with bursts of `burst`.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        Self {
            inner: governor::RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Admits one request of `client`, or says when to retry.
    pub fn check(&self, client: &str) -> Result<(), ApiError> {
        if self.inner.len() > 100_000 {
            self.inner.retain_recent();
        }
        self.inner
            .check_key(&client.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::RateLimited {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            })
    }
}

fn protected(path: &str, metrics_public: bool) -> bool {
    path.starts_with("/v1/")
        || path.starts_with("/access/")
        || (path == "/metrics" && !metrics_public)
}

/// Authenticates protected routes and applies the rate limit.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !protected(&path, state.metrics_public) {
        return next.run(req).await;
    }
    // Owned copies: the request body is not `Sync`, so nothing may borrow
    // the request across the await below.
    let (url, authorization, dpop, method) = {
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // DPoP's `htu` is checked against the configured public URL only:
        // the client's `Host` (and a guessed scheme) proves nothing.
        let url = match &state.public_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => String::new(),
        };
        (
            url,
            header(AUTHORIZATION),
            header(axum::http::HeaderName::from_static("dpop")),
            req.method().as_str().to_string(),
        )
    };
    let presented = Presented {
        bearer: bearer(authorization.as_deref()),
        dpop: dpop.as_deref(),
        method: &method,
        url: &url,
    };
    let caller = match state.auth.authenticate(presented).await {
        Ok(c) => c,
        Err(e) => {
            metrics::counter!("telos_auth_rejected_total").increment(1);
            return ApiError::from(e).into_response();
        }
    };
    // Without authentication every caller is the same anonymous client, so
    // a per-client limit would throttle the whole (loopback) server.
    if let Some(limiter) = state.limiter.as_ref().filter(|_| state.auth.enabled())
        && let Err(e) = limiter.check(&caller.client)
    {
        metrics::counter!("telos_rate_limited_total").increment(1);
        return e.into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized {
                code: "unauthenticated",
                message: "authentication required".into(),
            })
    }
}
