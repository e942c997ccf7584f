//! The ONNX Runtime side: finding the shared library, loading the model
//! directory, and the one OS thread that owns the `Session` and runs the
//! batches the batcher sends it (`Session::run` takes `&mut self`).

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tracing::{Span, debug, info};

use super::ExtractionError;

/// The ONNX Runtime version the `ort` crate is built against (`api-31`).
pub const ORT_VERSION: &str = "1.31.1";

/// File name of the provisioned library.
pub fn ort_library_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// Finds `libonnxruntime`: `ORT_DYLIB_PATH` (when set and not empty),
/// else `.ort/` next to the repository the binary was built in
/// (`target/release/telos` → `../../.ort`), else `.ort/` in the working
/// directory, else the source tree's `.ort/`.
pub fn find_ort_library() -> Result<PathBuf, ExtractionError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(ExtractionError::Runtime(format!(
                "ORT_DYLIB_PATH points to `{}`, which is not a file",
                p.display()
            )))
        };
    }
    let name = ort_library_name();
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("../../.ort").join(&name));
        candidates.push(dir.join("../../../.ort").join(&name));
    }
    candidates.push(PathBuf::from(".ort").join(&name));
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".ort")
            .join(&name),
    );
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        ExtractionError::Runtime(format!(
            "the ONNX Runtime library `{name}` was not found: run `scripts/provision-ort.sh` \
                 (it unpacks it from the onnxruntime=={ORT_VERSION} wheel on PyPI into `.ort/`) \
                 or set ORT_DYLIB_PATH to its path"
        ))
    })
}

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

fn environment() -> Result<&'static ort::environment::Environment, ExtractionError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let lib = find_ort_library()?;
    let env = ort::init_from(&lib)
        .map_err(|e| ExtractionError::Runtime(e.to_string()))?
        .with_name("telos")
        .build()
        .map_err(|e| ExtractionError::Runtime(e.to_string()))?;
    info!(library = %lib.display(), "onnx runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// Relevance calibration: `p = sigmoid(scale * cos + bias)`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Calibration {
    /// Multiplies the cosine.
    pub scale: f32,
    /// Added after scaling.
    pub bias: f32,
}

impl Calibration {
    /// The calibrated probability of a cosine.
    pub fn probability(&self, cos: f32) -> f32 {
        1.0 / (1.0 + (-(self.scale * cos + self.bias)).exp())
    }
}

/// `config.json` of a model directory (see `models/INTERFACE.md`).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    /// Model name.
    pub name: String,
    /// Maximum tokens per input.
    pub max_tokens: usize,
    /// Embedding dimension.
    pub embedding_dim: usize,
    /// BIO tags, in output order.
    pub ner_labels: Vec<String>,
    /// Speech acts, in output order.
    pub speech_acts: Vec<String>,
    /// Cosine calibration.
    pub relevance: Calibration,
}

/// A loaded model directory.
pub struct ModelFiles {
    /// The parsed `config.json`.
    pub config: ModelConfig,
    /// Path of `model.onnx`.
    pub onnx: PathBuf,
    /// Path of `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// First 16 hex digits of the ONNX file's sha256.
    pub sha256: String,
}

impl ModelFiles {
    /// Reads and checks a model directory.
    pub fn open(dir: &Path) -> Result<Self, ExtractionError> {
        let load = |p: &Path, e: String| ExtractionError::Load {
            path: p.display().to_string(),
            reason: e,
        };
        let config_path = dir.join("config.json");
        let raw = std::fs::read(&config_path).map_err(|e| load(&config_path, e.to_string()))?;
        let config: ModelConfig =
            serde_json::from_slice(&raw).map_err(|e| load(&config_path, e.to_string()))?;
        let onnx = dir.join("model.onnx");
        let bytes = std::fs::read(&onnx).map_err(|e| load(&onnx, e.to_string()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes))[..16].to_string();
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(load(&tokenizer, "missing".into()));
        }
        Ok(Self {
            config,
            onnx,
            tokenizer,
            sha256,
        })
    }
}

/// The raw outputs of the model for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutput {
    /// L2-normalised embedding.
    pub embedding: Vec<f32>,
    /// NER logits, one row per token (special tokens included).
    pub ner_logits: Vec<Vec<f32>>,
    /// Speech-act logits.
    pub act_logits: Vec<f32>,
    /// Per-token outputs, when the graph has them.
    pub tokens: Option<TokenOutputs>,
}

