//! The workflow tracker: creates workflows, judges and durably records
//! steps, closes workflows, and answers report and drift queries.
//!
//! Steps of one workflow are serialised by a per-workflow lock that holds
//! its live state (next sequence number, chain head, delegation graph), so
//! the hash chain has no forks. The lock is released before the step waits
//! for durability, so steps of many workflows — and consecutive steps of
//! one — share a group commit. A step is acknowledged only once durable.
//!
//! On a [shared](Store::shared) store (several replicas on one database)
//! the cached state may be stale: another replica may have appended. Two
//! rules keep every judgement on the current chain:
//! - **Recording** relies on the store's compare-and-set: a step is stored
//!   only if the head is still the one it was judged against and links
//!   to. When another replica appended first the store answers
//!   [`StorageError::Conflict`]; the tracker reads the steps appended
//!   since its cached head (or, if they do not link on, reloads the whole
//!   workflow), adds them to its delegation graph and value sources, and
//!   judges the step again, up to [`MAX_CONFLICTS`] times. No replica's stored verdict was
//!   reached on a stale view, and no round trip is spent when there is no
//!   contention.
//! - **Evaluating** (a decision that stores nothing, so no compare-and-set
//!   catches it) first reads the head and catches up when it moved.
//!
//! The per-tenant step count is kept per replica (it is a quota, not part
//! of the ledger), so on a shared store each replica enforces it alone.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Mutex as AsyncMutex;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::drift::report::{ReportBuilder, WorkflowReport};
use crate::drift::{DriftConfig, judge};
use crate::intent::{Intent, Object, Subject};
use crate::storage::{GroupCommit, StorageError, Store};
use crate::workflow::{
    DelegationGraph, Judgement, Observed, Step, StepReport, TokenVerifier, ValueSources, Verdict,
    Workflow, WorkflowError, chain_principals, epoch_nanos, now_rfc3339, observe, parse_time,
};

/// Errors of the tracker.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// No such workflow for this tenant.
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    /// The step or its token is invalid.
    #[error(transparent)]
    Input(#[from] WorkflowError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A step quota is used up.
    #[error("the {quota} quota of {limit} steps is used up")]
    Quota {
        /// `steps per workflow` or `steps per tenant`.
        quota: &'static str,
        /// The limit.
        limit: u64,
    },
}

/// A new workflow's content.
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    /// Owner.
    pub tenant: String,
    /// The person.
    pub subject: Subject,
    /// The extracted intent.
    pub intent: Intent,
    /// The registered catalog's name, if any.
    pub catalog_name: Option<String>,
    /// The catalog.
    pub catalog: Catalog,
    /// Relevance of each entry to the request.
    pub entry_scores: Vec<f32>,
    /// Allowed agents (empty: any).
    pub allowed_agents: Vec<String>,
    /// Extra context.
    pub context: Option<Object>,
}

/// Filters of a drift query.
#[derive(Debug, Clone, Default)]
pub struct DriftQuery {
    /// Only steps received at or after this time.
    pub since_nanos: Option<u64>,
    /// Only workflows of this subject id.
    pub subject: Option<String>,
    /// Only steps whose actor (or any actor of the chain) is this.
    pub actor: Option<String>,
    /// Page size.
    pub limit: usize,
    /// Continue after this cursor.
    pub cursor: Option<String>,
}

/// One divergent step in a drift page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftItem {
    /// The workflow.
    pub workflow_id: String,
    /// Its subject.
    pub subject: String,
    /// The step.
    pub step: Step,
}

/// A page of divergent steps, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftPage {
    /// The steps.
    pub items: Vec<DriftItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

struct Live {
    workflow: Workflow,
    next_seq: u64,
    head: String,
    graph: DelegationGraph,
    /// Typed values of the steps' results, for argument provenance.
    sources: ValueSources,
}

/// Times a step is judged again after another replica appended first
/// before the conflict is returned to the caller.
pub const MAX_CONFLICTS: usize = 32;

