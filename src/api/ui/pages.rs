//! The pages: inbox, workflows, one workflow, login and errors; each a
//! template under `templates/` filled from the tracker and the store.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{Analyst, Ui, UiError, Viewer};
use crate::api::ApiError;
use crate::api::workflows::workflow_id;
use crate::drift::report::VerdictCounts;
use crate::intent::{Clause, Entity, Intent};
use crate::service::tracker::{DriftItem, DriftPage, DriftQuery};
use crate::storage::{StorageError, Store};
use crate::workflow::{ReasonCode, Step, Verdict};

/// Inbox rows per page by default.
pub const INBOX_PAGE: usize = 50;
/// Workflows per page.
pub const WORKFLOWS_PAGE: usize = 50;
/// Steps per page of a workflow.
pub const STEPS_PAGE: usize = 200;

/// The header every page shows.
#[derive(Debug, Clone)]
pub struct Nav {
    /// The viewer's tenant.
    pub tenant: String,
    /// The viewer's client id.
    pub client: String,
    /// The logout form's token; `None` when authentication is off.
    pub csrf: Option<String>,
    /// The current section.
    pub active: &'static str,
}

impl Nav {
    fn of(v: &Viewer, active: &'static str) -> Self {
        Self {
            tenant: v.caller.tenant.clone(),
            client: v.caller.client.clone(),
            csrf: v.csrf.clone(),
            active,
        }
    }
}

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// HTTP status.
    pub status: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// The form's CSRF token.
    pub csrf: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// `<option>` of a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Value and label.
    pub value: String,
    /// Whether it is the current one.
    pub selected: bool,
}

/// One reason shown with a step.
#[derive(Debug, Clone)]
pub struct ReasonView {
    /// Stable code.
    pub code: &'static str,
    /// For a human.
    pub message: String,
    /// Evidence, pretty JSON.
    pub evidence: String,
    /// Whether it makes the step divergent.
    pub divergent: bool,
}

impl ReasonView {
    fn of(r: &crate::workflow::Reason) -> Self {
        Self {
            code: r.code.as_str(),
            message: r.message.clone(),
            evidence: serde_json::to_string_pretty(&r.evidence).unwrap_or_default(),
            divergent: r.code.verdict() == Verdict::Divergent,
        }
    }
}

/// What an inbox row is: a step held for a human approval, or any other
/// divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every divergent reason is `approval_required`.
    ApprovalRequired,
    /// Divergent for another reason.
    Divergent,
}

impl Kind {
    /// The kind of a divergent step.
    pub fn of(step: &Step) -> Self {
        let mut divergent = step
            .reasons
            .iter()
            .filter(|r| r.code.verdict() == Verdict::Divergent)
            .peekable();
        if divergent.peek().is_some() && divergent.all(|r| r.code == ReasonCode::ApprovalRequired) {
            Self::ApprovalRequired
        } else {
            Self::Divergent
        }
    }

    /// The wire name (the `verdict` filter's values).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalRequired => "approval_required",
            Self::Divergent => "divergent",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::ApprovalRequired, Self::Divergent]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// The inbox's query: filters, cursor and page size, all kept in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InboxParams {
    since: Option<String>,
    until: Option<String>,
    subject: Option<String>,
    actor: Option<String>,
    tool: Option<String>,
    reason: Option<String>,
    verdict: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Checked inbox filters.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    since: Option<String>,
    until: Option<String>,
    since_nanos: Option<u64>,
    until_nanos: Option<u64>,
    subject: Option<String>,
    actor: Option<String>,
    tool: Option<String>,
    reason: Option<ReasonCode>,
    verdict: Option<Kind>,
    /// Where the page starts.
    pub cursor: Option<String>,
    /// Rows per page.
    pub limit: usize,
}

fn bad(message: impl Into<String>) -> UiError {
    UiError::Api(ApiError::bad_request("invalid_query", message))
}

/// A time filter: RFC 3339, or a date (`2026-12-07`, midnight UTC) as a
/// date input sends it.
fn time_nanos(field: &'static str, v: &str, end_of_day: bool) -> Result<u64, UiError> {
    let full = if v.len() == 10 {
        format!(
            "{v}T{}Z",
            if end_of_day {
                "23:59:59.999999999"
            } else {
                "00:00:00"
            }
        )
    } else {
        v.to_string()
    };
    crate::workflow::parse_time(field, &full)
        .map(crate::workflow::epoch_nanos)
        .map_err(|e| bad(e.to_string()))
}

