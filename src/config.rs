//! Command line and environment configuration (clap derive; every flag
//! also reads a `TELOS_*` variable). Defaults are embedded so that
//! `telos serve` runs from a checkout with no flag at all.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::extraction::batcher::BatchLimits;
use crate::extraction::{EncoderOptions, ExtractionConfig, MatchThresholds, OnnxEncoder};
use crate::intent::OpenEndedPolicy;
pub use crate::telemetry::LogFormat;

/// telos: is this what the person actually asked for?
#[derive(Debug, Parser)]
#[command(name = "telos", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "TELOS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(Box<ServeArgs>),
    /// Extract the intent of one request and print it as JSON.
    Extract(ExtractArgs),
    /// Print one workflow's drift report (the server must not be running
    /// on the same data directory).
    Report(ReportArgs),
    /// Print divergent steps across workflows, newest first.
    Drift(DriftArgs),
    /// Check every workflow's ledger (genesis, hash chain, head) and, with
    /// `--checkpoints`, the signed checkpoint; names every broken workflow.
    Verify(VerifyArgs),
    /// Generate an Ed25519 checkpoint key: writes the secret seed to
    /// `--out` and the public key to `<out>.pub` (hex).
    Keygen(KeygenArgs),
    /// Copy a sled data directory's ledger (catalogs, workflows, steps,
    /// the checkpoint) into a PostgreSQL database and verify every chain
    /// there; resumes where an earlier run stopped.
    Migrate(MigrateArgs),
    /// Run an MCP server (stdio) behind telos: every `tools/call` is asked
    /// to the PDP before it is forwarded.
    McpProxy(Box<McpProxyArgs>),
}

/// `telos verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The data directory.
    #[command(flatten)]
    pub data: DataArgs,
    /// Public key file (hex) of the checkpoint key: also check the stored
    /// checkpoint's signature and every head it lists against the ledger.
    #[arg(long)]
    pub checkpoints: Option<PathBuf>,
}

/// `telos migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The sled data directory to copy (no server may be using it).
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL database to copy it into (`postgres://...`).
    #[arg(long)]
    pub to: String,
}

/// `telos keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (created with mode 0600; never
    /// overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

/// `telos mcp-proxy`.
#[derive(Debug, Clone, Args)]
pub struct McpProxyArgs {
    /// Base URL of the telos service.
    #[arg(long, env = "TELOS_URL")]
    pub telos: String,
    /// Bearer credential for the telos API (an API key or a JWT); it needs
    /// the `admin` role to register the catalog, `frontend` to open a
    /// workflow and `pep` to ask and report.
    #[arg(long, env = "TELOS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The upstream's `tools/list` is registered as this catalog.
    #[arg(long)]
    pub catalog: String,
    /// An existing workflow to enforce (this, or `--prompt`, unless
    /// `--listen`: then the workflow may come with each request).
    #[arg(long, conflicts_with_all = ["prompt", "subject"], required_unless_present_any = ["prompt", "listen"])]
    pub workflow: Option<String>,
    /// The person's request: the proxy opens the workflow itself.
    #[arg(long, requires = "subject")]
    pub prompt: Option<String>,
    /// The person the agent acts for, `type:id` (with `--prompt`).
    #[arg(long)]
    pub subject: Option<String>,
    /// The agent's identity, `type:id`, as asked and reported.
    #[arg(long, default_value = "agent:mcp-client")]
    pub agent: String,
    /// `enforce` asks before forwarding; `approve` does too, but holds a
    /// call whose only reason is `approval_required` until an operator
    /// approves it (see `--approvals`); `monitor` forwards everything and
    /// records each step with its verdict.
    #[arg(long, value_enum, default_value_t = ProxyMode::Enforce)]
    pub mode: ProxyMode,
    /// With `--mode approve`: the directory of held calls. A held call is
    /// written to `DIR/pending/ID.json`; an operator approves it by moving
    /// the file to `DIR/approved/`, and the agent's retry of the same call
    /// is then forwarded (once).
    #[arg(long, required_if_eq("mode", "approve"))]
    pub approvals: Option<PathBuf>,
    /// `tools/list` answers: every upstream tool, or only those the PDP
    /// permits in the workflow.
    #[arg(long, value_enum, default_value_t = ListMode::All)]
    pub list: ListMode,
    /// Forward calls when telos cannot be reached (default: refuse them).
    #[arg(long)]
    pub fail_open: bool,
    /// Seconds one request to telos may take.
    #[arg(long, default_value_t = 10)]
    pub telos_timeout_secs: u64,
    /// An upstream MCP server of a gateway, `NAME=COMMAND ARGS…` (the
    /// command is split on whitespace), repeated for several servers. Its
    /// tools are listed as `NAME__TOOL`. Instead of the command after `--`.
    #[arg(long, value_name = "NAME=COMMAND", conflicts_with = "command")]
    pub upstream: Vec<String>,
    /// Serve MCP over Streamable HTTP at this address (`POST /mcp`) in
    /// front of the `--upstream` servers, instead of over stdio.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The upstream MCP server: command and arguments, after `--`.
    #[arg(last = true, num_args = 1.., required_unless_present = "upstream")]
    pub command: Vec<String>,
}

