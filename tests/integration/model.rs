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
    let Command::Eval(e) = cli.command else {
        unreachable!()
    };
    e.model
}

/// One encoder for the whole test binary (loading warms the model).
fn encoder() -> Arc<dyn Encoder> {
    static ENCODER: OnceLock<Arc<dyn Encoder>> = OnceLock::new();
    Arc::clone(ENCODER.get_or_init(|| {
        // The batcher needs a runtime that outlives every test.
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        let rt = RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap());
        let _guard = rt.enter();
        Arc::new(model_args().load_encoder().unwrap())
    }))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_runtime_reads_the_model_as_training_did() {
    let parity: Value = serde_json::from_slice(
        &std::fs::read(root().join("models/telos-minilm/parity.json")).unwrap(),
    )
    .unwrap();
    let tok = telos::extraction::tokenize::TextTokenizer::from_file(
        &root().join("models/telos-minilm/tokenizer.json"),
        128,
    )
    .unwrap();
    let enc = encoder();
    for case in parity["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<i64> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(tok.tokenize(text).unwrap().ids, ids, "{text}");
        let out = &enc.encode(&[text.to_string()]).await.unwrap()[0];
        for (i, want) in case["embedding_first8"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let want = want.as_f64().unwrap() as f32;
            assert!(
                (out.embedding[i] - want).abs() < 2e-3,
                "{text}: dim {i}: {} vs {want}",
                out.embedding[i]
            );
        }
        let norm: f32 = out.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3);
        if let Some(act) = case.get("act").and_then(Value::as_str) {
            let (best, _) = telos::extraction::decode::argmax(&out.acts);
            assert_eq!(telos::intent::SpeechAct::ALL[best].as_str(), act, "{text}");
        }
    }
}

/// Measured with `telos eval fixtures/intents --bfcl fixtures/bfcl/heldout.jsonl
/// --baseline-model-dir models/minilm-base --workflows fixtures/workflows`
/// (README, "Quality"); each floor is the measurement minus 0.03, so an
/// int8 rounding difference on another CPU does not fail the test, except
/// where the measurement is within 0.03 of the project's bar, and the floor
/// is the bar: tool recall held out (bar 0.90, measured 0.911: 72 of 79
/// tools) and exact entity F1 (bar 0.80; held out 0.809: 205 of 255
/// predicted and 252 gold spans; blind 0.808).
mod floors {
    pub struct Split {
        pub tool_precision: f64,
        pub tool_recall: f64,
        pub entity_f1_strict: f64,
        pub entity_f1_overlap: f64,
        pub speech_act: f64,
    }
    pub const HELD_OUT: Split = Split {
        tool_precision: 0.867 - 0.03,
        tool_recall: 0.90,
        entity_f1_strict: 0.80,
        entity_f1_overlap: 0.844 - 0.03,
        speech_act: 0.988 - 0.03,
    };
    /// The blind domains (ads, logistics), scored once.
    pub const BLIND: Split = Split {
        tool_precision: 0.925 - 0.03,
        tool_recall: 0.942 - 0.03,
        entity_f1_strict: 0.80,
        entity_f1_overlap: 0.829 - 0.03,
        speech_act: 0.964 - 0.03,
    };
    pub const BENIGN_FALSE_POSITIVES_MAX: f64 = 0.043 + 0.03;
    pub const HIJACK_DETECTION: f64 = 0.778 - 0.03;
}

fn thresholds() -> telos::extraction::MatchThresholds {
    model_args().extraction_config().thresholds
}

