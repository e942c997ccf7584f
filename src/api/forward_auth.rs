//! `/v1/forward-auth`: the decision endpoint for reverse proxies that
//! already speak forward auth (nginx `auth_request` or an njs subrequest,
//! Caddy `forward_auth`, Traefik ForwardAuth, Envoy `ext_authz` as an HTTP
//! service) in front of an MCP Streamable-HTTP server.
//!
//! The proxy sends the original request's method and URI (the
//! `X-Original-Method`/`X-Original-URI` headers nginx configurations set,
//! or `X-Forwarded-Method`/`X-Forwarded-Uri` as Caddy and Traefik send
//! them; Envoy sends the original method and appends the original path to
//! this route), the workflow in `X-Telos-Workflow`, the agent in
//! `X-Telos-Agent` (`TYPE:ID`) or its delegated token in `X-Telos-Token`,
//! and, when the proxy passes it, the JSON-RPC body. Every MCP `tools/call`
//! in the body is asked to the same decision code as
//! `POST /access/v1/evaluation` ([`crate::pdp::Pdp::evaluate`]); any other
//! message (initialize, tools/list, notifications, responses) and a
//! body-less `GET`/`DELETE` (the SSE stream, the end of a session) are
//! allowed. A `POST` without a body cannot be judged and is a 400.
//!
//! 200 allows, 403 denies; `X-Telos-Decision`, `X-Telos-Reason` and
//! `X-Telos-Reasons` carry the verdict, and a deny's body is the JSON-RPC
//! error an MCP client shows (code [`DENIED`], as `telos mcp-proxy`
//! answers). A workflow that is missing or unknown is a deny, as in the
//! PDP. A call the workflow's drift rules deny is recorded in its ledger
//! as a blocked step (it shows in `/v1/drift` and the report), since the
//! proxy will not forward it ([`crate::pdp::Pdp::enforce`]); permitted
//! calls are recorded only with `--record-evaluations`, as the PDP does
//! (the proxy does not tell telos whether the call then ran).

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

use super::json::parse_json;
use super::{ApiError, AppState, need};
use crate::auth::{Caller, Role};
use crate::intent::{Action, Object, Resource, Subject};
use crate::pdp::Evaluation;
use crate::workflow::StepReport;

/// The route; Envoy's `path_prefix` appends the original path to it.
pub const PATH: &str = "/v1/forward-auth";
/// JSON-RPC error code of a denied call (the same as `telos mcp-proxy`).
pub const DENIED: i64 = -32001;

const DECISION: HeaderName = HeaderName::from_static("x-telos-decision");
const REASON: HeaderName = HeaderName::from_static("x-telos-reason");
const REASONS: HeaderName = HeaderName::from_static("x-telos-reasons");
const WORKFLOW: HeaderName = HeaderName::from_static("x-telos-workflow");

/// The original request, as the proxy describes it.
#[derive(Debug, Clone, PartialEq)]
struct Original {
    method: String,
    uri: String,
}

