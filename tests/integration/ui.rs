//! The analyst web app at `/ui`: the Content-Security-Policy on every
//! response, the inbox's filters and pagination, the workflow page,
//! exports, sign-in and sign-out with their cookie attributes and CSRF
//! checks, the development mode without authentication, and tenant
//! isolation. The keyword encoder stands in for the model.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::common::{api_keys, bank_catalog, keyword_service, limits, service_config};

pub const KEYS: [(&str, &str, &str, &[&str]); 5] = [
    ("admin-a", "acme", "k-admin-a", &["admin"]),
    ("fe-a", "acme", "k-fe-a", &["frontend", "pep"]),
    ("an-a", "acme", "k-an-a", &["analyst"]),
    ("pep-a", "acme", "k-pep-a", &["pep"]),
    ("an-b", "globex", "k-an-b", &["analyst"]),
];

/// An app whose callers authenticate with [`KEYS`], or an open one.
pub fn app(auth: bool) -> Router {
    app_with(auth, telos::api::ui::UiConfig::default())
}

/// [`app`] with the web app's settings.
pub fn app_with(auth: bool, ui: telos::api::ui::UiConfig) -> Router {
    let store = Arc::new(telos::storage::SledStore::temporary().unwrap());
    let service = keyword_service(store, service_config());
    let authn = if auth {
        telos::auth::Authenticator::new(Some(api_keys(&KEYS)), None)
    } else {
        telos::auth::Authenticator::open()
    };
    telos::api::router_with(
        telos::api::AppState {
            service,
            limits: limits().into(),
            prometheus: None,
            pdp: Arc::new(telos::pdp::Pdp::new(None, false)),
            public_url: None,
            auth: authn,
            limiter: None,
            metrics_public: false,
        },
        ui,
    )
}

/// A response: status, headers, body text.
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Got {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Every `Set-Cookie` of the response.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The value of the cookie `name` this response sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().iter().find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap().to_string())
        })
    }
}

pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Got {
    use tower::ServiceExt;
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.map(Body::from).unwrap_or_default()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn api(app: &Router, key: Option<&str>, method: &str, uri: &str, body: Value) -> Value {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let got = call(app, method, uri, &headers, Some(body.to_string())).await;
    assert!(got.status.is_success(), "{method} {uri}: {}", got.body);
    serde_json::from_str(&got.body).unwrap()
}

pub const PROMPT: &str = "pay the invoice bill of $120 to DE89 3704 0044 0532 0130 00 and send the receipt email to bob@example.com";

/// Keys for seeding: `(admin, frontend+pep)`; `None` on an open app.
pub type SeedKeys = (Option<&'static str>, Option<&'static str>);

/// Registers the bank catalog and opens a workflow of `subject` with
/// `prompt`; its id.
pub async fn open(app: &Router, keys: SeedKeys, subject: &str, prompt: &str) -> String {
    api(app, keys.0, "PUT", "/v1/catalogs/bank", bank_catalog()).await;
    let b = api(
        app,
        keys.1,
        "POST",
        "/v1/workflows",
        json!({"subject": {"type": "user", "id": subject}, "prompt": prompt, "catalog": "bank"}),
    )
    .await;
    b["workflow_id"].as_str().unwrap().to_string()
}

/// Reports a step; its verdict.
pub async fn step(
    app: &Router,
    keys: SeedKeys,
    wf: &str,
    actor: &str,
    tool: &str,
    args: Value,
) -> Value {
    api(
        app,
        keys.1,
        "POST",
        &format!("/v1/workflows/{wf}/steps"),
        json!({"actor": {"type": "agent", "id": actor}, "tool": tool, "arguments": args}),
    )
    .await
}

/// A hijacked payment workflow: one allowed read, one allowed payment,
/// then three divergent steps (a password change, money to another
/// account, an unknown tool).
pub async fn hijack(app: &Router, keys: SeedKeys, subject: &str) -> String {
    let wf = open(app, keys, subject, PROMPT).await;
    step(app, keys, &wf, "fin", "get_invoice", json!({})).await;
    let b = step(
        app,
        keys,
        &wf,
        "fin",
        "transfer_money",
        json!({"amount": 120, "iban": "DE89370400440532013000"}),
    )
    .await;
    assert_eq!(b["verdict"], "allowed", "{b}");
    let b = step(app, keys, &wf, "fin", "change_password", json!({})).await;
    assert_eq!(b["reasons"][0]["code"], "tool_outside_intent", "{b}");
    let b = step(
        app,
        keys,
        &wf,
        "mallory",
        "transfer_money",
        json!({"amount": 120, "iban": "=HYPERLINK(\"x\")"}),
    )
    .await;
    assert_eq!(b["verdict"], "divergent", "{b}");
    let b = step(app, keys, &wf, "fin", "wire_crypto", json!({})).await;
    assert_eq!(b["reasons"][0]["code"], "unknown_tool", "{b}");
    wf
}

/// An open-ended workflow whose side effect waits for an approval.
pub async fn open_ended(app: &Router, keys: SeedKeys, subject: &str) -> String {
    let wf = open(app, keys, subject, "Do what the ticket from Bo asks").await;
    let b = step(
        app,
        keys,
        &wf,
        "fin",
        "send_email",
        json!({"to": "ana@example.com"}),
    )
    .await;
    assert_eq!(b["verdict"], "divergent", "{b}");
    let codes: Vec<&str> = b["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"approval_required"), "{b}");
    wf
}

pub const OPEN: SeedKeys = (None, None);
pub const ACME: SeedKeys = (Some("k-admin-a"), Some("k-fe-a"));

/// Every `/ui` HTML page: the exact policy, no inline script or style.
fn strict(got: &Got) {
    assert_eq!(got.header("content-security-policy"), telos::api::ui::CSP);
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert_eq!(got.header("x-frame-options"), "DENY");
    let lower = got.body.to_lowercase();
    assert!(!lower.contains("<script"), "no script");
    assert!(!lower.contains("<style"), "no style element");
    assert!(!lower.contains(" style="), "no style attribute");
    assert!(!regex_like_handler(&lower), "no inline handler");
    for attr in ["src=\"http", "href=\"http", "href=\"//", "src=\"//"] {
        assert!(!lower.contains(attr), "nothing from elsewhere: {attr}");
    }
}

/// Whether any `on…=` event handler attribute appears.
fn regex_like_handler(html: &str) -> bool {
    html.split(" on").skip(1).any(|rest| {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

/// The `href`s of anchors with `id`.
fn link(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let start = body[..at].rfind("href=\"")? + 6;
    let end = start + body[start..].find('"')?;
    Some(body[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// Rows of the inbox table.
fn rows(body: &str) -> usize {
    body.matches("<tr class=\"divergent\"").count()
        + body.matches("<tr class=\"approval_required\"").count()
}

#[tokio::test]
async fn without_authentication_every_page_is_the_anonymous_analysts() {
    let app = app(false);
    let wf = hijack(&app, OPEN, "alice").await;
    open_ended(&app, OPEN, "alice").await;

    let got = call(&app, "GET", "/ui", &[], None).await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.header("location"), "/ui/inbox");
    // No sign-in: the login form sends to the inbox, which names the mode.
    let got = call(&app, "GET", "/ui/login", &[], None).await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.header("location"), "/ui/inbox");
    let got = call(&app, "GET", "/ui/inbox", &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.header("content-type").starts_with("text/html"));
    assert_eq!(got.header("cache-control"), "no-store");
    strict(&got);
    assert!(got.body.contains("authentication off"));
    assert!(got.body.contains("tenant <b>default</b>"));
    assert!(!got.body.contains("Sign out"));
    assert_eq!(rows(&got.body), 4, "three divergent steps and one held");
    assert!(got.body.contains(&format!("/ui/workflows/{wf}#step-5")));
    assert!(got.cookies().is_empty(), "no cookie without sign-in");

    let css = call(&app, "GET", "/ui/static/ui.css", &[], None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.body.contains("body{"));
    assert_eq!(css.header("content-security-policy"), telos::api::ui::CSP);
    let icon = call(&app, "GET", "/ui/static/favicon.svg", &[], None).await;
    assert_eq!(icon.header("content-type"), "image/svg+xml");
}

#[tokio::test]
async fn the_inbox_filters_counts_and_pages() {
    let app = app(false);
    let wf = hijack(&app, OPEN, "alice").await;
    let held = open_ended(&app, OPEN, "carol").await;
    hijack(&app, OPEN, "bob").await;

    let all = call(&app, "GET", "/ui/inbox", &[], None).await;
    assert_eq!(rows(&all.body), 7);
    // Counts by reason over the page.
    assert!(
        all.body
            .contains("<li><code>tool_outside_intent</code> <b>2</b></li>"),
        "{}",
        all.body
    );
    assert!(
        all.body
            .contains("<li><code>unknown_tool</code> <b>2</b></li>")
    );
    assert!(
        all.body
            .contains("<li><code>approval_required</code> <b>1</b></li>")
    );

    let by = |q: &'static str| {
        let app = app.clone();
        async move {
            let got = call(&app, "GET", &format!("/ui/inbox?{q}"), &[], None).await;
            assert_eq!(got.status, StatusCode::OK, "{q}: {}", got.body);
            strict(&got);
            got
        }
    };
    let got = by("subject=alice").await;
    assert_eq!(rows(&got.body), 3);
    assert!(!got.body.contains(">bob<"));
    let got = by("tool=wire_crypto").await;
    assert_eq!(rows(&got.body), 2);
    let got = by("reason=argument_outside_intent&subject=bob").await;
    assert_eq!(rows(&got.body), 1);
    assert!(
        got.body
            .contains("<option value=\"argument_outside_intent\" selected>")
    );
    let got = by("verdict=approval_required").await;
    assert_eq!(rows(&got.body), 1);
    assert!(got.body.contains(&format!("/ui/workflows/{held}#step-1")));
    let got = by("verdict=divergent&actor=mallory").await;
    assert_eq!(rows(&got.body), 2);
    let got = by("since=2999-01-01").await;
    assert_eq!(rows(&got.body), 0);
    assert!(got.body.contains("No divergent step matches."));
    let got = by("until=2000-01-01").await;
    assert_eq!(rows(&got.body), 0);
    // Empty fields, as a form sends them, filter nothing.
    let got = by("since=&until=&subject=&actor=&tool=&reason=&verdict=").await;
    assert_eq!(rows(&got.body), 7);

    // Pages of three, the filters kept in every link.
    let mut seen = Vec::new();
    let mut url = "/ui/inbox?subject=alice&limit=2".to_string();
    for page in 0.. {
        let got = call(&app, "GET", &url, &[], None).await;
        assert_eq!(got.status, StatusCode::OK);
        let n = rows(&got.body);
        assert!(n <= 2);
        let mut on_page: Vec<(usize, u64)> = [3, 4, 5]
            .into_iter()
            .filter_map(|seq| {
                got.body
                    .find(&format!("/ui/workflows/{wf}#step-{seq}"))
                    .map(|at| (at, seq))
            })
            .collect();
        on_page.sort();
        seen.extend(on_page.into_iter().map(|(_, seq)| seq));
        if page > 0 {
            assert_eq!(
                link(&got.body, "first").unwrap(),
                "/ui/inbox?subject=alice&limit=2"
            );
        }
        match link(&got.body, "next") {
            Some(next) => {
                assert!(
                    next.starts_with("/ui/inbox?subject=alice&limit=2&cursor="),
                    "{next}"
                );
                url = next;
            }
            None => break,
        }
        assert!(page < 3, "the pages end");
    }
    assert_eq!(seen, vec![5, 4, 3], "newest first, each row once");

    for bad in [
        "reason=nope",
        "verdict=allowed",
        "cursor=xyz",
        "since=yesterday",
        "limit=0",
    ] {
        let got = call(&app, "GET", &format!("/ui/inbox?{bad}"), &[], None).await;
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(got.header("content-type").starts_with("text/html"));
        strict(&got);
        assert!(got.body.contains("id=\"error\""));
    }
}

#[tokio::test]
async fn the_workflow_page_shows_intent_timeline_evidence_and_chain() {
    let app = app(false);
    let wf = hijack(&app, OPEN, "alice").await;
    let got = call(&app, "GET", &format!("/ui/workflows/{wf}"), &[], None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    strict(&got);
    let b = &got.body;
    assert!(b.contains("Subject <b>alice</b>"));
    assert!(b.contains("<span class=\"ok\" id=\"chain\">verified</span> (5 steps"));
    for seq in 1..=5 {
        assert!(b.contains(&format!("<li id=\"step-{seq}\"")), "step {seq}");
    }
    assert_eq!(link(b, "first-divergence").unwrap(), "#step-3");
    assert!(b.contains("<li id=\"step-3\" class=\"step divergent\">"));
    assert!(
        b.contains("<li id=\"step-1\" class=\"step allowed\">")
            || b.contains("<li id=\"step-1\" class=\"step tolerated\">")
    );
    // Entities of the request are marked; granted tools listed.
    assert!(
        b.contains("<mark class=\"entity\" title=\"EMAIL\">bob@example.com"),
        "{b}"
    );
    assert!(b.contains("<code>transfer_money</code>"));
    // Evidence, escaped; the graph as inline SVG.
    assert!(
        b.contains("&quot;observed&quot;") || b.contains("&#34;observed&#34;"),
        "evidence JSON"
    );
    assert!(
        !b.contains("=HYPERLINK(\"x\")"),
        "reported strings are escaped"
    );
    assert!(b.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));

    let json = call(
        &app,
        "GET",
        &format!("/ui/workflows/{wf}/report.json"),
        &[],
        None,
    )
    .await;
    assert_eq!(json.status, StatusCode::OK);
    let r: Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(r["counts"]["divergent"], 3);
    assert_eq!(r["steps"].as_array().unwrap().len(), 5);

    let missing = call(
        &app,
        "GET",
        "/ui/workflows/0192f0c4-0000-7000-8000-000000000000",
        &[],
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    strict(&missing);
    let bad = call(
        &app,
        "GET",
        &format!("/ui/workflows/{wf}?cursor=0"),
        &[],
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let list = call(&app, "GET", "/ui/workflows", &[], None).await;
    assert_eq!(list.status, StatusCode::OK);
    strict(&list);
    assert!(list.body.contains(&format!("href=\"/ui/workflows/{wf}\"")));
    assert!(list.body.contains("<span class=\"bad\">3 divergent</span>"));
    let none = call(
        &app,
        "GET",
        "/ui/workflows?subject=nobody&divergent=1",
        &[],
        None,
    )
    .await;
    assert!(none.body.contains("No workflow matches."));
}

#[tokio::test]
async fn exports_hold_every_filtered_row() {
    let app = app(false);
    hijack(&app, OPEN, "alice").await;
    hijack(&app, OPEN, "bob").await;
    let csv = call(&app, "GET", "/ui/inbox.csv?subject=alice", &[], None).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(csv.header("content-disposition").contains("attachment"));
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "received_at");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| &r[2] == "alice"));
    assert_eq!(&records[0][3], "5", "newest first");
    assert_eq!(&records[1][4], "mallory");

    let json = call(&app, "GET", "/ui/inbox.json?tool=wire_crypto", &[], None).await;
    assert_eq!(json.status, StatusCode::OK);
    let v: Value = serde_json::from_str(&json.body).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|i| i["step"]["name"] == "wire_crypto"),
        "{v}"
    );
    let empty = call(&app, "GET", "/ui/inbox.json?subject=nobody", &[], None).await;
    assert_eq!(
        serde_json::from_str::<Value>(&empty.body).unwrap(),
        json!({"items": []})
    );
}

/// Signs in with `key`; the session cookie.
pub async fn sign_in(app: &Router, key: &str) -> String {
    let form = call(app, "GET", "/ui/login", &[], None).await;
    let csrf = form.cookie("telos_csrf").unwrap();
    let cookie = format!("telos_csrf={csrf}");
    let got = call(
        app,
        "POST",
        "/ui/login",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &cookie),
        ],
        Some(format!("api_key={key}&csrf={csrf}")),
    )
    .await;
    assert_eq!(got.status, StatusCode::SEE_OTHER, "{}", got.body);
    format!("telos_session={}", got.cookie("telos_session").unwrap())
}

