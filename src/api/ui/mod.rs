//! The analyst web app at `/ui`: server-rendered pages (askama templates
//! under `templates/`) over the same tracker and store as the API, readable
//! without JavaScript. Every response carries a strict
//! Content-Security-Policy (no inline script or style; the one stylesheet
//! is served from the binary). With authentication configured an analyst
//! signs in with an API key and gets a session cookie; without it every
//! visitor is the anonymous caller (tenant `default`), as for the API.

mod export;
mod login;
mod pages;
mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use std::sync::Arc;
use std::time::Duration;

use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::service::tracker::TrackerError;
use crate::storage::StorageError;
pub use session::Sessions;

/// The policy of every `/ui` response: nothing but same-origin styles,
/// images and form posts.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The session cookie.
pub const SESSION_COOKIE: &str = "telos_session";
/// The login form's CSRF cookie (before there is a session).
pub const CSRF_COOKIE: &str = "telos_csrf";

/// Web app settings (`telos serve --ui-…`).
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// Mark cookies `Secure` even when no TLS is seen (set it behind a
    /// TLS-terminating proxy that does not send `X-Forwarded-Proto`).
    pub secure_cookies: bool,
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// Sessions held in memory at most.
    pub max_sessions: usize,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            session_ttl: Duration::from_secs(8 * 3600),
            max_sessions: 10_000,
        }
    }
}

/// The web app's state.
#[derive(Clone)]
pub(crate) struct Ui {
    app: AppState,
    sessions: Arc<Sessions>,
    config: UiConfig,
}

/// What a page or export failed on.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// An error the API would answer the same way (status from it).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A template failed to render (500).
    #[error("rendering a page: {0}")]
    Render(#[from] askama::Error),
    /// A form's CSRF token is missing or wrong (403).
    #[error("the form expired or was not sent from this site; reload the page and try again")]
    Csrf,
    /// No randomness for a session id (500).
    #[error("no randomness available for a session")]
    NoRandomness,
}

impl From<TrackerError> for UiError {
    fn from(e: TrackerError) -> Self {
        Self::Api(e.into())
    }
}

impl From<StorageError> for UiError {
    fn from(e: StorageError) -> Self {
        Self::Api(e.into())
    }
}

impl UiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Api(e) => e.status(),
            Self::Render(_) | Self::NoRandomness => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Csrf => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Api(ApiError::Internal(detail)) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_string()
            }
            Self::Render(e) => {
                tracing::error!(error = %e, "rendering a page");
                "internal error".to_string()
            }
            Self::Api(_) | Self::Csrf | Self::NoRandomness => self.to_string(),
        };
        let page = pages::ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("error"),
            message,
        };
        match askama::Template::render(&page) {
            Ok(body) => (status, Html(body)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    caller: Caller,
    /// The session's form token; `None` without authentication.
    csrf: Option<String>,
}

/// The viewer of an analyst's page or export: signed in (anyone, without
/// authentication) with the analyst role. Without a session the request is
/// answered with a redirect to the login form; without the role, with the
/// error page.
pub(crate) struct Analyst(pub(crate) Viewer);

impl axum::extract::FromRequestParts<Ui> for Analyst {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        ui: &Ui,
    ) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let viewer = ui.viewer(&jar).map_err(IntoResponse::into_response)?;
        super::need(&viewer.caller, &[crate::auth::Role::Analyst])
            .map_err(|e| UiError::from(e).into_response())?;
        Ok(Self(viewer))
    }
}

impl Ui {
    /// The signed-in viewer, the anonymous one without authentication, or
    /// a redirect to the login form.
    fn viewer(&self, jar: &CookieJar) -> Result<Viewer, Redirect> {
        if !self.app.auth.enabled() {
            return Ok(Viewer {
                caller: Caller::anonymous(),
                csrf: None,
            });
        }
        jar.get(SESSION_COOKIE)
            .and_then(|c| self.sessions.get(c.value()))
            .map(|s| Viewer {
                caller: s.caller,
                csrf: Some(s.csrf),
            })
            .ok_or_else(|| Redirect::to("/ui/login"))
    }

    /// Whether cookies get `Secure`: configured, a public URL over https,
    /// or a proxy saying the client came over TLS.
    fn secure(&self, headers: &HeaderMap) -> bool {
        self.config.secure_cookies
            || self
                .app
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }
}

/// The web app's routes, for merging into the API router.
pub fn router(app: AppState, config: UiConfig) -> Router<AppState> {
    let ui = Ui {
        sessions: Arc::new(Sessions::new(config.session_ttl, config.max_sessions)),
        app,
        config,
    };
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", axum::routing::post(login::logout))
        .route("/ui/inbox", get(pages::inbox))
        .route("/ui/inbox.csv", get(export::inbox_csv))
        .route("/ui/inbox.json", get(export::inbox_json))
        .route("/ui/workflows", get(pages::workflows))
        .route("/ui/workflows/{id}", get(pages::workflow))
        .route("/ui/workflows/{id}/report.json", get(export::workflow_json))
        .route("/ui/static/ui.css", get(css))
        .route("/ui/static/favicon.svg", get(favicon))
        .layer(middleware::from_fn(security_headers))
        .with_state(ui)
}

async fn home() -> Redirect {
    Redirect::to("/ui/inbox")
}

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("static/ui.css"),
    )
}

async fn favicon() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("static/favicon.svg"),
    )
}

/// The Content-Security-Policy and friends on every `/ui` response; pages
/// are not cached (they hold tenant data).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
