//! Sign-in and sign-out: an API key exchanged for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` over TLS, `Max-Age` the
//! session's life); both forms carry a CSRF token (a cookie-bound one on
//! the login form, the session's on the logout form).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::pages::LoginPage;
use super::session::{same_token, token};
use super::{CSRF_COOKIE, SESSION_COOKIE, Ui, UiError};
use crate::api::need;
use crate::auth::{Presented, Role};

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The analyst's API key.
    #[serde(default)]
    api_key: String,
    /// The form's CSRF token.
    #[serde(default)]
    csrf: String,
}

/// The logout form's fields.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    /// The session's CSRF token.
    #[serde(default)]
    csrf: String,
}

fn cookie(name: &'static str, value: String, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/ui")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(max_age_secs))
        .build()
}

fn expired(name: &'static str, secure: bool) -> Cookie<'static> {
    cookie(name, String::new(), secure, 0)
}

/// The login page with a fresh (or the current) form token.
fn login_page(
    ui: &Ui,
    jar: CookieJar,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, UiError> {
    let csrf = match jar.get(CSRF_COOKIE).map(|c| c.value().to_string()) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => t,
        _ => token().ok_or(UiError::NoRandomness)?,
    };
    let body = LoginPage {
        csrf: csrf.clone(),
        error,
    }
    .render()?;
    let jar = jar.add(cookie(CSRF_COOKIE, csrf, ui.secure(headers), 3600));
    Ok((status, jar, Html(body)).into_response())
}

/// `GET /ui/login`.
pub async fn form(
    State(ui): State<Ui>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    if ui.viewer(&jar).is_ok() {
        return Ok(Redirect::to("/ui/inbox").into_response());
    }
    login_page(&ui, jar, &headers, StatusCode::OK, None)
}

/// `POST /ui/login`: checks the form token and the key, opens a session.
pub async fn submit(
    State(ui): State<Ui>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    if !ui.app.auth.enabled() {
        return Ok(Redirect::to("/ui/inbox").into_response());
    }
    let expected = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        return Err(UiError::Csrf);
    }
    let presented = Presented {
        bearer: Some(form.api_key.trim()).filter(|k| !k.is_empty()),
        dpop: None,
        method: "POST",
        url: "",
    };
    let caller = match ui.app.auth.authenticate(presented).await {
        Ok(c) => c,
        Err(_) => {
            metrics::counter!("telos_auth_rejected_total").increment(1);
            let message = "unknown key".to_string();
            return login_page(&ui, jar, &headers, StatusCode::UNAUTHORIZED, Some(message));
        }
    };
    if need(&caller, &[Role::Analyst]).is_err() {
        let message = "this key has no analyst role".to_string();
        return login_page(&ui, jar, &headers, StatusCode::FORBIDDEN, Some(message));
    }
    let (id, _) = ui.sessions.create(caller).ok_or(UiError::NoRandomness)?;
    let secure = ui.secure(&headers);
    let ttl = i64::try_from(ui.sessions.ttl().as_secs()).unwrap_or(i64::MAX);
    let jar = jar
        .add(cookie(SESSION_COOKIE, id, secure, ttl))
        .add(expired(CSRF_COOKIE, secure));
    Ok((jar, Redirect::to("/ui/inbox")).into_response())
}

/// `POST /ui/logout`: ends the session whose token the form carries.
pub async fn logout(
    State(ui): State<Ui>,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, UiError> {
    let Some(id) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(Redirect::to("/ui/login").into_response());
    };
    let Some(session) = ui.sessions.get(&id) else {
        let jar = jar.add(expired(SESSION_COOKIE, ui.secure(&headers)));
        return Ok((jar, Redirect::to("/ui/login")).into_response());
    };
    if !same_token(&form.csrf, &session.csrf) {
        return Err(UiError::Csrf);
    }
    ui.sessions.remove(&id);
    let jar = jar.add(expired(SESSION_COOKIE, ui.secure(&headers)));
    Ok((jar, Redirect::to("/ui/login")).into_response())
}
