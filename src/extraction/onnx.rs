//! The ONNX glue: the [`Encoder`] over the multi-head model, made of the
//! tokenizer (`tokenizers`), the batching queue and the model thread
//! (`ort`). Loading checks the model directory and warms the model up.

use std::path::Path;

use super::batcher::{BatchLimits, Batcher};
use super::decode::{Tag, decode_entities, softmax};
use super::pool;
use super::runtime::{ModelFiles, RawOutput, SessionOptions, spawn_model_thread};
use super::tokenize::{TextTokenizer, Tokenized};
use super::window;
use super::{BoxFuture, Encoded, Encoder, EncoderMeta, ExtractionError};
use crate::intent::SpeechAct;

/// Runtime options of the ONNX encoder.
#[derive(Debug, Clone, Copy)]
pub struct EncoderOptions {
    /// ONNX intra-op threads.
    pub intra_threads: usize,
    /// Batching limits.
    pub batch: BatchLimits,
    /// The prompt character limit; one call (one prompt's segments) costs
    /// at most [`window::max_windows`] of it model windows.
    pub max_prompt_chars: usize,
}

/// The ONNX multi-head encoder: tokenizer, batching queue, model thread.
pub struct OnnxEncoder {
    tokenizer: TextTokenizer,
    batcher: Batcher,
    tags: Vec<Tag>,
    act_order: [usize; 3],
    meta: EncoderMeta,
    max_windows: usize,
}

/// How one text is read: its model inputs, and where they start.
struct Plan {
    /// One input per window.
    inputs: Vec<Vec<i64>>,
    /// Start of each window in the text's content tokens; empty when the
    /// text is one input as tokenized.
    starts: Vec<usize>,
    /// Content tokens read (the text's, unless the window cap cut it).
    covered: usize,
}

/// Cuts a tokenized text into the windows of [`window`]; `budget` is what
/// is left of the call's window cap. A text that fits is its own single
/// input, exactly as tokenized.
fn plan(tok: &Tokenized, max_tokens: usize, budget: &mut usize) -> Plan {
    let ids = &tok.ids;
    let special = |i: usize| tok.offsets.get(i).is_some_and(Option::is_none);
    let n_ids = ids.len();
    if n_ids <= max_tokens || n_ids < 2 || !special(0) || !special(n_ids - 1) {
        // Fits (or has no special tokens to window between): one input,
        // cut at the model's maximum.
        *budget = budget.saturating_sub(1);
        return Plan {
            inputs: vec![ids[..n_ids.min(max_tokens)].to_vec()],
            starts: vec![],
            covered: 0,
        };
    }
    let (cls, sep) = (ids[0], ids[n_ids - 1]);
    let content = &ids[1..n_ids - 1];
    let width = max_tokens.saturating_sub(2).max(2);
    let mut starts = window::starts(content.len(), width);
    starts.truncate((*budget).max(1));
    *budget = budget.saturating_sub(starts.len());
    let covered = starts.last().map_or(0, |&s| (s + width).min(content.len()));
    let inputs = starts
        .iter()
        .map(|&s| {
            let mut v = Vec::with_capacity(width + 2);
            v.push(cls);
            v.extend_from_slice(&content[s..(s + width).min(content.len())]);
            v.push(sep);
            v
        })
        .collect();
    Plan {
        inputs,
        starts,
        covered,
    }
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
            max_windows: window::max_windows(opts.max_prompt_chars, files.config.max_tokens),
            meta: EncoderMeta {
                name: files.config.name.clone(),
                sha256: files.sha256.clone(),
                calibration: files.config.relevance,
            },
        })
    }
}

impl OnnxEncoder {
    /// The entities, embedding, speech acts and token pool of one text.
    fn decode(&self, text: &str, tok: Tokenized, out: RawOutput) -> Encoded {
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
    }
}

impl OnnxEncoder {
    /// Encodes texts, each read whole in windows (`whole`, within the
    /// call's window cap) or in its first window only.
    async fn encode_with(
        &self,
        texts: &[String],
        whole: bool,
    ) -> Result<Vec<Encoded>, ExtractionError> {
        let tokenized = texts
            .iter()
            .map(|t| self.tokenizer.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        let max_tokens = self.tokenizer.max_tokens();
        let mut budget = self.max_windows;
        let plans: Vec<Plan> = tokenized
            .iter()
            .map(|t| {
                let mut one = 1;
                plan(t, max_tokens, if whole { &mut budget } else { &mut one })
            })
            .collect();
        let inputs: Vec<Vec<i64>> = plans.iter().flat_map(|p| p.inputs.clone()).collect();
        let mut raw = self.batcher.infer(inputs).await?.into_iter();
        let width = max_tokens.saturating_sub(2).max(2);
        let mut out = Vec::with_capacity(texts.len());
        for ((plan, mut tok), text) in plans.into_iter().zip(tokenized).zip(texts) {
            let windows: Vec<_> = raw.by_ref().take(plan.inputs.len()).collect();
            if plan.starts.is_empty() {
                tok.offsets
                    .truncate(plan.inputs.first().map_or(0, Vec::len));
            } else {
                // The text as read: [CLS], the covered tokens, [SEP].
                tok.offsets.truncate(plan.covered + 1);
                tok.offsets.push(None);
            }
            // One window (the text fits, or only its first window is
            // read): the model's outputs as they are.
            let merged = if plan.starts.len() <= 1 {
                windows.into_iter().next()
            } else {
                window::merge(&plan.starts, width, plan.covered, &windows)
            };
            let raw_out = merged.ok_or_else(|| {
                ExtractionError::Runtime("the model's outputs do not cover the text".into())
            })?;
            out.push(self.decode(text, tok, raw_out));
        }
        Ok(out)
    }
}

impl Encoder for OnnxEncoder {
    fn encode<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(self.encode_with(texts, true))
    }

    fn encode_first_window<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Encoded>, ExtractionError>> {
        Box::pin(self.encode_with(texts, false))
    }

    fn meta(&self) -> &EncoderMeta {
        &self.meta
    }

    fn queue_depth(&self) -> usize {
        self.batcher.depth()
    }

    fn max_windows(&self) -> usize {
        self.max_windows
    }
}