impl InboxParams {
    /// Checks the query; empty fields (as a form sends them) are absent.
    pub fn filter(self) -> Result<InboxFilter, UiError> {
        let some = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let since = some(self.since);
        let until = some(self.until);
        let reason = match some(self.reason) {
            Some(r) => Some(
                serde_json::from_value::<ReasonCode>(serde_json::Value::String(r.clone()))
                    .map_err(|_| bad(format!("unknown reason code `{r}`")))?,
            ),
            None => None,
        };
        let verdict = match some(self.verdict) {
            Some(v) => Some(Kind::parse(&v).ok_or_else(|| {
                bad(format!(
                    "`verdict` is `divergent` or `approval_required`, not `{v}`"
                ))
            })?),
            None => None,
        };
        let cursor = some(self.cursor);
        if let Some(c) = &cursor
            && (c.len() != 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad("`cursor` is not a cursor this page gave"));
        }
        let limit = match some(self.limit) {
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad("`limit` is a number from 1 to 1000"))?,
            None => INBOX_PAGE,
        };
        Ok(InboxFilter {
            since_nanos: since
                .as_deref()
                .map(|s| time_nanos("since", s, false))
                .transpose()?,
            until_nanos: until
                .as_deref()
                .map(|s| time_nanos("until", s, true))
                .transpose()?,
            since,
            until,
            subject: some(self.subject),
            actor: some(self.actor),
            tool: some(self.tool),
            reason,
            verdict,
            cursor,
            limit,
        })
    }
}

impl InboxFilter {
    /// The tracker's query for one page.
    pub fn query(&self, limit: usize) -> DriftQuery {
        DriftQuery {
            since_nanos: self.since_nanos,
            subject: self.subject.clone(),
            actor: self.actor.clone(),
            limit,
            cursor: self.cursor.clone(),
        }
    }

    /// Whether an item passes the filters the tracker does not apply.
    pub fn keep(&self, item: &DriftItem) -> bool {
        let step = &item.step;
        self.tool.as_ref().is_none_or(|t| &step.observed.name == t)
            && self
                .reason
                .is_none_or(|r| step.reasons.iter().any(|x| x.code == r))
            && self.verdict.is_none_or(|k| Kind::of(step) == k)
            && self.until_nanos.is_none_or(|u| {
                crate::workflow::parse_time("received_at", &step.received_at)
                    .map(crate::workflow::epoch_nanos)
                    .is_ok_and(|at| at <= u)
            })
    }