/// `--mode` values of `mcp-proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyMode {
    /// Divergent calls are not forwarded.
    Enforce,
    /// As `enforce`, but a call that only needs a human approval is held
    /// until an operator approves it.
    Approve,
    /// Everything is forwarded; steps are recorded with their verdicts.
    Monitor,
}

/// `--list` values of `mcp-proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListMode {
    /// Only the tools the PDP permits in the workflow.
    Granted,
    /// Every upstream tool.
    All,
}

/// A data directory (or database) to read.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Directory of the sled database.
    #[arg(long, env = "TELOS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Read a PostgreSQL database instead of the data directory
    /// (`postgres://user@host:port/db`; see docs/storage.md).
    #[arg(long, env = "TELOS_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// `telos report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The workflow id.
    pub id: String,
    /// Tenant of the workflow.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The data directory.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `telos drift`.
#[derive(Debug, Clone, Args)]
pub struct DriftArgs {
    /// Tenant to query.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Only steps at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only workflows of this subject id.
    #[arg(long)]
    pub subject: Option<String>,
    /// Only steps by this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Most steps to print.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The data directory.
    #[command(flatten)]
    pub data: DataArgs,
}

/// How steps are judged.
#[derive(Debug, Clone, Args)]
pub struct TrackingArgs {
    /// JWKS file: delegated tokens in step reports are verified against it
    /// (signature, `exp`, `nbf`, `iss`); failures are 401.
    #[arg(long, env = "TELOS_JWKS")]
    pub jwks: Option<PathBuf>,
    /// Accepted token issuers (repeat or comma-separate); empty accepts any.
    #[arg(long, env = "TELOS_JWT_ISSUERS", value_delimiter = ',')]
    pub jwt_issuer: Vec<String>,
    /// Required token audience.
    #[arg(long, env = "TELOS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// With `--jwks`: a step whose delegation chain and `sub` do not come
    /// from a verified token (an `act` claim or `sub` sent as plain JSON,
    /// or no token at all) is divergent (`unverified_chain`).
    #[arg(long, env = "TELOS_REQUIRE_VERIFIED_CHAIN")]
    pub require_verified_chain: bool,
    /// Steps one workflow may hold; beyond it a step report is 429
    /// `quota_exceeded` (0: unlimited).
    #[arg(long, env = "TELOS_MAX_STEPS_PER_WORKFLOW", default_value_t = 100_000)]
    pub max_steps_per_workflow: u64,
    /// Steps all workflows of one tenant may hold together; beyond it a
    /// step report is 429 `quota_exceeded` (0: unlimited).
    #[arg(long, env = "TELOS_MAX_STEPS_PER_TENANT", default_value_t = 0)]
    pub max_steps_per_tenant: u64,
    /// Most actors in a delegation chain before a step is divergent.
    #[arg(long, env = "TELOS_MAX_DELEGATION_DEPTH", default_value_t = 4)]
    pub max_delegation_depth: usize,
    /// Deepest `act` nesting accepted at all (deeper is a 400).
    #[arg(long, env = "TELOS_MAX_ACT_DEPTH", default_value_t = 16)]
    pub max_act_depth: usize,
    /// Cosine an unrequested read-only tool of the catalog needs with some
    /// clause to be tolerated; the default (-1) tolerates every read-only
    /// tool of the workflow's catalog (see the README for why).
    #[arg(long, env = "TELOS_RELATED_READ_THRESHOLD", default_value_t = -1.0, allow_negative_numbers = true)]
    pub related_read_threshold: f32,
    /// Agents allowed in every workflow (comma-separated); when set, any
    /// other actor is `unexpected_actor`.
    #[arg(long, env = "TELOS_ALLOWED_AGENTS", value_delimiter = ',')]
    pub allowed_agents: Vec<String>,
}

