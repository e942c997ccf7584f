//! `telos mcp-proxy`: a policy enforcement point between an MCP client and
//! one upstream MCP server spoken to over stdio (newline-delimited
//! JSON-RPC). The client starts the proxy as its server; the proxy starts
//! the upstream command and relays messages both ways.
//!
//! When the client's `initialize` has been answered by the upstream, the
//! proxy sends the upstream `notifications/initialized` itself, reads its
//! `tools/list` (every page), registers it as the catalog, opens the
//! workflow from `--prompt` (or takes `--workflow`) and only then answers
//! the client, with the workflow id in the result's `_meta`
//! (`telos/workflow_id`); the client's own `notifications/initialized` is
//! not sent twice.
//!
//! Every `tools/call` is asked to the PDP (`POST /access/v1/evaluation`,
//! MCP mapping, `context.workflow_id`) before it is forwarded. A deny is
//! not forwarded: the attempt is reported as a step with outcome `blocked`
//! (so it is in the workflow's ledger and in `/v1/drift`) and the client
//! gets a JSON-RPC error whose message is the user-facing reason. An
//! allowed call is forwarded and reported once the upstream answered, with
//! its outcome. `monitor` forwards everything and reports every call.
//! `approve` is `enforce`, except that a call refused only because it needs
//! a human approval (`approval_required`) is held: it is written to
//! `--approvals DIR/pending/ID.json`, the client's error (-32004) names the
//! `mv` that approves it, and once an operator has moved the file to
//! `DIR/approved/` the agent's retry of the same call is forwarded, once.
//!
//! Failures: telos unreachable (or answering 5xx) refuses the call unless
//! `--fail-open`; an upstream that exits fails every pending and later
//! request; a line that is not JSON is a parse error (-32700) and JSON that
//! is not a JSON-RPC 2.0 message an invalid request (-32600).

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ListMode, McpProxyArgs, ProxyMode};
use crate::workflow::provenance::digest_result;

/// JSON-RPC: the line is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: JSON, but not a JSON-RPC 2.0 message.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the parameters are unusable.
pub const INVALID_PARAMS: i64 = -32602;
/// The PDP denied the call; it was not forwarded.
pub const DENIED: i64 = -32001;
/// telos could not be asked; the call was not forwarded.
pub const TELOS_UNAVAILABLE: i64 = -32002;
/// The upstream server is not running.
pub const UPSTREAM_GONE: i64 = -32003;
/// The call needs a human approval (`--mode approve`); it was not
/// forwarded and waits for an operator.
pub const APPROVAL_PENDING: i64 = -32004;

/// The `_meta` key of `initialize`'s result that carries the workflow id.
pub const WORKFLOW_META: &str = "telos/workflow_id";

/// Errors of the proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A flag is unusable.
    #[error("{0}")]
    Args(String),
    /// The upstream command could not be started.
    #[error("starting `{command}`: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// telos did not answer, or answered 5xx.
    #[error("telos is unreachable at {url}: {message}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why.
        message: String,
    },
    /// telos refused a request (4xx).
    #[error("telos answered {status} to {what}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The request.
        what: String,
        /// The error message telos gave.
        message: String,
    },
    /// The upstream did not answer as MCP servers do.
    #[error("upstream: {0}")]
    Upstream(String),
    /// Reading or writing the client's stdio.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A JSON-RPC error response.
pub fn error_response(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// What a line from the client is.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// A request: method, id, params.
    Request {
        /// Its id.
        id: Value,
        /// Its method.
        method: String,
        /// The whole message.
        message: Value,
    },
    /// A notification.
    Notification {
        /// Its method.
        method: String,
        /// The whole message.
        message: Value,
    },
    /// A response to a request of the upstream.
    Response(Value),
    /// Not a message: the JSON-RPC error to answer with.
    Invalid(Value),
}

/// Classifies one line of the client's stream.
pub fn classify(line: &str) -> ClientMessage {
    let message: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return ClientMessage::Invalid(error_response(
                Value::Null,
                PARSE_ERROR,
                &format!("Parse error: {e}"),
                None,
            ));
        }
    };
    let id = message.get("id").cloned();
    let error_id = id.clone().unwrap_or(Value::Null);
    let invalid = move |why: &str| {
        ClientMessage::Invalid(error_response(
            error_id.clone(),
            INVALID_REQUEST,
            &format!("Invalid Request: {why}"),
            None,
        ))
    };
    if !message.is_object() {
        return invalid("a message is a JSON object");
    }
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("`jsonrpc` must be \"2.0\"");
    }
    if let Some(i) = &id
        && !(i.is_string() || i.is_number())
    {
        return invalid("`id` must be a string or a number");
    }
    match (message.get("method"), id) {
        (Some(Value::String(m)), Some(id)) => ClientMessage::Request {
            id,
            method: m.clone(),
            message,
        },
        (Some(Value::String(m)), None) => ClientMessage::Notification {
            method: m.clone(),
            message,
        },
        (Some(_), _) => invalid("`method` must be a string"),
        (None, Some(_)) if message.get("result").is_some() || message.get("error").is_some() => {
            ClientMessage::Response(message)
        }
        (None, _) => invalid("neither a request, a notification nor a response"),
    }
}

