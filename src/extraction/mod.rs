//! Natural language → intent, in the five steps of the design: segment the
//! request into clauses, read each clause's speech act, tag actions and
//! their objects (model spans merged with shape validators), match each
//! clause against the catalog with the trained relevance model, and build
//! one AuthZEN quad per requested action.
//!
//! Only this module touches `ort` and `tokenizers`. The model sits behind
//! the [`Encoder`] trait so everything above it can be tested without one.

pub mod actions;
pub mod batcher;
pub mod boundaries;
pub mod decode;
pub mod keyword;
pub mod matching;
pub mod pool;
pub mod runtime;
pub mod segment;
pub mod tokenize;
pub mod validators;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::intent::{
    Clause, Entity, EntityLabel, EntitySource, Intent, ModelInfo, OpenEnded, OpenEndedPolicy,
    SpeechAct, Subject, ToolGrant, ToolRole,
};
use batcher::{BatchLimits, Batcher};
use decode::{Span, Tag, argmax, decode_entities, softmax};
pub use matching::MatchThresholds;
use runtime::{Calibration, ModelFiles, SessionOptions, spawn_model_thread};
use tokenize::TextTokenizer;

/// Errors of extraction.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExtractionError {
    /// A model file could not be loaded.
    #[error("cannot load `{path}`: {reason}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The ONNX Runtime failed.
    #[error("model runtime: {0}")]
    Runtime(String),
    /// Tokenization failed.
    #[error("tokenization: {0}")]
    Tokenize(String),
    /// The batching queue is full.
    #[error("the model queue is full")]
    Overloaded,
    /// The prompt holds no words.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The embeddings do not match the catalog.
    #[error("catalog embeddings are stale: {0}")]
    StaleEmbeddings(String),
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the model says about one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// L2-normalised embedding.
    pub embedding: Vec<f32>,
    /// Entity spans in byte offsets of the text.
    pub spans: Vec<Span>,
    /// Speech-act probabilities in [`SpeechAct::ALL`] order.
    pub acts: [f32; 3],
    /// Per-token outputs to pool a clause of the text with, when the model
    /// has them.
    pub tokens: Option<pool::TokenPool>,
}

/// Identity and calibration of an encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderMeta {
    /// Model name.
    pub name: String,
    /// Short sha256 of the model file.
    pub sha256: String,
    /// Cosine → probability calibration.
    pub calibration: Calibration,
}

/// The model behind extraction.
pub trait Encoder: Send + Sync {
    /// Encodes texts; concurrent calls may share forward passes.
    fn encode<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>>;
    /// Identity and calibration.
    fn meta(&self) -> &EncoderMeta;
    /// Inputs waiting for the model.
    fn queue_depth(&self) -> usize {
        0
    }
}

/// Runtime options of the ONNX encoder.
#[derive(Debug, Clone, Copy)]
pub struct EncoderOptions {
    /// ONNX intra-op threads.
    pub intra_threads: usize,
    /// Batching limits.
    pub batch: BatchLimits,
}

/// The ONNX multi-head encoder: tokenizer, batching queue, model thread.
pub struct OnnxEncoder {
    tokenizer: TextTokenizer,
    batcher: Batcher,
    tags: Vec<Tag>,
    act_order: [usize; 3],
    meta: EncoderMeta,
}