/// Where the model lives and how it runs.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model directory (`model.onnx`, `tokenizer.json`, `config.json`).
    /// Default: `models/telos-minilm` of the working directory, else of the
    /// source tree the binary was built from.
    #[arg(long, env = "TELOS_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// ONNX Runtime intra-op threads.
    #[arg(long, env = "TELOS_INTRA_THREADS", default_value_t = 2)]
    pub intra_threads: usize,
    /// Most inputs in one forward pass.
    #[arg(long, env = "TELOS_MAX_BATCH", default_value_t = 32)]
    pub max_batch: usize,
    /// Most padded tokens in one forward pass.
    #[arg(long, env = "TELOS_MAX_BATCH_TOKENS", default_value_t = 4096)]
    pub max_batch_tokens: usize,
    /// Most inputs queued for the model; beyond it requests get 429.
    #[arg(long, env = "TELOS_MAX_QUEUED", default_value_t = 1024)]
    pub max_queued: usize,
    /// Relevance probability a side-effecting tool needs to be granted.
    #[arg(long, env = "TELOS_GRANT_THRESHOLD", default_value_t = 0.075)]
    pub grant_threshold: f32,
    /// Relevance probability a read-only tool needs to be listed.
    #[arg(long, env = "TELOS_READ_THRESHOLD", default_value_t = 0.05)]
    pub read_threshold: f32,
    /// A second side-effecting tool of one clause is granted when within
    /// this probability margin of the best (0 disables).
    #[arg(long, env = "TELOS_SECOND_MARGIN", default_value_t = 0.1)]
    pub second_margin: f32,
    /// Added to the relevance of a tool whose name holds the verb of the
    /// requested action ("log a call" → `log_call`; 0 disables).
    #[arg(long, env = "TELOS_VERB_BOOST", default_value_t = 0.1)]
    pub verb_boost: f32,
    /// An action clause is a lookup only when its best read-only tool beats
    /// its best side-effecting tool by more than this margin.
    #[arg(long, env = "TELOS_READ_MARGIN", default_value_t = 0.0)]
    pub read_margin: f32,
    /// How intents that delegate to instructions in data are enforced.
    #[arg(long, env = "TELOS_OPEN_ENDED", value_enum, default_value_t = OpenEndedArg::RequireApproval)]
    pub open_ended: OpenEndedArg,
    /// The prompt character limit the model's window cap derives from
    /// (`telos serve` sets it from `--max-prompt-chars`).
    #[arg(skip = DEFAULT_MAX_PROMPT_CHARS)]
    pub max_prompt_chars: usize,
}

/// Default of `--max-prompt-chars`: room for a request with pasted
/// context (about 2,500 words).
pub const DEFAULT_MAX_PROMPT_CHARS: usize = 16_000;

/// `--open-ended` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OpenEndedArg {
    /// Side-effecting steps need approval.
    RequireApproval,
    /// Side-effecting steps are tolerated with a warning.
    Warn,
    /// Side-effecting steps are denied.
    DenySideEffects,
}

impl From<OpenEndedArg> for OpenEndedPolicy {
    fn from(a: OpenEndedArg) -> Self {
        match a {
            OpenEndedArg::RequireApproval => OpenEndedPolicy::RequireApproval,
            OpenEndedArg::Warn => OpenEndedPolicy::Warn,
            OpenEndedArg::DenySideEffects => OpenEndedPolicy::DenySideEffects,
        }
    }
}