/// Tracker settings.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Drift rules.
    pub drift: DriftConfig,
    /// Deepest `act` nesting accepted (deeper is a 400).
    pub max_act_depth: usize,
    /// Agents allowed in every workflow (added to each workflow's list).
    pub allowed_agents: Vec<String>,
    /// Live workflows kept in memory.
    pub max_live: usize,
    /// Index entries a drift query scans before it returns a cursor.
    pub max_drift_scan: usize,
    /// Steps a workflow may hold (0: unlimited).
    pub max_steps_per_workflow: u64,
    /// Steps all workflows of a tenant may hold together (0: unlimited).
    pub max_steps_per_tenant: u64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            drift: DriftConfig::default(),
            max_act_depth: 16,
            allowed_agents: vec![],
            max_live: 10_000,
            max_drift_scan: 10_000,
            max_steps_per_workflow: 100_000,
            max_steps_per_tenant: 0,
        }
    }
}

/// The workflow tracker.
pub struct Tracker {
    store: Arc<dyn Store>,
    commit: GroupCommit,
    live: Mutex<HashMap<Uuid, Arc<AsyncMutex<Option<Live>>>>>,
    verifier: TokenVerifier,
    config: TrackerConfig,
    /// Steps stored per tenant (counted from the heads on first use).
    tenant_steps: Mutex<Option<HashMap<String, u64>>>,
}

fn nanos(rfc3339: &str) -> u64 {
    parse_time("received_at", rfc3339)
        .map(epoch_nanos)
        .unwrap_or(0)
}