impl OnnxEncoder {
    /// Loads a model directory, checks it, warms it up with a full batch
    /// and starts its thread. Must run inside a tokio runtime.
    pub fn load(dir: &Path, opts: EncoderOptions) -> Result<Self, ExtractionError> {
        let files = ModelFiles::open(dir)?;
        let tags = files
            .config
            .ner_labels
            .iter()
            .map(|t| {
                Tag::parse(t).ok_or_else(|| ExtractionError::Load {
                    path: dir.join("config.json").display().to_string(),
                    reason: format!("unknown NER tag `{t}`"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut act_order = [0usize; 3];
        for (slot, act) in act_order.iter_mut().zip(SpeechAct::ALL) {
            *slot = files
                .config
                .speech_acts
                .iter()
                .position(|a| a == act.as_str())
                .ok_or_else(|| ExtractionError::Load {
                    path: dir.join("config.json").display().to_string(),
                    reason: format!("speech act `{}` missing", act.as_str()),
                })?;
        }
        let tokenizer = TextTokenizer::from_file(&files.tokenizer, files.config.max_tokens)?;
        let model = spawn_model_thread(
            &files,
            SessionOptions {
                intra_threads: opts.intra_threads,
            },
            opts.batch.max_batch,
        )?;
        let batcher = Batcher::start(opts.batch, model);
        Ok(Self {
            tokenizer,
            batcher,
            tags,
            act_order,
            meta: EncoderMeta {
                name: files.config.name.clone(),
                sha256: files.sha256.clone(),
                calibration: files.config.relevance,
            },
        })
    }
}

impl Encoder for OnnxEncoder {
    fn encode<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(async move {
            let tokenized = texts
                .iter()
                .map(|t| self.tokenizer.tokenize(t))
                .collect::<Result<Vec<_>, _>>()?;
            let raw = self
                .batcher
                .infer(tokenized.iter().map(|t| t.ids.clone()).collect())
                .await?;
            Ok(raw
                .into_iter()
                .zip(tokenized)
                .zip(texts)
                .map(|((out, tok), text)| {
                    let probs = softmax(&out.act_logits);
                    let acts = self.act_order.map(|i| probs.get(i).copied().unwrap_or(0.0));
                    let spans = decode_entities(text, &tok.offsets, &out.ner_logits, &self.tags);
                    let tokens = out.tokens.and_then(|t| {
                        let per_token = t
                            .act_logits
                            .chunks(t.acts.max(1))
                            .map(|row| self.act_order.map(|i| row.get(i).copied().unwrap_or(0.0)))
                            .collect();
                        pool::TokenPool::new(tok.offsets, t.dim, t.states, per_token)
                    });
                    Encoded {
                        spans,
                        embedding: out.embedding,
                        acts,
                        tokens,
                    }
                })
                .collect())
        })
    }

    fn meta(&self) -> &EncoderMeta {
        &self.meta
    }

    fn queue_depth(&self) -> usize {
        self.batcher.depth()
    }
}

/// Extraction settings.
#[derive(Debug, Clone, Copy)]
pub struct ExtractionConfig {
    /// Matching thresholds.
    pub thresholds: MatchThresholds,
    /// How open-ended intents are enforced.
    pub open_ended: OpenEndedPolicy,
    /// Most clauses one request may have.
    pub max_clauses: usize,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        Self {
            thresholds: MatchThresholds::default(),
            open_ended: OpenEndedPolicy::default(),
            max_clauses: 32,
        }
    }
}

/// Embeddings of a catalog's entries, in entry order.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEmbeddings {
    /// Short sha256 of the model that made them.
    pub model_sha256: String,
    /// One vector per entry.
    pub vectors: Vec<Vec<f32>>,
}

/// Turns requests into intents with an [`Encoder`].
#[derive(Clone)]
pub struct Extractor {
    encoder: Arc<dyn Encoder>,
    config: ExtractionConfig,
}

/// Words after which a second action verb starts a new clause.
const CONNECTORS: &[&str] = &[
    "and", ",", "&", "+", "plus", "also", "then", "and also", "and then", "or",
];

/// Verbs that close a delegation's source ("what the email says"), longest
/// first.
const DELEGATION_VERBS: &[&str] = &[
    "asks you to do",
    "says to do",
    "wants done",
    "asks for",
    "tells you",
    "tells me",
    "asks",
    "says",
    "wants",
    "requests",
    "tells",
    "lists",
    "describes",
    "mentions",
    "instructs",
    "requires",
    "suggests",
];

/// Nouns that name data an agent reads; a delegation's source starts there.
const DATA_NOUNS: &[&str] = &[
    "email",
    "emails",
    "mail",
    "message",
    "messages",
    "note",
    "notes",
    "doc",
    "docs",
    "document",
    "file",
    "page",
    "ticket",
    "checklist",
    "list",
    "instructions",
    "pdf",
    "sheet",
    "spreadsheet",
    "text",
    "sms",
    "thread",
    "comment",
    "issue",
    "card",
    "memo",
    "letter",
    "readme",
    "wiki",
    "site",
    "website",
    "link",
    "post",
    "chat",
    "dm",
    "voicemail",
    "tasks",
    "steps",
    "todo",
];

impl Extractor {
    /// An extractor over `encoder`.
    pub fn new(encoder: Arc<dyn Encoder>, config: ExtractionConfig) -> Self {
        Self { encoder, config }
    }

    /// The encoder.
    pub fn encoder(&self) -> &Arc<dyn Encoder> {
        &self.encoder
    }

    /// The settings.
    pub fn config(&self) -> &ExtractionConfig {
        &self.config
    }

    /// Embeds every entry of a catalog, in chunks that fit the queue.
    pub async fn embed_catalog(
        &self,
        catalog: &Catalog,
    ) -> Result<CatalogEmbeddings, ExtractionError> {
        let texts = catalog.texts();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(32) {
            vectors.extend(
                self.encoder
                    .encode(chunk)
                    .await?
                    .into_iter()
                    .map(|e| e.embedding),
            );
        }
        Ok(CatalogEmbeddings {
            model_sha256: self.encoder.meta().sha256.clone(),
            vectors,
        })
    }

    /// Extracts the intent of `prompt` against `catalog`.
    pub async fn extract(
        &self,
        subject: Subject,
        prompt: &str,
        catalog: &Catalog,
        embeddings: &CatalogEmbeddings,
    ) -> Result<Intent, ExtractionError> {
        Ok(self
            .extract_detailed(subject, prompt, catalog, embeddings)
            .await?
            .intent)
    }

    /// Extracts the intent, and the best cosine of every catalog entry to
    /// any clause (what the drift rules use to call a read related).
    #[tracing::instrument(skip_all, fields(prompt_bytes = prompt.len(), entries = catalog.entries.len()))]
    pub async fn extract_detailed(
        &self,
        subject: Subject,
        prompt: &str,
        catalog: &Catalog,
        embeddings: &CatalogEmbeddings,
    ) -> Result<Extraction, ExtractionError> {
        if !prompt.chars().any(char::is_alphanumeric) {
            return Err(ExtractionError::EmptyPrompt);
        }
        if embeddings.vectors.len() != catalog.entries.len()
            || embeddings.model_sha256 != self.encoder.meta().sha256
        {
            return Err(ExtractionError::StaleEmbeddings(format!(
                "{} vectors from model {} for {} entries",
                embeddings.vectors.len(),
                embeddings.model_sha256,
                catalog.entries.len()
            )));
        }
        let mut segments = segment::segment(prompt);
        if segments.is_empty() {
            segments.push((0, prompt.len()));
        }
        segments.truncate(self.config.max_clauses);
        let texts: Vec<String> = segments
            .iter()
            .map(|&(s, e)| prompt[s..e].to_string())
            .collect();
        let first = self.encoder.encode(&texts).await?;

        // Model spans in prompt byte offsets, and clauses split at a second
        // requested action that follows a connector.
        let mut model_spans: Vec<Span> = Vec::new();
        let mut clauses: Vec<ClauseRange> = Vec::new();
        let shaped = validators::find_shaped(prompt);
        for (k, (&(seg_start, seg_end), enc)) in segments.iter().zip(&first).enumerate() {
            let spans: Vec<Span> = enc
                .spans
                .iter()
                .map(|s| Span {
                    start: s.start + seg_start,
                    end: s.end + seg_start,
                    ..s.clone()
                })
                .collect();
            let payload = actions::payload(prompt, (seg_start, seg_end), &spans, &shaped);
            let spans = actions::requested_actions(prompt, (seg_start, seg_end), payload, spans);
            let cuts = action_cuts(prompt, seg_start, &spans);
            let mut start = seg_start;
            for (end, next) in cuts.into_iter().chain(std::iter::once((seg_end, seg_end))) {
                let head_end = payload
                    .map(|(p, _)| p)
                    .filter(|&p| start < p && p < end)
                    .unwrap_or(end);
                clauses.push(ClauseRange {
                    start,
                    end,
                    segment: k,
                    whole: start == seg_start && end == seg_end && head_end == end,
                    head_end,
                });
                start = next;
            }
            model_spans.extend(spans);
        }
        clauses.truncate(self.config.max_clauses);
        let merged = boundaries::record_nouns(
            prompt,
            validators::merge(
                boundaries::apply(prompt, validators::relabel_identifiers(prompt, model_spans)),
                shaped,
            ),
        );
        // A clause that is not its whole segment (split, or matched on its
        // head only) is pooled inside its segment when the model has
        // per-token outputs, else it is encoded on its own in a second pass.
        // A pooled clause that says "it" or "them" without naming an object
        // also pools the object it refers to, so the verb is matched
        // against what it acts on.
        let pooled: Vec<Option<Encoded>> = clauses
            .iter()
            .map(|c| {
                let seg_start = segments[c.segment].0;
                let pool = first[c.segment].tokens.as_ref().filter(|_| !c.whole)?;
                let mut ranges = vec![(c.start - seg_start, c.head_end - seg_start)];
                if let Some(a) = antecedent_object(prompt, &merged, seg_start, c.start, c.head_end)
                {
                    ranges.push((a.0 - seg_start, a.1 - seg_start));
                }
                let (embedding, acts) = pool.ranges(&ranges)?;
                Some(Encoded {
                    embedding,
                    spans: Vec::new(),
                    acts,
                    tokens: None,
                })
            })
            .collect();
        let second_texts: Vec<String> = clauses
            .iter()
            .zip(&pooled)
            .filter(|(c, p)| !c.whole && p.is_none())
            .map(|(c, _)| prompt[c.start..c.head_end].to_string())
            .collect();
        let second = if second_texts.is_empty() {
            vec![]
        } else {
            self.encoder.encode(&second_texts).await?
        };
        let mut second_iter = second.iter();
        let clause_encodings: Vec<&Encoded> = clauses
            .iter()
            .zip(&pooled)
            .map(|(c, p)| match (c.whole, p) {
                (true, _) => first.get(c.segment),
                (false, Some(p)) => Some(p),
                (false, None) => second_iter.next(),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ExtractionError::Runtime("missing clause encoding".into()))?;

        let entities = to_entities(prompt, merged);
        let meta = self.encoder.meta();
        let mut out_clauses = Vec::with_capacity(clauses.len());
        let mut grants: Vec<ToolGrant> = Vec::new();
        let mut evaluations = Vec::new();
        let mut open_ended = None;
        let any_action = entities.iter().any(|en| en.label == EntityLabel::Action);
        for (i, (c, enc)) in clauses.iter().zip(&clause_encodings).enumerate() {
            let (s, e) = (c.start, c.end);
            let (act_idx, act_p) = argmax(&enc.acts);
            let (cs, ce) = (char_offset(prompt, s), char_offset(prompt, e));
            let text = prompt[s..e].to_string();
            let clause_entities: Vec<usize> = entities
                .iter()
                .enumerate()
                .filter(|(_, en)| en.start >= cs && en.end <= ce)
                .map(|(k, _)| k)
                .collect();
            let actions: Vec<&Entity> = clause_entities
                .iter()
                .map(|&k| &entities[k])
                .filter(|en| en.label == EntityLabel::Action)
                .collect();
            let read = SpeechAct::ALL[act_idx];
            // A clause with no requested verb, in a request whose other
            // clauses have one ("… to the 5th. booking K7RZPQ"), is context
            // for them, not a request of its own.
            let context = clauses.len() > 1 && any_action && actions.is_empty();
            let act = if read == SpeechAct::Action && (context || negated(&text, cs, &actions)) {
                SpeechAct::Question
            } else {
                read
            };
            let verbs: Vec<String> = actions
                .iter()
                .filter_map(|a| {
                    let &(s, e) = decode::words(&a.text).first()?;
                    Some(a.text[s..e].to_lowercase())
                })
                .collect();
            let query = matching::ClauseQuery {
                index: i,
                act,
                embedding: &enc.embedding,
                verbs: &verbs,
            };
            let clause_grants = matching::match_clause(
                query,
                catalog,
                &embeddings.vectors,
                meta.calibration,
                self.config.thresholds,
            );
            for g in &clause_grants {
                if g.role == ToolRole::Requested
                    && let Some(entry) = catalog.get(&g.name)
                {
                    evaluations.push(matching::evaluation(
                        entry,
                        g,
                        &text,
                        &entities,
                        &clause_entities,
                    ));
                }
            }
            if act == SpeechAct::Delegation && open_ended.is_none() {
                open_ended = Some(OpenEnded {
                    source: delegation_source(&text, &actions, cs),
                    clause: i,
                    enforcement: self.config.open_ended,
                });
            }
            grants.extend(clause_grants);
            out_clauses.push(Clause {
                text,
                start: cs,
                end: ce,
                speech_act: act,
                score: act_p,
            });
        }
        let speech_act = out_clauses
            .iter()
            .map(|c| c.speech_act)
            .max()
            .unwrap_or(SpeechAct::Question);
        let entry_scores = embeddings
            .vectors
            .iter()
            .map(|v| {
                clause_encodings
                    .iter()
                    .map(|c| matching::cosine(&c.embedding, v))
                    .fold(-1.0f32, f32::max)
            })
            .collect();
        let intent = Intent {
            subject,
            evaluations,
            tools: merge_grants(grants),
            entities,
            clauses: out_clauses,
            speech_act,
            open_ended,
            model: ModelInfo {
                name: meta.name.clone(),
                sha256: meta.sha256.clone(),
                grant_threshold: self.config.thresholds.grant,
                read_threshold: self.config.thresholds.read,
                verb_boost: self.config.thresholds.verb_boost,
            },
        };
        Ok(Extraction {
            intent,
            entry_scores,
        })
    }
}

/// Words that stand for an object named earlier ("cancel the deploy and
/// trigger it again").
const PRONOUNS: &[&str] = &["it", "them", "this", "that", "these", "those"];

/// The object a pronoun clause refers to: when `[start, end)` holds a
/// pronoun and no object span of its own, the last object span (resource,
/// product, file, channel) of its segment that ends before it (bytes).
fn antecedent_object(
    prompt: &str,
    spans: &[(Span, validators::Origin)],
    seg_start: usize,
    start: usize,
    end: usize,
) -> Option<(usize, usize)> {
    use EntityLabel::*;
    let objects = || {
        spans
            .iter()
            .map(|(s, _)| s)
            .filter(|s| matches!(s.label, Resource | Product | File | Channel))
    };
    let has_pronoun = prompt
        .get(start..end)?
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| PRONOUNS.iter().any(|p| w.eq_ignore_ascii_case(p)));
    if !has_pronoun || objects().any(|s| s.start >= start && s.end <= end) {
        return None;
    }
    objects()
        .rfind(|s| s.start >= seg_start && s.end <= start)
        .map(|s| (s.start, s.end))
}

/// Where a clause lies in the prompt (bytes).
#[derive(Debug, Clone, Copy)]
struct ClauseRange {
    start: usize,
    end: usize,
    /// Index of the segment it was cut from.
    segment: usize,
    /// Whether it is its whole segment, matched as such.
    whole: bool,
    /// End of the part matched against the catalog: before a payload
    /// ("DM Rasmus: can you review …" is matched on "DM Rasmus:"), else `end`.
    head_end: usize,
}

/// An intent with the relevance of every catalog entry to the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Extraction {
    /// The intent.
    pub intent: Intent,
    /// Best cosine similarity of each entry (catalog order) to any clause:
    /// how related a tool is to the request, whether or not it was granted.
    pub entry_scores: Vec<f32>,
}

/// Where a segment with several ACTION spans splits: for each ACTION after
/// the first that follows a connector, `(end of the previous clause, start
/// of the next)` in prompt byte offsets.
fn action_cuts(prompt: &str, seg_start: usize, spans: &[Span]) -> Vec<(usize, usize)> {
    let actions: Vec<&Span> = spans
        .iter()
        .filter(|s| s.label == EntityLabel::Action)
        .collect();
    let mut cuts = Vec::new();
    let mut floor = seg_start;
    for pair in actions.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        let between = prompt[prev.end..next.start].trim_end();
        let lower = between.to_lowercase();
        let Some(conn) = CONNECTORS
            .iter()
            .filter(|c| {
                // A word connector must stand alone ("and", not "brand");
                // a punctuation connector needs no boundary ("door, turn").
                let punctuation = !c.starts_with(|ch: char| ch.is_alphanumeric());
                lower.ends_with(*c)
                    && (punctuation
                        || lower[..lower.len() - c.len()]
                            .chars()
                            .next_back()
                            .is_none_or(|ch| !ch.is_alphanumeric()))
            })
            .max_by_key(|c| c.len())
        else {
            continue;
        };
        let conn_start = prev.end + between.len() - conn.len();
        let prev_end = prev.end
            + prompt[prev.end..conn_start]
                .trim_end_matches([' ', ','])
                .len();
        if prev_end > floor {
            cuts.push((prev_end, next.start));
            floor = next.start;
        }
    }
    cuts
}