/// Per-token outputs that let a span of the text be pooled like a whole
/// text: the mean of `states` over a span is the span's un-normalised
/// embedding, and the mean of `act_logits` its speech-act logits (the act
/// head is linear).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOutputs {
    /// Width of one state row.
    pub dim: usize,
    /// Last hidden states, `dim` values per token (special tokens included).
    pub states: Vec<f32>,
    /// Number of speech acts per row of `act_logits`.
    pub acts: usize,
    /// The act head applied to each token's state, `acts` values per token.
    pub act_logits: Vec<f32>,
}

/// One input of a batch, with the channel its answer goes to.
pub struct BatchItem {
    /// Token ids.
    pub ids: Vec<i64>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<RawOutput, ExtractionError>>,
    /// The caller's span, so model work is attributed to its request.
    pub span: Span,
    /// When the item entered the queue.
    pub queued_at: Instant,
}

/// A batch for the model thread. `done` is released once every answer of
/// the batch is sent: the batcher forms the next batch only then, from
/// everything that queued while this one ran.
pub struct Batch {
    /// The inputs.
    pub items: Vec<BatchItem>,
    /// Held while the batch runs.
    pub done: OwnedSemaphorePermit,
}

/// Options of the ONNX session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Threads of one operator.
    pub intra_threads: usize,
}

