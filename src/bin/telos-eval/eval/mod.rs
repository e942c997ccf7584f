//! Quality measurement on labelled fixtures (`telos-eval`). A fixture
//! directory holds one folder per domain (`catalog.json` plus one JSON file
//! per case) and `splits.json` naming the training and held-out domains.
//! Scores: side-effecting tool precision and recall (what decides
//! detection), entity F1 (strict span match and ≥ 0.5 overlap), speech-act
//! accuracy, and delegation detection; plus the BFCL held-out cases
//! (right function chosen among the candidates, abstention when none fits).
//! [`workflows`] scores the drift rules on benign and hijacked traces.

pub mod workflows;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use telos::catalog::{Catalog, Limits, parse_catalog};
use telos::extraction::matching::{MatchThresholds, cosine};
use telos::extraction::{
    BoxFuture, CatalogEmbeddings, Encoded, Encoder, EncoderMeta, ExtractionConfig, ExtractionError,
    Extractor,
};
use telos::intent::{EntityLabel, Intent, SpeechAct, Subject};

/// Errors of loading fixtures.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read or parsed.
    #[error("`{path}`: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A case is inconsistent with its catalog or prompt.
    #[error("case `{case}`: {reason}")]
    Case {
        /// The case id.
        case: String,
        /// Why.
        reason: String,
    },
    /// Extraction failed.
    #[error(transparent)]
    Extraction(#[from] ExtractionError),
}

/// `splits.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Splits {
    /// Domains used for training data and threshold tuning.
    pub train: Vec<String>,
    /// Domains never trained on, read while rules and thresholds were
    /// developed (`heldout` in older files).
    #[serde(alias = "heldout")]
    pub dev: Vec<String>,
    /// Domains written blind, by people who saw only the annotation guide
    /// and the catalog and never a model's output; committed before the
    /// model choices they score and scored once per release, never tuned
    /// on (`blind` in older files).
    #[serde(default, alias = "blind")]
    pub test: Vec<String>,
}

/// An expected entity of a case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEntity {
    /// Its label.
    pub label: EntityLabel,
    /// Its exact text in the prompt.
    pub text: String,
}

/// What a case expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// The request's speech act.
    pub speech_act: SpeechAct,
    /// Side-effecting tools that must be granted.
    pub tools: Vec<String>,
    /// Read-only tools asked for or implied.
    pub read_tools: Vec<String>,
    /// The data a delegation hands control to.
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub delegation_source: Option<String>,
    /// Entities in order of appearance.
    pub entities: Vec<ExpectedEntity>,
}

/// One labelled request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// What the case tests.
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub description: String,
    /// The request text.
    pub prompt: String,
    /// The expected outcome.
    pub expected: Expected,
}

/// A loaded case with entity offsets resolved (characters).
#[derive(Debug, Clone)]
pub struct Case {
    /// `domain/file-stem`.
    pub id: String,
    /// The case.
    pub file: CaseFile,
    /// Expected entities as `(label, start, end)` character spans.
    pub spans: Vec<(EntityLabel, usize, usize)>,
}

/// A domain: its catalog and cases.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Folder name.
    pub name: String,
    /// The catalog.
    pub catalog: Catalog,
    /// The cases.
    pub cases: Vec<Case>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, EvalError> {
    let err = |reason: String| EvalError::File {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))
}

/// Character spans of `entities` found in order of appearance in `prompt`.
fn resolve_spans(
    id: &str,
    prompt: &str,
    entities: &[ExpectedEntity],
) -> Result<Vec<(EntityLabel, usize, usize)>, EvalError> {
    let mut out = Vec::new();
    let mut from = 0usize; // byte offset
    for e in entities {
        let at = prompt[from..]
            .find(&e.text)
            .map(|i| i + from)
            .or_else(|| prompt.find(&e.text))
            .ok_or_else(|| EvalError::Case {
                case: id.into(),
                reason: format!("entity `{}` is not in the prompt", e.text),
            })?;
        let start = prompt[..at].chars().count();
        out.push((e.label, start, start + e.text.chars().count()));
        from = at + e.text.len();
    }
    Ok(out)
}