/// Words that, right before an action verb, say the user does not want it
/// done ("don't book anything", "never share my location").
const NEGATORS: &[&str] = &["not", "don't", "dont", "don’t", "never"];

/// Whether every ACTION of a clause (`actions`, its ACTION entities) is
/// negated: the word before it is a negator (or, when no verb was tagged, a
/// negator is anywhere in the clause). Such a clause asks for nothing to be
/// done.
fn negated(text: &str, clause_start: usize, actions: &[&Entity]) -> bool {
    let is_negator = |w: &str| {
        NEGATORS.contains(&w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’'))
    };
    if actions.is_empty() {
        // No verb was tagged: a negator anywhere ("just looking, don't book
        // anything") still says nothing is to be done.
        return text.to_lowercase().split_whitespace().any(is_negator);
    }
    actions.iter().all(|a| {
        let before = text[..byte_offset(text, a.start - clause_start)].to_lowercase();
        before
            .split_whitespace()
            .next_back()
            .is_some_and(is_negator)
    })
}

fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// The byte index of char offset `chars` in `text` (its length past the end):
/// the inverse of `char_offset`.
fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(b, _)| b)
}

fn to_entities(prompt: &str, merged: Vec<(Span, validators::Origin)>) -> Vec<Entity> {
    merged
        .into_iter()
        .filter(|(s, _)| s.start < s.end && s.end <= prompt.len())
        .map(|(s, origin)| Entity {
            label: s.label,
            text: prompt[s.start..s.end].to_string(),
            start: char_offset(prompt, s.start),
            end: char_offset(prompt, s.end),
            score: s.score,
            source: match origin {
                validators::Origin::Model => EntitySource::Model,
                validators::Origin::Validator => EntitySource::Validator,
                validators::Origin::Both => EntitySource::Both,
            },
        })
        .collect()
}