    /// The URL query of these filters, with `cursor` (no leading `?`).
    pub fn to_query(&self, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let mut put = |k, v: Option<String>| {
            if let Some(v) = v {
                pairs.push((k, v));
            }
        };
        put("since", self.since.clone());
        put("until", self.until.clone());
        put("subject", self.subject.clone());
        put("actor", self.actor.clone());
        put("tool", self.tool.clone());
        put("reason", self.reason.map(|r| r.as_str().to_string()));
        put("verdict", self.verdict.map(|k| k.as_str().to_string()));
        if self.limit != INBOX_PAGE {
            put("limit", Some(self.limit.to_string()));
        }
        put("cursor", cursor.map(str::to_string));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// The end of a workflow id: v7 ids of one period share their start (the
/// time), so the end tells them apart.
pub fn short_id(id: &str) -> String {
    let n = id.chars().count();
    let tail: String = id.chars().skip(n.saturating_sub(12)).collect();
    if n > 12 { format!("…{tail}") } else { tail }
}

/// One inbox row.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// The workflow id's end, for display.
    pub short: String,
    /// When telos received the step.
    pub received_at: String,
    /// The workflow.
    pub workflow_id: String,
    /// Its subject.
    pub subject: String,
    /// The step's seq.
    pub seq: u64,
    /// The acting agent.
    pub actor: String,
    /// The `act` chain, outermost first.
    pub chain: String,
    /// The tool.
    pub tool: String,
    /// `approval_required` or `divergent`.
    pub kind: &'static str,
    /// The divergent reasons.
    pub reasons: Vec<ReasonView>,
}

impl InboxRow {
    fn of(item: &DriftItem) -> Self {
        let s = &item.step;
        Self {
            short: short_id(&item.workflow_id),
            received_at: s.received_at.clone(),
            workflow_id: item.workflow_id.clone(),
            subject: item.subject.clone(),
            seq: s.seq,
            actor: s.observed.actor.id.clone(),
            chain: chain_text(s),
            tool: s.observed.name.clone(),
            kind: Kind::of(s).as_str(),
            reasons: s
                .reasons
                .iter()
                .filter(|r| r.code.verdict() == Verdict::Divergent)
                .map(ReasonView::of)
                .collect(),
        }
    }
}

fn chain_text(s: &Step) -> String {
    let chain: Vec<&str> = s.observed.chain.iter().map(|a| a.sub.as_str()).collect();
    chain.join(" → ")
}

/// The inbox page.
#[derive(Template)]
#[template(path = "inbox.html")]
pub struct InboxPage {
    /// Header.
    pub nav: Nav,
    /// Filter values as typed.
    pub since: String,
    /// Until, as typed.
    pub until: String,
    /// Subject filter.
    pub subject: String,
    /// Actor filter.
    pub actor: String,
    /// Tool filter.
    pub tool: String,
    /// Reason choices.
    pub reasons: Vec<Choice>,
    /// Verdict choices.
    pub verdicts: Vec<Choice>,
    /// The rows.
    pub rows: Vec<InboxRow>,
    /// Rows by reason code on this page.
    pub counts: Vec<(String, usize)>,
    /// The next page's URL.
    pub next: Option<String>,
    /// The first page's URL when this is a later one.
    pub first: Option<String>,
    /// CSV export URL.
    pub csv: String,
    /// JSON export URL.
    pub json: String,
}

/// Reads the query or answers 400.
pub fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, UiError> {
    q.map(|Query(t)| t).map_err(|e| bad(e.body_text()))
}

/// `GET /ui/inbox`.
pub async fn inbox(
    State(ui): State<Ui>,
    Analyst(viewer): Analyst,
    q: Result<Query<InboxParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let f = query(q)?.filter()?;
    let page: DriftPage =
        ui.app
            .service
            .tracker()
            .drift_where(&viewer.caller.tenant, &f.query(f.limit), |i| f.keep(i))?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let rows: Vec<InboxRow> = page.items.iter().map(InboxRow::of).collect();
    for row in &rows {
        for r in &row.reasons {
            *counts.entry(r.code.to_string()).or_default() += 1;
        }
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = InboxPage {
        nav: Nav::of(&viewer, "inbox"),
        since: text(&f.since),
        until: text(&f.until),
        subject: text(&f.subject),
        actor: text(&f.actor),
        tool: text(&f.tool),
        // The inbox's choices: every code that makes a step divergent.
        reasons: ReasonCode::ALL
            .iter()
            .filter(|r| r.verdict() == Verdict::Divergent)
            .map(|r| Choice {
                value: r.as_str().to_string(),
                selected: f.reason == Some(*r),
            })
            .collect(),
        verdicts: [Kind::Divergent, Kind::ApprovalRequired]
            .iter()
            .map(|k| Choice {
                value: k.as_str().to_string(),
                selected: f.verdict == Some(*k),
            })
            .collect(),
        rows,
        counts,
        next: page
            .next_cursor
            .as_deref()
            .map(|c| format!("/ui/inbox?{}", f.to_query(Some(c)))),
        first: f
            .cursor
            .as_ref()
            .map(|_| format!("/ui/inbox?{}", f.to_query(None))),
        csv: format!("/ui/inbox.csv?{}", f.to_query(f.cursor.as_deref())),
        json: format!("/ui/inbox.json?{}", f.to_query(f.cursor.as_deref())),
    }
    .render()?;
    Ok(Html(body).into_response())
}

/// The workflows list's query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkflowsParams {
    subject: Option<String>,
    divergent: Option<String>,
    cursor: Option<String>,
}

/// One row of the workflows list.
#[derive(Debug, Clone)]
pub struct WorkflowRow {
    /// Id.
    pub id: String,
    /// The id's end, for display.
    pub short: String,
    /// Subject.
    pub subject: String,
    /// When it started.
    pub created_at: String,
    /// Open or closed.
    pub closed: bool,
    /// The request, its clauses joined.
    pub request: String,
    /// Steps by verdict.
    pub counts: VerdictCounts,
}

/// The workflows page.
#[derive(Template)]
#[template(path = "workflows.html")]
pub struct WorkflowsPage {
    /// Header.
    pub nav: Nav,
    /// Subject filter.
    pub subject: String,
    /// Whether only workflows with a divergent step are listed.
    pub divergent_only: bool,
    /// The rows.
    pub rows: Vec<WorkflowRow>,
    /// Steps by verdict over the rows.
    pub totals: VerdictCounts,
    /// The next page's URL.
    pub next: Option<String>,
}

/// Steps of a workflow by verdict and its first divergent step, read in
/// batches.
pub fn scan_steps(
    store: &dyn Store,
    id: &Uuid,
) -> Result<(VerdictCounts, Option<u64>), StorageError> {
    const BATCH: usize = 1024;
    let mut counts = VerdictCounts::default();
    let mut first = None;
    let mut next = 1u64;
    loop {
        let batch = store.steps(id, next, BATCH)?;
        let done = batch.len() < BATCH;
        let before = next;
        for s in batch {
            match s.verdict {
                Verdict::Allowed => counts.allowed += 1,
                Verdict::Tolerated => counts.tolerated += 1,
                Verdict::Divergent => {
                    counts.divergent += 1;
                    first = first.or(Some(s.seq));
                }
            }
            next = s.seq.saturating_add(1);
        }
        if done || next <= before {
            return Ok((counts, first));
        }
    }
}

fn request_text(intent: &Intent) -> String {
    let clauses: Vec<&str> = intent.clauses.iter().map(|c| c.text.as_str()).collect();
    clauses.join(" ")
}

/// `GET /ui/workflows`: the tenant's workflows, newest first.
pub async fn workflows(
    State(ui): State<Ui>,
    Analyst(viewer): Analyst,
    q: Result<Query<WorkflowsParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let p = query(q)?;
    let subject = p
        .subject
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let divergent_only = p.divergent.as_deref().is_some_and(|d| !d.is_empty());
    let offset = match p.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| bad("`cursor` is not a cursor this page gave"))?,
        None => 0,
    };
    let store = ui.app.service.store();
    let mut all: Vec<_> = store
        .all_workflows()?
        .into_iter()
        .filter(|w| w.tenant == viewer.caller.tenant)
        .filter(|w| subject.as_ref().is_none_or(|s| &w.subject.id == s))
        .collect();
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let mut rows = Vec::new();
    let mut totals = VerdictCounts::default();
    let mut next = None;
    for (i, w) in all.iter().enumerate().skip(offset) {
        if rows.len() == WORKFLOWS_PAGE {
            next = Some(i);
            break;
        }
        let (counts, _) = scan_steps(store.as_ref(), &w.id)?;
        if divergent_only && counts.divergent == 0 {
            continue;
        }
        totals.allowed += counts.allowed;
        totals.tolerated += counts.tolerated;
        totals.divergent += counts.divergent;
        rows.push(WorkflowRow {
            short: short_id(&w.id.to_string()),
            id: w.id.to_string(),
            subject: w.subject.id.clone(),
            created_at: w.created_at.clone(),
            closed: w.closed,
            request: request_text(&w.intent),
            counts,
        });
    }
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &subject {
        pairs.push(("subject", s.clone()));
    }
    if divergent_only {
        pairs.push(("divergent", "1".into()));
    }
    let body = WorkflowsPage {
        nav: Nav::of(&viewer, "workflows"),
        subject: subject.clone().unwrap_or_default(),
        divergent_only,
        rows,
        totals,
        next: next.map(|n| {
            pairs.push(("cursor", n.to_string()));
            format!(
                "/ui/workflows?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            )
        }),
    }
    .render()?;
    Ok(Html(body).into_response())
}