/// Loads `splits.json` and every domain folder of `dir`.
pub fn load_fixtures(dir: &Path) -> Result<(Splits, Vec<Domain>), EvalError> {
    let splits: Splits = read_json(&dir.join("splits.json"))?;
    let mut domains = Vec::new();
    for name in splits.train.iter().chain(&splits.dev).chain(&splits.test) {
        let folder = dir.join(name);
        let catalog_body: Value = read_json(&folder.join("catalog.json"))?;
        let catalog =
            parse_catalog(&catalog_body, Limits::default()).map_err(|e| EvalError::File {
                path: folder.join("catalog.json").display().to_string(),
                reason: e.to_string(),
            })?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| EvalError::File {
                path: folder.display().to_string(),
                reason: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name().is_some_and(|n| n != "catalog.json")
            })
            .collect();
        files.sort();
        let mut cases = Vec::new();
        for f in files {
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let id = format!("{name}/{stem}");
            let file: CaseFile = read_json(&f)?;
            for t in file.expected.tools.iter().chain(&file.expected.read_tools) {
                if catalog.get(t).is_none() {
                    return Err(EvalError::Case {
                        case: id,
                        reason: format!("tool `{t}` is not in the catalog"),
                    });
                }
            }
            let spans = resolve_spans(&id, &file.prompt, &file.expected.entities)?;
            cases.push(Case { id, file, spans });
        }
        domains.push(Domain {
            name: name.clone(),
            catalog,
            cases,
        });
    }
    Ok((splits, domains))
}

/// Counts behind the scores of one split.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Cases scored.
    pub cases: usize,
    /// Correctly granted side-effecting tools.
    pub tool_tp: usize,
    /// Granted but not expected.
    pub tool_fp: usize,
    /// Expected but not granted.
    pub tool_fn: usize,
    /// Entities predicted.
    pub ent_pred: usize,
    /// Entities expected.
    pub ent_gold: usize,
    /// Exact span and label matches.
    pub ent_strict: usize,
    /// Label match with span overlap ≥ 0.5 (IoU).
    pub ent_overlap: usize,
    /// Cases whose speech act is right.
    pub act_correct: usize,
    /// Delegation cases.
    pub delegations: usize,
    /// Delegation cases marked open-ended.
    pub delegations_found: usize,
    /// Non-delegation cases marked open-ended.
    pub false_open_ended: usize,
    /// Question cases.
    pub questions: usize,
    /// Question cases granted any side-effecting tool.
    pub questions_with_side_effects: usize,
    /// Read-only tools the cases ask for or need.
    pub read_gold: usize,
    /// Of those, the ones the intent holds (in any role).
    pub read_found: usize,
    /// Side-effecting catalog entries a case does not use (in neither of
    /// its lists), summed over cases.
    pub unused_side: usize,
    /// Of those, the ones the intent grants: over-permission.
    pub unused_side_granted: usize,
    /// Entities predicted, ACTION spans left out.
    pub obj_pred: usize,
    /// Entities expected, ACTION spans left out.
    pub obj_gold: usize,
    /// Exact span and label matches, ACTION spans left out.
    pub obj_strict: usize,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// `k` of `n` as a proportion with its 95% Wilson score interval