/// `telos serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TELOS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory of the sled database.
    #[arg(long, env = "TELOS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Keep the ledger in PostgreSQL (or CockroachDB, YugabyteDB) instead
    /// of the data directory, so several replicas share it:
    /// `postgres://user@host:port/db` (see docs/storage.md).
    #[arg(long, env = "TELOS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Connections (each on its own thread) to the `--database-url`
    /// database.
    #[arg(long, env = "TELOS_DATABASE_CONNECTIONS", default_value_t = 8)]
    pub database_connections: usize,
    /// Model settings.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Request limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Connection limits.
    #[command(flatten)]
    pub connections: ConnectionArgs,
    /// Step judging.
    #[command(flatten)]
    pub tracking: TrackingArgs,
    /// Directory of Cedar base policies (`*.cedar`) and `entities.json`;
    /// without it decisions follow the workflow's intent, and an evaluation
    /// naming no workflow is denied (see `--allow-without-workflow`).
    #[arg(long, env = "TELOS_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Record every permitted AuthZEN evaluation that names a workflow as
    /// a step of it (for PEPs that ask but do not report).
    #[arg(long, env = "TELOS_RECORD_EVALUATIONS")]
    pub record_evaluations: bool,
    /// Permit AuthZEN evaluations that name no workflow when no base
    /// policy is loaded (fail open). By default such an evaluation is
    /// denied unless a base policy explicitly permits it.
    #[arg(long, env = "TELOS_ALLOW_WITHOUT_WORKFLOW")]
    pub allow_without_workflow: bool,
    /// Items of an AuthZEN batch at most.
    #[arg(long, env = "TELOS_MAX_BATCH_ITEMS", default_value_t = 1000)]
    pub max_batch_items: usize,
    /// Results of an AuthZEN search at most.
    #[arg(long, env = "TELOS_MAX_SEARCH_RESULTS", default_value_t = 1000)]
    pub max_search_results: usize,
    /// Bytes of an AuthZEN `context` (compact JSON) at most.
    #[arg(long, env = "TELOS_MAX_CONTEXT_BYTES", default_value_t = 64 * 1024)]
    pub max_context_bytes: usize,
    /// Base URL published in `/.well-known/authzen-configuration` (and the
    /// URL DPoP proofs must name).
    #[arg(long, env = "TELOS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Caller authentication.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// The analyst web app at `/ui`.
    #[command(flatten)]
    pub ui: UiArgs,
    /// Ed25519 key file (hex seed, see `telos keygen`): sign a checkpoint
    /// of every workflow head at each interval.
    #[arg(long, env = "TELOS_CHECKPOINT_KEY")]
    pub checkpoint_key: Option<PathBuf>,
    /// Seconds between checkpoints (one is written only when a head moved).
    #[arg(long, env = "TELOS_CHECKPOINT_INTERVAL_SECS", default_value_t = 60)]
    pub checkpoint_interval_secs: u64,
}

/// Who may call the API.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// API keys: a JSON array of `{"client", "tenant", "roles", "sha256"}`.
    #[arg(long, env = "TELOS_AUTH_KEYS")]
    pub auth_keys: Option<PathBuf>,
    /// JWKS file for OAuth2 bearer JWTs (client assertions or access tokens).
    #[arg(long, env = "TELOS_AUTH_JWKS")]
    pub auth_jwks: Option<PathBuf>,
    /// JWKS URL for bearer JWTs (cached; fetched again on an unknown `kid`).
    #[arg(long, env = "TELOS_AUTH_JWKS_URL", conflicts_with = "auth_jwks")]
    pub auth_jwks_url: Option<String>,
    /// Seconds a fetched JWKS is trusted before it is fetched again (a
    /// withdrawn key stops verifying after at most this long).
    #[arg(long, env = "TELOS_AUTH_JWKS_MAX_AGE_SECS", default_value_t = 600)]
    pub auth_jwks_max_age_secs: u64,
    /// Accepted issuers of bearer JWTs (comma-separated; empty: any).
    #[arg(long, env = "TELOS_AUTH_ISSUERS", value_delimiter = ',')]
    pub auth_issuer: Vec<String>,
    /// Required audience of bearer JWTs.
    #[arg(long, env = "TELOS_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// Claim holding the caller's tenant.
    #[arg(long, env = "TELOS_AUTH_TENANT_CLAIM", default_value = "tenant")]
    pub auth_tenant_claim: String,
    /// Claim holding the caller's roles.
    #[arg(long, env = "TELOS_AUTH_ROLES_CLAIM", default_value = "roles")]
    pub auth_roles_claim: String,
    /// DPoP (RFC 9449) for bearer JWTs: `off`, `optional` (bound tokens
    /// need a proof) or `required` (every JWT must be bound).
    #[arg(long, env = "TELOS_DPOP", value_enum, default_value_t = DpopArg::Optional)]
    pub dpop: DpopArg,
    /// Serve a non-loopback address with no authentication (refused otherwise).
    #[arg(long, env = "TELOS_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Serve `/metrics` without credentials.
    #[arg(long, env = "TELOS_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Requests a second each authenticated client may send (0: unlimited).
    #[arg(long, env = "TELOS_RATE_LIMIT", default_value_t = 1000)]
    pub rate_limit: u32,
    /// Burst above the rate limit.
    #[arg(long, env = "TELOS_RATE_BURST", default_value_t = 2000)]
    pub rate_burst: u32,
}

