//! The ONNX glue: the [`Encoder`] over the multi-head model, made of the
//! tokenizer (`tokenizers`), the batching queue and the model thread
//! (`ort`). Loading checks the model directory and warms the model up.

use std::path::Path;

use super::batcher::{BatchLimits, Batcher};
use super::decode::{Tag, decode_entities, softmax};
use super::pool;
use super::runtime::{ModelFiles, SessionOptions, spawn_model_thread};
use super::tokenize::TextTokenizer;
use super::{BoxFuture, Encoded, Encoder, EncoderMeta, ExtractionError};
use crate::intent::SpeechAct;

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