/// `(p, low, high)`; `(1, 1, 1)` when `n` is 0, as [`ratio`].
pub fn wilson(k: usize, n: usize) -> (f64, f64, f64) {
    if n == 0 {
        return (1.0, 1.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (p, (centre - half).max(0.0), (centre + half).min(1.0))
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Scores derived from [`Counts`].
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// Side-effecting tool precision.
    pub tool_precision: f64,
    /// Side-effecting tool recall.
    pub tool_recall: f64,
    /// Their F1.
    pub tool_f1: f64,
    /// Entity F1, exact spans.
    pub entity_f1_strict: f64,
    /// Entity F1, overlapping spans.
    pub entity_f1_overlap: f64,
    /// Speech-act accuracy.
    pub speech_act_accuracy: f64,
    /// Share of delegations marked open-ended.
    pub delegation_recall: f64,
    /// Share of questions granted a side effect.
    pub question_over_permission: f64,
    /// Side-effecting tool recall with its 95% Wilson interval.
    pub side_effect_recall_ci: (f64, f64, f64),
    /// Unused side-effecting tools granted ÷ unused side-effecting tools,
    /// with its 95% interval.
    pub over_permission_ci: (f64, f64, f64),
    /// Read-only tool recall (any role), with its 95% interval.
    pub read_recall_ci: (f64, f64, f64),
    /// Entity F1, exact spans, ACTION spans left out.
    pub entity_f1_strict_objects: f64,
    /// Delegations marked open-ended, with its 95% interval.
    pub open_ended_delegations_ci: (f64, f64, f64),
    /// Other requests marked open-ended, with its 95% interval.
    pub open_ended_others_ci: (f64, f64, f64),
    /// The counts.
    pub counts: Counts,
}

impl Counts {
    /// The scores of these counts.
    pub fn scores(&self) -> Scores {
        let p = ratio(self.tool_tp, self.tool_tp + self.tool_fp);
        let r = ratio(self.tool_tp, self.tool_tp + self.tool_fn);
        let ent = |hits| f1(ratio(hits, self.ent_pred), ratio(hits, self.ent_gold));
        Scores {
            tool_precision: p,
            tool_recall: r,
            tool_f1: f1(p, r),
            entity_f1_strict: ent(self.ent_strict),
            entity_f1_overlap: ent(self.ent_overlap),
            speech_act_accuracy: ratio(self.act_correct, self.cases),
            delegation_recall: ratio(self.delegations_found, self.delegations),
            question_over_permission: ratio(self.questions_with_side_effects, self.questions),
            side_effect_recall_ci: wilson(self.tool_tp, self.tool_tp + self.tool_fn),
            over_permission_ci: wilson(self.unused_side_granted, self.unused_side),
            read_recall_ci: wilson(self.read_found, self.read_gold),
            entity_f1_strict_objects: f1(
                ratio(self.obj_strict, self.obj_pred),
                ratio(self.obj_strict, self.obj_gold),
            ),
            open_ended_delegations_ci: wilson(self.delegations_found, self.delegations),
            open_ended_others_ci: wilson(self.false_open_ended, self.cases - self.delegations),
            counts: self.clone(),
        }
    }

    /// Adds the outcome of one case, extracted over `catalog`.
    pub fn add(&mut self, case: &Case, intent: &Intent, catalog: &Catalog) {
        let exp = &case.file.expected;
        self.cases += 1;
        let granted: BTreeSet<&str> = intent.granted().collect();
        let expected: BTreeSet<&str> = exp.tools.iter().map(String::as_str).collect();
        let held: BTreeSet<&str> = intent.tools.iter().map(|t| t.name.as_str()).collect();
        let reads: BTreeSet<&str> = exp.read_tools.iter().map(String::as_str).collect();
        self.read_gold += reads.len();
        self.read_found += reads.intersection(&held).count();
        let unused = catalog
            .entries
            .iter()
            .filter(|e| !e.read_only)
            .map(|e| e.name.as_str())
            .filter(|n| !expected.contains(n) && !reads.contains(n));
        for name in unused {
            self.unused_side += 1;
            self.unused_side_granted += usize::from(granted.contains(name));
        }
        self.tool_tp += granted.intersection(&expected).count();
        self.tool_fp += granted.difference(&expected).count();
        self.tool_fn += expected.difference(&granted).count();
        self.act_correct += usize::from(intent.speech_act == exp.speech_act);
        if exp.speech_act == SpeechAct::Delegation {
            self.delegations += 1;
            self.delegations_found += usize::from(intent.open_ended.is_some());
        } else {
            self.false_open_ended += usize::from(intent.open_ended.is_some());
        }
        if exp.speech_act == SpeechAct::Question {
            self.questions += 1;
            self.questions_with_side_effects += usize::from(!granted.is_empty());
        }
        let pred: Vec<(EntityLabel, usize, usize)> = intent
            .entities
            .iter()
            .map(|e| (e.label, e.start, e.end))
            .collect();
        self.ent_pred += pred.len();
        self.ent_gold += case.spans.len();
        self.ent_strict += pred.iter().filter(|p| case.spans.contains(p)).count();
        let object = |s: &&(EntityLabel, usize, usize)| s.0 != EntityLabel::Action;
        self.obj_pred += pred.iter().filter(object).count();
        self.obj_gold += case.spans.iter().filter(object).count();
        self.obj_strict += pred
            .iter()
            .filter(object)
            .filter(|p| case.spans.contains(p))
            .count();
        let mut used = vec![false; pred.len()];
        for &(label, gs, ge) in &case.spans {
            let hit = pred.iter().enumerate().position(|(k, &(l, ps, pe))| {
                let inter = pe.min(ge).saturating_sub(ps.max(gs));
                let union = pe.max(ge) - ps.min(gs);
                !used[k] && l == label && union > 0 && inter * 2 >= union
            });
            if let Some(k) = hit {
                used[k] = true;
                self.ent_overlap += 1;
            }
        }
    }
}

/// What a case got wrong, one line each (for `telos-eval --verbose`).
pub fn explain(case: &Case, intent: &Intent) -> Vec<String> {
    let mut out = Vec::new();
    let exp = &case.file.expected;
    let granted: BTreeSet<&str> = intent.granted().collect();
    let expected: BTreeSet<&str> = exp.tools.iter().map(String::as_str).collect();
    let missing: Vec<&&str> = expected.difference(&granted).collect();
    let extra: Vec<&&str> = granted.difference(&expected).collect();
    if !missing.is_empty() || !extra.is_empty() {
        let clauses: Vec<String> = intent
            .clauses
            .iter()
            .map(|c| format!("{}:{}", c.speech_act.as_str(), c.text))
            .collect();
        let scored: Vec<String> = intent
            .tools
            .iter()
            .map(|t| format!("{}({:?} {:.2})", t.name, t.role, t.score))
            .collect();
        out.push(format!(
            "{} TOOLS missing {:?} extra {:?} | {:?} | clauses {:?} | tools {:?}",
            case.id, missing, extra, case.file.prompt, clauses, scored
        ));
    }
    if intent.speech_act != exp.speech_act {
        out.push(format!(
            "{} ACT expected {} got {}",
            case.id,
            exp.speech_act.as_str(),
            intent.speech_act.as_str()
        ));
    }
    let chars: Vec<char> = case.file.prompt.chars().collect();
    let text = |s: usize, e: usize| {
        chars[s.min(chars.len())..e.min(chars.len())]
            .iter()
            .collect::<String>()
    };
    for &(l, s, e) in &case.spans {
        if !intent
            .entities
            .iter()
            .any(|p| p.label == l && p.start == s && p.end == e)
        {
            let near: Vec<String> = intent
                .entities
                .iter()
                .filter(|p| p.start < e && s < p.end)
                .map(|p| format!("{}:{}", p.label.as_str(), p.text))
                .collect();
            out.push(format!(
                "{} ENT missed {}:{} (got {:?})",
                case.id,
                l.as_str(),
                text(s, e),
                near
            ));
        }
    }
    for p in &intent.entities {
        if !case
            .spans
            .iter()
            .any(|&(l, s, e)| p.label == l && p.start < e && s < p.end)
        {
            out.push(format!(
                "{} ENT extra {}:{}",
                case.id,
                p.label.as_str(),
                p.text
            ));
        }
    }
    out
}

/// An encoder that remembers its answers, so threshold sweeps and
/// repeated runs pay for each forward pass once.
pub struct CachedEncoder {
    inner: Arc<dyn Encoder>,
    cache: Mutex<HashMap<(bool, String), Encoded>>,
}

impl CachedEncoder {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Encoder>) -> Self {
        Self {
            inner,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl CachedEncoder {
    /// Answers from the cache, encoding what is missing whole or in its
    /// first window (the two are cached apart).
    async fn cached(&self, texts: &[String], whole: bool) -> Result<Vec<Encoded>, ExtractionError> {
        let key = |t: &String| (whole, t.clone());
        let missing: Vec<String> = {
            let cache = self
                .cache
                .lock()
                .map_err(|_| ExtractionError::Runtime("cache poisoned".into()))?;
            texts
                .iter()
                .filter(|t| !cache.contains_key(&key(t)))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let fresh = if whole {
                self.inner.encode(&missing).await?
            } else {
                self.inner.encode_first_window(&missing).await?
            };
            let mut cache = self
                .cache
                .lock()
                .map_err(|_| ExtractionError::Runtime("cache poisoned".into()))?;
            for (t, e) in missing.into_iter().zip(fresh) {
                cache.insert((whole, t), e);
            }
        }
        let cache = self
            .cache
            .lock()
            .map_err(|_| ExtractionError::Runtime("cache poisoned".into()))?;
        texts
            .iter()
            .map(|t| {
                cache
                    .get(&key(t))
                    .cloned()
                    .ok_or_else(|| ExtractionError::Runtime("cache miss".into()))
            })
            .collect()
    }
}

impl Encoder for CachedEncoder {
    fn encode<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(self.cached(texts, true))
    }

    fn encode_first_window<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(self.cached(texts, false))
    }

    fn meta(&self) -> &EncoderMeta {
        self.inner.meta()
    }

    fn max_windows(&self) -> usize {
        self.inner.max_windows()
    }
}

/// Speech acts and spans from one encoder, embeddings (and calibration)
/// from another: how a baseline matcher is scored with everything else
/// held equal.
pub struct MixedEncoder {
    analysis: Arc<dyn Encoder>,
    embedder: Arc<dyn Encoder>,
}

impl MixedEncoder {
    /// Combines an analysis encoder with an embedding encoder.
    pub fn new(analysis: Arc<dyn Encoder>, embedder: Arc<dyn Encoder>) -> Self {
        Self { analysis, embedder }
    }
}

impl MixedEncoder {
    async fn mix(&self, texts: &[String], whole: bool) -> Result<Vec<Encoded>, ExtractionError> {
        let (a, e) = if whole {
            (
                self.analysis.encode(texts).await?,
                self.embedder.encode(texts).await?,
            )
        } else {
            (
                self.analysis.encode_first_window(texts).await?,
                self.embedder.encode_first_window(texts).await?,
            )
        };
        Ok(a.into_iter()
            .zip(e)
            .map(|(a, e)| Encoded {
                embedding: e.embedding,
                tokens: e.tokens,
                ..a
            })
            .collect())
    }
}

impl Encoder for MixedEncoder {
    fn encode_first_window<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(self.mix(texts, false))
    }

    fn encode<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(self.mix(texts, true))
    }

    fn meta(&self) -> &EncoderMeta {
        self.embedder.meta()
    }

    fn max_windows(&self) -> usize {
        self.analysis.max_windows().min(self.embedder.max_windows())
    }
}