/// A piece of a clause: plain text or an entity.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The text.
    pub text: String,
    /// The entity's label, when it is one.
    pub label: Option<&'static str>,
}

/// A clause with its entities marked.
#[derive(Debug, Clone)]
pub struct ClauseView {
    /// Its speech act.
    pub speech_act: &'static str,
    /// Its text in pieces.
    pub segments: Vec<Segment>,
}

/// Splits a clause's text around the entities inside it (offsets are in
/// characters of the request; a clause whose text does not span its
/// offsets is shown whole).
pub fn segments(clause: &Clause, entities: &[Entity]) -> Vec<Segment> {
    let chars: Vec<char> = clause.text.chars().collect();
    let whole = || {
        vec![Segment {
            text: clause.text.clone(),
            label: None,
        }]
    };
    if chars.len() != clause.end.saturating_sub(clause.start) {
        return whole();
    }
    let mut inside: Vec<&Entity> = entities
        .iter()
        .filter(|e| e.start >= clause.start && e.end <= clause.end && e.start < e.end)
        .collect();
    inside.sort_by_key(|e| (e.start, e.end));
    let mut out = Vec::new();
    let mut pos = 0usize;
    for e in inside {
        let (s, t) = (e.start - clause.start, e.end - clause.start);
        if s < pos {
            continue;
        }
        if s > pos {
            out.push(Segment {
                text: chars[pos..s].iter().collect(),
                label: None,
            });
        }
        out.push(Segment {
            text: chars[s..t].iter().collect(),
            label: Some(e.label.as_str()),
        });
        pos = t;
    }
    if pos < chars.len() {
        out.push(Segment {
            text: chars[pos..].iter().collect(),
            label: None,
        });
    }
    out
}