/// The reason codes of a deny's operator reasons (`reason_admin`), as the
/// client may see them: the codes, not the evidence.
fn reason_codes(admin: &Value) -> Vec<String> {
    if let Some(reasons) = admin.get("reasons").and_then(Value::as_array) {
        return reasons
            .iter()
            .filter_map(|r| r.get("code").and_then(Value::as_str).map(str::to_string))
            .collect();
    }
    if admin.get("base_policy").and_then(Value::as_str) == Some("deny") {
        return vec!["base_policy_deny".into()];
    }
    Vec::new()
}

fn key(id: &Value) -> String {
    id.to_string()
}

/// A `type:id` pair.
pub(crate) fn pair(flag: &str, v: &str) -> Result<(String, String), ProxyError> {
    match v.split_once(':') {
        Some((t, i)) if !t.is_empty() && !i.is_empty() => Ok((t.to_string(), i.to_string())),
        _ => Err(ProxyError::Args(format!(
            "{flag} must be `type:id`, not `{v}`"
        ))),
    }
}

/// The telos API as the proxy uses it.
pub(crate) struct Telos {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

/// The PDP's answer.
pub(crate) enum Decision {
    Allow,
    Deny { reason: String, admin: Value },
}

impl Telos {
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<Value, ProxyError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url).json(body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let unreachable = |message: String| ProxyError::Unreachable {
            url: url.clone(),
            message,
        };
        let resp = req.send().await.map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| unreachable(e.to_string()))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_server_error() {
            return Err(unreachable(format!("{status}: {value}")));
        }
        if !status.is_success() {
            return Err(ProxyError::Refused {
                status: status.as_u16(),
                what: format!("{method} {path}"),
                message: value
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map_or_else(|| value.to_string(), str::to_string),
            });
        }
        Ok(value)
    }

    async fn evaluate(
        &self,
        workflow: &str,
        agent: &(String, String),
        sub: Option<&str>,
        tool: &str,
        arguments: &Value,
    ) -> Result<Decision, ProxyError> {
        let mut body = json!({
            "subject": {"type": agent.0, "id": agent.1},
            "action": {"name": "tools/call"},
            "resource": {"type": "tool", "id": tool, "properties": {"arguments": arguments}},
            "context": {"workflow_id": workflow},
        });
        if let Some(sub) = sub {
            body["context"]["sub"] = Value::String(sub.to_string());
        }
        let d = match self
            .call(reqwest::Method::POST, "/access/v1/evaluation", &body)
            .await
        {
            Ok(d) => d,
            Err(ProxyError::Refused { message, .. }) => {
                return Ok(Decision::Deny {
                    reason: message,
                    admin: Value::Null,
                });
            }
            Err(e) => return Err(e),
        };
        if d.get("decision") == Some(&Value::Bool(true)) {
            return Ok(Decision::Allow);
        }
        let reason = d
            .pointer("/context/reason_user/403")
            .or_else(|| d.pointer("/context/error/message"))
            .and_then(Value::as_str)
            .unwrap_or("telos denied the call")
            .to_string();
        let admin = d
            .pointer("/context/reason_admin/403")
            .or_else(|| d.pointer("/context/error"))
            .cloned()
            .unwrap_or(Value::Null);
        Ok(Decision::Deny { reason, admin })
    }
}

/// Held calls of `--mode approve`, as files an operator moves: a held
/// call is `DIR/pending/ID.json`; moving it to `DIR/approved/` approves
/// the next identical call (same workflow, tool and arguments), once.
pub struct Approvals {
    dir: PathBuf,
}