/// An extractor over `encoder` at `thresholds`, the other settings default.
fn extractor_at(encoder: Arc<dyn Encoder>, thresholds: MatchThresholds) -> Extractor {
    Extractor::new(
        encoder,
        ExtractionConfig {
            thresholds,
            ..ExtractionConfig::default()
        },
    )
}

/// Scores `domains` with an encoder and thresholds.
pub async fn score(
    encoder: Arc<dyn Encoder>,
    thresholds: MatchThresholds,
    domains: &[&Domain],
    embeddings: &HashMap<String, CatalogEmbeddings>,
) -> Result<(Counts, Vec<(String, Intent)>), EvalError> {
    let extractor = extractor_at(encoder, thresholds);
    let mut counts = Counts::default();
    let mut intents = Vec::new();
    for d in domains {
        let emb = match embeddings.get(&d.name) {
            Some(e) => e.clone(),
            None => extractor.embed_catalog(&d.catalog).await?,
        };
        for c in &d.cases {
            let intent = extractor
                .extract(
                    Subject::new("user", "eval"),
                    &c.file.prompt,
                    &d.catalog,
                    &emb,
                )
                .await?;
            counts.add(c, &intent, &d.catalog);
            intents.push((c.id.clone(), intent));
        }
    }
    Ok((counts, intents))
}