/// A catalog tool of the intent.
#[derive(Debug, Clone)]
pub struct ToolView {
    /// Name.
    pub name: String,
    /// Why it is in the intent.
    pub role: String,
    /// Side-effecting or read-only.
    pub side_effecting: bool,
    /// Relevance, two decimals.
    pub score: String,
}

/// A step on the timeline.
#[derive(Debug, Clone)]
pub struct StepView {
    /// Seq.
    pub seq: u64,
    /// When the PEP saw it.
    pub at: String,
    /// The acting agent.
    pub actor: String,
    /// The `act` chain.
    pub chain: String,
    /// The tool.
    pub tool: String,
    /// Its arguments, compact JSON.
    pub arguments: String,
    /// The verdict.
    pub verdict: &'static str,
    /// Every reason.
    pub reasons: Vec<ReasonView>,
}

/// The workflow page.
#[derive(Template)]
#[template(path = "workflow.html")]
pub struct WorkflowPage {
    /// Header.
    pub nav: Nav,
    /// The report this page shows (one page of steps).
    pub report: crate::drift::report::WorkflowReport,
    /// The request by clause.
    pub clauses: Vec<ClauseView>,
    /// The intent's tools.
    pub tools: Vec<ToolView>,
    /// Granted side effects.
    pub granted: Vec<String>,
    /// The delegation graph.
    pub svg: String,
    /// The steps of this page.
    pub steps: Vec<StepView>,
    /// Link to the first divergent step.
    pub first_divergent: Option<String>,
    /// The next page of steps.
    pub next: Option<String>,
    /// The first page, on a later one.
    pub first: Option<String>,
}

/// The workflow page's query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkflowParams {
    cursor: Option<String>,
}

/// `GET /ui/workflows/{id}`.
pub async fn workflow(
    State(ui): State<Ui>,
    Analyst(viewer): Analyst,
    Path(raw): Path<String>,
    q: Result<Query<WorkflowParams>, QueryRejection>,
) -> Result<Response, UiError> {
    let id = workflow_id(&raw)?;
    let from = match query(q)?.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => c
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad("`cursor` is not a cursor this page gave"))?,
        None => 1,
    };
    let tracker = ui.app.service.tracker();
    let report = tracker.report(&viewer.caller.tenant, &id, from, STEPS_PAGE)?;
    let (_, first_divergent) = scan_steps(ui.app.service.store().as_ref(), &id)?;
    let base = format!("/ui/workflows/{id}");
    let page_of = |seq: u64| {
        if seq >= from && report.steps.last().is_some_and(|l| seq <= l.seq) {
            format!("#step-{seq}")
        } else {
            format!("{base}?cursor={seq}#step-{seq}")
        }
    };
    let intent = &report.intent;
    let body = WorkflowPage {
        nav: Nav::of(&viewer, "workflows"),
        clauses: intent
            .clauses
            .iter()
            .map(|c| ClauseView {
                speech_act: c.speech_act.as_str(),
                segments: segments(c, &intent.entities),
            })
            .collect(),
        tools: intent
            .tools
            .iter()
            .map(|t| ToolView {
                name: t.name.clone(),
                role: serde_json::to_value(t.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                side_effecting: t.side_effecting,
                score: format!("{:.2}", t.score),
            })
            .collect(),
        granted: intent.granted().map(str::to_string).collect(),
        svg: report.svg(),
        steps: report
            .steps
            .iter()
            .map(|s| StepView {
                seq: s.seq,
                at: s.observed.at.clone(),
                actor: s.observed.actor.id.clone(),
                chain: chain_text(s),
                tool: s.observed.name.clone(),
                arguments: serde_json::Value::Object(s.observed.arguments.clone()).to_string(),
                verdict: s.verdict.as_str(),
                reasons: s.reasons.iter().map(ReasonView::of).collect(),
            })
            .collect(),
        first_divergent: first_divergent.map(page_of),
        next: report
            .next_cursor
            .as_ref()
            .map(|c| format!("{base}?cursor={c}")),
        first: (from > 1).then(|| base.clone()),
        report,
    }
    .render()?;
    Ok(Html(body).into_response())
}
