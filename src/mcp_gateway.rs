//! `telos mcp-proxy` as a gateway: one MCP server in front of several
//! upstream MCP servers (`--upstream NAME=COMMAND`, each spoken to over
//! stdio, or `--upstream NAME=URL`, spoken to over Streamable HTTP: one POST
//! per message, the response read from a JSON body or an event stream,
//! `Mcp-Session-Id` kept from `initialize`), served to one client over stdio or, with `--listen ADDR`, to any
//! number of clients over MCP's Streamable HTTP transport.
//!
//! Unlike the one-upstream relay (`crate::mcp_proxy`), the gateway is an
//! MCP server of its own: at start it initializes every upstream and reads
//! its tools; it answers `initialize`, `ping` and `tools/list` itself, and
//! routes each `tools/call` to its upstream. Tool names are prefixed by
//! their server's name and two underscores (`git__git_log`): MCP tool names
//! may hold letters, digits, `_`, `-` and `.`, but several clients (among
//! them those of the large hosted models) accept only `[A-Za-z0-9_-]`, so
//! `.` is not used; an upstream name is letters, digits and `-`, so the
//! first `__` always ends it. The aggregate is registered as the catalog
//! (`--catalog`); the PDP sees the prefixed names. Other methods are answered
//! with "method not found" (the gateway declares only the `tools`
//! capability); upstream notifications are dropped and upstream requests to
//! the client answered "method not found".
//!
//! Calls are checked, held (`--mode approve`) and reported as in the relay
//! (`crate::mcp_proxy::Pep`); the executed step is reported before the
//! client's answer is sent. An upstream that exits fails its own calls with
//! `UPSTREAM_GONE`; the other upstreams keep serving.
//!
//! Streamable HTTP (`--listen`): `POST /mcp` takes one JSON-RPC message and
//! answers a request with `application/json` (never an SSE stream);
//! notifications and responses get `202 Accepted`. `initialize` opens a
//! session whose id comes back in `Mcp-Session-Id`, which every later POST
//! carries (missing: 400, unknown: 404); `DELETE /mcp` ends it. `GET /mcp`
//! answers 405: the gateway sends no server-initiated messages. A request
//! whose `Origin` is not a loopback origin is refused (403). The workflow
//! of a call is, first found: `params._meta["telos/workflow_id"]`, the
//! request's `X-Telos-Workflow` header, the header sent with `initialize`,
//! and the proxy's own (`--workflow` or `--prompt`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ListMode, McpProxyArgs, ProxyMode};
use crate::mcp_proxy::{
    ClientMessage, INVALID_PARAMS, INVALID_REQUEST, Pep, ProxyError, StepOutcome, UPSTREAM_GONE,
    WORKFLOW_META, classify, error_response,
};

/// JSON-RPC: the gateway does not serve this method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The HTTP header that names a request's workflow.
pub const WORKFLOW_HEADER: &str = "x-telos-workflow";
/// The Streamable HTTP session header.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Separates an upstream's name from its tool's name.
pub const SEPARATOR: &str = "__";

/// The protocol versions whose `initialize` handshake the gateway speaks.
const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// `NAME=COMMAND ARGS…` of `--upstream` (the command split on whitespace).
pub fn parse_upstream(spec: &str) -> Result<(String, Vec<String>), ProxyError> {
    let bad = |why: &str| ProxyError::Args(format!("--upstream `{spec}`: {why}"));
    let (name, command) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=COMMAND"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(bad("NAME is letters, digits and `-`"));
    }
    let command: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    if command.is_empty() {
        return Err(bad("no command"));
    }
    Ok((name.to_string(), command))
}

/// The upstream's name and the tool's own name of a prefixed tool name.
pub fn split_tool(name: &str) -> Option<(&str, &str)> {
    name.split_once(SEPARATOR)
        .filter(|(server, tool)| !server.is_empty() && !tool.is_empty())
}

#[derive(Default)]
struct UpState {
    waiting: HashMap<String, oneshot::Sender<Value>>,
    next: u64,
    gone: Option<String>,
}