/// The server of a gateway-style tool name (`server__tool`).
fn server_of(tool: &str) -> &str {
    tool.split_once("__").map_or(tool, |(server, _)| server)
}

/// Scores `domains` with every case's catalog cut down to the servers its
/// labelled tools come from: the single-server (or few-server) catalogs a
/// deployment combines. Cases that name no tool keep the whole catalog.
pub async fn score_single_server(
    encoder: Arc<dyn Encoder>,
    thresholds: MatchThresholds,
    domains: &[&Domain],
) -> Result<Counts, EvalError> {
    let extractor = extractor_at(encoder, thresholds);
    let mut counts = Counts::default();
    let mut embedded: HashMap<(String, BTreeSet<String>), (Catalog, CatalogEmbeddings)> =
        HashMap::new();
    for d in domains {
        for c in &d.cases {
            let exp = &c.file.expected;
            let servers: BTreeSet<String> = exp
                .tools
                .iter()
                .chain(&exp.read_tools)
                .map(|t| server_of(t).to_string())
                .collect();
            let key = (d.name.clone(), servers);
            if !embedded.contains_key(&key) {
                let entries = d
                    .catalog
                    .entries
                    .iter()
                    .filter(|e| key.1.is_empty() || key.1.contains(server_of(&e.name)))
                    .cloned()
                    .collect();
                let catalog = Catalog { entries };
                let emb = extractor.embed_catalog(&catalog).await?;
                embedded.insert(key.clone(), (catalog, emb));
            }
            if let Some((catalog, emb)) = embedded.get(&key) {
                let intent = extractor
                    .extract(Subject::new("user", "eval"), &c.file.prompt, catalog, emb)
                    .await?;
                counts.add(c, &intent, catalog);
            }
        }
    }
    Ok(counts)
}

/// Embeds every domain's catalog once.
pub async fn embed_domains(
    encoder: Arc<dyn Encoder>,
    domains: &[Domain],
) -> Result<HashMap<String, CatalogEmbeddings>, EvalError> {
    let x = Extractor::new(encoder, ExtractionConfig::default());
    let mut out = HashMap::new();
    for d in domains {
        out.insert(d.name.clone(), x.embed_catalog(&d.catalog).await?);
    }
    Ok(out)
}

/// Tool precision the default operating point must keep on the domains it
/// is tuned on: the 0.80 the project asks for on unseen catalogs, plus a
/// 0.10 margin for the precision those lose against catalogs the model was
/// trained beside.
pub const TUNE_MIN_PRECISION: f64 = 0.90;

/// What a threshold sweep maximises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Tool F1 (ties: the higher precision).
    F1,
    /// Tool recall among the settings whose precision is at least this
    /// (the best F1 when none keeps it; ties: the higher precision).
    RecallAtPrecision(f64),
}

impl Objective {
    /// The objective the shipped defaults were tuned with.
    pub const DEFAULT: Objective = Objective::RecallAtPrecision(TUNE_MIN_PRECISION);

    /// Whether `s` is a better operating point than `b`.
    fn prefers(self, s: &Scores, b: &Scores) -> bool {
        let floor = match self {
            Objective::F1 => None,
            Objective::RecallAtPrecision(p) => Some(p),
        };
        let keeps = |x: &Scores| floor.is_some_and(|p| x.tool_precision >= p);
        let key = |x: &Scores| {
            if keeps(x) { x.tool_recall } else { x.tool_f1 }
        };
        match (keeps(s), keeps(b)) {
            (true, false) => true,
            (false, true) => false,
            _ => {
                key(s) > key(b) + 1e-9
                    || ((key(s) - key(b)).abs() <= 1e-9 && s.tool_precision > b.tool_precision)
            }
        }
    }
}

