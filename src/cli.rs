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
) -> anyhow::Result<(Arc<dyn crate::storage::Store>, Tracker)> {
    let store: Arc<dyn crate::storage::Store> = match &data.database_url {
        Some(url) => Arc::new(
            crate::storage::PgStore::connect(url, 2)
                .context("opening the PostgreSQL store (--database-url)")?,
        ),
        None => {
            if !data.data_dir.is_dir() {
                bail!("no data directory at `{}`", data.data_dir.display());
            }
            Arc::new(
                crate::storage::SledStore::open(&data.data_dir).with_context(|| {
                    format!(
                        "opening `{}` (is a server using it?)",
                        data.data_dir.display()
                    )
                })?,
            )
        }
    };
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
    let report = tracker.report(&args.tenant, &id, 1, usize::MAX)?;
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
pub fn verify(args: crate::config::VerifyArgs) -> anyhow::Result<()> {
    let public = match &args.checkpoints {
        Some(path) => Some(crate::service::checkpoint::read_public_key(path)?),
        None => None,
    };
    let (store, _) = open_tracker(&args.data)?;
    let mut report = crate::service::ledger::verify_store(&*store)?;
    if let Some(public) = public {
        let (cp, moved) = crate::service::checkpoint::verify_checkpoint(&*store, &public)?;
        println!(
            "checkpoint of {} ({} workflows, digest {}): signature valid",
            cp.at,
            cp.heads.len(),
            cp.digest
        );
        for m in moved {
            report.broken.push(crate::service::ledger::BrokenWorkflow {
                key: m.key,
                at: 0,
                reason: format!("against the checkpoint: {}", m.reason),
            });
        }
    }
    for b in &report.broken {
        if b.at == 0 {
            println!("BROKEN  {}: {}", b.key, b.reason);
        } else {
            println!("BROKEN  {} at step {}: {}", b.key, b.at, b.reason);
        }
    }
    for (key, seq) in &report.interrupted {
        println!(
            "INTERRUPTED  {key} at step {seq}: written without its head by an append a crash cut short (never acknowledged; completed when the workflow is next loaded)"
        );
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

/// `telos migrate`: copies a sled ledger into PostgreSQL. The source must
/// verify first; each workflow is copied from the target's head on (a
/// workflow already there is resumed, or skipped when complete, never
/// rewritten); then the target is verified and every head compared with
/// the source's.
pub fn migrate(args: &crate::config::MigrateArgs) -> anyhow::Result<()> {
    use crate::storage::{PgStore, SledStore, Store};
    if !args.from.is_dir() {
        bail!("no data directory at `{}`", args.from.display());
    }
    let from = SledStore::open(&args.from)
        .with_context(|| format!("opening `{}` (is a server using it?)", args.from.display()))?;
    let source = crate::service::ledger::verify_store(&from)?;
    if !source.broken.is_empty() {
        for b in &source.broken {
            println!("BROKEN  {} at step {}: {}", b.key, b.at, b.reason);
        }
        bail!(
            "{} broken workflow(s) in `{}`: not copied (see `telos verify`)",
            source.broken.len(),
            args.from.display()
        );
    }
    let to = PgStore::connect(&args.to, 2).context("opening the PostgreSQL store (--to)")?;
    let mut catalogs = 0usize;
    for (key, _) in from.raw_entries("catalogs")? {
        let text = String::from_utf8_lossy(&key);
        let Some((tenant, name)) = text.split_once('\0') else {
            continue;
        };
        if let Some(record) = from.get_catalog(tenant, name)? {
            to.put_catalog(tenant, name, &record)?;
            catalogs += 1;
        }
    }
    const BATCH: usize = 1024;
    let (mut workflows, mut copied) = (0usize, 0u64);
    for wf in from.all_workflows()? {
        let target = to.head(&wf.tenant, &wf.id)?;
        if target.is_some()
            && to.get_workflow(&wf.tenant, &wf.id)?.map(|w| w.genesis) != Some(wf.genesis.clone())
        {
            bail!(
                "{}/{} in the database is another workflow (its genesis differs)",
                wf.tenant,
                wf.id
            );
        }
        // Up to the source's head: a step an interrupted append left past
        // it was never acknowledged.
        let upto = from.head(&wf.tenant, &wf.id)?.map_or(0, |h| h.seq);
        to.put_workflow(&wf)?;
        let mut next = target.map_or(1, |h| h.seq + 1);
        loop {
            let batch = from.steps(&wf.id, next, BATCH)?;
            let done = batch.len() < BATCH || batch.last().is_none_or(|s| s.seq >= upto);
            for s in batch.iter().take_while(|s| s.seq <= upto) {
                let divergent = (s.verdict == Verdict::Divergent).then(|| {
                    crate::workflow::parse_time("received_at", &s.received_at)
                        .map(crate::workflow::epoch_nanos)
                        .unwrap_or(0)
                });
                to.append_step(&wf.tenant, &wf.id, s, divergent)?;
                next = s.seq + 1;
                copied += 1;
            }
            if done {
                break;
            }
        }
        workflows += 1;
    }
    if let Some(cp) = from.checkpoint()? {
        to.put_checkpoint(&cp)?;
    }
    let target = crate::service::ledger::verify_store(&to)?;
    for b in &target.broken {
        println!("BROKEN  {} at step {}: {}", b.key, b.at, b.reason);
    }
    let mut differ = 0usize;
    let heads: std::collections::HashMap<_, _> = to
        .heads()?
        .into_iter()
        .map(|(t, id, h)| ((t, id), h))
        .collect();
    for (t, id, h) in from.heads()? {
        if heads.get(&(t.clone(), id)) != Some(&h) {
            println!("DIFFERS  {t}/{id}: the head in the database is not the data directory's");
            differ += 1;
        }
    }
    println!(
        "{catalogs} catalogs, {workflows} workflows, {copied} steps copied; {} workflows, {} steps in the database, {} broken, {differ} heads differ",
        target.workflows,
        target.steps,
        target.broken.len()
    );
    if !target.broken.is_empty() || differ > 0 {
        bail!("the copy does not verify");
    }
    Ok(())
}

/// `telos keygen`: a new Ed25519 checkpoint key, the secret seed in `out`
/// (mode 0600, never overwritten) and the public key in `out.pub`.
pub fn keygen(args: &crate::config::KeygenArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let key = crate::service::checkpoint::generate_key()?;
    let public_path = {
        let mut p = args.out.clone().into_os_string();
        p.push(".pub");
        std::path::PathBuf::from(p)
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut secret = options
        .open(&args.out)
        .with_context(|| format!("creating `{}`", args.out.display()))?;
    writeln!(secret, "{}", hex::encode(key.to_bytes()))?;
    secret.sync_all()?;
    std::fs::write(
        &public_path,
        format!("{}\n", hex::encode(key.verifying_key().as_bytes())),
    )
    .with_context(|| format!("writing `{}`", public_path.display()))?;
    println!(
        "secret key: {} (give to `telos serve --checkpoint-key`)\npublic key: {} (give to `telos verify --checkpoints`)",
        args.out.display(),
        public_path.display()
    );
    Ok(())
}