/// An upstream spoken to over Streamable HTTP.
struct HttpLink {
    client: reqwest::Client,
    url: String,
    /// `Mcp-Session-Id` and `MCP-Protocol-Version`, once initialized.
    session: Mutex<(Option<String>, Option<String>)>,
}

/// One upstream MCP server, over stdio (a command) or Streamable HTTP (a
/// URL).
struct Upstream {
    name: String,
    /// The stdio upstream's input (closed for an HTTP upstream).
    tx: mpsc::UnboundedSender<Value>,
    http: Option<HttpLink>,
    state: Mutex<UpState>,
}

/// The JSON-RPC response to `id` in a `text/event-stream` body.
fn sse_response(body: &str, id: &Value) -> Option<Value> {
    body.replace("\r\n", "\n").split("\n\n").find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        serde_json::from_str::<Value>(&data.join("\n"))
            .ok()
            .filter(|m| m.get("id") == Some(id) && m.get("method").is_none())
    })
}

impl Upstream {
    /// An upstream at `url` (Streamable HTTP).
    fn connect(name: String, url: &str) -> Result<Arc<Upstream>, ProxyError> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| ProxyError::Args(format!("HTTP client: {e}")))?;
        Ok(Arc::new(Upstream {
            name,
            tx: mpsc::unbounded_channel().0,
            http: Some(HttpLink {
                client,
                url: url.to_string(),
                session: Mutex::new((None, None)),
            }),
            state: Mutex::new(UpState::default()),
        }))
    }

    /// POSTs one message; the response when it is a request.
    async fn post(
        &self,
        link: &HttpLink,
        body: Value,
        wait: Duration,
    ) -> Result<Option<Value>, String> {
        let failed = |e: String| {
            format!(
                "the upstream MCP server `{}` at {}: {e}",
                self.name, link.url
            )
        };
        let (session, version) = link.session.lock().map(|s| s.clone()).unwrap_or_default();
        let mut req = link
            .client
            .post(&link.url)
            .timeout(wait)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            req = req.header(SESSION_HEADER, s);
        }
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        let resp = req.send().await.map_err(|e| failed(e.to_string()))?;
        if let Some(s) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            && let Ok(mut g) = link.session.lock()
        {
            g.0 = Some(s.to_string());
        }
        let status = resp.status();
        let event_stream = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let text = resp.text().await.map_err(|e| failed(e.to_string()))?;
        let Some(id) = body.get("id") else {
            return Ok(None);
        };
        let answer = if event_stream {
            sse_response(&text, id)
        } else {
            serde_json::from_str::<Value>(&text).ok()
        };
        match answer {
            Some(a) if a.get("result").is_some() || a.get("error").is_some() => Ok(Some(a)),
            _ => Err(failed(format!(
                "answered {status} without a JSON-RPC response"
            ))),
        }
    }

    /// Sends a notification.
    async fn notify(&self, method: &str) {
        let msg = json!({"jsonrpc": "2.0", "method": method});
        match &self.http {
            Some(link) => {
                if let Err(e) = self.post(link, msg, Duration::from_secs(30)).await {
                    eprintln!("telos mcp-proxy: {e}");
                }
            }
            None => {
                let _ = self.tx.send(msg);
            }
        }
    }

    fn start(name: String, command: &[String]) -> Result<Arc<Upstream>, ProxyError> {
        let Some((program, rest)) = command.split_first() else {
            return Err(ProxyError::Args(format!("upstream `{name}`: no command")));
        };
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProxyError::Spawn {
                command: command.join(" "),
                source,
            })?;
        let (Some(mut child_in), Some(child_out)) = (child.stdin.take(), child.stdout.take())
        else {
            return Err(ProxyError::Upstream("no stdio pipes".into()));
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        let up = Arc::new(Upstream {
            name,
            tx,
            http: None,
            state: Mutex::new(UpState::default()),
        });
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let mut line = msg.to_string();
                line.push('\n');
                if child_in.write_all(line.as_bytes()).await.is_err()
                    || child_in.flush().await.is_err()
                {
                    break;
                }
            }
        });
        let weak = Arc::downgrade(&up);
        tokio::spawn(async move {
            let mut out = BufReader::new(child_out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match out.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.trim_ascii().is_empty() => {}
                    Ok(_) => {
                        let Some(up) = weak.upgrade() else { break };
                        match serde_json::from_slice::<Value>(&buf) {
                            Ok(msg) => up.received(msg),
                            Err(e) => eprintln!(
                                "telos mcp-proxy: upstream `{}` sent a line that is not JSON ({e})",
                                up.name
                            ),
                        }
                    }
                }
            }
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            if let Some(up) = weak.upgrade() {
                let why = match status {
                    Ok(Ok(s)) => format!("the upstream MCP server `{}` exited ({s})", up.name),
                    _ => format!("the upstream MCP server `{}` closed its output", up.name),
                };
                eprintln!("telos mcp-proxy: {why}");
                if let Ok(mut s) = up.state.lock() {
                    s.gone = Some(why);
                    s.waiting.clear();
                }
            }
        });
        Ok(up)
    }

    fn received(&self, msg: Value) {
        match (msg.get("method"), msg.get("id")) {
            // A request to the client: the gateway serves none.
            (Some(_), Some(id)) => {
                let _ = self.tx.send(error_response(
                    id.clone(),
                    METHOD_NOT_FOUND,
                    "the telos gateway does not relay server requests",
                    None,
                ));
            }
            (Some(_), None) => {}
            (None, Some(id)) => {
                let waiter = self
                    .state
                    .lock()
                    .ok()
                    .and_then(|mut s| s.waiting.remove(&id.to_string()));
                if let Some(w) = waiter {
                    let _ = w.send(msg);
                }
            }
            (None, None) => {}
        }
    }

    fn gone(&self) -> String {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.gone.clone())
            .unwrap_or_else(|| format!("the upstream MCP server `{}` is gone", self.name))
    }

    /// Sends a request and waits for the upstream's response message.
    async fn request(&self, method: &str, params: Value, wait: Duration) -> Result<Value, String> {
        if let Some(link) = &self.http {
            let id = {
                let mut s = self
                    .state
                    .lock()
                    .map_err(|_| "state poisoned".to_string())?;
                s.next += 1;
                Value::from(s.next)
            };
            let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            return self
                .post(link, body, wait)
                .await?
                .ok_or_else(|| format!("the upstream MCP server `{}` did not answer", self.name));
        }
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut s = self
                .state
                .lock()
                .map_err(|_| "state poisoned".to_string())?;
            if let Some(why) = &s.gone {
                return Err(why.clone());
            }
            s.next += 1;
            let id = Value::from(s.next);
            s.waiting.insert(id.to_string(), tx);
            id
        };
        let _ = self
            .tx
            .send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(msg)) => Ok(msg),
            Ok(Err(_)) => Err(self.gone()),
            Err(_) => {
                if let Ok(mut s) = self.state.lock() {
                    s.waiting.remove(&id.to_string());
                }
                Err(format!(
                    "the upstream MCP server `{}` did not answer `{method}` in {} s",
                    self.name,
                    wait.as_secs()
                ))
            }
        }
    }

    /// The handshake and every page of `tools/list`.
    async fn initialize(&self) -> Result<Vec<Value>, ProxyError> {
        let wait = Duration::from_secs(30);
        let up = |e: String| ProxyError::Upstream(format!("`{}`: {e}", self.name));
        let init = self
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "telos-mcp-proxy", "version": env!("CARGO_PKG_VERSION")}}),
                wait,
            )
            .await
            .map_err(up)?;
        if init.get("result").is_none() {
            return Err(up(format!("`initialize` failed: {init}")));
        }
        if let Some(link) = &self.http
            && let Ok(mut g) = link.session.lock()
        {
            g.1 = init
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        self.notify("notifications/initialized").await;
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..100 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.request("tools/list", params, wait).await.map_err(up)?;
            let Some(result) = page.get("result") else {
                return Err(up(format!("`tools/list` failed: {page}")));
            };
            if let Some(t) = result.get("tools").and_then(Value::as_array) {
                tools.extend(t.iter().cloned());
            }
            cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
            if cursor.is_none() {
                return Ok(tools);
            }
        }
        Err(up("more than 100 pages of tools".into()))
    }
}