fn header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<Option<&'a str>, ApiError> {
    for name in names {
        if let Some(v) = headers.get(*name) {
            let v = v.to_str().map_err(|_| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("the `{name}` header is not visible ASCII"),
                )
            })?;
            let v = v.trim();
            if !v.is_empty() {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

fn original(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Original, ApiError> {
    let method = header(headers, &["x-original-method", "x-forwarded-method"])?
        .map_or_else(|| method.as_str().to_string(), str::to_ascii_uppercase);
    let uri = match header(headers, &["x-original-uri", "x-forwarded-uri"])? {
        Some(u) => u.to_string(),
        None => {
            let tail = uri.path().strip_prefix(PATH).unwrap_or("");
            let mut u = if tail.is_empty() { "/" } else { tail }.to_string();
            if let Some(q) = uri.query() {
                u.push('?');
                u.push_str(q);
            }
            u
        }
    };
    Ok(Original { method, uri })
}

/// One `tools/call` of the body.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    id: Value,
    tool: String,
    arguments: Object,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// The `tools/call`s of a JSON-RPC body (a message or a batch); other
/// messages ask nothing. An empty body is fine except for a `POST`.
fn calls(body: &[u8], method: &str, max_depth: usize) -> Result<Vec<Call>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if method == "POST" {
            return Err(invalid(
                "a POST is judged by its JSON-RPC body and none was sent; configure the \
                 proxy to pass the request body (docs/gateways.md)",
            ));
        }
        return Ok(Vec::new());
    }
    let v: Value = parse_json(body, max_depth)?;
    let messages = match v {
        Value::Array(items) if items.is_empty() => {
            return Err(invalid("an empty JSON-RPC batch"));
        }
        Value::Array(items) => items,
        m @ Value::Object(_) => vec![m],
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            return Err(invalid("the body is not a JSON-RPC message"));
        }
    };
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let Some(o) = m.as_object() else {
            return Err(invalid(format!("batch item {i} is not a JSON-RPC message")));
        };
        if o.get("method").and_then(Value::as_str) != Some("tools/call") {
            continue;
        }
        let params = o.get("params");
        let Some(tool) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
            return Err(invalid("a `tools/call` needs `params.name`, a string"));
        };
        let arguments = match params.and_then(|p| p.get("arguments")) {
            None | Some(Value::Null) => Object::new(),
            Some(Value::Object(a)) => a.clone(),
            Some(_) => return Err(invalid("`params.arguments` must be an object")),
        };
        out.push(Call {
            id: o.get("id").cloned().unwrap_or(Value::Null),
            tool: tool.to_string(),
            arguments,
        });
    }
    Ok(out)
}

/// `TYPE:ID`, or a bare id of type `agent`.
fn agent_of(raw: &str) -> Subject {
    match raw.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Subject::new(kind, id),
        _ => Subject::new("agent", raw),
    }
}

