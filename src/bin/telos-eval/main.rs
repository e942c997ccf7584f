//! `telos-eval`: extraction and drift quality on labelled fixtures. It
//! scores the trained matcher (and, on request, the untrained-encoder and
//! keyword-overlap baselines) on the fixture splits, the held-out BFCL
//! cases and the workflow scenarios, and prints tables or a JSON report.
//! It lives outside the `telos` service binary and library: the fixture,
//! BFCL and threshold-grid code ships only here.

mod eval;

use anyhow::bail;
use clap::{Args, Parser};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

use eval::{CachedEncoder, Domain, MixedEncoder, Objective, Scores};
use telos::config::{LogFormat, ModelArgs};
use telos::extraction::keyword::KeywordEncoder;
use telos::extraction::runtime::Calibration;
use telos::extraction::{Encoder, ExtractionConfig, Extractor, MatchThresholds};

/// Measure extraction quality on labelled fixtures.
#[derive(Debug, Parser)]
#[command(name = "telos-eval", version)]
struct Cli {
    /// Log format.
    #[arg(long, env = "TELOS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// What to score.
    #[command(flatten)]
    args: EvalArgs,
}

/// `telos-eval`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Fixture directory (`fixtures/intents`): one folder per domain with a
    /// `catalog.json` and one JSON file per case, and `splits.json`.
    pub dir: PathBuf,
    /// Held-out BFCL cases (JSON lines) to score as well.
    #[arg(long)]
    pub bfcl: Option<PathBuf>,
    /// Also score the untrained-encoder and keyword-overlap baselines; the
    /// untrained encoder is read from this model directory.
    #[arg(long)]
    pub baseline_model_dir: Option<PathBuf>,
    /// Sweep the thresholds on the training split and print the best.
    #[arg(long)]
    pub tune: bool,
    /// Scenario directory (`fixtures/workflows`, `fixtures/provenance`):
    /// score the drift rules on benign and hijacked traces, per split.
    /// Repeatable; each directory is scored on its own (the related-read
    /// threshold is tuned on the first one's training split).
    #[arg(long)]
    pub workflows: Vec<PathBuf>,
    /// Relevance an unrequested read needs to be tolerated (as `serve`).
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub related_read_threshold: f32,
    /// Also score the trained matcher with each case's catalog cut down to
    /// the servers its labels use (`server__tool` names), to compare large
    /// combined catalogs with single-server ones.
    #[arg(long)]
    pub single_server: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// List the cases and steps each matcher got wrong.
    #[arg(long)]
    pub verbose: bool,
    /// Model settings.
    #[command(flatten)]
    pub model: ModelArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telos::telemetry::init_logging(cli.log_format);
    match eval(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("telos-eval: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn row(name: &str, s: &Scores) -> String {
    format!(
        "  {name:<22} {:>6.3} {:>6.3} {:>6.3} {:>8.3} {:>8.3} {:>6.3} {:>6.3} {:>6.3}",
        s.tool_precision,
        s.tool_recall,
        s.tool_f1,
        s.entity_f1_strict,
        s.entity_f1_overlap,
        s.speech_act_accuracy,
        s.delegation_recall,
        s.question_over_permission
    )
}

/// The second line of a split: the proportions with their 95% intervals.
fn intervals(s: &Scores) -> String {
    let ci = |(p, lo, hi): (f64, f64, f64)| format!("{p:.3} [{lo:.3}-{hi:.3}]");
    format!(
        "    side-effect R {}  over-permission {}  read R {}  entity F1 w/o ACTION {:.3}  open-ended: delegations {} others {}  (n={})",
        ci(s.side_effect_recall_ci),
        ci(s.over_permission_ci),
        ci(s.read_recall_ci),
        s.entity_f1_strict_objects,
        ci(s.open_ended_delegations_ci),
        ci(s.open_ended_others_ci),
        s.counts.cases
    )
}

const HEADER: &str =
    "  matcher                 tool-P tool-R tool-F1 ent-F1  ent-F1o  act    deleg  q-perm";

/// A matcher `telos-eval` scores: name, encoder, thresholds, and the
/// objective to tune them with on the training split (none: keep them).
type Matcher = (String, Arc<dyn Encoder>, MatchThresholds, Option<Objective>);

/// Scores every matcher and prints the tables (or the JSON report).
async fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let (splits, domains) = eval::load_fixtures(&args.dir)?;
    if domains.is_empty() {
        bail!("no domains in `{}`", args.dir.display());
    }
    let pick = |names: &[String]| -> Vec<&Domain> {
        domains.iter().filter(|d| names.contains(&d.name)).collect()
    };
    let train = pick(&splits.train);
    let dev = pick(&splits.dev);
    let test = pick(&splits.test);
    let model: Arc<dyn Encoder> =
        Arc::new(CachedEncoder::new(Arc::new(args.model.load_encoder()?)));
    let mut matchers: Vec<Matcher> = vec![(
        "trained".into(),
        Arc::clone(&model),
        args.model.thresholds(),
        args.tune.then_some(Objective::DEFAULT),
    )];
    if let Some(dir) = &args.baseline_model_dir {
        let base = ModelArgs {
            model_dir: Some(dir.clone()),
            ..args.model.clone()
        };
        let base: Arc<dyn Encoder> = Arc::new(base.load_encoder()?);
        let mixed: Arc<dyn Encoder> = Arc::new(CachedEncoder::new(Arc::new(MixedEncoder::new(
            Arc::clone(&model),
            base,
        ))));
        let kw: Arc<dyn Encoder> = Arc::new(CachedEncoder::new(Arc::new(MixedEncoder::new(
            Arc::clone(&model),
            Arc::new(KeywordEncoder::new(Calibration {
                scale: 10.0,
                bias: -5.0,
            })),
        ))));
        // Each baseline at its best-F1 point, and at the point the trained
        // model's defaults were chosen by (the best recall at P >= 0.90).
        for (name, enc) in [("untrained-cosine", mixed), ("keyword-overlap", kw)] {
            for (suffix, objective) in [("", Objective::F1), ("@P0.90", Objective::DEFAULT)] {
                matchers.push((
                    format!("{name}{suffix}"),
                    Arc::clone(&enc),
                    MatchThresholds::default(),
                    Some(objective),
                ));
            }
        }
    }
    let mut report = serde_json::Map::new();
    let mut lines = vec![HEADER.to_string()];
    for (name, enc, t, objective) in &mut matchers {
        let embeddings = eval::embed_domains(Arc::clone(enc), &domains).await?;
        // Baselines get their thresholds tuned on the training split, as the
        // trained model's defaults were; `--tune` re-tunes the trained one.
        if let Some(objective) = *objective {
            // The baselines stay plain: only the trained model's matcher
            // weighs the verb of the request against the tool names.
            let verb_boosts: &[f32] = if name == "trained" {
                &eval::VERB_BOOSTS
            } else {
                &[0.0]
            };
            let (best, s) =
                eval::tune(Arc::clone(enc), &train, &embeddings, objective, verb_boosts).await?;
            lines.push(format!(
                "  {name}: tuned on train ({objective:?}) grant={:.3} read={:.2} read-margin={:.2} second-margin={:.2} verb-boost={:.2} (train tool P {:.3} R {:.3} F1 {:.3})",
                best.grant, best.read, best.read_margin, best.second_margin, best.verb_boost, s.tool_precision, s.tool_recall, s.tool_f1
            ));
            *t = best;
        }
        let mut per_split = serde_json::Map::new();
        let scored = [("train", &train), ("dev", &dev), ("test", &test)];
        for (split, ds) in scored.into_iter().filter(|(_, ds)| !ds.is_empty()) {
            let (counts, intents) = eval::score(Arc::clone(enc), *t, ds, &embeddings).await?;
            if args.verbose {
                let cases: std::collections::HashMap<&str, &eval::Case> = ds
                    .iter()
                    .flat_map(|d| d.cases.iter())
                    .map(|c| (c.id.as_str(), c))
                    .collect();
                for (id, intent) in &intents {
                    if let Some(case) = cases.get(id.as_str()) {
                        lines.extend(
                            eval::explain(case, intent)
                                .into_iter()
                                .map(|l| format!("      {name} {l}")),
                        );
                    }
                }
            }
            let s = counts.scores();
            lines.push(row(&format!("{name} [{split}]"), &s));
            lines.push(intervals(&s));
            if args.single_server && name == "trained" {
                let single = eval::score_single_server(Arc::clone(enc), *t, ds).await?;
                let (r, lo, hi) = single.scores().side_effect_recall_ci;
                lines.push(format!(
                    "    same cases, each against only the servers its labels use: side-effect recall {r:.3} [{lo:.3}-{hi:.3}] (deployment catalogs: {:.3})",
                    s.side_effect_recall_ci.0
                ));
                per_split.insert(
                    format!("{split}_single_server"),
                    serde_json::to_value(single.scores())?,
                );
            }
            per_split.insert(split.into(), serde_json::to_value(&s)?);
        }
        if let Some(path) = &args.bfcl {
            let cases = eval::load_bfcl(path)?;
            let b = eval::score_bfcl(Arc::clone(enc), t.grant, &cases).await?;
            lines.push(format!(
                "  {name} [bfcl-heldout] relevant, 2+ candidates: top1 {:.3}, right+above-threshold {:.3} (n={}); single candidate: granted {:.3} (n={}); irrelevant: abstained {:.3} (n={})",
                b.relevant_top1 as f64 / b.relevant.max(1) as f64,
                b.relevant_correct as f64 / b.relevant.max(1) as f64,
                b.relevant,
                b.single_candidate_granted as f64 / b.single_candidate.max(1) as f64,
                b.single_candidate,
                b.irrelevant_abstained as f64 / b.irrelevant.max(1) as f64,
                b.irrelevant
            ));
            per_split.insert("bfcl_heldout".into(), serde_json::to_value(&b)?);
        }
        if name == "trained" && !args.workflows.is_empty() {
            let catalogs: std::collections::HashMap<_, _> = domains
                .iter()
                .filter_map(|d| {
                    embeddings
                        .get(&d.name)
                        .map(|e| (d.name.clone(), (d.catalog.clone(), e.clone())))
                })
                .collect();
            let extractor = Extractor::new(
                Arc::clone(enc),
                ExtractionConfig {
                    thresholds: *t,
                    ..ExtractionConfig::default()
                },
            );
            let mut related = args.related_read_threshold;
            for (n, dir) in args.workflows.iter().enumerate() {
                let scenarios = eval::workflows::load_scenarios(dir)?;
                let label = dir.file_name().map_or_else(
                    || dir.display().to_string(),
                    |f| f.to_string_lossy().into_owned(),
                );
                let split = |names: &[String]| -> Vec<(String, eval::workflows::Scenario)> {
                    scenarios
                        .iter()
                        .filter(|(_, s)| names.contains(&s.domain))
                        .cloned()
                        .collect()
                };
                if args.tune && n == 0 {
                    let mut best = (f64::NEG_INFINITY, related);
                    for r in [-0.1f32, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4] {
                        let config = telos::drift::DriftConfig {
                            related_read_threshold: r,
                            ..Default::default()
                        };
                        let c = eval::workflows::score_scenarios(
                            &extractor,
                            &split(&splits.train),
                            &catalogs,
                            &config,
                        )
                        .await?;
                        let j = c.detection_rate() - c.false_positive_rate();
                        if j > best.0 + 1e-9 {
                            best = (j, r);
                        }
                    }
                    related = best.1;
                    lines.push(format!(
                        "  {name}: related-read threshold tuned on train = {related:.2}"
                    ));
                }
                let config = telos::drift::DriftConfig {
                    related_read_threshold: related,
                    ..Default::default()
                };
                for (split_name, names) in [
                    ("train", &splits.train),
                    ("dev", &splits.dev),
                    ("test", &splits.test),
                ] {
                    let chosen = split(names);
                    if chosen.is_empty() {
                        continue;
                    }
                    let c =
                        eval::workflows::score_scenarios(&extractor, &chosen, &catalogs, &config)
                            .await?;
                    lines.push(format!(
                        "  {name} [{label} {split_name}] benign false-positive rate {:.3} ({}/{} steps), hijack detection {:.3} ({}/{}), exact verdicts {}/{}",
                        c.false_positive_rate(), c.benign_flagged, c.benign_steps,
                        c.detection_rate(), c.hijack_flagged, c.hijack_steps, c.exact, c.steps
                    ));
                    if args.verbose {
                        for m in &c.misses {
                            lines.push(format!("      miss {m}"));
                        }
                    }
                    let key = if n == 0 {
                        format!("workflows_{split_name}")
                    } else {
                        format!("{label}_{split_name}")
                    };
                    per_split.insert(key, serde_json::to_value(&c)?);
                }
            }
        }
        per_split.insert(
            "thresholds".into(),
            json!({"grant": t.grant, "read": t.read, "second_margin": t.second_margin, "read_margin": t.read_margin, "verb_boost": t.verb_boost}),
        );
        report.insert(name.clone(), Value::Object(per_split));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(report))?);
    } else {
        println!(
            "fixtures: {} (train: {:?}, dev: {:?}, test: {:?})",
            args.dir.display(),
            splits.train,
            splits.dev,
            splits.test
        );
        println!("{}", lines.join("\n"));
        println!(
            "  columns: side-effecting tool precision/recall/F1; entity F1 exact and overlap>=0.5; speech-act accuracy; delegations found; questions granted a side effect"
        );
        println!(
            "  second lines: proportions with 95% Wilson intervals; over-permission = unused side-effecting tools granted / unused side-effecting tools; reads found in any role; entity F1 exact without ACTION spans"
        );
    }
    Ok(())
}