/// The gateway: the upstreams, their aggregate catalog, the PEP.
pub struct Gateway {
    pep: Pep,
    catalog: String,
    workflow_flag: Option<String>,
    prompt: Option<String>,
    list: ListMode,
    upstreams: Vec<Arc<Upstream>>,
    /// The aggregate, prefixed.
    tools: Vec<Value>,
    /// Prefixed name → (upstream, the tool's own name).
    routes: HashMap<String, (usize, String)>,
    registered: tokio::sync::Mutex<bool>,
    default_workflow: tokio::sync::Mutex<Option<String>>,
    granted: tokio::sync::Mutex<HashMap<String, HashSet<String>>>,
}

impl Gateway {
    /// Starts and initializes every upstream.
    async fn start(args: &McpProxyArgs) -> Result<Gateway, ProxyError> {
        let agent = crate::mcp_proxy::pair("--agent", &args.agent)?;
        let subject = args
            .subject
            .as_deref()
            .map(|s| crate::mcp_proxy::pair("--subject", s))
            .transpose()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(args.telos_timeout_secs.max(1)))
            .build()
            .map_err(|e| ProxyError::Args(format!("HTTP client: {e}")))?;
        let pep = Pep::new(args, http, agent, subject)?;
        if args.upstream.is_empty() {
            return Err(ProxyError::Args(
                "--listen needs at least one --upstream NAME=COMMAND".into(),
            ));
        }
        if !args.command.is_empty() {
            return Err(ProxyError::Args(
                "give the upstreams as --upstream NAME=COMMAND, not after `--`".into(),
            ));
        }
        let mut upstreams = Vec::new();
        let mut seen = HashSet::new();
        for spec in &args.upstream {
            let (name, command) = parse_upstream(spec)?;
            if !seen.insert(name.clone()) {
                return Err(ProxyError::Args(format!("two upstreams named `{name}`")));
            }
            let up = match command.as_slice() {
                [url] if url.starts_with("http://") || url.starts_with("https://") => {
                    Upstream::connect(name, url)?
                }
                _ => Upstream::start(name, &command)?,
            };
            upstreams.push(up);
        }
        let mut tools = Vec::new();
        let mut routes = HashMap::new();
        for (i, up) in upstreams.iter().enumerate() {
            for mut tool in up.initialize().await? {
                let Some(own) = tool.get("name").and_then(Value::as_str).map(str::to_string) else {
                    continue;
                };
                let prefixed = format!("{}{SEPARATOR}{own}", up.name);
                tool["name"] = Value::String(prefixed.clone());
                routes.insert(prefixed, (i, own));
                tools.push(tool);
            }
        }
        Ok(Gateway {
            pep,
            catalog: args.catalog.clone(),
            workflow_flag: args.workflow.clone(),
            prompt: args.prompt.clone(),
            list: args.list,
            upstreams,
            tools,
            routes,
            registered: tokio::sync::Mutex::new(false),
            default_workflow: tokio::sync::Mutex::new(None),
            granted: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Registers the aggregate as the catalog, once it succeeds.
    async fn register(&self) -> Result<(), ProxyError> {
        let mut done = self.registered.lock().await;
        if !*done {
            let path = format!("/v1/catalogs/{}", self.catalog);
            self.pep
                .telos
                .call(reqwest::Method::PUT, &path, &json!({"tools": self.tools}))
                .await?;
            *done = true;
        }
        Ok(())
    }

    /// The workflow of a request: the one it names, else the proxy's own
    /// (opened from `--prompt` on first use).
    async fn workflow(&self, named: Option<&str>) -> Result<String, ProxyError> {
        self.register().await?;
        if let Some(w) = named {
            return Ok(w.to_string());
        }
        let mut wf = self.default_workflow.lock().await;
        if let Some(w) = wf.as_ref() {
            return Ok(w.clone());
        }
        let id = match (&self.workflow_flag, &self.prompt, &self.pep.subject) {
            (Some(id), _, _) => id.clone(),
            (None, Some(prompt), Some((kind, sid))) => self
                .pep
                .telos
                .call(
                    reqwest::Method::POST,
                    "/v1/workflows",
                    &json!({"subject": {"type": kind, "id": sid}, "prompt": prompt,
                            "catalog": self.catalog, "agents": [self.pep.agent.1]}),
                )
                .await?
                .get("workflow_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ProxyError::Refused {
                    status: 200,
                    what: "POST /v1/workflows".into(),
                    message: "no workflow_id in the answer".into(),
                })?,
            _ => {
                return Err(ProxyError::Args(
                    "no workflow: the request names none (X-Telos-Workflow or \
                     `_meta.telos/workflow_id`) and the proxy has no --workflow or --prompt"
                        .into(),
                ));
            }
        };
        eprintln!("telos mcp-proxy: workflow {id}");
        *wf = Some(id.clone());
        Ok(id)
    }

    /// The tools the PDP permits the agent in `workflow`.
    async fn granted(&self, workflow: &str) -> Result<HashSet<String>, ProxyError> {
        if let Some(g) = self.granted.lock().await.get(workflow) {
            return Ok(g.clone());
        }
        let found = self
            .pep
            .telos
            .call(
                reqwest::Method::POST,
                "/access/v1/search/action",
                &json!({"subject": {"type": self.pep.agent.0, "id": self.pep.agent.1},
                        "resource": {"type": "tool", "id": "*"},
                        "context": {"workflow_id": workflow},
                        "page": {"limit": 1000}}),
            )
            .await?;
        let g: HashSet<String> = found
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        self.granted
            .lock()
            .await
            .insert(workflow.to_string(), g.clone());
        Ok(g)
    }

    /// Answers one message (`None` for notifications and responses).
    /// `named` is the workflow the transport names (a header).
    pub async fn handle(&self, message: ClientMessage, named: Option<&str>) -> Option<Value> {
        let (id, method, message) = match message {
            ClientMessage::Invalid(e) => return Some(e),
            ClientMessage::Notification { .. } | ClientMessage::Response(_) => return None,
            ClientMessage::Request {
                id,
                method,
                message,
            } => (id, method, message),
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let meta_wf = params
            .pointer("/_meta")
            .and_then(|m| m.get(WORKFLOW_META))
            .and_then(Value::as_str)
            .map(str::to_string);
        let named = meta_wf.as_deref().or(named);
        let result = match method.as_str() {
            "initialize" => {
                let asked = params
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .filter(|v| VERSIONS.contains(v))
                    .unwrap_or("2025-06-18");
                let mut result = json!({
                    "protocolVersion": asked,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "telos-mcp-proxy", "version": env!("CARGO_PKG_VERSION")},
                });
                match self.workflow(named).await {
                    Ok(wf) => result["_meta"] = json!({WORKFLOW_META: wf}),
                    Err(e) => eprintln!("telos mcp-proxy: no workflow yet: {e}"),
                }
                result
            }
            "ping" => json!({}),
            "tools/list" => {
                let mut tools = self.tools.clone();
                if self.list == ListMode::Granted
                    && let Ok(wf) = self.workflow(named).await
                    && let Ok(granted) = self.granted(&wf).await
                {
                    tools.retain(|t| {
                        t.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| granted.contains(n))
                    });
                }
                json!({"tools": tools})
            }
            "tools/call" => return Some(self.call(id, &params, named).await),
            other => {
                return Some(error_response(
                    id,
                    METHOD_NOT_FOUND,
                    &format!(
                        "Method not found: the telos gateway serves tools only, not `{other}`"
                    ),
                    None,
                ));
            }
        };
        Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
    }

