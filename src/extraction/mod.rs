//! Natural language → intent, as a pipeline of the design's steps; each
//! step is one function handing a named value to the next (see
//! [`Extractor::extract_detailed`]):
//!
//! 1. **Segment** ([`segment`]): the request is cut into segments at lines,
//!    list items, sentences and sequencing connectives, and the model reads
//!    each segment once ([`Encoded`]: embedding, entity spans, speech acts).
//! 2. **Requested actions** ([`actions`]): a segment's ACTION spans, less
//!    participles and the verbs of a message it carries, cut it into
//!    clauses at a second action after a connector.
//! 3. **Objects**: the span passes ([`passes`], one ordered table) redraw
//!    the model's spans on the guide's boundaries and merge the shape
//!    validators' values ([`crate::text::find_shaped`]) into the entities.
//! 4. **Speech act**: each clause is encoded (pooled inside its segment,
//!    or on its own) and its act read; a clause with no verb among clauses
//!    with one, or whose verbs are negated, asks for nothing.
//! 5. **Matching** ([`matching`]): each clause against the catalog with
//!    the trained relevance model.
//! 6. **Quads**: one AuthZEN evaluation per requested tool, its parameters
//!    filled from the clause's entities, and the intent.
//!
//! The word lists all steps read are in [`lexicon`]. Only the ONNX glue
//! ([`onnx`], with [`runtime`], [`batcher`] and [`tokenize`]) touches `ort`
//! and `tokenizers`; the model sits behind the [`Encoder`] trait so
//! everything above it can be tested without one.