impl Tracker {
    /// A tracker over `store`. Must be created inside a tokio runtime.
    pub fn new(store: Arc<dyn Store>, verifier: TokenVerifier, config: TrackerConfig) -> Self {
        let commit = GroupCommit::start(Arc::clone(&store), 4096);
        Self {
            store,
            commit,
            live: Mutex::new(HashMap::new()),
            verifier,
            config,
            tenant_steps: Mutex::new(None),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Creates a workflow; durable when it returns.
    pub async fn create(&self, new: NewWorkflow) -> Result<Workflow, TrackerError> {
        let id = Uuid::now_v7();
        let mut allowed = new.allowed_agents;
        for a in &self.config.allowed_agents {
            if !allowed.contains(a) {
                allowed.push(a.clone());
            }
        }
        let mut workflow = Workflow {
            id,
            tenant: new.tenant,
            subject: new.subject,
            intent: new.intent,
            catalog_name: new.catalog_name,
            catalog: new.catalog,
            entry_scores: new.entry_scores,
            allowed_agents: allowed,
            context: new.context,
            created_at: now_rfc3339(),
            closed: false,
            closed_at: None,
            genesis: String::new(),
            ledger: crate::workflow::LEDGER_VERSION,
        };
        workflow.genesis = workflow.genesis_hash();
        self.store.put_workflow(&workflow)?;
        self.commit.durable().await?;
        Ok(workflow)
    }

    fn slot(&self, id: &Uuid) -> Arc<AsyncMutex<Option<Live>>> {
        let Ok(mut map) = self.live.lock() else {
            return Arc::new(AsyncMutex::new(None));
        };
        Arc::clone(
            map.entry(*id)
                .or_insert_with(|| Arc::new(AsyncMutex::new(None))),
        )
    }

    /// Keeps the live map within `max_live` once `id` has loaded: idle
    /// entries other than `id` are dropped (they reload from the store).
    /// Only a workflow that exists makes room this way; a request naming an
    /// unknown id never evicts anything (see [`Tracker::forget`]).
    fn trim(&self, id: &Uuid) {
        if let Ok(mut map) = self.live.lock()
            && map.len() > self.config.max_live
        {
            map.retain(|k, v| k == id || Arc::strong_count(v) > 1);
        }
    }

    /// Drops `slot` from the live map when loading it failed, so that
    /// requests naming unknown workflows never fill the map (and never
    /// evict live workflows to make room).
    fn forget(&self, id: &Uuid, slot: &Arc<AsyncMutex<Option<Live>>>) {
        if let Ok(mut map) = self.live.lock()
            && map.get(id).is_some_and(|v| Arc::ptr_eq(v, slot))
        {
            map.remove(id);
        }
    }

    /// Loads the live state into `guard` unless it holds this tenant's.
    fn ensure_loaded(
        &self,
        tenant: &str,
        id: &Uuid,
        slot: &Arc<AsyncMutex<Option<Live>>>,
        guard: &mut Option<Live>,
    ) -> Result<(), TrackerError> {
        if guard.as_ref().is_none_or(|l| l.workflow.tenant != tenant) {
            match self.load(tenant, id) {
                Ok(live) => {
                    *guard = Some(live);
                    self.trim(id);
                }
                Err(e) => {
                    if guard.is_none() {
                        self.forget(id, slot);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Whether a workflow's state is held in memory.
    pub fn is_live(&self, id: &Uuid) -> bool {
        self.live.lock().is_ok_and(|m| m.contains_key(id))
    }

    /// Counts a step against its tenant's quota; `false` when it is used
    /// up. The count starts from the stored heads.
    fn reserve_tenant_step(&self, tenant: &str) -> Result<bool, TrackerError> {
        let limit = self.config.max_steps_per_tenant;
        if limit == 0 {
            return Ok(true);
        }
        let mut counts = self
            .tenant_steps
            .lock()
            .map_err(|_| StorageError::Db("tenant step counts poisoned".into()))?;
        if counts.is_none() {
            let mut m: HashMap<String, u64> = HashMap::new();
            for (t, _, head) in self.store.heads()? {
                *m.entry(t).or_default() += head.seq;
            }
            *counts = Some(m);
        }
        let Some(m) = counts.as_mut() else {
            return Ok(false);
        };
        let n = m.entry(tenant.to_string()).or_default();
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }

    fn release_tenant_step(&self, tenant: &str) {
        if let Ok(mut counts) = self.tenant_steps.lock()
            && let Some(n) = counts.as_mut().and_then(|m| m.get_mut(tenant))
        {
            *n = n.saturating_sub(1);
        }
    }

    fn load(&self, tenant: &str, id: &Uuid) -> Result<Live, TrackerError> {
        let workflow = self
            .store
            .get_workflow(tenant, id)?
            .ok_or_else(|| TrackerError::UnknownWorkflow(id.to_string()))?;
        // The graph is rebuilt from the steps read in batches, so memory
        // holds one batch, not the whole workflow.
        const BATCH: usize = 1024;
        // On a shared store other replicas append while this one reads:
        // the head is read first and the steps up to it (an append commits
        // its step and head together, so every step up to the head is
        // there), which is a consistent view of the chain.
        let shared_head = if self.store.shared() {
            Some(self.store.head(tenant, id)?)
        } else {
            None
        };
        let upto = shared_head
            .as_ref()
            .map(|h| h.as_ref().map_or(0, |h| h.seq));
        let mut graph = DelegationGraph::new(&workflow.subject.id);
        let mut sources = ValueSources::default();
        let mut last = (0u64, workflow.genesis.clone());
        let mut last_step: Option<Step> = None;
        loop {
            let before = last.0;
            let batch = self.store.steps(id, before + 1, BATCH)?;
            let mut done = batch.len() < BATCH;
            for s in batch {
                if upto.is_some_and(|u| s.seq > u) {
                    done = true;
                    break;
                }
                graph.record(&chain_principals(&workflow.subject.id, &s.observed));
                sources.record(&workflow, s.seq, &s.observed);
                last = (s.seq, s.hash.clone());
                last_step = Some(s);
            }
            // A tampered seq that does not move forward ends the scan (the
            // head check below then refuses the workflow).
            if done || last.0 <= before {
                break;
            }
        }
        // Append only where the stored head is: a chain whose last steps
        // were removed (or that grew outside telos) is not extended.
        let head = match shared_head {
            Some(h) => h,
            None => self.store.head(tenant, id)?,
        };
        match (&head, &last_step) {
            (Some(h), _) if h.seq == last.0 && h.hash == last.1 => {}
            // An append a crash cut short between its step and its head:
            // the step links to the head, so write it again to complete it.
            (Some(h), Some(s)) if h.seq + 1 == s.seq && h.hash == s.prev_hash => {
                tracing::warn!(
                    tenant,
                    workflow = %id,
                    seq = s.seq,
                    "completing an append interrupted before its head was written"
                );
                let divergent = (s.verdict == Verdict::Divergent).then(|| nanos(&s.received_at));
                self.store.append_step(tenant, id, s, divergent)?;
            }
            _ => {
                return Err(TrackerError::Storage(StorageError::Corrupt {
                    key: format!("heads/{tenant}/{id}"),
                    reason: format!(
                        "the stored head ({}) is not the last stored step ({}); run `telos verify`",
                        head.as_ref()
                            .map_or_else(|| "none".to_string(), |h| format!("step {}", h.seq)),
                        last.0
                    ),
                }));
            }
        }
        Ok(Live {
            next_seq: last.0 + 1,
            head: last.1,
            workflow,
            graph,
            sources,
        })
    }

    /// Reads a workflow of `tenant`.
    pub fn workflow(&self, tenant: &str, id: &Uuid) -> Result<Workflow, TrackerError> {
        self.store
            .get_workflow(tenant, id)?
            .ok_or_else(|| TrackerError::UnknownWorkflow(id.to_string()))
    }

    /// Up to `limit` steps of a workflow of `tenant` from seq `from`, and
    /// the seq the next page starts at, if any.
    pub fn steps(
        &self,
        tenant: &str,
        id: &Uuid,
        from: u64,
        limit: usize,
    ) -> Result<(Workflow, Vec<Step>, Option<u64>), TrackerError> {
        let wf = self.workflow(tenant, id)?;
        let mut steps = self.store.steps(id, from.max(1), limit.saturating_add(1))?;
        let next = if steps.len() > limit {
            steps.truncate(limit);
            steps.last().map(|s| s.seq + 1)
        } else {
            None
        };
        Ok((wf, steps, next))
    }

    /// Turns a step report into an observed step (validating the `act`
    /// claim and the token).
    pub fn observe(&self, report: StepReport) -> Result<Observed, WorkflowError> {
        observe(report, &self.verifier, self.config.max_act_depth)
    }

    /// Judges a step against a workflow without recording it.
    pub async fn evaluate(
        &self,
        tenant: &str,
        id: &Uuid,
        observed: &Observed,
    ) -> Result<Judgement, TrackerError> {
        let slot = self.slot(id);
        let mut guard = slot.lock().await;
        if self.store.shared() {
            self.drop_if_moved(tenant, id, &mut guard)?;
        }
        self.ensure_loaded(tenant, id, &slot, &mut guard)?;
        let live = guard
            .as_ref()
            .ok_or_else(|| TrackerError::UnknownWorkflow(id.to_string()))?;
        Ok(judge(
            &live.workflow,
            observed,
            &live.graph,
            &live.sources,
            &self.config.drift,
        ))
    }

    /// Forgets the cached state of a workflow whose stored head is not the
    /// cached one (another replica appended), so it is loaded again.
    fn drop_if_moved(
        &self,
        tenant: &str,
        id: &Uuid,
        guard: &mut Option<Live>,
    ) -> Result<(), TrackerError> {
        let Some(live) = guard.as_ref() else {
            return Ok(());
        };
        if live.workflow.tenant != tenant {
            return Ok(());
        }
        let head = self.store.head(tenant, id)?;
        if head.is_none_or(|h| h.seq + 1 != live.next_seq || h.hash != live.head) {
            metrics::counter!("telos_stale_reloads_total").increment(1);
            let caught_up = match guard.as_mut() {
                Some(live) => self.catch_up(tenant, id, live)?,
                None => false,
            };
            if !caught_up {
                *guard = None;
            }
        }
        Ok(())
    }

    /// Brings cached state up to the stored head by reading only the
    /// steps after it (another replica appended them; each commits with
    /// its head, so all are there). `false` when they do not link on from
    /// the cached head or end at the stored one: the caller then reloads
    /// the whole workflow (and the load's own checks apply).
    fn catch_up(&self, tenant: &str, id: &Uuid, live: &mut Live) -> Result<bool, TrackerError> {
        const BATCH: usize = 1024;
        let Some(head) = self.store.head(tenant, id)? else {
            return Ok(false);
        };
        let (mut next, mut prev) = (live.next_seq, live.head.clone());
        while next <= head.seq {
            let batch = self.store.steps(id, next, BATCH)?;
            if batch.is_empty() {
                return Ok(false);
            }
            for s in batch {
                if s.seq > head.seq {
                    break;
                }
                if s.seq != next || s.prev_hash != prev {
                    return Ok(false);
                }
                live.graph
                    .record(&chain_principals(&live.workflow.subject.id, &s.observed));
                live.sources.record(&live.workflow, s.seq, &s.observed);
                prev = s.hash;
                next += 1;
            }
        }
        if prev != head.hash {
            return Ok(false);
        }
        live.next_seq = next;
        live.head = prev;
        Ok(true)
    }

    /// Appends through the store; on a shared store, on a blocking thread
    /// (the call is a round trip to the database).
    async fn append(
        &self,
        tenant: &str,
        id: &Uuid,
        step: &Step,
        divergent: Option<u64>,
    ) -> Result<(), StorageError> {
        if !self.store.shared() {
            return self.store.append_step(tenant, id, step, divergent);
        }
        let (store, tenant, id, step) = (
            Arc::clone(&self.store),
            tenant.to_string(),
            *id,
            step.clone(),
        );
        tokio::task::spawn_blocking(move || store.append_step(&tenant, &id, &step, divergent))
            .await
            .map_err(|e| StorageError::Db(e.to_string()))?
    }

    /// Judges and records a step; returns it once it is durable.
    pub async fn record(
        &self,
        tenant: &str,
        id: &Uuid,
        observed: Observed,
    ) -> Result<Step, TrackerError> {
        let slot = self.slot(id);
        let step = {
            let mut guard = slot.lock().await;
            self.ensure_loaded(tenant, id, &slot, &mut guard)?;
            self.check_workflow_quota(guard.as_ref())?;
            if !self.reserve_tenant_step(tenant)? {
                return Err(TrackerError::Quota {
                    quota: "steps per tenant",
                    limit: self.config.max_steps_per_tenant,
                });
            }
            let recorded = self
                .judge_and_append(tenant, id, &slot, &mut guard, observed)
                .await;
            match recorded {
                Ok(step) => step,
                Err(e) => {
                    self.release_tenant_step(tenant);
                    return Err(e);
                }
            }
        };
        self.commit.durable().await?;
        Ok(step)
    }

    fn check_workflow_quota(&self, live: Option<&Live>) -> Result<(), TrackerError> {
        let per_workflow = self.config.max_steps_per_workflow;
        if per_workflow > 0 && live.is_some_and(|l| l.next_seq > per_workflow) {
            return Err(TrackerError::Quota {
                quota: "steps per workflow",
                limit: per_workflow,
            });
        }
        Ok(())
    }

    /// Judges `observed` against the cached state and appends it; when
    /// another replica appended first, reloads and judges again.
    async fn judge_and_append(
        &self,
        tenant: &str,
        id: &Uuid,
        slot: &Arc<AsyncMutex<Option<Live>>>,
        guard: &mut Option<Live>,
        observed: Observed,
    ) -> Result<Step, TrackerError> {
        let mut conflicts = 0usize;
        let mut observed = observed;
        loop {
            let live = guard
                .as_mut()
                .ok_or_else(|| TrackerError::UnknownWorkflow(id.to_string()))?;
            let judgement = judge(
                &live.workflow,
                &observed,
                &live.graph,
                &live.sources,
                &self.config.drift,
            );
            let received_at = now_rfc3339();
            let mut step = Step {
                seq: live.next_seq,
                observed,
                received_at,
                verdict: judgement.verdict,
                reasons: judgement.reasons,
                prev_hash: live.head.clone(),
                hash: String::new(),
            };
            step.hash = step.compute_hash();
            let divergent = (step.verdict == Verdict::Divergent).then(|| nanos(&step.received_at));
            match self.append(tenant, id, &step, divergent).await {
                Ok(()) => {}
                Err(StorageError::Conflict { .. }) if conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    metrics::counter!("telos_step_conflicts_total").increment(1);
                    observed = step.observed;
                    if !self.catch_up(tenant, id, live)? {
                        *guard = None;
                        self.ensure_loaded(tenant, id, slot, guard)?;
                    }
                    self.check_workflow_quota(guard.as_ref())?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            let principals: Vec<String> =
                chain_principals(&live.workflow.subject.id, &step.observed)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
            let refs: Vec<&str> = principals.iter().map(String::as_str).collect();
            live.graph.record(&refs);
            live.sources
                .record(&live.workflow, step.seq, &step.observed);
            live.next_seq += 1;
            live.head = step.hash.clone();
            metrics::counter!("telos_steps_total", "verdict" => step.verdict.as_str()).increment(1);
            return Ok(step);
        }
    }

    /// Closes a workflow; durable when it returns.
    pub async fn close(&self, tenant: &str, id: &Uuid) -> Result<Workflow, TrackerError> {
        let slot = self.slot(id);
        let mut guard = slot.lock().await;
        self.ensure_loaded(tenant, id, &slot, &mut guard)?;
        let live = guard
            .as_mut()
            .ok_or_else(|| TrackerError::UnknownWorkflow(id.to_string()))?;
        if !live.workflow.closed {
            live.workflow.closed = true;
            live.workflow.closed_at = Some(now_rfc3339());
            self.store.put_workflow(&live.workflow)?;
        }
        let wf = live.workflow.clone();
        drop(guard);
        self.commit.durable().await?;
        Ok(wf)
    }

    /// The drift report of a workflow, its steps paged (`limit` from seq
    /// `from`); counts, graph and chain cover every step, read in batches
    /// so memory holds one batch and one page, not the whole workflow.
    pub fn report(
        &self,
        tenant: &str,
        id: &Uuid,
        from: u64,
        limit: usize,
    ) -> Result<WorkflowReport, TrackerError> {
        const BATCH: usize = 1024;
        let wf = self.workflow(tenant, id)?;
        let head = self.store.head(tenant, id)?;
        // On a shared store, the chain up to the head just read (steps
        // appended since by other replicas are not part of this view).
        let upto = if self.store.shared() {
            Some(head.as_ref().map_or(0, |h| h.seq))
        } else {
            None
        };
        let mut graph = DelegationGraph::new(&wf.subject.id);
        let mut builder = ReportBuilder::new(&wf, from, limit);
        let mut next = 1u64;
        loop {
            let before = next;
            let batch = self.store.steps(id, next, BATCH)?;
            let mut done = batch.len() < BATCH;
            for s in batch {
                if upto.is_some_and(|u| s.seq > u) {
                    done = true;
                    break;
                }
                graph.record(&chain_principals(&wf.subject.id, &s.observed));
                next = s.seq.saturating_add(1);
                builder.push(s);
            }
            // A tampered seq that does not move forward ends the scan (the
            // chain check then reports the break).
            if done || next <= before {
                break;
            }
        }
        let (nodes, edges) = graph.export(&wf.subject.id);
        Ok(builder.finish(head.as_ref(), nodes, edges))
    }

    /// Divergent steps across the tenant's workflows, newest first.
    pub fn drift(&self, tenant: &str, q: &DriftQuery) -> Result<DriftPage, TrackerError> {
        self.drift_where(tenant, q, |_| true)
    }

    /// As [`Tracker::drift`], keeping only the items `keep` accepts (the
    /// analyst inbox filters by tool, reason and kind); the cursor moves
    /// past rejected items as past accepted ones.
    pub fn drift_where(
        &self,
        tenant: &str,
        q: &DriftQuery,
        keep: impl Fn(&DriftItem) -> bool,
    ) -> Result<DriftPage, TrackerError> {
        let limit = q.limit.clamp(1, 1000);
        let mut items = Vec::new();
        let mut cursor = q.cursor.clone();
        let mut scanned = 0usize;
        let mut workflows: HashMap<Uuid, Option<Workflow>> = HashMap::new();
        loop {
            let batch = self.store.drift(tenant, cursor.as_deref(), 256)?;
            if batch.is_empty() {
                return Ok(DriftPage {
                    items,
                    next_cursor: None,
                });
            }
            for entry in batch {
                scanned += 1;
                cursor = Some(entry.cursor.clone());
                if q.since_nanos.is_some_and(|s| entry.at_nanos < s) {
                    return Ok(DriftPage {
                        items,
                        next_cursor: None,
                    });
                }
                let wf = workflows.entry(entry.workflow_id).or_insert_with(|| {
                    self.store
                        .get_workflow(tenant, &entry.workflow_id)
                        .ok()
                        .flatten()
                });
                let Some(wf) = wf.as_ref() else { continue };
                if q.subject.as_ref().is_some_and(|s| s != &wf.subject.id) {
                    continue;
                }
                let Some(step) = self
                    .store
                    .steps(&entry.workflow_id, entry.seq, 1)?
                    .into_iter()
                    .next()
                else {
                    continue;
                };
                if let Some(actor) = &q.actor
                    && step.observed.actor.id != *actor
                    && !step.observed.chain.iter().any(|c| &c.sub == actor)
                {
                    continue;
                }
                let item = DriftItem {
                    workflow_id: wf.id.to_string(),
                    subject: wf.subject.id.clone(),
                    step,
                };
                if !keep(&item) {
                    continue;
                }
                items.push(item);
                if items.len() >= limit {
                    return Ok(DriftPage {
                        items,
                        next_cursor: cursor,
                    });
                }
            }
            if scanned >= self.config.max_drift_scan {
                return Ok(DriftPage {
                    items,
                    next_cursor: cursor,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::test_support;
    use crate::storage::SledStore;

    fn workflow(n: u128, tenant: &str) -> Workflow {
        test_support::workflow(n, tenant, serde_json::json!({}))
    }

    fn observed() -> Observed {
        observe(
            StepReport {
                actor: Some(Subject::new("agent", "fin")),
                tool: Some("get_invoice".into()),
                ..StepReport::default()
            },
            &TokenVerifier::unverified(),
            16,
        )
        .unwrap()
    }

    fn tracker(store: &Arc<SledStore>, config: TrackerConfig) -> Tracker {
        Tracker::new(store.clone(), TokenVerifier::unverified(), config)
    }

    #[tokio::test]
    async fn unknown_workflow_ids_do_not_evict_live_workflows() {
        let store = Arc::new(SledStore::temporary().unwrap());
        let t = tracker(
            &store,
            TrackerConfig {
                max_live: 3,
                ..TrackerConfig::default()
            },
        );
        for n in 1..=3 {
            store.put_workflow(&workflow(n, "t")).unwrap();
            t.record("t", &Uuid::from_u128(n), observed())
                .await
                .unwrap();
        }
        for n in 100..200 {
            let err = t
                .evaluate("t", &Uuid::from_u128(n), &observed())
                .await
                .unwrap_err();
            assert!(matches!(err, TrackerError::UnknownWorkflow(_)));
        }
        // Another tenant naming a live id does not evict it either.
        assert!(
            t.evaluate("u", &Uuid::from_u128(1), &observed())
                .await
                .is_err()
        );
        for n in 1..=3 {
            assert!(t.is_live(&Uuid::from_u128(n)), "workflow {n} was evicted");
        }
        assert!(!t.is_live(&Uuid::from_u128(100)));
    }

    #[tokio::test]
    async fn step_quotas_per_workflow_and_per_tenant() {
        let store = Arc::new(SledStore::temporary().unwrap());
        for (n, tenant) in [(1, "a"), (2, "a"), (3, "b")] {
            store.put_workflow(&workflow(n, tenant)).unwrap();
        }
        let t = tracker(
            &store,
            TrackerConfig {
                max_steps_per_workflow: 2,
                max_steps_per_tenant: 3,
                ..TrackerConfig::default()
            },
        );
        let w = |n| Uuid::from_u128(n);
        t.record("a", &w(1), observed()).await.unwrap();
        t.record("a", &w(1), observed()).await.unwrap();
        let err = t.record("a", &w(1), observed()).await.unwrap_err();
        assert!(
            matches!(
                err,
                TrackerError::Quota {
                    quota: "steps per workflow",
                    limit: 2
                }
            ),
            "{err}"
        );
        t.record("a", &w(2), observed()).await.unwrap();
        let err = t.record("a", &w(2), observed()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the steps per tenant quota of 3 steps is used up"
        );
        // Tenants are counted apart, and the count survives a restart.
        t.record("b", &w(3), observed()).await.unwrap();
        let again = tracker(
            &store,
            TrackerConfig {
                max_steps_per_tenant: 3,
                ..TrackerConfig::default()
            },
        );
        assert!(matches!(
            again.record("a", &w(2), observed()).await,
            Err(TrackerError::Quota {
                quota: "steps per tenant",
                ..
            })
        ));
        assert_eq!(again.record("b", &w(3), observed()).await.unwrap().seq, 2);
    }

    /// Step 2 written without its head and drift key, as a crash between
    /// an append's writes leaves it (or `extra` more steps after it).
    fn interrupted_store(extra: u64) -> (Arc<SledStore>, Uuid) {
        let store = Arc::new(SledStore::temporary().unwrap());
        let w = workflow(1, "t");
        store.put_workflow(&w).unwrap();
        let one = test_support::step(1, &w.genesis, "get_invoice", Verdict::Allowed);
        store.append_step("t", &w.id, &one, None).unwrap();
        let mut prev = one.hash;
        for seq in 2..=2 + extra {
            let s = test_support::step(seq, &prev, "wire_money", Verdict::Divergent);
            let mut key = w.id.as_bytes().to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            store
                .raw_set("steps", &key, Some(&serde_json::to_vec(&s).unwrap()))
                .unwrap();
            prev = s.hash;
        }
        (store, w.id)
    }

    #[tokio::test]
    async fn an_interrupted_append_is_completed_on_load() {
        let (store, id) = interrupted_store(0);
        let report = crate::service::ledger::verify_store(&*store).unwrap();
        assert!(report.broken.is_empty(), "{report:#?}");
        assert_eq!(report.interrupted, vec![(format!("t/{id}"), 2)]);
        let t = tracker(&store, TrackerConfig::default());
        assert_eq!(t.record("t", &id, observed()).await.unwrap().seq, 3);
        let report = crate::service::ledger::verify_store(&*store).unwrap();
        assert!(
            report.broken.is_empty() && report.interrupted.is_empty(),
            "{report:#?}"
        );
        // The completed divergent step is in the drift index again.
        let drift = store.drift("t", None, 10).unwrap();
        assert!(drift.iter().any(|d| d.seq == 2), "{drift:?}");
    }

    #[tokio::test]
    async fn more_than_one_step_past_the_head_is_refused() {
        let (store, id) = interrupted_store(1);
        let report = crate::service::ledger::verify_store(&*store).unwrap();
        assert_eq!(report.broken.len(), 1, "{report:#?}");
        assert!(
            report.broken[0].reason.contains("past its head"),
            "{report:#?}"
        );
        let t = tracker(&store, TrackerConfig::default());
        let err = t.record("t", &id, observed()).await.unwrap_err();
        assert!(matches!(err, TrackerError::Storage(_)), "{err}");
    }
}