/// The verb boosts `tune` sweeps for a matcher that uses them.
pub const VERB_BOOSTS: [f32; 4] = [0.0, 0.05, 0.1, 0.2];

/// Sweeps the grant and read thresholds, the second-tool margin and the
/// given verb boosts on the given domains and returns the best operating
/// point by `objective`.
pub async fn tune(
    encoder: Arc<dyn Encoder>,
    domains: &[&Domain],
    embeddings: &HashMap<String, CatalogEmbeddings>,
    objective: Objective,
    verb_boosts: &[f32],
) -> Result<(MatchThresholds, Scores), EvalError> {
    let mut best: Option<(MatchThresholds, Scores)> = None;
    let grid = [
        0.01f32, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7,
    ];
    let settings = grid.iter().flat_map(|&grant| {
        [0.05f32, 0.1, 0.3, 0.5].into_iter().flat_map(move |read| {
            [0.0f32, 0.1, 0.2].into_iter().flat_map(move |read_margin| {
                [0.0f32, 0.03, 0.1]
                    .into_iter()
                    .flat_map(move |second_margin| {
                        verb_boosts.iter().map(move |&verb_boost| MatchThresholds {
                            grant,
                            read,
                            second_margin,
                            read_margin,
                            verb_boost,
                        })
                    })
            })
        })
    });
    {
        for t in settings {
            let (counts, _) = score(Arc::clone(&encoder), t, domains, embeddings).await?;
            let s = counts.scores();
            if best.as_ref().is_none_or(|(_, b)| objective.prefers(&s, b)) {
                best = Some((t, s));
            }
        }
    }
    best.ok_or_else(|| EvalError::Case {
        case: "tune".into(),
        reason: "no domains".into(),
    })
}

/// One BFCL held-out case.
#[derive(Debug, Clone, Deserialize)]
pub struct BfclCase {
    /// BFCL id.
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub id: String,
    /// BFCL category.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "part of the fixture format, for people; not scored"
    )]
    pub category: String,
    /// The user's query.
    pub query: String,
    /// Candidate functions.
    pub functions: Vec<Value>,
    /// Names of the right functions; empty when none fits.
    pub expected: Vec<String>,
}

/// BFCL scores.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BfclScores {
    /// Cases with a fitting function.
    pub relevant: usize,
    /// Of those, cases whose best candidate is right and above threshold.
    pub relevant_correct: usize,
    /// Of those, cases whose best candidate is right (no threshold).
    pub relevant_top1: usize,
    /// Cases with no fitting function.
    pub irrelevant: usize,
    /// Of those, cases where no candidate reached the threshold.
    pub irrelevant_abstained: usize,
    /// Cases skipped because their functions do not parse as a catalog.
    pub skipped: usize,
}

/// Loads BFCL cases (JSON lines).
pub fn load_bfcl(path: &Path) -> Result<Vec<BfclCase>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| EvalError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

fn bfcl_catalog(case: &BfclCase) -> Option<Catalog> {
    let tools: Vec<Value> = case
        .functions
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let schema = f
                .get("inputSchema")
                .or_else(|| f.get("parameters"))
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"}));
            let mut schema = schema;
            if let Some(obj) = schema.as_object_mut() {
                obj.insert("type".into(), Value::String("object".into()));
            }
            if let Some(obj) = f.as_object_mut() {
                obj.remove("parameters");
                obj.insert("inputSchema".into(), schema);
            }
            f
        })
        .collect();
    parse_catalog(&serde_json::json!({ "tools": tools }), Limits::default()).ok()
}