impl Approvals {
    /// Creates `DIR/pending` and `DIR/approved`.
    pub fn open(dir: &Path) -> Result<Approvals, ProxyError> {
        for sub in ["pending", "approved"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
                ProxyError::Args(format!("--approvals {}: {e}", dir.join(sub).display()))
            })?;
        }
        Ok(Approvals {
            dir: dir.to_path_buf(),
        })
    }

    /// A call's id: the same call gets the same id, so the agent's retry
    /// finds the approval its first attempt asked for.
    pub fn id(workflow: &str, tool: &str, arguments: &Value) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(json!([workflow, tool, arguments]).to_string());
        hex::encode(&digest[..12])
    }

    /// Consumes the approval of call `id`, if an operator gave it.
    pub fn take(&self, id: &str) -> bool {
        std::fs::remove_file(self.dir.join("approved").join(format!("{id}.json"))).is_ok()
    }

    /// Holds call `id`: writes `record` to `pending/ID.json` and returns the
    /// command that approves it.
    pub fn hold(&self, id: &str, record: &Value) -> std::io::Result<String> {
        let pending = self.dir.join("pending").join(format!("{id}.json"));
        std::fs::write(&pending, format!("{record:#}\n"))?;
        Ok(format!(
            "mv {} {}/",
            pending.display(),
            self.dir.join("approved").display()
        ))
    }
}

/// The enforcement point: asks the PDP before a call, answers the client
/// when a call is refused, and reports steps.
pub(crate) struct Pep {
    pub(crate) telos: Telos,
    pub(crate) agent: (String, String),
    pub(crate) subject: Option<(String, String)>,
    pub(crate) mode: ProxyMode,
    fail_open: bool,
    approvals: Option<Approvals>,
    /// Step reports still on their way to telos. A check waits until there
    /// are none, so every earlier step (and its result's values, for
    /// argument provenance) is recorded before a later call is judged.
    inflight: Arc<tokio::sync::watch::Sender<usize>>,
}