/// The analyst web app's sessions.
#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Mark the web app's cookies `Secure` although no TLS is seen (they
    /// are whenever `--public-url` is https or a proxy sends
    /// `X-Forwarded-Proto: https`).
    #[arg(long, env = "TELOS_UI_SECURE_COOKIES")]
    pub ui_secure_cookies: bool,
    /// Seconds a web app session lasts after sign-in.
    #[arg(long, env = "TELOS_UI_SESSION_TTL_SECS", default_value_t = 8 * 3600)]
    pub ui_session_ttl_secs: u64,
    /// Web app sessions held at most (in memory; the oldest is dropped).
    #[arg(long, env = "TELOS_UI_MAX_SESSIONS", default_value_t = 10_000)]
    pub ui_max_sessions: usize,
}

impl From<&UiArgs> for crate::api::ui::UiConfig {
    fn from(a: &UiArgs) -> Self {
        Self {
            secure_cookies: a.ui_secure_cookies,
            session_ttl: std::time::Duration::from_secs(a.ui_session_ttl_secs),
            max_sessions: a.ui_max_sessions,
        }
    }
}

/// `--dpop` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DpopArg {
    /// Not checked.
    Off,
    /// Checked for bound tokens.
    Optional,
    /// Every JWT must be bound.
    Required,
}

impl AuthArgs {
    /// The authenticator these arguments describe.
    pub fn authenticator(&self) -> anyhow::Result<crate::auth::Authenticator> {
        use crate::auth::{ApiKeys, DpopMode, JwksSource, JwtAuth, JwtAuthConfig};
        use anyhow::Context;
        let keys = match &self.auth_keys {
            Some(p) => Some(ApiKeys::from_json(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("reading `{}`", p.display()))?,
            )?),
            None => None,
        };
        let source = match (&self.auth_jwks, &self.auth_jwks_url) {
            (Some(p), _) => Some(JwksSource::from_json(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("reading `{}`", p.display()))?,
            )?),
            (None, Some(url)) => Some(JwksSource::url_with(
                url.clone(),
                crate::auth::JwksPolicy {
                    refresh_every: std::time::Duration::from_secs(30),
                    max_age: std::time::Duration::from_secs(self.auth_jwks_max_age_secs.max(1)),
                    ..crate::auth::JwksPolicy::default()
                },
            )?),
            (None, None) => None,
        };
        if source.is_some() && (self.auth_issuer.is_empty() || self.auth_audience.is_none()) {
            anyhow::bail!(
                "JWT authentication needs the accepted issuers and the audience: \
                 set --auth-issuer and --auth-audience"
            );
        }
        let jwt = source.map(|s| {
            JwtAuth::new(
                s,
                JwtAuthConfig {
                    issuers: self.auth_issuer.clone(),
                    audience: self.auth_audience.clone(),
                    tenant_claim: self.auth_tenant_claim.clone(),
                    roles_claim: self.auth_roles_claim.clone(),
                    dpop: match self.dpop {
                        DpopArg::Off => DpopMode::Off,
                        DpopArg::Optional => DpopMode::Optional,
                        DpopArg::Required => DpopMode::Required,
                    },
                    ..JwtAuthConfig::default()
                },
            )
        });
        Ok(crate::auth::Authenticator::new(keys, jwt))
    }
}

