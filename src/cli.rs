//! Command-line surfaces other than `serve`: `extract` prints one intent;
//! `report`, `drift` and `verify` read a data directory. (Quality tables
//! come from the separate `telos-eval` binary.)

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::catalog::{Limits, parse_catalog};
use crate::config::ExtractArgs;
use crate::extraction::Extractor;
use crate::intent::Subject;
use crate::service::tracker::{DriftQuery, Tracker, TrackerConfig};
use crate::workflow::Verdict;

/// `telos extract`.
pub async fn extract(args: ExtractArgs) -> anyhow::Result<()> {
    let (kind, id) = args
        .subject
        .split_once(':')
        .context("--subject must be `type:id`")?;
    let body: Value = serde_json::from_slice(
        &std::fs::read(&args.catalog)
            .with_context(|| format!("reading `{}`", args.catalog.display()))?,
    )
    .context("the catalog is not JSON")?;
    let catalog = parse_catalog(&body, Limits::default())?;
    let encoder = args.model.load_encoder()?;
    let extractor = Extractor::new(Arc::new(encoder), args.model.extraction_config());
    let embeddings = extractor.embed_catalog(&catalog).await?;
    let intent = extractor
        .extract(Subject::new(kind, id), &args.prompt, &catalog, &embeddings)
        .await?;
    let out = json!({
        "intent": intent,
        "authorization_details": intent.authorization_details(None),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn open_tracker(
    data: &crate::config::DataArgs,
) -> anyhow::Result<(Arc<crate::storage::SledStore>, Tracker)> {
    if !data.data_dir.is_dir() {
        bail!("no data directory at `{}`", data.data_dir.display());
    }
    let store = Arc::new(
        crate::storage::SledStore::open(&data.data_dir).with_context(|| {
            format!(
                "opening `{}` (is a server using it?)",
                data.data_dir.display()
            )
        })?,
    );
    let tracker = Tracker::new(
        store.clone(),
        crate::workflow::TokenVerifier::unverified(),
        TrackerConfig::default(),
    );
    Ok((store, tracker))
}

/// `telos report`.
pub fn report(args: crate::config::ReportArgs) -> anyhow::Result<()> {
    let id: uuid::Uuid = args
        .id
        .parse()
        .with_context(|| format!("`{}` is not a workflow id", args.id))?;
    let (_, tracker) = open_tracker(&args.data)?;
    let report = tracker.report(&args.tenant, &id)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// `telos drift`.
pub fn drift(args: crate::config::DriftArgs) -> anyhow::Result<()> {
    let since_nanos = match &args.since {
        Some(s) => Some(crate::workflow::parse_time("since", s).map(crate::workflow::epoch_nanos)?),
        None => None,
    };
    let (_, tracker) = open_tracker(&args.data)?;
    let page = tracker.drift(
        &args.tenant,
        &DriftQuery {
            since_nanos,
            subject: args.subject.clone(),
            actor: args.actor.clone(),
            limit: args.limit,
            cursor: None,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    if page.items.is_empty() {
        println!("no divergent steps");
    }
    for item in &page.items {
        let codes: Vec<&str> = item
            .step
            .reasons
            .iter()
            .filter(|r| r.code.verdict() == Verdict::Divergent)
            .map(|r| r.code.as_str())
            .collect();
        println!(
            "{}  {}  #{:<3} {:<20} {:<24} {}",
            item.step.received_at,
            item.workflow_id,
            item.step.seq,
            item.step.observed.actor.id,
            item.step.observed.name,
            codes.join(",")
        );
        for r in item
            .step
            .reasons
            .iter()
            .filter(|r| r.code.verdict() == Verdict::Divergent)
        {
            println!("      {}", r.message);
        }
    }
    Ok(())
}

/// `telos verify`: checks every workflow's ledger (genesis, chain, head),
/// names every broken workflow with the reason and goes on; exits non-zero
/// when any is broken.
pub fn verify(args: crate::config::DataArgs) -> anyhow::Result<()> {
    let (store, _) = open_tracker(&args)?;
    let report = crate::service::ledger::verify_store(&*store)?;
    for b in &report.broken {
        if b.at == 0 {
            println!("BROKEN  {}: {}", b.key, b.reason);
        } else {
            println!("BROKEN  {} at step {}: {}", b.key, b.at, b.reason);
        }
    }
    if report.legacy > 0 {
        println!(
            "{} workflow(s) in ledger format 1: their genesis commits to the id, subject and intent only",
            report.legacy
        );
    }
    println!(
        "{} workflows, {} steps, {} broken",
        report.workflows,
        report.steps,
        report.broken.len()
    );
    if !report.broken.is_empty() {
        bail!("{} broken workflow(s)", report.broken.len());
    }
    Ok(())
}