/// A step report on its way: counted in [`Pep::inflight`] until dropped.
pub(crate) struct InFlight(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Pep {
    pub(crate) fn new(
        args: &McpProxyArgs,
        http: reqwest::Client,
        agent: (String, String),
        subject: Option<(String, String)>,
    ) -> Result<Pep, ProxyError> {
        let approvals = match (args.mode, &args.approvals) {
            (ProxyMode::Approve, Some(dir)) => Some(Approvals::open(dir)?),
            (ProxyMode::Approve, None) => {
                return Err(ProxyError::Args(
                    "--mode approve needs --approvals DIR".into(),
                ));
            }
            _ => None,
        };
        Ok(Pep {
            telos: Telos {
                http,
                base: args.telos.trim_end_matches('/').to_string(),
                key: args.api_key.clone(),
            },
            agent,
            subject,
            mode: args.mode,
            fail_open: args.fail_open,
            approvals,
            inflight: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    /// Counts a report that will be sent later (call it before the client
    /// can see the answer, and keep it until the report is done).
    pub(crate) fn report_pending(&self) -> InFlight {
        self.inflight.send_modify(|n| *n += 1);
        InFlight(Arc::clone(&self.inflight))
    }

    /// Asks the PDP about a call in `workflow` (`enforce`, `approve`):
    /// `None` forwards it, `Some` is the client's error (the refused attempt
    /// is reported as blocked).
    pub(crate) async fn check(
        &self,
        id: Value,
        workflow: Result<String, ProxyError>,
        tool: &str,
        arguments: &Value,
    ) -> Option<Value> {
        // Earlier steps first: their reports (and results) must be in the
        // workflow before this call is judged against it.
        let mut reports = self.inflight.subscribe();
        let _ = reports.wait_for(|n| *n == 0).await;
        let decision = match workflow {
            Ok(wf) => self
                .telos
                .evaluate(
                    &wf,
                    &self.agent,
                    self.subject.as_ref().map(|s| s.1.as_str()),
                    tool,
                    arguments,
                )
                .await
                .map(|d| (wf, d)),
            Err(e) => Err(e),
        };
        match decision {
            Ok((_, Decision::Allow)) => None,
            Ok((wf, Decision::Deny { reason, admin })) => {
                let codes = reason_codes(&admin);
                if let Some(approvals) = &self.approvals
                    && !codes.is_empty()
                    && codes.iter().all(|c| c == "approval_required")
                {
                    let call = Approvals::id(&wf, tool, arguments);
                    if approvals.take(&call) {
                        eprintln!("telos mcp-proxy: `{tool}` forwarded: approval {call} was given");
                        return None;
                    }
                    self.report(&wf, tool, arguments, StepOutcome::Blocked)
                        .await;
                    let record = json!({"approval": call, "workflow_id": wf, "tool": tool,
                                        "arguments": arguments, "reason": reason,
                                        "agent": format!("{}:{}", self.agent.0, self.agent.1)});
                    return Some(match approvals.hold(&call, &record) {
                        Ok(approve) => error_response(
                            id,
                            APPROVAL_PENDING,
                            &format!(
                                "`{tool}` was not run: it needs a human approval ({reason}). \
                                 An operator approves it with `{approve}`; then retry the same call."
                            ),
                            Some(json!({"workflow_id": wf, "tool": tool, "reasons": codes,
                                        "approval": {"id": call, "approve": approve}})),
                        ),
                        Err(e) => error_response(
                            id,
                            DENIED,
                            &format!(
                                "`{tool}` was not run: it needs a human approval, and the approval request could not be written ({e})"
                            ),
                            Some(json!({"workflow_id": wf, "tool": tool, "reasons": codes})),
                        ),
                    });
                }
                self.report(&wf, tool, arguments, StepOutcome::Blocked)
                    .await;
                Some(error_response(
                    id,
                    DENIED,
                    &reason,
                    Some(json!({"workflow_id": wf, "tool": tool, "reasons": codes})),
                ))
            }
            // No workflow to ask in (a gateway's request named none): a
            // mistake of the caller, never forwarded.
            Err(ProxyError::Args(why)) => Some(error_response(
                id,
                INVALID_PARAMS,
                &format!("`{tool}` was not run: {why}"),
                None,
            )),
            Err(e) if self.fail_open => {
                eprintln!("telos mcp-proxy: forwarding `{tool}` unchecked (--fail-open): {e}");
                None
            }
            Err(e) => {
                let message = format!(
                    "`{tool}` was not run: telos could not be asked ({e}); calls are refused until it answers"
                );
                Some(error_response(id, TELOS_UNAVAILABLE, &message, None))
            }
        }
    }

    /// Reports a step (executed, or blocked before it reached the tool).
    /// An executed call's MCP `result` is digested here: only its typed
    /// values, their places and its digest go to telos (for argument
    /// provenance), never the result itself.
    pub(crate) async fn report(
        &self,
        wf: &str,
        tool: &str,
        arguments: &Value,
        outcome: StepOutcome<'_>,
    ) {
        let (is_error, blocked, result) = match outcome {
            StepOutcome::Blocked => (true, true, None),
            StepOutcome::Answered(answer) => (
                answer.get("error").is_some()
                    || answer.pointer("/result/isError") == Some(&Value::Bool(true)),
                false,
                answer.get("result"),
            ),
        };
        let mut body = json!({
            "actor": {"type": self.agent.0, "id": self.agent.1},
            "tool": tool,
            "arguments": arguments,
            "outcome": {"is_error": is_error, "blocked": blocked},
        });
        if let Some(d) = result.and_then(|r| digest_result(r).ok()) {
            body["outcome"]["values"] = json!(d.values);
            body["outcome"]["result_digest"] = Value::String(d.digest);
            if d.truncated {
                body["outcome"]["values_truncated"] = Value::Bool(true);
            }
        }
        if let Some((_, sub)) = &self.subject {
            body["sub"] = Value::String(sub.clone());
        }
        let path = format!("/v1/workflows/{wf}/steps");
        match self.telos.call(reqwest::Method::POST, &path, &body).await {
            Ok(r) => {
                if r.get("verdict").and_then(Value::as_str) == Some("divergent") && !blocked {
                    eprintln!("telos mcp-proxy: step `{tool}` recorded as divergent");
                }
            }
            Err(e) => eprintln!("telos mcp-proxy: `{tool}` not reported: {e}"),
        }
    }
}

/// What became of a call, for its step report.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StepOutcome<'a> {
    /// Refused before it reached the tool.
    Blocked,
    /// The upstream's JSON-RPC answer (a result or an error).
    Answered(&'a Value),
}

/// Where the proxy's own requests to the upstream wait for their answer.
#[derive(Default)]
struct State {
    /// Client requests forwarded to the upstream, by id.
    pending: HashMap<String, Pending>,
    /// The proxy's own requests, by id.
    own: HashMap<String, oneshot::Sender<Value>>,
    next_own: u64,
    /// Why the upstream is gone, once it is.
    gone: Option<String>,
    /// The proxy sent `notifications/initialized` itself.
    initialized: bool,
    /// The upstream's tools (for a set-up retried at a call).
    tools: Option<Vec<Value>>,
}

enum Pending {
    Initialize,
    ListTools,
    Call { tool: String, arguments: Value },
    Other,
}

struct Workflow {
    id: String,
    granted: Option<HashSet<String>>,
}

struct Proxy {
    pep: Pep,
    catalog: String,
    workflow_flag: Option<String>,
    prompt: Option<String>,
    list: ListMode,
    to_client: mpsc::UnboundedSender<Value>,
    to_upstream: Mutex<Option<mpsc::UnboundedSender<Value>>>,
    state: Mutex<State>,
    workflow: tokio::sync::Mutex<Option<Workflow>>,
    /// Held by every spawned task; the proxy exits once all are done.
    tasks: Mutex<Option<mpsc::Sender<()>>>,
}

/// Runs `telos mcp-proxy` until the client closes its stdin.
pub async fn run(args: McpProxyArgs) -> anyhow::Result<()> {
    Ok(run_inner(args).await?)
}

async fn run_inner(args: McpProxyArgs) -> Result<(), ProxyError> {
    let agent = pair("--agent", &args.agent)?;
    let subject = args
        .subject
        .as_deref()
        .map(|s| pair("--subject", s))
        .transpose()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.telos_timeout_secs.max(1)))
        .build()
        .map_err(|e| ProxyError::Args(format!("HTTP client: {e}")))?;
    let Some((program, rest)) = args.command.split_first() else {
        return Err(ProxyError::Args(
            "no upstream: a command after `--`, or --upstream NAME=COMMAND".into(),
        ));
    };
    if args.workflow.is_none() && args.prompt.is_none() {
        return Err(ProxyError::Args(
            "--workflow, or --prompt with --subject".into(),
        ));
    }
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProxyError::Spawn {
            command: args.command.join(" "),
            source,
        })?;
    let (Some(mut child_in), Some(child_out)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(ProxyError::Upstream("no stdio pipes".into()));
    };

    let (client_tx, mut client_rx) = mpsc::unbounded_channel::<Value>();
    let (upstream_tx, mut upstream_rx) = mpsc::unbounded_channel::<Value>();
    let (tasks_tx, mut tasks_rx) = mpsc::channel::<()>(1);
    let proxy = Arc::new(Proxy {
        pep: Pep::new(&args, http, agent, subject)?,
        catalog: args.catalog.clone(),
        workflow_flag: args.workflow.clone(),
        prompt: args.prompt.clone(),
        list: args.list,
        to_client: client_tx,
        to_upstream: Mutex::new(Some(upstream_tx)),
        state: Mutex::new(State::default()),
        workflow: tokio::sync::Mutex::new(None),
        tasks: Mutex::new(Some(tasks_tx)),
    });

    // Writers: one line per message, flushed.
    let client_writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(msg) = client_rx.recv().await {
            let mut line = msg.to_string();
            line.push('\n');
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(msg) = upstream_rx.recv().await {
            let mut line = msg.to_string();
            line.push('\n');
            if child_in.write_all(line.as_bytes()).await.is_err() || child_in.flush().await.is_err()
            {
                break;
            }
        }
        // Dropping stdin tells the upstream to exit.
    });

    // The upstream's messages.
    let reader = {
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let mut out = BufReader::new(child_out);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match out.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if buf.trim_ascii().is_empty() => {}
                    Ok(_) => match serde_json::from_slice::<Value>(&buf) {
                        Ok(msg) => proxy.from_upstream(msg),
                        Err(e) => eprintln!(
                            "telos mcp-proxy: upstream sent a line that is not JSON ({e})"
                        ),
                    },
                }
            }
        })
    };

    // The client's messages, until it closes stdin.
    // (`read_until` is cancel-safe: a line cut by the other branch goes on
    // in `buf`, which is cleared only once the line is whole.)
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    let mut upstream_exit = None;
    let mut reader = Some(reader);
    loop {
        tokio::select! {
            n = stdin.read_until(b'\n', &mut buf) => {
                if n? == 0 {
                    break;
                }
                match std::str::from_utf8(&buf) {
                    Ok(line) if line.trim().is_empty() => {}
                    Ok(line) => proxy.from_client(line),
                    Err(_) => proxy.send_client(error_response(
                        Value::Null,
                        PARSE_ERROR,
                        "Parse error: the line is not UTF-8",
                        None,
                    )),
                }
                buf.clear();
            },
            _ = async { if let Some(r) = reader.as_mut() { let _ = r.await; } }, if reader.is_some() => {
                reader = None;
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                let why = match status {
                    Ok(Ok(s)) => format!("the upstream MCP server exited ({s})"),
                    _ => "the upstream MCP server closed its output".to_string(),
                };
                eprintln!("telos mcp-proxy: {why}");
                proxy.upstream_gone(&why);
                upstream_exit = Some(why);
            }
        }
    }

    // The client is done: let the upstream go and finish the reports.
    proxy.close_upstream();
    if upstream_exit.is_none()
        && tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
    {
        let _ = child.kill().await;
    }
    proxy.tasks_done();
    let _ = tokio::time::timeout(Duration::from_secs(30), tasks_rx.recv()).await;
    drop(proxy);
    // The writer ends once every holder of the proxy is gone; an upstream
    // whose own children keep its output open must not hold the exit.
    let _ = tokio::time::timeout(Duration::from_secs(2), client_writer).await;
    Ok(())
}