impl ServeArgs {
    /// The service settings these arguments describe.
    pub fn service_config(&self) -> anyhow::Result<crate::service::ServiceConfig> {
        use anyhow::Context;
        if self.tracking.jwks.is_some()
            && (self.tracking.jwt_issuer.is_empty() || self.tracking.jwt_audience.is_none())
        {
            anyhow::bail!(
                "verifying delegated tokens needs the accepted issuers and the audience: \
                 set --jwt-issuer and --jwt-audience"
            );
        }
        if self.tracking.require_verified_chain && self.tracking.jwks.is_none() {
            anyhow::bail!("--require-verified-chain needs --jwks");
        }
        let verifier = match &self.tracking.jwks {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading `{}`", path.display()))?;
                crate::workflow::TokenVerifier::from_jwks(
                    &text,
                    self.tracking.jwt_issuer.clone(),
                    self.tracking.jwt_audience.clone(),
                )?
            }
            None => crate::workflow::TokenVerifier::unverified(),
        };
        Ok(crate::service::ServiceConfig {
            catalog_limits: crate::catalog::Limits {
                max_entries: self.limits.max_catalog_entries,
                ..crate::catalog::Limits::default()
            },
            max_inline_tools: self.limits.max_inline_tools,
            tracker: crate::service::tracker::TrackerConfig {
                drift: crate::drift::DriftConfig {
                    max_delegation_depth: self.tracking.max_delegation_depth,
                    require_verified_chain: self.tracking.require_verified_chain,
                    related_read_threshold: self.tracking.related_read_threshold,
                },
                max_act_depth: self.tracking.max_act_depth,
                allowed_agents: self.tracking.allowed_agents.clone(),
                max_steps_per_workflow: self.tracking.max_steps_per_workflow,
                max_steps_per_tenant: self.tracking.max_steps_per_tenant,
                ..crate::service::tracker::TrackerConfig::default()
            },
            verifier,
        })
    }
}

/// Limits on what a client may send.
#[derive(Debug, Clone, Copy, Args)]
pub struct LimitArgs {
    /// Largest request body in bytes.
    #[arg(long, env = "TELOS_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Longest prompt in characters.
    #[arg(long, env = "TELOS_MAX_PROMPT_CHARS", default_value_t = DEFAULT_MAX_PROMPT_CHARS)]
    pub max_prompt_chars: usize,
    /// Most entries in a registered catalog.
    #[arg(long, env = "TELOS_MAX_CATALOG_ENTRIES", default_value_t = 1024)]
    pub max_catalog_entries: usize,
    /// Most tools given inline with a request.
    #[arg(long, env = "TELOS_MAX_INLINE_TOOLS", default_value_t = 64)]
    pub max_inline_tools: usize,
    /// Largest `arguments` of a step report, in bytes of JSON.
    #[arg(long, env = "TELOS_MAX_ARGUMENTS_BYTES", default_value_t = 64 * 1024)]
    pub max_arguments_bytes: usize,
    /// Deepest JSON nesting accepted in a body.
    #[arg(long, env = "TELOS_MAX_JSON_DEPTH", default_value_t = 32)]
    pub max_json_depth: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "TELOS_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Open connections at most (further clients wait to be accepted).
    #[arg(long, env = "TELOS_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Requests in progress at most; beyond it requests get 429.
    #[arg(long, env = "TELOS_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "TELOS_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
}

impl From<LimitArgs> for crate::api::Limits {
    fn from(l: LimitArgs) -> Self {
        Self {
            max_body_bytes: l.max_body_bytes,
            max_prompt_chars: l.max_prompt_chars,
            max_arguments_bytes: l.max_arguments_bytes,
            max_json_depth: l.max_json_depth,
            max_concurrent_requests: l.max_concurrent_requests,
            request_timeout_secs: l.request_timeout_secs,
        }
    }
}