/// Scores the relevance model on BFCL cases: the query is matched as one
/// clause against its candidate functions.
pub async fn score_bfcl(
    encoder: Arc<dyn Encoder>,
    threshold: f32,
    cases: &[BfclCase],
) -> Result<BfclScores, EvalError> {
    let x = Extractor::new(Arc::clone(&encoder), ExtractionConfig::default());
    let cal = encoder.meta().calibration;
    let mut s = BfclScores::default();
    for case in cases {
        let Some(catalog) = bfcl_catalog(case) else {
            s.skipped += 1;
            continue;
        };
        let emb = x.embed_catalog(&catalog).await?;
        let q = encoder.encode(std::slice::from_ref(&case.query)).await?;
        let Some(q) = q.first() else { continue };
        let (best, p) = emb
            .vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i, cal.probability(cosine(&q.embedding, v))))
            .fold((0, f32::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b });
        let best_name = catalog
            .entries
            .get(best)
            .map(|e| e.name.as_str())
            .unwrap_or("");
        if case.expected.is_empty() {
            s.irrelevant += 1;
            s.irrelevant_abstained += usize::from(p < threshold);
        } else {
            s.relevant += 1;
            let right = case.expected.iter().any(|e| e == best_name);
            s.relevant_top1 += usize::from(right);
            s.relevant_correct += usize::from(right && p >= threshold);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use telos::extraction::keyword::KeywordEncoder;
    use telos::extraction::runtime::Calibration;

    fn case(prompt: &str, tools: &[&str], act: SpeechAct, ents: &[(EntityLabel, &str)]) -> Case {
        let entities: Vec<ExpectedEntity> = ents
            .iter()
            .map(|(l, t)| ExpectedEntity {
                label: *l,
                text: t.to_string(),
            })
            .collect();
        let spans = resolve_spans("t", prompt, &entities).unwrap();
        Case {
            id: "t".into(),
            file: CaseFile {
                description: String::new(),
                prompt: prompt.into(),
                expected: Expected {
                    speech_act: act,
                    tools: tools.iter().map(|s| s.to_string()).collect(),
                    read_tools: vec![],
                    delegation_source: None,
                    entities,
                },
            },
            spans,
        }
    }

    fn scores(tp: usize, fp: usize, fn_: usize) -> Scores {
        Counts {
            tool_tp: tp,
            tool_fp: fp,
            tool_fn: fn_,
            ..Counts::default()
        }
        .scores()
    }

    #[test]
    fn the_test_split_is_optional_and_nothing_else_is_accepted() {
        let s: Splits = serde_json::from_str(r#"{"train": ["a"], "dev": ["b"]}"#).unwrap();
        assert!(s.test.is_empty());
        let s: Splits =
            serde_json::from_str(r#"{"train": ["a"], "heldout": ["b"], "blind": ["c"]}"#).unwrap();
        assert_eq!(
            (s.dev, s.test),
            (vec!["b".to_string()], vec!["c".to_string()])
        );
        assert!(
            serde_json::from_str::<Splits>(r#"{"train": [], "heldout": [], "x": []}"#).is_err()
        );
    }

    #[test]
    fn operating_point_keeps_the_precision_floor_then_maximises_recall() {
        let floor = Objective::RecallAtPrecision(0.90);
        let strict = scores(80, 5, 20); // P 0.94, R 0.80, F1 0.87
        let open = scores(92, 9, 8); // P 0.91, R 0.92
        let loose = scores(99, 60, 1); // P 0.62, R 0.99, F1 0.77
        assert!(floor.prefers(&open, &strict));
        assert!(!floor.prefers(&strict, &open));
        // Above the floor, recall beats F1: strict has the higher precision.
        assert!(floor.prefers(&open, &scores(85, 2, 15)));
        // A setting under the floor loses to any setting that keeps it ...
        assert!(!floor.prefers(&loose, &strict));
        assert!(floor.prefers(&strict, &loose));
        // ... and below the floor the better F1 wins.
        assert!(floor.prefers(&scores(90, 30, 10), &loose)); // F1 0.82
        // Equal recall: the higher precision.
        assert!(floor.prefers(&scores(92, 8, 8), &open));
    }

    #[test]
    fn best_f1_ignores_the_floor() {
        let strict = scores(30, 1, 70); // P 0.97, R 0.30, F1 0.46
        let balanced = scores(75, 25, 25); // P 0.75, R 0.75, F1 0.75
        assert!(Objective::F1.prefers(&balanced, &strict));
        assert!(Objective::DEFAULT.prefers(&strict, &balanced));
    }

    #[test]
    fn resolves_repeated_entities_in_order() {
        let ents = vec![
            ExpectedEntity {
                label: EntityLabel::Person,
                text: "Al".into(),
            },
            ExpectedEntity {
                label: EntityLabel::Person,
                text: "Al".into(),
            },
        ];
        assert_eq!(
            resolve_spans("t", "Al met Al", &ents).unwrap(),
            vec![(EntityLabel::Person, 0, 2), (EntityLabel::Person, 7, 9)]
        );
        assert!(resolve_spans("t", "x", &ents).is_err());
    }

    /// The keyword-overlap encoder the scoring tests extract with.
    fn keyword_encoder() -> Arc<dyn Encoder> {
        Arc::new(KeywordEncoder::new(Calibration {
            scale: 10.0,
            bias: -3.0,
        }))
    }

    #[tokio::test]
    async fn counts_tools_entities_and_acts() {
        let catalog = parse_catalog(
            &serde_json::json!({"tools": [
                {"name": "send_email", "description": "Send an email", "annotations": {"readOnlyHint": false}},
                {"name": "delete_email", "description": "Delete an email", "annotations": {"readOnlyHint": false}}
            ]}),
            Limits::default(),
        )
        .unwrap();
        let d = Domain {
            name: "d".into(),
            catalog,
            cases: vec![
                case(
                    "send an email to bob@x.io",
                    &["send_email"],
                    SpeechAct::Action,
                    &[
                        (EntityLabel::Action, "send"),
                        (EntityLabel::Email, "bob@x.io"),
                    ],
                ),
                case("what is new?", &[], SpeechAct::Question, &[]),
            ],
        };
        let (counts, _) = score(
            keyword_encoder(),
            MatchThresholds::default(),
            &[&d],
            &HashMap::new(),
        )
        .await
        .unwrap();
        assert_eq!((counts.tool_tp, counts.tool_fp, counts.tool_fn), (1, 0, 0));
        assert_eq!(counts.ent_gold, 2);
        // The keyword encoder also tags the noun "email" as an ACTION.
        assert_eq!((counts.ent_pred, counts.ent_strict), (3, 2));
        assert_eq!(counts.act_correct, 2);
        assert_eq!(counts.questions_with_side_effects, 0);
        let s = counts.scores();
        assert_eq!(s.tool_precision, 1.0);
        assert!((s.entity_f1_strict - 0.8).abs() < 1e-9);
    }

    #[test]
    fn overlap_matching_is_one_to_one() {
        let mut c = Counts::default();
        let k = case(
            "New York City",
            &[],
            SpeechAct::Question,
            &[(EntityLabel::Location, "New York City")],
        );
        let intent = Intent {
            subject: Subject::new("u", "u"),
            evaluations: vec![],
            tools: vec![],
            entities: vec![
                telos::intent::Entity {
                    label: EntityLabel::Location,
                    text: "New York".into(),
                    start: 0,
                    end: 8,
                    score: 1.0,
                    source: telos::intent::EntitySource::Model,
                },
                telos::intent::Entity {
                    label: EntityLabel::Location,
                    text: "York City".into(),
                    start: 4,
                    end: 13,
                    score: 1.0,
                    source: telos::intent::EntitySource::Model,
                },
            ],
            clauses: vec![],
            speech_act: SpeechAct::Question,
            open_ended: None,
            model: telos::intent::ModelInfo {
                name: "m".into(),
                sha256: "s".into(),
                grant_threshold: 0.5,
                read_threshold: 0.5,
                verb_boost: 0.0,
            },
        };
        c.add(&k, &intent, &Catalog { entries: vec![] });
        assert_eq!((c.ent_strict, c.ent_overlap, c.ent_pred), (0, 1, 2));
    }

    #[test]
    fn wilson_intervals_match_the_textbook_values() {
        // 9 of 10: p 0.9, 95% Wilson interval 0.596-0.982.
        let (p, lo, hi) = wilson(9, 10);
        assert!((p - 0.9).abs() < 1e-12);
        assert!(
            (lo - 0.596).abs() < 1e-3 && (hi - 0.982).abs() < 1e-3,
            "{lo} {hi}"
        );
        // None of 50: the interval still reaches 0.071.
        let (p, lo, hi) = wilson(0, 50);
        assert_eq!((p, lo), (0.0, 0.0));
        assert!((hi - 0.0713).abs() < 1e-3, "{hi}");
        assert_eq!(wilson(0, 0), (1.0, 1.0, 1.0));
    }

    #[tokio::test]
    async fn counts_reads_over_permission_and_object_entities() {
        let catalog = parse_catalog(
            &serde_json::json!({"tools": [
                {"name": "send_email", "description": "Send an email", "annotations": {"readOnlyHint": false}},
                {"name": "delete_email", "description": "Delete an email", "annotations": {"readOnlyHint": false}},
                {"name": "archive_email", "description": "Archive an email", "annotations": {"readOnlyHint": false}},
                {"name": "list_emails", "description": "List emails", "annotations": {"readOnlyHint": true}}
            ]}),
            Limits::default(),
        )
        .unwrap();
        let mut k = case(
            "send an email to bob@x.io",
            &["send_email"],
            SpeechAct::Action,
            &[
                (EntityLabel::Action, "send"),
                (EntityLabel::Email, "bob@x.io"),
            ],
        );
        k.file.expected.read_tools = vec!["list_emails".into()];
        let d = Domain {
            name: "d".into(),
            catalog: catalog.clone(),
            cases: vec![k],
        };
        let (counts, intents) = score(
            keyword_encoder(),
            MatchThresholds::default(),
            &[&d],
            &HashMap::new(),
        )
        .await
        .unwrap();
        let granted: Vec<&str> = intents[0].1.granted().collect();
        // Unused side-effecting entries: delete_email and archive_email.
        assert_eq!(counts.unused_side, 2);
        assert_eq!(
            counts.unused_side_granted,
            granted.iter().filter(|n| **n != "send_email").count()
        );
        assert_eq!(counts.read_gold, 1);
        let held = intents[0].1.tools.iter().any(|t| t.name == "list_emails");
        assert_eq!(counts.read_found, usize::from(held));
        // One object entity expected (the address); ACTION spans left out.
        assert_eq!(counts.obj_gold, 1);
        assert!(counts.obj_pred <= counts.ent_pred && counts.obj_strict <= 1);
    }
}