impl Proxy {
    fn send_client(&self, msg: Value) {
        let _ = self.to_client.send(msg);
    }

    fn send_upstream(&self, msg: Value) {
        if let Ok(g) = self.to_upstream.lock()
            && let Some(tx) = g.as_ref()
        {
            let _ = tx.send(msg);
        }
    }

    fn close_upstream(&self) {
        if let Ok(mut g) = self.to_upstream.lock() {
            g.take();
        }
    }

    fn tasks_done(&self) {
        if let Ok(mut g) = self.tasks.lock() {
            g.take();
        }
    }

    /// Runs `fut` as a task the proxy waits for before it exits.
    fn spawn<F>(self: &Arc<Self>, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let guard = self.tasks.lock().ok().and_then(|g| g.clone());
        tokio::spawn(async move {
            fut.await;
            drop(guard);
        });
    }

    fn from_client(self: &Arc<Self>, line: &str) {
        match classify(line) {
            ClientMessage::Invalid(err) => self.send_client(err),
            ClientMessage::Response(msg) => self.send_upstream(msg),
            ClientMessage::Notification { method, message } => {
                let swallow = method == "notifications/initialized"
                    && self.state.lock().map(|s| s.initialized).unwrap_or(false);
                if !swallow {
                    self.send_upstream(message);
                }
            }
            ClientMessage::Request {
                id,
                method,
                message,
            } => match method.as_str() {
                "initialize" => self.forward(id, Pending::Initialize, message),
                "tools/list" => self.forward(id, Pending::ListTools, message),
                "tools/call" => {
                    let proxy = Arc::clone(self);
                    self.spawn(async move { proxy.call(id, message).await });
                }
                _ => self.forward(id, Pending::Other, message),
            },
        }
    }