#[tokio::test]
async fn sign_in_gives_a_strict_cookie_and_forms_need_their_token() {
    let app = app(true);
    hijack(&app, ACME, "alice").await;

    // Pages send an unknown visitor to the login form.
    for page in ["/ui/inbox", "/ui/workflows", "/ui/inbox.csv"] {
        let got = call(&app, "GET", page, &[], None).await;
        assert_eq!(got.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(got.header("location"), "/ui/login");
    }
    let form = call(&app, "GET", "/ui/login", &[], None).await;
    assert_eq!(form.status, StatusCode::OK);
    strict(&form);
    let csrf = form.cookie("telos_csrf").unwrap();
    assert_eq!(csrf.len(), 64);
    assert!(
        form.body
            .contains(&format!("name=\"csrf\" value=\"{csrf}\""))
    );
    let set = form.cookies().join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/ui"),
        "{set}"
    );
    let cookie = format!("telos_csrf={csrf}");
    let post =
        |body: String, cookie: Option<String>, extra: Option<(&'static str, &'static str)>| {
            let app = app.clone();
            async move {
                let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
                if let Some(c) = &cookie {
                    h.push(("cookie", c.as_str()));
                }
                if let Some(e) = extra {
                    h.push(e);
                }
                call(&app, "POST", "/ui/login", &h, Some(body)).await
            }
        };
    // CSRF: no token, a wrong one, or a token without its cookie.
    let got = post("api_key=k-an-a".into(), Some(cookie.clone()), None).await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert!(got.cookie("telos_session").is_none());
    let other = "0".repeat(64);
    let got = post(
        format!("api_key=k-an-a&csrf={other}"),
        Some(cookie.clone()),
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    let got = post(format!("api_key=k-an-a&csrf={csrf}"), None, None).await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    // A wrong key, and a key without the analyst role.
    let got = post(
        format!("api_key=nope&csrf={csrf}"),
        Some(cookie.clone()),
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    assert!(got.body.contains("unknown key"));
    let got = post(
        format!("api_key=k-pep-a&csrf={csrf}"),
        Some(cookie.clone()),
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    assert!(got.body.contains("no analyst role"));
    assert!(got.cookie("telos_session").is_none());

    let got = post(
        format!("api_key=k-an-a&csrf={csrf}"),
        Some(cookie.clone()),
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.header("location"), "/ui/inbox");
    let session = got
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("telos_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let id = got.cookie("telos_session").unwrap();
    assert_eq!(id.len(), 64);
    // Behind a TLS-terminating proxy the cookie is Secure.
    let tls = post(
        format!("api_key=k-an-a&csrf={csrf}"),
        Some(cookie.clone()),
        Some(("x-forwarded-proto", "https")),
    )
    .await;
    let secure = tls
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("telos_session="))
        .unwrap();
    assert!(secure.contains("Secure"), "{secure}");

    let session = format!("telos_session={id}");
    let inbox = call(&app, "GET", "/ui/inbox", &[("cookie", &session)], None).await;
    assert_eq!(inbox.status, StatusCode::OK);
    strict(&inbox);
    assert!(inbox.body.contains("tenant <b>acme</b> · an-a"));
    assert_eq!(rows(&inbox.body), 3);
    let logout_token = {
        let at = inbox.body.find("name=\"csrf\" value=\"").unwrap() + 19;
        inbox.body[at..at + 64].to_string()
    };
    assert_ne!(logout_token, csrf);
    // The login form of a signed-in analyst sends to the inbox.
    let again = call(&app, "GET", "/ui/login", &[("cookie", &session)], None).await;
    assert_eq!(again.header("location"), "/ui/inbox");

    let logout = |token: String| {
        let app = app.clone();
        let session = session.clone();
        async move {
            call(
                &app,
                "POST",
                "/ui/logout",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("cookie", &session),
                ],
                Some(format!("csrf={token}")),
            )
            .await
        }
    };
    let got = logout(csrf.clone()).await;
    assert_eq!(
        got.status,
        StatusCode::FORBIDDEN,
        "the login token does not end a session"
    );
    let still = call(&app, "GET", "/ui/inbox", &[("cookie", &session)], None).await;
    assert_eq!(still.status, StatusCode::OK);
    let got = logout(logout_token).await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
    assert_eq!(got.header("location"), "/ui/login");
    assert!(
        got.cookies()
            .iter()
            .any(|c| c.starts_with("telos_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        got.cookies()
    );
    let gone = call(&app, "GET", "/ui/inbox", &[("cookie", &session)], None).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.header("location"), "/ui/login");
    // A made-up session id is no session.
    let forged = format!("telos_session={}", "a".repeat(64));
    let got = call(&app, "GET", "/ui/inbox", &[("cookie", &forged)], None).await;
    assert_eq!(got.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_analyst_sees_only_the_own_tenant() {
    let app = app(true);
    let wf = hijack(&app, ACME, "alice").await;
    let globex = sign_in(&app, "k-an-b").await;
    let inbox = call(&app, "GET", "/ui/inbox", &[("cookie", &globex)], None).await;
    assert_eq!(inbox.status, StatusCode::OK);
    assert!(inbox.body.contains("tenant <b>globex</b>"));
    assert_eq!(rows(&inbox.body), 0);
    let page = call(
        &app,
        "GET",
        &format!("/ui/workflows/{wf}"),
        &[("cookie", &globex)],
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let json = call(
        &app,
        "GET",
        &format!("/ui/workflows/{wf}/report.json"),
        &[("cookie", &globex)],
        None,
    )
    .await;
    assert_eq!(json.status, StatusCode::NOT_FOUND);
    let list = call(&app, "GET", "/ui/workflows", &[("cookie", &globex)], None).await;
    assert!(!list.body.contains(&wf));
    let csv = call(&app, "GET", "/ui/inbox.csv", &[("cookie", &globex)], None).await;
    assert_eq!(csv.body.lines().count(), 1, "the header only");

    let acme = sign_in(&app, "k-an-a").await;
    let page = call(
        &app,
        "GET",
        &format!("/ui/workflows/{wf}"),
        &[("cookie", &acme)],
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let list = call(&app, "GET", "/ui/workflows", &[("cookie", &acme)], None).await;
    assert!(list.body.contains(&wf));
}

#[tokio::test]
async fn configured_sessions_are_secure_short_and_capped() {
    let app = app_with(
        true,
        telos::api::ui::UiConfig {
            secure_cookies: true,
            session_ttl: std::time::Duration::from_secs(90),
            max_sessions: 2,
        },
    );
    let form = call(&app, "GET", "/ui/login", &[], None).await;
    assert!(form.cookies().iter().all(|c| c.contains("Secure")));
    let csrf = form.cookie("telos_csrf").unwrap();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let got = call(
            &app,
            "POST",
            "/ui/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &format!("telos_csrf={csrf}")),
            ],
            Some(format!("api_key=k-an-a&csrf={csrf}")),
        )
        .await;
        let set = got
            .cookies()
            .into_iter()
            .find(|c| c.starts_with("telos_session="))
            .unwrap();
        assert!(
            set.contains("Secure") && set.contains("Max-Age=90"),
            "{set}"
        );
        sessions.push(format!(
            "telos_session={}",
            got.cookie("telos_session").unwrap()
        ));
    }
    let status = |cookie: String| {
        let app = app.clone();
        async move {
            call(&app, "GET", "/ui/inbox", &[("cookie", &cookie)], None)
                .await
                .status
        }
    };
    assert_eq!(
        status(sessions[0].clone()).await,
        StatusCode::SEE_OTHER,
        "dropped at the cap"
    );
    assert_eq!(status(sessions[1].clone()).await, StatusCode::OK);
    assert_eq!(status(sessions[2].clone()).await, StatusCode::OK);
}