    async fn call(&self, id: Value, params: &Value, named: Option<&str>) -> Value {
        let Some(tool) = params.get("name").and_then(Value::as_str) else {
            return error_response(id, INVALID_PARAMS, "tools/call needs `params.name`", None);
        };
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(a) => a.clone(),
        };
        let workflow = self.workflow(named).await;
        let wf = workflow.as_ref().ok().cloned();
        if self.pep.mode != ProxyMode::Monitor
            && let Some(refusal) = self.pep.check(id.clone(), workflow, tool, &arguments).await
        {
            return refusal;
        }
        let Some((i, own)) = self.routes.get(tool) else {
            let known = split_tool(tool)
                .is_some_and(|(server, _)| self.upstreams.iter().any(|u| u.name == server));
            let why = if known {
                format!("`{tool}` is not a tool of its server")
            } else {
                format!("`{tool}` names no upstream server (tool names are SERVER{SEPARATOR}TOOL)")
            };
            return error_response(id, INVALID_PARAMS, &why, None);
        };
        let Some(up) = self.upstreams.get(*i) else {
            return error_response(id, INVALID_PARAMS, "no such upstream", None);
        };
        let mut forwarded = params.clone();
        forwarded["name"] = Value::String(own.clone());
        match up
            .request("tools/call", forwarded, Duration::from_secs(300))
            .await
        {
            Ok(mut answer) => {
                if let Some(wf) = &wf {
                    self.pep
                        .report(wf, tool, &arguments, StepOutcome::Answered(&answer))
                        .await;
                }
                answer["id"] = id;
                answer
            }
            Err(why) => error_response(id, UPSTREAM_GONE, &why, None),
        }
    }
}