    /// Forwards a client request, remembering it until the upstream answers.
    fn forward(&self, id: Value, kind: Pending, message: Value) {
        let gone = match self.state.lock() {
            Ok(mut s) => match &s.gone {
                Some(why) => Some(why.clone()),
                None => {
                    s.pending.insert(key(&id), kind);
                    None
                }
            },
            Err(_) => Some("the proxy's state is poisoned".to_string()),
        };
        match gone {
            Some(why) => self.send_client(error_response(id, UPSTREAM_GONE, &why, None)),
            None => self.send_upstream(message),
        }
    }

    /// Fails every pending request: the upstream is gone.
    fn upstream_gone(&self, why: &str) {
        let pending: Vec<String> = match self.state.lock() {
            Ok(mut s) => {
                s.gone = Some(why.to_string());
                s.own.clear();
                s.pending.drain().map(|(k, _)| k).collect()
            }
            Err(_) => Vec::new(),
        };
        for k in pending {
            let id = serde_json::from_str(&k).unwrap_or(Value::Null);
            self.send_client(error_response(id, UPSTREAM_GONE, why, None));
        }
    }

    fn from_upstream(self: &Arc<Self>, msg: Value) {
        let is_response = msg.get("method").is_none();
        let Some(id) = msg.get("id").filter(|_| is_response).cloned() else {
            self.send_client(msg);
            return;
        };
        let k = key(&id);
        let (own, pending) = match self.state.lock() {
            Ok(mut s) => (s.own.remove(&k), s.pending.remove(&k)),
            Err(_) => (None, None),
        };
        if let Some(tx) = own {
            let _ = tx.send(msg);
            return;
        }
        match pending {
            Some(Pending::Initialize) => {
                let proxy = Arc::clone(self);
                self.spawn(async move { proxy.initialized(msg).await });
            }
            Some(Pending::ListTools) if self.list == ListMode::Granted => {
                let proxy = Arc::clone(self);
                self.spawn(async move {
                    let filtered = proxy.filter_tools(msg).await;
                    proxy.send_client(filtered);
                });
            }
            Some(Pending::Call { tool, arguments }) => {
                let ticket = self.pep.report_pending();
                self.send_client(msg.clone());
                let proxy = Arc::clone(self);
                self.spawn(async move {
                    proxy
                        .report(&tool, &arguments, StepOutcome::Answered(&msg))
                        .await;
                    drop(ticket);
                });
            }
            Some(Pending::ListTools | Pending::Other) | None => self.send_client(msg),
        }
    }