/// Scores the real model on the domains `names` picks and checks `floor`.
async fn split_keeps_its_measured_quality(
    names: fn(&telos::eval::Splits) -> &Vec<String>,
    floor: floors::Split,
) {
    let (splits, domains) = telos::eval::load_fixtures(&root().join("fixtures/intents")).unwrap();
    let picked: Vec<&telos::eval::Domain> = domains
        .iter()
        .filter(|d| names(&splits).contains(&d.name))
        .collect();
    assert!(!picked.is_empty());
    let enc = encoder();
    let (counts, _) = telos::eval::score(Arc::clone(&enc), thresholds(), &picked, &HashMap::new())
        .await
        .unwrap();
    let s = counts.scores();
    eprintln!("{:?}: {s:?}", names(&splits));
    assert!(
        s.tool_precision >= floor.tool_precision,
        "tool precision {}",
        s.tool_precision
    );
    assert!(
        s.tool_recall >= floor.tool_recall - 1e-9,
        "tool recall {}",
        s.tool_recall
    );
    assert!(
        s.entity_f1_strict >= floor.entity_f1_strict - 1e-9,
        "entity F1 {}",
        s.entity_f1_strict
    );
    assert!(
        s.entity_f1_overlap >= floor.entity_f1_overlap,
        "entity F1 overlap {}",
        s.entity_f1_overlap
    );
    assert!(s.speech_act_accuracy >= floor.speech_act);
    assert_eq!(s.delegation_recall, 1.0, "every delegation is open-ended");
    assert_eq!(
        s.question_over_permission, 0.0,
        "no question is granted a side effect"
    );
}

#[tokio::test]
async fn held_out_domains_keep_their_measured_quality() {
    split_keeps_its_measured_quality(|s| &s.heldout, floors::HELD_OUT).await;
}

#[tokio::test]
async fn blind_domains_keep_their_measured_quality() {
    split_keeps_its_measured_quality(|s| &s.blind, floors::BLIND).await;
}

#[tokio::test]
async fn the_trained_matcher_beats_untrained_cosine_and_keywords() {
    let (splits, domains) = telos::eval::load_fixtures(&root().join("fixtures/intents")).unwrap();
    let pick = |names: &[String]| -> Vec<&telos::eval::Domain> {
        domains.iter().filter(|d| names.contains(&d.name)).collect()
    };
    let (train, heldout) = (pick(&splits.train), pick(&splits.heldout));
    // Every encoder is cached: the threshold sweep replays the same texts.
    let trained: Arc<dyn Encoder> = Arc::new(telos::eval::CachedEncoder::new(encoder()));
    let base = ModelArgs {
        model_dir: Some(root().join("models/minilm-base")),
        ..model_args()
    };
    let base: Arc<dyn Encoder> = Arc::new(base.load_encoder().unwrap());
    let untrained: Arc<dyn Encoder> = Arc::new(telos::eval::CachedEncoder::new(Arc::new(
        telos::eval::MixedEncoder::new(Arc::clone(&trained), base),
    )));
    let keyword: Arc<dyn Encoder> = Arc::new(telos::eval::CachedEncoder::new(Arc::new(
        telos::eval::MixedEncoder::new(
            Arc::clone(&trained),
            Arc::new(telos::extraction::keyword::KeywordEncoder::new(
                telos::extraction::runtime::Calibration {
                    scale: 10.0,
                    bias: -5.0,
                },
            )),
        ),
    )));
    let (ours, _) = telos::eval::score(
        Arc::clone(&trained),
        thresholds(),
        &heldout,
        &HashMap::new(),
    )
    .await
    .unwrap();
    let ours = ours.scores().tool_f1;
    for (name, enc) in [
        ("untrained cosine", untrained),
        ("keyword overlap", keyword),
    ] {
        // Each baseline gets thresholds tuned on the training domains, at
        // its best-F1 point (its strongest showing on this metric).
        let emb = telos::eval::embed_domains(Arc::clone(&enc), &domains)
            .await
            .unwrap();
        let (t, _) = telos::eval::tune(
            Arc::clone(&enc),
            &train,
            &emb,
            telos::eval::Objective::F1,
            &[0.0],
        )
        .await
        .unwrap();
        let (theirs, _) = telos::eval::score(enc, t, &heldout, &emb).await.unwrap();
        let theirs = theirs.scores().tool_f1;
        eprintln!("held-out tool F1: trained {ours:.3}, {name} {theirs:.3}");
        assert!(ours >= theirs + 0.05, "{name}: {theirs} vs trained {ours}");
    }
}

