//! The committed model, run for real: the Rust runtime reads it exactly as
//! the training code does (parity vectors), decoded intents look as they
//! should (snapshots), and quality on the held-out domains stays at what was
//! measured (see the README for the numbers and how they were produced).

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;
use telos::config::{Cli, Command, ModelArgs};
use telos::extraction::{Encoder, ExtractionConfig, Extractor};

fn model_args() -> ModelArgs {
    let cli = <Cli as clap::Parser>::try_parse_from(["telos", "eval", "fixtures/intents"]).unwrap();
    match cli.command {
        Command::Eval(e) => e.model,
        _ => unreachable!(),
    }
}

/// One encoder for the whole test binary (loading warms the model).
fn encoder() -> Arc<dyn Encoder> {
    static ENCODER: OnceLock<Arc<dyn Encoder>> = OnceLock::new();
    Arc::clone(ENCODER.get_or_init(|| {
        // The batcher needs a runtime that outlives every test.
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        let rt = RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap());
        let _guard = rt.enter();
        Arc::new(telos::cli::load_encoder(&model_args()).unwrap())
    }))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_runtime_reads_the_model_as_training_did() {
    let parity: Value =
        serde_json::from_slice(&std::fs::read(root().join("models/telos-minilm/parity.json")).unwrap()).unwrap();
    let tok = telos::extraction::tokenize::TextTokenizer::from_file(&root().join("models/telos-minilm/tokenizer.json"), 128)
        .unwrap();
    let enc = encoder();
    for case in parity["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<i64> = case["input_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(tok.tokenize(text).unwrap().ids, ids, "{text}");
        let out = &enc.encode(&[text.to_string()]).await.unwrap()[0];
        for (i, want) in case["embedding_first8"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap() as f32;
            assert!((out.embedding[i] - want).abs() < 2e-3, "{text}: dim {i}: {} vs {want}", out.embedding[i]);
        }
        let norm: f32 = out.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3);
        if let Some(act) = case.get("act").and_then(Value::as_str) {
            let (best, _) = telos::extraction::decode::argmax(&out.acts);
            assert_eq!(telos::intent::SpeechAct::ALL[best].as_str(), act, "{text}");
        }
    }
}