/// Runs the gateway until the client closes stdin (no `--listen`) or the
/// process is interrupted.
pub async fn run(args: McpProxyArgs) -> anyhow::Result<()> {
    Ok(run_inner(args).await?)
}

async fn run_inner(args: McpProxyArgs) -> Result<(), ProxyError> {
    if args.listen.is_none() && args.workflow.is_none() && args.prompt.is_none() {
        return Err(ProxyError::Args(
            "--workflow or --prompt with --subject (only --listen takes the workflow per request)"
                .into(),
        ));
    }
    let gateway = Arc::new(Gateway::start(&args).await?);
    // Registered before the first client comes (so a front-end can open
    // workflows on it); retried at the first request while telos is down.
    if let Err(e) = gateway.register().await {
        eprintln!(
            "telos mcp-proxy: catalog `{}` not registered yet: {e}",
            args.catalog
        );
    }
    match &args.listen {
        Some(addr) => serve_http(gateway, addr).await,
        None => serve_stdio(gateway).await,
    }
}

async fn serve_stdio(gateway: Arc<Gateway>) -> Result<(), ProxyError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(msg) = rx.recv().await {
            let mut line = msg.to_string();
            line.push('\n');
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if stdin.read_until(b'\n', &mut buf).await? == 0 {
            break;
        }
        let message = match std::str::from_utf8(&buf) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => classify(line),
            Err(_) => ClientMessage::Invalid(error_response(
                Value::Null,
                crate::mcp_proxy::PARSE_ERROR,
                "Parse error: the line is not UTF-8",
                None,
            )),
        };
        let gateway = Arc::clone(&gateway);
        let tx = tx.clone();
        tasks.spawn(async move {
            if let Some(answer) = gateway.handle(message, None).await {
                let _ = tx.send(answer);
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    Ok(())
}

/// The Streamable HTTP side: sessions and their workflows.
struct Http {
    gateway: Arc<Gateway>,
    /// Session id → the workflow named at `initialize`.
    sessions: Mutex<HashMap<String, Option<String>>>,
}

/// The router of `--listen`: `/mcp` (exposed for tests).
pub fn router(gateway: Arc<Gateway>) -> axum::Router {
    let state = Arc::new(Http {
        gateway,
        sessions: Mutex::new(HashMap::new()),
    });
    axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(post_mcp)
                .get(get_mcp)
                .delete(delete_mcp),
        )
        .with_state(state)
}

async fn serve_http(gateway: Arc<Gateway>, addr: &str) -> Result<(), ProxyError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ProxyError::Args(format!("--listen {addr}: {e}")))?;
    let local = listener.local_addr()?;
    eprintln!("telos mcp-proxy: listening on http://{local}/mcp");
    axum::serve(listener, router(gateway))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(error_response(Value::Null, code, message, None)),
    )
        .into_response()
}