pub mod actions;
pub mod batcher;
pub mod boundaries;
mod clauses;
pub mod decode;
pub mod keyword;
pub mod lexicon;
pub mod matching;
pub mod onnx;
pub mod passes;
pub mod pool;
pub mod runtime;
pub mod segment;
pub mod tokenize;
pub mod validators;
pub mod window;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::intent::{
    Clause, Entity, EntityLabel, Intent, ModelInfo, OpenEnded, OpenEndedPolicy, SpeechAct, Subject,
    ToolGrant, ToolRole,
};
use crate::text::Span;
use clauses::{
    action_cuts, antecedent_object, char_offset, delegation_source, merge_grants, negated,
    to_entities,
};
use decode::argmax;
pub use matching::MatchThresholds;
pub use onnx::{EncoderOptions, OnnxEncoder};
use runtime::Calibration;
use validators::Origin;

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
    /// Encodes texts reading only as much of each as the model takes at
    /// once (its first window), as catalog entries are read: the model
    /// was trained on their first `max_tokens` tokens. The default reads
    /// them as [`Encoder::encode`] does.
    fn encode_first_window<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        self.encode(texts)
    }
    /// Identity and calibration.
    fn meta(&self) -> &EncoderMeta;
    /// Inputs waiting for the model.
    fn queue_depth(&self) -> usize {
        0
    }
    /// Most model windows one [`Encoder::encode`] call may cost (a segment
    /// costs at least one); unbounded by default.
    fn max_windows(&self) -> usize {
        usize::MAX
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

    /// Embeds every entry of a catalog, in chunks that fit the queue; an
    /// entry is read in the model's first window, as it was trained.
    pub async fn embed_catalog(
        &self,
        catalog: &Catalog,
    ) -> Result<CatalogEmbeddings, ExtractionError> {
        let texts = catalog.texts();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(32) {
            vectors.extend(
                self.encoder
                    .encode_first_window(chunk)
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
    /// any clause (what the drift rules use to call a read related): the
    /// pipeline of the module documentation, one call per step.
    #[tracing::instrument(skip_all, fields(prompt_bytes = prompt.len(), entries = catalog.entries.len()))]
    pub async fn extract_detailed(
        &self,
        subject: Subject,
        prompt: &str,
        catalog: &Catalog,
        embeddings: &CatalogEmbeddings,
    ) -> Result<Extraction, ExtractionError> {
        self.check(prompt, catalog, embeddings)?;
        let segments = self.segment(prompt).await?;
        let split = requested_actions(prompt, &segments, self.config.max_clauses);
        let entities = objects(prompt, split.model_spans, split.shaped);
        let encoded = self
            .encode_clauses(prompt, segments, &split.clauses, &entities)
            .await?;
        let entities = to_entities(prompt, entities);
        let read = speech_acts(prompt, &split.clauses, &encoded, &entities);
        let matched = self.match_clauses(&read, &encoded, catalog, embeddings);
        let entry_scores = entry_scores(&encoded, embeddings);
        let intent = self.quads(subject, read, matched, entities, catalog);
        Ok(Extraction {
            intent,
            entry_scores,
        })
    }

    /// Refuses a prompt with no words and embeddings that are not this
    /// catalog's under this model.
    fn check(
        &self,
        prompt: &str,
        catalog: &Catalog,
        embeddings: &CatalogEmbeddings,
    ) -> Result<(), ExtractionError> {
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
        Ok(())
    }

    /// Step 1: the segments of the request, each read by the model.
    async fn segment(&self, prompt: &str) -> Result<Segments, ExtractionError> {
        let mut ranges = segment::segment(prompt);
        if ranges.is_empty() {
            ranges.push((0, prompt.len()));
        }
        // Each segment costs at least one model window.
        ranges.truncate(self.encoder.max_windows().max(1));
        let texts: Vec<String> = ranges
            .iter()
            .map(|&(s, e)| prompt[s..e].to_string())
            .collect();
        let encoded = self.encoder.encode(&texts).await?;
        Ok(Segments { ranges, encoded })
    }

    /// Step 4, first half: one encoding per clause. A clause that is not
    /// its whole segment (split, or matched on its head only) is pooled
    /// inside its segment when the model has per-token outputs, else it is
    /// encoded on its own in a second pass. A pooled clause that says "it"
    /// or "them" without naming an object also pools the object it refers
    /// to, so the verb is matched against what it acts on.
    async fn encode_clauses(
        &self,
        prompt: &str,
        segments: Segments,
        clauses: &[ClauseRange],
        spans: &[(Span, Origin)],
    ) -> Result<Vec<ClauseEncoding>, ExtractionError> {
        let Segments { ranges, encoded } = segments;
        let pooled: Vec<Option<ClauseEncoding>> = clauses
            .iter()
            .map(|c| {
                let seg_start = ranges[c.segment].0;
                let pool = encoded[c.segment].tokens.as_ref().filter(|_| !c.whole)?;
                let mut pooled = vec![(c.start - seg_start, c.head_end - seg_start)];
                if let Some(a) = antecedent_object(prompt, spans, seg_start, c.start, c.head_end) {
                    pooled.push((a.0 - seg_start, a.1 - seg_start));
                }
                let (embedding, acts) = pool.ranges(&pooled)?;
                Some(ClauseEncoding { embedding, acts })
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
        let mut whole: Vec<Option<Encoded>> = encoded.into_iter().map(Some).collect();
        let mut second = second.into_iter();
        clauses
            .iter()
            .zip(pooled)
            .map(|(c, p)| match (c.whole, p) {
                (true, _) => whole
                    .get_mut(c.segment)
                    .and_then(Option::take)
                    .map(ClauseEncoding::from),
                (false, Some(p)) => Some(p),
                (false, None) => second.next().map(ClauseEncoding::from),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ExtractionError::Runtime("missing clause encoding".into()))
    }

    /// Step 5: the grants of each clause.
    fn match_clauses(
        &self,
        read: &[ReadClause],
        encoded: &[ClauseEncoding],
        catalog: &Catalog,
        embeddings: &CatalogEmbeddings,
    ) -> Vec<Vec<ToolGrant>> {
        let calibration = self.encoder.meta().calibration;
        read.iter()
            .zip(encoded)
            .enumerate()
            .map(|(i, (clause, enc))| {
                let query = matching::ClauseQuery {
                    index: i,
                    act: clause.act,
                    embedding: &enc.embedding,
                    verbs: &clause.verbs,
                };
                matching::match_clause(
                    query,
                    catalog,
                    &embeddings.vectors,
                    calibration,
                    self.config.thresholds,
                )
            })
            .collect()
    }

    /// Step 6: one AuthZEN evaluation per requested tool, the open-ended
    /// source of the first delegating clause, and the intent.
    fn quads(
        &self,
        subject: Subject,
        read: Vec<ReadClause>,
        matched: Vec<Vec<ToolGrant>>,
        entities: Vec<Entity>,
        catalog: &Catalog,
    ) -> Intent {
        let mut clauses = Vec::with_capacity(read.len());
        let mut grants: Vec<ToolGrant> = Vec::new();
        let mut evaluations = Vec::new();
        let mut open_ended = None;
        for (i, (clause, clause_grants)) in read.into_iter().zip(matched).enumerate() {
            for g in &clause_grants {
                if g.role == ToolRole::Requested
                    && let Some(entry) = catalog.get(&g.name)
                {
                    evaluations.push(matching::evaluation(
                        entry,
                        g,
                        &clause.text,
                        &entities,
                        &clause.entities,
                    ));
                }
            }
            if clause.act == SpeechAct::Delegation && open_ended.is_none() {
                let actions: Vec<&Entity> = clause.actions.iter().map(|&k| &entities[k]).collect();
                open_ended = Some(OpenEnded {
                    source: delegation_source(&clause.text, &actions, clause.start),
                    clause: i,
                    enforcement: self.config.open_ended,
                });
            }
            grants.extend(clause_grants);
            clauses.push(Clause {
                text: clause.text,
                start: clause.start,
                end: clause.end,
                speech_act: clause.act,
                score: clause.score,
            });
        }
        let speech_act = clauses
            .iter()
            .map(|c| c.speech_act)
            .max()
            .unwrap_or(SpeechAct::Question);
        let meta = self.encoder.meta();
        Intent {
            subject,
            evaluations,
            tools: merge_grants(grants),
            entities,
            clauses,
            speech_act,
            open_ended,
            model: ModelInfo {
                name: meta.name.clone(),
                sha256: meta.sha256.clone(),
                grant_threshold: self.config.thresholds.grant,
                read_threshold: self.config.thresholds.read,
                verb_boost: self.config.thresholds.verb_boost,
            },
        }
    }
}

/// The segments of a request and the model's reading of each.
struct Segments {
    /// Byte ranges in the prompt.
    ranges: Vec<(usize, usize)>,
    /// One encoding per segment.
    encoded: Vec<Encoded>,
}

/// The clauses of a request, cut at its requested actions, with the spans
/// the model and the shape validators found.
struct Split {
    /// The clauses, in order.
    clauses: Vec<ClauseRange>,
    /// The model's spans (requested actions only) in prompt byte offsets.
    model_spans: Vec<Span>,
    /// The shape validators' spans.
    shaped: Vec<Span>,
}

/// Step 2: the requested actions of each segment, and the clauses they cut
/// it into: a segment splits at a second requested action that follows a
/// connector.
fn requested_actions(prompt: &str, segments: &Segments, max_clauses: usize) -> Split {
    let mut model_spans: Vec<Span> = Vec::new();
    let mut clauses: Vec<ClauseRange> = Vec::new();
    let shaped = crate::text::find_shaped(prompt);
    for (k, (&(seg_start, seg_end), enc)) in
        segments.ranges.iter().zip(&segments.encoded).enumerate()
    {
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
    let clauses = keep_clauses(clauses, &model_spans, max_clauses);
    Split {
        clauses,
        model_spans,
        shaped,
    }
}

/// At most `max` clauses, in prompt order. A request of up to `max`
/// clauses keeps them all; a longer one (pasted background before, after
/// or around the ask) keeps its clauses that hold a requested action
/// first, then the others from the start, so an ask stated after many
/// sentences of context is still read. When even the clauses with an
/// action are too many, the first half of the room goes to the first of
/// them and the rest to the last: an ask comes before or after the
/// material it is about, seldom in its middle.
fn keep_clauses(clauses: Vec<ClauseRange>, spans: &[Span], max: usize) -> Vec<ClauseRange> {
    if clauses.len() <= max {
        return clauses;
    }
    let acts = |c: &ClauseRange| {
        spans
            .iter()
            .any(|s| s.label == EntityLabel::Action && c.start <= s.start && s.end <= c.end)
    };
    let mut keep: Vec<bool> = clauses.iter().map(acts).collect();
    let asking = keep.iter().filter(|&&k| k).count();
    let mut room = max.saturating_sub(asking);
    if asking > max {
        let (head, tail) = (max / 2, max - max / 2);
        let mut seen = 0;
        for k in &mut keep {
            if *k {
                *k = seen < head || seen >= asking - tail;
                seen += 1;
            }
        }
        room = 0;
    }
    for k in &mut keep {
        if room == 0 {
            break;
        }
        if !*k {
            *k = true;
            room -= 1;
        }
    }
    clauses
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

/// Step 3: the objects: the model's spans through the span passes, the
/// shaped values merged in.
fn objects(prompt: &str, model_spans: Vec<Span>, shaped: Vec<Span>) -> Vec<(Span, Origin)> {
    passes::run(prompt, model_spans, shaped)
}

/// What the model says about one clause.
struct ClauseEncoding {
    /// L2-normalised embedding.
    embedding: Vec<f32>,
    /// Speech-act probabilities in [`SpeechAct::ALL`] order.
    acts: [f32; 3],
}

impl From<Encoded> for ClauseEncoding {
    fn from(e: Encoded) -> Self {
        Self {
            embedding: e.embedding,
            acts: e.acts,
        }
    }
}

/// A clause with its speech act read.
struct ReadClause {
    /// Its text.
    text: String,
    /// Start and end in chars of the prompt.
    start: usize,
    end: usize,
    /// Its act, and the probability the model gave the act it read.
    act: SpeechAct,
    score: f32,
    /// Indices of the entities inside it, and of its ACTION entities.
    entities: Vec<usize>,
    actions: Vec<usize>,
    /// The lowercase first words of its ACTION entities.
    verbs: Vec<String>,
}

/// Step 4, second half: the speech act of each clause. A clause with no
/// requested verb, in a request whose other clauses have one ("… to the
/// 5th. booking K7RZPQ"), is context for them, not a request of its own;
/// a clause whose verbs are all negated asks for nothing to be done.
fn speech_acts(
    prompt: &str,
    clauses: &[ClauseRange],
    encoded: &[ClauseEncoding],
    entities: &[Entity],
) -> Vec<ReadClause> {
    let any_action = entities.iter().any(|en| en.label == EntityLabel::Action);
    clauses
        .iter()
        .zip(encoded)
        .map(|(c, enc)| {
            let (act_idx, score) = argmax(&enc.acts);
            let (start, end) = (char_offset(prompt, c.start), char_offset(prompt, c.end));
            let text = prompt[c.start..c.end].to_string();
            let inside: Vec<usize> = entities
                .iter()
                .enumerate()
                .filter(|(_, en)| en.start >= start && en.end <= end)
                .map(|(k, _)| k)
                .collect();
            let actions: Vec<usize> = inside
                .iter()
                .copied()
                .filter(|&k| entities[k].label == EntityLabel::Action)
                .collect();
            let action_entities: Vec<&Entity> = actions.iter().map(|&k| &entities[k]).collect();
            let read = SpeechAct::ALL[act_idx];
            let context = clauses.len() > 1 && any_action && actions.is_empty();
            let act = if read == SpeechAct::Action
                && (context || negated(&text, start, &action_entities))
            {
                SpeechAct::Question
            } else {
                read
            };
            let verbs = action_entities
                .iter()
                .filter_map(|a| {
                    let &(s, e) = crate::text::words(&a.text).first()?;
                    Some(a.text[s..e].to_lowercase())
                })
                .collect();
            ReadClause {
                text,
                start,
                end,
                act,
                score,
                entities: inside,
                actions,
                verbs,
            }
        })
        .collect()
}

/// The best cosine of each catalog entry to any clause.
fn entry_scores(encoded: &[ClauseEncoding], embeddings: &CatalogEmbeddings) -> Vec<f32> {
    embeddings
        .vectors
        .iter()
        .map(|v| {
            encoded
                .iter()
                .map(|c| matching::cosine(&c.embedding, v))
                .fold(-1.0f32, f32::max)
        })
        .collect()
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

#[cfg(test)]
#[path = "extraction_tests.rs"]
mod tests;