/// Limits on connections (see `api::serve`).
#[derive(Debug, Clone, Copy, Args)]
pub struct ConnectionArgs {
    /// Open connections from one IP address at most (0: no cap).
    #[arg(long, env = "TELOS_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Seconds a connection may stay open with no request in flight.
    #[arg(long, env = "TELOS_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Seconds between HTTP/2 keep-alive pings (an unanswered ping closes
    /// the connection after as long again).
    #[arg(long, env = "TELOS_HTTP2_KEEP_ALIVE_SECS", default_value_t = 20)]
    pub http2_keep_alive_secs: u64,
    /// Concurrent HTTP/2 streams per connection at most.
    #[arg(long, env = "TELOS_HTTP2_MAX_STREAMS", default_value_t = 128)]
    pub http2_max_concurrent_streams: u32,
}

impl ConnectionArgs {
    /// The server-loop limits these arguments set (the others default).
    pub fn serve_options(&self) -> crate::api::serve::ServeOptions {
        use std::time::Duration;
        crate::api::serve::ServeOptions {
            max_connections_per_ip: self.max_connections_per_ip,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            http2_keep_alive_interval: Duration::from_secs(self.http2_keep_alive_secs.max(1)),
            http2_keep_alive_timeout: Duration::from_secs(self.http2_keep_alive_secs.max(1)),
            http2_max_concurrent_streams: self.http2_max_concurrent_streams.max(1),
            ..crate::api::serve::ServeOptions::default()
        }
    }
}

/// `telos extract`.
#[derive(Debug, Clone, Args)]
pub struct ExtractArgs {
    /// The request text.
    pub prompt: String,
    /// Catalog file: an MCP `tools/list` result, Agent Skills list or A2A card.
    #[arg(long)]
    pub catalog: PathBuf,
    /// The subject as `type:id`.
    #[arg(long, default_value = "user:anonymous")]
    pub subject: String,
    /// Model settings.
    #[command(flatten)]
    pub model: ModelArgs,
}

impl ModelArgs {
    /// Loads the ONNX encoder these arguments describe.
    pub fn load_encoder(&self) -> anyhow::Result<OnnxEncoder> {
        use anyhow::Context;
        let dir = self.resolve_model_dir();
        OnnxEncoder::load(
            &dir,
            EncoderOptions {
                intra_threads: self.intra_threads,
                batch: BatchLimits {
                    max_batch: self.max_batch,
                    max_batch_tokens: self.max_batch_tokens,
                    max_queued: self.max_queued,
                },
                max_prompt_chars: self.max_prompt_chars,
            },
        )
        .with_context(|| format!("loading the model from `{}`", dir.display()))
    }

    /// The extraction settings of these arguments.
    pub fn extraction_config(&self) -> ExtractionConfig {
        ExtractionConfig {
            thresholds: self.thresholds(),
            open_ended: self.open_ended.into(),
            ..ExtractionConfig::default()
        }
    }

    /// The matching thresholds of these arguments.
    pub fn thresholds(&self) -> MatchThresholds {
        MatchThresholds {
            grant: self.grant_threshold,
            read: self.read_threshold,
            second_margin: self.second_margin,
            read_margin: self.read_margin,
            verb_boost: self.verb_boost,
        }
    }

    /// The model directory to load.
    pub fn resolve_model_dir(&self) -> PathBuf {
        if let Some(d) = &self.model_dir {
            return d.clone();
        }
        let local = PathBuf::from("models/telos-minilm");
        if local.join("config.json").is_file() {
            return local;
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/telos-minilm")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_parse() {
        let cli = Cli::try_parse_from(["telos", "serve"]).unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.model.max_batch, 32);
        // A prompt with pasted context fits, and so does its JSON body even
        // when every character is escaped (`\uXXXX`, 6 bytes).
        assert!(s.limits.max_prompt_chars >= 16_000);
        assert!(s.limits.max_body_bytes >= 6 * s.limits.max_prompt_chars);
        assert_eq!(s.model.max_prompt_chars, s.limits.max_prompt_chars);
    }

    fn serve(extra: &[&str]) -> ServeArgs {
        let mut args = vec!["telos", "serve"];
        args.extend_from_slice(extra);
        let Command::Serve(s) = Cli::try_parse_from(args).unwrap().command else {
            panic!("not serve")
        };
        *s
    }