/// A browser page of another origin must not drive the gateway (DNS
/// rebinding): only loopback origins, or none, are served.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

async fn post_mcp(State(http): State<Arc<Http>>, headers: HeaderMap, body: Bytes) -> Response {
    if !origin_allowed(&headers) {
        return rpc_error(StatusCode::FORBIDDEN, INVALID_REQUEST, "Origin not allowed");
    }
    let message = match std::str::from_utf8(&body) {
        Ok(text) => classify(text),
        Err(_) => ClientMessage::Invalid(error_response(
            Value::Null,
            crate::mcp_proxy::PARSE_ERROR,
            "Parse error: the body is not UTF-8",
            None,
        )),
    };
    let header_wf = header_str(&headers, WORKFLOW_HEADER).map(str::to_string);
    if let ClientMessage::Invalid(e) = message {
        return (StatusCode::BAD_REQUEST, axum::Json(e)).into_response();
    }
    if matches!(&message, ClientMessage::Request { method, .. } if method == "initialize") {
        let session = uuid::Uuid::new_v4().simple().to_string();
        let answer = http.gateway.handle(message, header_wf.as_deref()).await;
        if let Ok(mut s) = http.sessions.lock() {
            s.insert(session.clone(), header_wf);
        }
        let mut response = axum::Json(answer).into_response();
        if let Ok(v) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, v);
        }
        return response;
    }
    let Some(session) = header_str(&headers, SESSION_HEADER) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Bad Request: no Mcp-Session-Id (send `initialize` first)",
        );
    };
    let session_wf = match http.sessions.lock() {
        Ok(s) => match s.get(session) {
            Some(wf) => wf.clone(),
            None => {
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    INVALID_REQUEST,
                    "Session not found: send `initialize` again",
                );
            }
        },
        Err(_) => None,
    };
    let named = header_wf.or(session_wf);
    match http.gateway.handle(message, named.as_deref()).await {
        Some(answer) => axum::Json(answer).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// No server-initiated stream: 405, as the transport allows.
async fn get_mcp() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE")],
    )
        .into_response()
}