#[tokio::test]
async fn drift_rules_on_held_out_scenarios() {
    let (splits, domains) = telos::eval::load_fixtures(&root().join("fixtures/intents")).unwrap();
    let scenarios: Vec<_> =
        telos::eval::workflows::load_scenarios(&root().join("fixtures/workflows"))
            .unwrap()
            .into_iter()
            .filter(|(_, s)| splits.heldout.contains(&s.domain))
            .collect();
    assert!(scenarios.len() >= 18);
    let enc = encoder();
    let emb = telos::eval::embed_domains(Arc::clone(&enc), &domains)
        .await
        .unwrap();
    let catalogs: HashMap<_, _> = domains
        .iter()
        .map(|d| (d.name.clone(), (d.catalog.clone(), emb[&d.name].clone())))
        .collect();
    let extractor = Extractor::new(
        enc,
        ExtractionConfig {
            thresholds: thresholds(),
            ..ExtractionConfig::default()
        },
    );
    let drift = telos::drift::DriftConfig::default();
    let c = telos::eval::workflows::score_scenarios(&extractor, &scenarios, &catalogs, &drift)
        .await
        .unwrap();
    eprintln!("held-out scenarios: {c:?}");
    assert!(
        c.false_positive_rate() <= floors::BENIGN_FALSE_POSITIVES_MAX,
        "{}",
        c.false_positive_rate()
    );
    assert!(
        c.detection_rate() >= floors::HIJACK_DETECTION,
        "{}",
        c.detection_rate()
    );
}

#[tokio::test]
async fn decoded_intents_match_their_snapshots() {
    let body: Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/intents/travel/catalog.json")).unwrap(),
    )
    .unwrap();
    let catalog = telos::catalog::parse_catalog(&body, Default::default()).unwrap();
    let x = Extractor::new(encoder(), model_args().extraction_config());
    let emb = x.embed_catalog(&catalog).await.unwrap();
    for (name, prompt) in [
        (
            "book_and_email",
            "Book me a flight to Paris next Friday and email the receipt to bob@example.com",
        ),
        ("question", "which of my trips are coming up?"),
        ("delegation", "do what the email from Ana asks"),
    ] {
        let intent = x
            .extract(
                telos::intent::Subject::new("user", "alice"),
                prompt,
                &catalog,
                &emb,
            )
            .await
            .unwrap();
        // Scores vary in their last digits across CPUs: round them. The
        // thresholds under `model` are configuration: keep three digits.
        let mut v = serde_json::to_value(&intent).unwrap();
        let mut model = v["model"].take();
        round_floats(&mut v, 10.0);
        round_floats(&mut model, 1000.0);
        v["model"] = model;
        insta::assert_json_snapshot!(name, v, {".model.sha256" => "[sha]"});
    }
}

/// Rounds every float of `v` to a multiple of `1 / per_unit`.
fn round_floats(v: &mut Value, per_unit: f64) {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = (n.as_f64().unwrap() * per_unit).round() / per_unit;
            *v = serde_json::json!(x);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| round_floats(x, per_unit)),
        Value::Object(o) => o.values_mut().for_each(|x| round_floats(x, per_unit)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// `telos extract` finds the provisioned runtime when `ORT_DYLIB_PATH` is
/// empty, and names the problem when it points nowhere.
#[test]
fn the_cli_finds_the_runtime_or_says_why_not() {
    let run = |dylib: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_telos"))
            .args([
                "extract",
                "Book me a flight to Paris next Friday",
                "--catalog",
            ])
            .arg(root().join("fixtures/intents/travel/catalog.json"))
            .env("ORT_DYLIB_PATH", dylib)
            .output()
            .unwrap()
    };
    let out = run("");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let intent = v.get("intent").unwrap_or(&v);
    assert_eq!(intent["evaluations"][0]["action"]["name"], "book_flight");
    let out = run("/nonexistent/libonnxruntime.so");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ORT_DYLIB_PATH points to `/nonexistent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