fn session(files: &ModelFiles, opts: SessionOptions) -> Result<Session, ExtractionError> {
    let env = environment()?;
    let rt = |e: String| ExtractionError::Load {
        path: files.onnx.display().to_string(),
        reason: e,
    };
    let session = Session::builder(env)
        .map_err(|e| rt(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| rt(e.to_string()))?
        .with_intra_threads(opts.intra_threads)
        .map_err(|e| rt(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| rt(e.to_string()))?
        // The model stores int8 weights behind DequantizeLinear with fp32
        // activations: without QDQ fusion ONNX Runtime folds them back to
        // fp32 once, at load, and every text's outputs are independent of
        // the batch it shares.
        .with_quant_qdq(false)
        .map_err(|e| rt(e.to_string()))?
        .commit_from_file(&files.onnx)
        .map_err(|e| rt(e.to_string()))?;
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    for want in ["input_ids", "attention_mask"] {
        if !inputs.contains(&want) {
            return Err(rt(format!(
                "the graph has no input `{want}` (has {inputs:?})"
            )));
        }
    }
    for want in ["embedding", "ner_logits", "act_logits"] {
        if !outputs.contains(&want) {
            return Err(rt(format!(
                "the graph has no output `{want}` (has {outputs:?})"
            )));
        }
    }
    Ok(session)
}

/// Optional output: last hidden state of every token.
pub const TOKEN_STATES: &str = "token_states";
/// Optional output: the speech-act head applied to every token.
pub const TOKEN_ACT_LOGITS: &str = "token_act_logits";

/// Runs one padded batch through the session.
pub fn run_batch(
    session: &mut Session,
    batch: &[Vec<i64>],
) -> Result<Vec<RawOutput>, ExtractionError> {
    let n = batch.len();
    let t = batch.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = vec![0i64; n * t];
    let mut mask = vec![0i64; n * t];
    for (row, item) in batch.iter().enumerate() {
        ids[row * t..row * t + item.len()].copy_from_slice(item);
        mask[row * t..row * t + item.len()].fill(1);
    }
    let shape = [n, t];
    let rt = |e: ort::Error| ExtractionError::Runtime(e.to_string());
    let ids = Tensor::from_array((shape, ids)).map_err(rt)?;
    let mask = Tensor::from_array((shape, mask)).map_err(rt)?;
    let outputs = session
        .run(ort::inputs!["input_ids" => ids, "attention_mask" => mask])
        .map_err(rt)?;
    let (emb_shape, emb) = outputs["embedding"]
        .try_extract_tensor::<f32>()
        .map_err(rt)?;
    let (ner_shape, ner) = outputs["ner_logits"]
        .try_extract_tensor::<f32>()
        .map_err(rt)?;
    let (act_shape, act) = outputs["act_logits"]
        .try_extract_tensor::<f32>()
        .map_err(rt)?;
    let per_token = match (outputs.get(TOKEN_STATES), outputs.get(TOKEN_ACT_LOGITS)) {
        (Some(states), Some(acts)) => Some((
            states.try_extract_tensor::<f32>().map_err(rt)?,
            acts.try_extract_tensor::<f32>().map_err(rt)?,
        )),
        _ => None,
    };
    let dim = usize::try_from(emb_shape[1]).unwrap_or(0);
    let tags = usize::try_from(ner_shape[2]).unwrap_or(0);
    let acts = usize::try_from(act_shape[1]).unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for (row, item) in batch.iter().enumerate() {
        let ner_rows = (0..item.len())
            .map(|tok| {
                let base = (row * t + tok) * tags;
                ner[base..base + tags].to_vec()
            })
            .collect();
        let tokens = per_token
            .as_ref()
            .map(|((state_shape, states), (tact_shape, tacts))| {
                let sd = usize::try_from(state_shape[2]).unwrap_or(0);
                let ta = usize::try_from(tact_shape[2]).unwrap_or(0);
                TokenOutputs {
                    dim: sd,
                    states: states[row * t * sd..(row * t + item.len()) * sd].to_vec(),
                    acts: ta,
                    act_logits: tacts[row * t * ta..(row * t + item.len()) * ta].to_vec(),
                }
            });
        out.push(RawOutput {
            embedding: emb[row * dim..(row + 1) * dim].to_vec(),
            ner_logits: ner_rows,
            act_logits: act[row * acts..(row + 1) * acts].to_vec(),
            tokens,
        });
    }
    Ok(out)
}

/// Starts the model thread. It loads the session, checks its inputs and
/// outputs, warms it up with a full batch, then serves batches from the
/// returned channel until every sender is dropped. Returns once the model
/// is warm, or with the load error.
pub fn spawn_model_thread(
    files: &ModelFiles,
    opts: SessionOptions,
    warmup_batch: usize,
) -> Result<mpsc::Sender<Batch>, ExtractionError> {
    let mut session = session(files, opts)?;
    let warm: Vec<Vec<i64>> = (0..warmup_batch.max(1))
        .map(|_| {
            let mut v = vec![101i64];
            v.extend(std::iter::repeat_n(1000i64, 30));
            v.push(102);
            v
        })
        .collect();
    let started = Instant::now();
    let warm_out = run_batch(&mut session, &warm)?;
    if warm_out
        .first()
        .is_some_and(|o| o.embedding.len() != files.config.embedding_dim)
    {
        return Err(ExtractionError::Load {
            path: files.onnx.display().to_string(),
            reason: format!(
                "embedding has {} dimensions, config.json says {}",
                warm_out[0].embedding.len(),
                files.config.embedding_dim
            ),
        });
    }
    info!(
        batch = warm.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model warm"
    );
    let (tx, mut rx) = mpsc::channel::<Batch>(1);
    std::thread::Builder::new()
        .name("telos-model".into())
        .spawn(move || {
            while let Some(Batch { items: batch, done }) = rx.blocking_recv() {
                let inputs: Vec<Vec<i64>> = batch.iter().map(|b| b.ids.clone()).collect();
                let tokens: usize = inputs.iter().map(Vec::len).max().unwrap_or(0) * inputs.len();
                let started = Instant::now();
                let result = run_batch(&mut session, &inputs);
                let elapsed = started.elapsed();
                metrics::histogram!("telos_model_inference_duration_seconds")
                    .record(elapsed.as_secs_f64());
                metrics::histogram!("telos_model_batch_size").record(inputs.len() as f64);
                metrics::histogram!("telos_model_batch_tokens").record(tokens as f64);
                match result {
                    Ok(outputs) => {
                        for (item, out) in batch.into_iter().zip(outputs) {
                            item.span.in_scope(|| {
                                debug!(
                                    queue_ms = (started - item.queued_at).as_secs_f64() * 1e3,
                                    model_ms = elapsed.as_secs_f64() * 1e3,
                                    "inference"
                                );
                            });
                            let _ = item.reply.send(Ok(out));
                        }
                    }
                    Err(err) => {
                        for item in batch {
                            let _ = item.reply.send(Err(err.clone()));
                        }
                    }
                }
                drop(done);
            }
        })
        .map_err(|e| ExtractionError::Runtime(e.to_string()))?;
    Ok(tx)
}