/// A header value: printable ASCII kept, every other byte percent-encoded.
fn header_text(s: &str) -> HeaderValue {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn allow(tools: Vec<String>) -> Response {
    let mut r = (
        StatusCode::OK,
        axum::Json(json!({"decision": true, "tools": tools})),
    )
        .into_response();
    r.headers_mut()
        .insert(DECISION, HeaderValue::from_static("allow"));
    r
}

fn deny(call: &Call, workflow: Option<&str>, reason: &str, codes: &[String]) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": call.id, "error": {
        "code": DENIED, "message": reason,
        "data": {"workflow_id": workflow, "tool": call.tool, "reasons": codes}}});
    let mut r = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    let h = r.headers_mut();
    h.insert(DECISION, HeaderValue::from_static("deny"));
    h.insert(REASON, header_text(reason));
    h.insert(REASONS, header_text(&codes.join(",")));
    if let Some(w) = workflow {
        h.insert(WORKFLOW, header_text(w));
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `/v1/forward-auth` (any method, and any path below it).
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    need(&caller, &[Role::Pep])?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                code: "body_too_large",
                message: format!(
                    "the body is larger than {} bytes (the limit is set with --max-body-bytes)",
                    state.limits.max_body_bytes
                ),
            }
        } else {
            ApiError::bad_request("invalid_body", e.body_text())
        }
    })?;
    let original = original(&method, &uri, &headers)?;
    let calls = calls(&body, &original.method, state.limits.max_json_depth)?;
    if calls.is_empty() {
        return Ok(allow(Vec::new()));
    }
    let workflow = header(&headers, &["x-telos-workflow"])?;
    let token = header(&headers, &["x-telos-token"])?
        .map(|t| crate::auth::bearer(Some(t)).unwrap_or(t).to_string());
    let tracker = state.service.tracker();
    let agent = match (header(&headers, &["x-telos-agent"])?, &token) {
        (Some(a), _) => agent_of(a),
        // The current actor of the delegated token's `act` chain.
        (None, Some(t)) => {
            tracker
                .observe(StepReport {
                    token: Some(t.clone()),
                    tool: Some(calls[0].tool.clone()),
                    ..StepReport::default()
                })?
                .actor
        }
        (None, None) => {
            return Err(invalid(
                "name the agent with `X-Telos-Agent: TYPE:ID` or pass its delegated \
                 token in `X-Telos-Token`",
            ));
        }
    };
    let mut context = Object::new();
    if let Some(w) = workflow {
        context.insert("workflow_id".into(), Value::String(w.to_string()));
    }
    if let Some(t) = &token {
        context.insert("token".into(), Value::String(t.clone()));
    }
    context.insert(
        "http".into(),
        json!({"method": original.method, "uri": original.uri}),
    );
    let context = Arc::new(context);
    let mut tools = Vec::with_capacity(calls.len());
    for call in &calls {
        let mut props = Object::new();
        props.insert("arguments".into(), Value::Object(call.arguments.clone()));
        let e = Evaluation {
            subject: agent.clone(),
            action: Action::new("tools/call"),
            resource: Resource {
                kind: "tool".into(),
                id: call.tool.clone(),
                properties: Some(props),
            },
            context: Arc::clone(&context),
        };
        let outcome = state.pdp.enforce(tracker, &caller.tenant, &e).await;
        match &outcome.error {
            Some((400, message)) => return Err(invalid(message.clone())),
            // An unknown workflow is a deny (fail closed), as in the PDP.
            Some((404, message)) => {
                return Ok(deny(call, workflow, message, &["unknown_workflow".into()]));
            }
            Some((_, message)) => return Err(ApiError::Internal(message.clone())),
            None => {}
        }
        if !outcome.allowed {
            let reason = outcome
                .reason_user
                .clone()
                .unwrap_or_else(|| format!("`{}` is not permitted", call.tool));
            return Ok(deny(call, workflow, &reason, &outcome.reason_codes()));
        }
        tools.push(call.tool.clone());
    }
    Ok(allow(tools))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_request_comes_from_headers_or_the_path() {
        let mut h = HeaderMap::new();
        let uri: Uri = "/v1/forward-auth/mcp?x=1".parse().unwrap();
        let o = original(&Method::POST, &uri, &h).unwrap();
        assert_eq!((o.method.as_str(), o.uri.as_str()), ("POST", "/mcp?x=1"));
        h.insert("x-forwarded-method", HeaderValue::from_static("get"));
        h.insert("x-forwarded-uri", HeaderValue::from_static("/a"));
        let o = original(&Method::POST, &uri, &h).unwrap();
        assert_eq!((o.method.as_str(), o.uri.as_str()), ("GET", "/a"));
        h.insert("x-original-method", HeaderValue::from_static("DELETE"));
        h.insert("x-original-uri", HeaderValue::from_static("/b"));
        let o = original(&Method::POST, &uri, &h).unwrap();
        assert_eq!((o.method.as_str(), o.uri.as_str()), ("DELETE", "/b"));
    }

    #[test]
    fn only_tools_calls_ask_and_a_bodyless_post_is_refused() {
        let body = br#"[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "t", "arguments": {"a": 1}}},
                        {"jsonrpc": "2.0", "method": "notifications/initialized"}]"#;
        let c = calls(body, "POST", 32).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].id.clone(), c[0].tool.as_str()), (json!(2), "t"));
        assert_eq!(c[0].arguments["a"], 1);
        assert!(calls(b"", "GET", 32).unwrap().is_empty());
        assert!(calls(b" ", "POST", 32).is_err());
        for bad in [
            &b"[]"[..],
            b"3",
            b"{not json",
            br#"{"method": "tools/call", "params": {}}"#,
            br#"{"method": "tools/call", "params": {"name": "t", "arguments": []}}"#,
            br#"[1]"#,
        ] {
            assert!(
                calls(bad, "POST", 32).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn agents_and_header_text() {
        assert_eq!(agent_of("agent:a:b"), Subject::new("agent", "a:b"));
        assert_eq!(agent_of("bot"), Subject::new("agent", "bot"));
        assert_eq!(
            header_text("`x` é 100%").to_str().unwrap(),
            "`x` %C3%A9 100%25"
        );
    }
}