/// Names the data a delegating clause hands control to: from the first
/// data noun ("email", "checklist", "page", …) to the end of the clause,
/// else the clause without its verb.
fn delegation_source(text: &str, actions: &[&Entity], clause_start: usize) -> String {
    let lower = text.to_lowercase();
    let mut best: Option<usize> = None;
    let mut pos = 0;
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if DATA_NOUNS.contains(&word) && !word.is_empty() {
            best = Some(pos);
            break;
        }
        pos += word.len() + 1;
    }
    let verb_end = actions
        .first()
        .map_or(0, |e| byte_offset(text, e.end - clause_start));
    let from = best.unwrap_or(verb_end).min(text.len());
    let mut source = text
        .get(from..)
        .unwrap_or(text)
        .trim()
        .trim_end_matches(['.', '!', '?', ',']);
    // "the email from Ana asks" names the email, not the asking.
    for verb in DELEGATION_VERBS {
        if let Some(rest) = source.strip_suffix(verb)
            && rest.ends_with(' ')
        {
            source = rest.trim_end();
            break;
        }
    }
    if source.is_empty() {
        text.trim().to_string()
    } else {
        source.to_string()
    }
}

/// One grant per tool, keeping the strongest role and the best score.
fn merge_grants(grants: Vec<ToolGrant>) -> Vec<ToolGrant> {
    let rank = |r: ToolRole| match r {
        ToolRole::Requested => 0,
        ToolRole::Read => 1,
        ToolRole::Supporting => 2,
    };
    let mut out: Vec<ToolGrant> = Vec::new();
    for g in grants {
        match out.iter_mut().find(|o| o.name == g.name) {
            Some(o) => {
                if rank(g.role) < rank(o.role) || (g.role == o.role && g.score > o.score) {
                    *o = g;
                }
            }
            None => out.push(g),
        }
    }
    out
}

#[cfg(test)]
#[path = "extraction_tests.rs"]
mod tests;
