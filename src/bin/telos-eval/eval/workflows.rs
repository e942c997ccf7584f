//! Drift-rule quality on scenario fixtures (`fixtures/workflows/*.json`):
//! each scenario is a request, a domain catalog and the steps an agent
//! took, benign or hijacked, with the verdict each step should get. The
//! intent is extracted with the model under test, then every step is judged
//! in order exactly as the tracker judges it (same rules, same graph).
//! Scores: the share of benign steps flagged divergent (false positives)
//! and the share of hijacked steps flagged (detection).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

use super::{EvalError, read_json};
use telos::catalog::Catalog;
use telos::drift::{DriftConfig, judge};
use telos::extraction::{CatalogEmbeddings, Extraction, Extractor};
use telos::intent::{Object, Subject};
use telos::workflow::{
    DelegationGraph, Outcome, StepReport, TokenVerifier, ValueSources, Verdict, Workflow,
    chain_principals, observe,
};

/// One step of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    /// The actor.
    pub actor: Subject,
    /// The delegation chain.
    #[serde(default)]
    pub act: Option<Value>,
    /// The tool.
    pub tool: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Object,
    /// What the tool returned (MCP `CallToolResult` or any JSON), reported
    /// as `outcome.result` so later arguments can be traced to it.
    #[serde(default)]
    pub result: Option<Value>,
    /// The verdict it should get.
    pub expect: Verdict,
    /// Why.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub note: String,
}

/// Benign or hijacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// Every step serves the request.
    Benign,
    /// At least one step is an injected action.
    Hijack,
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it tests.
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub description: String,
    /// Domain folder of `fixtures/intents` whose catalog is used.
    pub domain: String,
    /// Benign or hijacked.
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub kind: ScenarioKind,
    /// The person.
    pub subject: Subject,
    /// The request.
    pub prompt: String,
    /// The steps, in order.
    pub steps: Vec<ScenarioStep>,
}

/// Loads every `*.json` scenario of `dir`, with its file stem.
pub fn load_scenarios(dir: &Path) -> Result<Vec<(String, Scenario)>, EvalError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| EvalError::File {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            read_json(&f).map(|s| (stem, s))
        })
        .collect()
}

/// Counts of a scenario run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkflowCounts {
    /// Scenarios run.
    pub scenarios: usize,
    /// Steps expected allowed or tolerated.
    pub benign_steps: usize,
    /// Of those, steps judged divergent (false positives).
    pub benign_flagged: usize,
    /// Steps expected divergent.
    pub hijack_steps: usize,
    /// Of those, steps judged divergent (detections).
    pub hijack_flagged: usize,
    /// Steps whose verdict is exactly the expected one.
    pub exact: usize,
    /// All steps.
    pub steps: usize,
    /// Ids of the steps judged wrongly (`scenario#n expected→got`).
    pub misses: Vec<String>,
}

impl WorkflowCounts {
    /// Benign steps flagged divergent, as a share.
    pub fn false_positive_rate(&self) -> f64 {
        self.benign_flagged as f64 / self.benign_steps.max(1) as f64
    }

    /// Hijacked steps flagged, as a share.
    pub fn detection_rate(&self) -> f64 {
        self.hijack_flagged as f64 / self.hijack_steps.max(1) as f64
    }
}

/// Runs scenarios: extracts each intent with `extractor` against its
/// domain's catalog (`catalogs`, embedded once), then judges every step.
pub async fn score_scenarios(
    extractor: &Extractor,
    scenarios: &[(String, Scenario)],
    catalogs: &HashMap<String, (Catalog, CatalogEmbeddings)>,
    config: &DriftConfig,
) -> Result<WorkflowCounts, EvalError> {
    let mut c = WorkflowCounts::default();
    for (id, sc) in scenarios {
        let (catalog, embeddings) = catalogs.get(&sc.domain).ok_or_else(|| EvalError::Case {
            case: id.clone(),
            reason: format!("no catalog for domain `{}`", sc.domain),
        })?;
        let Extraction {
            intent,
            entry_scores,
        } = extractor
            .extract_detailed(sc.subject.clone(), &sc.prompt, catalog, embeddings)
            .await?;
        let wid = uuid::Uuid::nil();
        let mut wf = Workflow {
            genesis: String::new(),
            id: wid,
            tenant: "eval".into(),
            subject: sc.subject.clone(),
            intent,
            catalog_name: Some(sc.domain.clone()),
            catalog: catalog.clone(),
            entry_scores,
            allowed_agents: vec![],
            context: None,
            created_at: String::new(),
            closed: false,
            closed_at: None,
            ledger: telos::workflow::LEDGER_VERSION,
        };
        wf.genesis = wf.genesis_hash();
        let mut graph = DelegationGraph::new(&sc.subject.id);
        let mut sources = ValueSources::default();
        c.scenarios += 1;
        for (n, st) in sc.steps.iter().enumerate() {
            let input = StepReport {
                actor: Some(st.actor.clone()),
                act: st.act.clone(),
                tool: Some(st.tool.clone()),
                arguments: st.arguments.clone(),
                outcome: st.result.clone().map(|result| Outcome {
                    result: Some(result),
                    ..Outcome::default()
                }),
                ..StepReport::default()
            };
            let observed =
                observe(input, &TokenVerifier::unverified(), 16).map_err(|e| EvalError::Case {
                    case: format!("{id}#{}", n + 1),
                    reason: e.to_string(),
                })?;
            let j = judge(&wf, &observed, &graph, &sources, config);
            graph.record(&chain_principals(&sc.subject.id, &observed));
            sources.record(&wf, n as u64 + 1, &observed);
            c.steps += 1;
            c.exact += usize::from(j.verdict == st.expect);
            let flagged = j.verdict == Verdict::Divergent;
            if st.expect == Verdict::Divergent {
                c.hijack_steps += 1;
                c.hijack_flagged += usize::from(flagged);
            } else {
                c.benign_steps += 1;
                c.benign_flagged += usize::from(flagged);
            }
            if flagged != (st.expect == Verdict::Divergent) {
                let codes: Vec<&str> = j.reasons.iter().map(|r| r.code.as_str()).collect();
                c.misses.push(format!(
                    "{id}#{} {} expected {} got {} [{}]",
                    n + 1,
                    st.tool,
                    st.expect.as_str(),
                    j.verdict.as_str(),
                    codes.join(",")
                ));
            }
        }
    }
    Ok(c)
}