    /// Sends a request of the proxy's own to the upstream and waits.
    async fn ask_upstream(&self, method: &str, params: Value) -> Result<Value, ProxyError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut s = self
                .state
                .lock()
                .map_err(|_| ProxyError::Upstream("state poisoned".into()))?;
            if let Some(why) = &s.gone {
                return Err(ProxyError::Upstream(why.clone()));
            }
            s.next_own += 1;
            let id = Value::String(format!("telos-mcp-proxy-{}", s.next_own));
            s.own.insert(key(&id), tx);
            id
        };
        self.send_upstream(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let answer = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| ProxyError::Upstream(format!("no answer to `{method}` in 30 s")))?
            .map_err(|_| ProxyError::Upstream(format!("exited before answering `{method}`")))?;
        match answer.get("result") {
            Some(r) => Ok(r.clone()),
            None => Err(ProxyError::Upstream(format!(
                "`{method}` failed: {}",
                answer.get("error").unwrap_or(&Value::Null)
            ))),
        }
    }

    /// The upstream answered `initialize`: finish its handshake, read its
    /// tools, set up the workflow, then answer the client.
    async fn initialized(self: Arc<Self>, mut msg: Value) {
        if msg.get("result").is_none() {
            self.send_client(msg);
            return;
        }
        if let Ok(mut s) = self.state.lock() {
            s.initialized = true;
        }
        self.send_upstream(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        match self.list_upstream_tools().await {
            Ok(tools) => {
                if let Ok(mut s) = self.state.lock() {
                    s.tools = Some(tools);
                }
                match self.workflow_id().await {
                    Ok(id) => {
                        eprintln!("telos mcp-proxy: workflow {id}");
                        if let Some(result) = msg.get_mut("result").and_then(Value::as_object_mut) {
                            let meta = result.entry("_meta").or_insert_with(|| json!({}));
                            if let Some(m) = meta.as_object_mut() {
                                m.insert(WORKFLOW_META.into(), Value::String(id));
                            }
                        }
                    }
                    Err(e) => eprintln!("telos mcp-proxy: no workflow yet: {e}"),
                }
            }
            Err(e) => eprintln!("telos mcp-proxy: reading the upstream's tools: {e}"),
        }
        self.send_client(msg);
    }

    async fn list_upstream_tools(&self) -> Result<Vec<Value>, ProxyError> {
        let mut tools = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..100 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.ask_upstream("tools/list", params).await?;
            if let Some(t) = page.get("tools").and_then(Value::as_array) {
                tools.extend(t.iter().cloned());
            }
            cursor = page.get("nextCursor").filter(|c| !c.is_null()).cloned();
            if cursor.is_none() {
                return Ok(tools);
            }
        }
        Err(ProxyError::Upstream("more than 100 pages of tools".into()))
    }

    /// The workflow's id: set up on first use (catalog registered, workflow
    /// opened), retried at later calls while telos cannot be reached.
    async fn workflow_id(&self) -> Result<String, ProxyError> {
        let mut wf = self.workflow.lock().await;
        if let Some(w) = wf.as_ref() {
            return Ok(w.id.clone());
        }
        let tools = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.tools.clone())
            .ok_or_else(|| ProxyError::Upstream("the upstream's tools are not known yet".into()))?;
        let path = format!("/v1/catalogs/{}", self.catalog);
        self.pep
            .telos
            .call(reqwest::Method::PUT, &path, &json!({"tools": tools}))
            .await?;
        let id = match (&self.workflow_flag, &self.prompt, &self.pep.subject) {
            (Some(id), _, _) => id.clone(),
            (None, Some(prompt), Some((kind, sid))) => {
                let created = self
                    .pep
                    .telos
                    .call(
                        reqwest::Method::POST,
                        "/v1/workflows",
                        &json!({"subject": {"type": kind, "id": sid}, "prompt": prompt,
                                "catalog": self.catalog, "agents": [self.pep.agent.1]}),
                    )
                    .await?;
                created
                    .get("workflow_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| ProxyError::Refused {
                        status: 200,
                        what: "POST /v1/workflows".into(),
                        message: "no workflow_id in the answer".into(),
                    })?
            }
            _ => {
                return Err(ProxyError::Args(
                    "--workflow or --prompt with --subject".into(),
                ));
            }
        };
        let granted = match self.list {
            ListMode::All => None,
            ListMode::Granted => Some(self.granted(&id).await?),
        };
        *wf = Some(Workflow {
            id: id.clone(),
            granted,
        });
        Ok(id)
    }

    /// The tools the PDP permits the agent in the workflow.
    async fn granted(&self, workflow: &str) -> Result<HashSet<String>, ProxyError> {
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
        Ok(found
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    /// `--list granted`: only the permitted tools (all of them while the
    /// workflow cannot be set up: calls are still asked one by one).
    async fn filter_tools(&self, mut msg: Value) -> Value {
        if self.workflow_id().await.is_err() {
            return msg;
        }
        let granted = self
            .workflow
            .lock()
            .await
            .as_ref()
            .and_then(|w| w.granted.clone());
        if let (Some(granted), Some(tools)) = (
            granted,
            msg.pointer_mut("/result/tools")
                .and_then(Value::as_array_mut),
        ) {
            tools.retain(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| granted.contains(n))
            });
        }
        msg
    }

    /// One `tools/call` from the client.
    async fn call(self: Arc<Self>, id: Value, message: Value) {
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        let Some(tool) = params
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            self.send_client(error_response(
                id,
                INVALID_PARAMS,
                "tools/call needs `params.name`",
                None,
            ));
            return;
        };
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(a) => a.clone(),
        };
        if self.pep.mode != ProxyMode::Monitor {
            let workflow = self.workflow_id().await;
            if let Some(refusal) = self
                .pep
                .check(id.clone(), workflow, &tool, &arguments)
                .await
            {
                self.send_client(refusal);
                return;
            }
        }
        self.forward(id, Pending::Call { tool, arguments }, message);
    }

    /// Reports a step (executed, or blocked before it reached the tool).
    async fn report(&self, tool: &str, arguments: &Value, outcome: StepOutcome<'_>) {
        match self.workflow_id().await {
            Ok(wf) => {
                self.pep.report(&wf, tool, arguments, outcome).await;
            }
            Err(e) => eprintln!("telos mcp-proxy: `{tool}` not reported: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_are_not_json_rpc_are_answered_with_errors() {
        let ClientMessage::Invalid(e) = classify("{not json") else {
            panic!("parsed")
        };
        assert_eq!(
            (e["id"].clone(), e["error"]["code"].as_i64()),
            (Value::Null, Some(PARSE_ERROR))
        );
        let ClientMessage::Invalid(e) = classify(r#"{"id": 4, "method": "tools/list"}"#) else {
            panic!("accepted without jsonrpc")
        };
        assert_eq!(
            (e["id"].as_i64(), e["error"]["code"].as_i64()),
            (Some(4), Some(INVALID_REQUEST))
        );
        let ClientMessage::Invalid(e) = classify("[1, 2]") else {
            panic!("accepted an array")
        };
        assert_eq!(e["error"]["code"].as_i64(), Some(INVALID_REQUEST));
        let ClientMessage::Invalid(_) = classify(r#"{"jsonrpc": "2.0", "id": {}, "method": "x"}"#)
        else {
            panic!("accepted an object id")
        };
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        assert!(matches!(
            classify(r#"{"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {}}"#),
            ClientMessage::Request { method, .. } if method == "tools/call"
        ));
        assert!(matches!(
            classify(r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#),
            ClientMessage::Notification { .. }
        ));
        assert!(matches!(
            classify(r#"{"jsonrpc": "2.0", "id": 3, "result": {}}"#),
            ClientMessage::Response(_)
        ));
    }

    #[test]
    fn the_client_sees_reason_codes_not_evidence() {
        let admin = json!({"workflow_id": "w", "verdict": "divergent",
                           "reasons": [{"code": "tool_outside_intent", "evidence": {"granted": ["x"]}}]});
        assert_eq!(reason_codes(&admin), ["tool_outside_intent"]);
        assert_eq!(
            reason_codes(&json!({"base_policy": "deny", "policies": ["p"]})),
            ["base_policy_deny"]
        );
        assert!(reason_codes(&Value::Null).is_empty());
    }

    #[test]
    fn identities_are_type_and_id() {
        assert_eq!(
            pair("--agent", "agent:claude").unwrap(),
            ("agent".into(), "claude".into())
        );
        assert!(pair("--agent", "claude").is_err());
        assert!(pair("--agent", ":x").is_err());
    }
}