async fn delete_mcp(State(http): State<Arc<Http>>, headers: HeaderMap) -> Response {
    let removed = header_str(&headers, SESSION_HEADER)
        .and_then(|id| http.sessions.lock().ok().and_then(|mut s| s.remove(id)));
    match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_name_equals_command() {
        let (name, command) = parse_upstream("git=mcp-server-git --repository /r").unwrap();
        assert_eq!(name, "git");
        assert_eq!(command, ["mcp-server-git", "--repository", "/r"]);
        assert!(parse_upstream("mcp-server-git").is_err());
        assert!(
            parse_upstream("a_b=x").is_err(),
            "`_` would blur the separator"
        );
        assert!(parse_upstream("git=").is_err());
    }

    #[test]
    fn a_prefixed_name_splits_at_its_first_separator() {
        assert_eq!(split_tool("git__git_log"), Some(("git", "git_log")));
        assert_eq!(split_tool("fs__read__file"), Some(("fs", "read__file")));
        assert_eq!(split_tool("git_log"), None);
        assert_eq!(split_tool("__x"), None);
    }

    #[test]
    fn an_event_stream_yields_the_response_to_its_request() {
        let body = "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\r\n\r\n\
                    event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":1}}\r\n\r\n";
        assert_eq!(
            sse_response(body, &json!(7)),
            Some(json!({"jsonrpc": "2.0", "id": 7, "result": {"ok": 1}}))
        );
        assert_eq!(sse_response(body, &json!(8)), None);
        assert_eq!(sse_response("data: not json\n\n", &json!(7)), None);
    }

    #[test]
    fn only_loopback_origins_are_served() {
        let with = |o: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            origin_allowed(&h)
        };
        assert!(origin_allowed(&HeaderMap::new()));
        assert!(with("http://localhost:3000"));
        assert!(with("http://127.0.0.1"));
        assert!(with("http://[::1]:8000"));
        assert!(!with("https://evil.example"));
        assert!(!with("http://localhost.evil.example"));
    }
}