    #[test]
    fn web_app_flags_set_its_sessions() {
        let d = crate::api::ui::UiConfig::from(&serve(&[]).ui);
        assert!(!d.secure_cookies);
        assert_eq!(d.session_ttl.as_secs(), 8 * 3600);
        assert_eq!(d.max_sessions, 10_000);
        let s = serve(&[
            "--ui-secure-cookies",
            "--ui-session-ttl-secs",
            "60",
            "--ui-max-sessions",
            "5",
        ]);
        let c = crate::api::ui::UiConfig::from(&s.ui);
        assert!(c.secure_cookies);
        assert_eq!(c.session_ttl.as_secs(), 60);
        assert_eq!(c.max_sessions, 5);
    }

    #[test]
    fn jwt_settings_need_issuer_and_audience() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            r#"{"keys": [{"kty": "oct", "kid": "k", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#,
        )
        .unwrap();
        let j = jwks.to_str().unwrap();
        let err = serve(&["--auth-jwks", j, "--auth-issuer", "https://idp"])
            .auth
            .authenticator()
            .err()
            .unwrap();
        assert!(err.to_string().contains("--auth-audience"), "{err}");
        assert!(
            serve(&[
                "--auth-jwks",
                j,
                "--auth-issuer",
                "https://idp",
                "--auth-audience",
                "telos"
            ])
            .auth
            .authenticator()
            .is_ok()
        );
        let err = serve(&["--jwks", j, "--jwt-audience", "telos"])
            .service_config()
            .err()
            .unwrap();
        assert!(err.to_string().contains("--jwt-issuer"), "{err}");
        let err = serve(&["--require-verified-chain"])
            .service_config()
            .err()
            .unwrap();
        assert!(err.to_string().contains("--jwks"), "{err}");
        let ok = serve(&[
            "--jwks",
            j,
            "--jwt-issuer",
            "https://idp",
            "--jwt-audience",
            "telos",
            "--require-verified-chain",
        ])
        .service_config()
        .unwrap();
        assert!(ok.tracker.drift.require_verified_chain);
    }

    #[test]
    fn mcp_proxy_needs_a_workflow_or_a_prompt_and_a_command() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                [
                    "telos",
                    "mcp-proxy",
                    "--telos",
                    "http://127.0.0.1:1",
                    "--catalog",
                    "git",
                ]
                .iter()
                .chain(args),
            )
        };
        let cli = parse(&[
            "--prompt",
            "show the log",
            "--subject",
            "user:ana",
            "--",
            "srv",
            "-x",
        ])
        .unwrap();
        let Command::McpProxy(p) = cli.command else {
            panic!("not mcp-proxy")
        };
        assert_eq!(p.command, ["srv", "-x"]);
        assert_eq!(
            (p.mode, p.list, p.fail_open),
            (ProxyMode::Enforce, ListMode::All, false)
        );
        assert!(
            parse(&["--", "srv"]).is_err(),
            "neither workflow nor prompt"
        );
        assert!(
            parse(&["--prompt", "x", "--", "srv"]).is_err(),
            "prompt without subject"
        );
        assert!(parse(&["--workflow", "w"]).is_err(), "no command");
        assert!(
            parse(&[
                "--workflow",
                "w",
                "--prompt",
                "x",
                "--subject",
                "user:a",
                "--",
                "s"
            ])
            .is_err()
        );
        // A gateway: upstreams instead of a command; with --listen the
        // workflow may come per request.
        let cli = parse(&["--workflow", "w", "--upstream", "a=x", "--upstream", "b=y"]).unwrap();
        let Command::McpProxy(p) = cli.command else {
            panic!("not mcp-proxy")
        };
        assert_eq!(p.upstream, ["a=x", "b=y"]);
        assert!(parse(&["--listen", "127.0.0.1:0", "--upstream", "a=x"]).is_ok());
        assert!(
            parse(&["--upstream", "a=x"]).is_err(),
            "stdio needs a workflow"
        );
        assert!(parse(&["--workflow", "w", "--upstream", "a=x", "--", "s"]).is_err());
        assert!(
            parse(&["--workflow", "w", "--mode", "approve", "--", "s"]).is_err(),
            "approve without --approvals"
        );
    }
}
