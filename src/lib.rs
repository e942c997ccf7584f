//! telos: intent extraction and workflow drift detection for AI-agent
//! authorization.
#![doc = include_str!("../README.md")]

pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod drift;
pub mod extraction;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod intent;
pub mod mcp_gateway;
pub mod mcp_proxy;
pub mod pdp;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod workflow;

use anyhow::Context;
use std::sync::Arc;
use tracing::{error, info};

use config::{Cli, Command, ModelArgs, ServeArgs};

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Extract(args) => cli::extract(args).await,
        Command::Report(args) => cli::report(args),
        Command::Drift(args) => cli::drift(args),
        Command::Verify(args) => cli::verify(args),
        Command::Keygen(args) => cli::keygen(&args),
        Command::Migrate(args) => cli::migrate(&args),
        Command::McpProxy(args) if args.listen.is_some() || !args.upstream.is_empty() => {
            mcp_gateway::run(*args).await
        }
        Command::McpProxy(args) => mcp_proxy::run(*args).await,
    }
}

/// `telos serve`: opens the store, starts listening at once (health is
/// served while the model loads; readiness waits for it), loads and warms
/// the model, and serves until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let authenticator = args.auth.authenticator()?;
    if !authenticator.enabled() && !args.addr.ip().is_loopback() && !args.auth.insecure_no_auth {
        anyhow::bail!(
            "refusing to serve {} without authentication: configure --auth-keys or --auth-jwks, \
             listen on a loopback address, or pass --insecure-no-auth",
            args.addr
        );
    }
    if !authenticator.enabled() {
        tracing::warn!(
            "no caller authentication configured: every caller is tenant `default` with every role"
        );
    }
    let checkpoint_key = match &args.checkpoint_key {
        Some(path) => Some(service::checkpoint::read_signing_key(path)?),
        None => None,
    };
    let store: Arc<dyn storage::Store> = match &args.database_url {
        Some(url) => {
            let (url, connections) = (url.clone(), args.database_connections);
            let store =
                tokio::task::spawn_blocking(move || storage::PgStore::connect(&url, connections))
                    .await?
                    .context("opening the PostgreSQL store (--database-url)")?;
            info!(connections, "ledger in PostgreSQL");
            Arc::new(store)
        }
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating `{}`", args.data_dir.display()))?;
            Arc::new(
                storage::SledStore::open(&args.data_dir).with_context(|| {
                    format!("opening the store in `{}`", args.data_dir.display())
                })?,
            )
        }
    };
    if let Some(key) = checkpoint_key {
        spawn_checkpoints(
            Arc::clone(&store),
            key,
            std::time::Duration::from_secs(args.checkpoint_interval_secs.max(1)),
        );
    }
    let service = Arc::new(service::Service::new(store, args.service_config()?));
    let decision_point = pdp::Pdp::new(
        match &args.policies {
            Some(dir) => Some(
                pdp::BasePolicy::load(dir)
                    .with_context(|| format!("loading policies from `{}`", dir.display()))?,
            ),
            None => None,
        },
        args.record_evaluations,
    )
    .allow_without_workflow(args.allow_without_workflow)
    .with_limits(pdp::Limits {
        request: pdp::request::Limits {
            max_batch_items: args.max_batch_items,
            max_context_bytes: args.max_context_bytes,
        },
        max_search_results: args.max_search_results,
    });
    let state = api::AppState {
        service: Arc::clone(&service),
        limits: args.limits.into(),
        prometheus: telemetry::prometheus(),
        pdp: Arc::new(decision_point),
        public_url: args.public_url.clone(),
        auth: authenticator,
        limiter: std::num::NonZeroU32::new(args.auth.rate_limit).map(|rate| {
            let burst = std::num::NonZeroU32::new(args.auth.rate_burst).unwrap_or(rate);
            Arc::new(api::RateLimiter::new(rate, burst))
        }),
        metrics_public: args.auth.metrics_public,
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding `{}`", args.addr))?;
    info!(addr = %listener.local_addr()?, data_dir = %args.data_dir.display(), "listening");

    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let model_args = ModelArgs {
        max_prompt_chars: args.limits.max_prompt_chars,
        ..args.model.clone()
    };
    tokio::spawn(async move {
        let loaded = tokio::task::spawn_blocking(move || {
            model_args
                .load_encoder()
                .map(|e| (e, model_args.extraction_config()))
        })
        .await;
        match loaded {
            Ok(Ok((encoder, config))) => {
                service.set_extractor(extraction::Extractor::new(Arc::new(encoder), config));
                info!("ready");
            }
            Ok(Err(e)) => {
                let _ = failed_tx.send(e);
            }
            Err(e) => {
                let _ = failed_tx.send(anyhow::anyhow!(e));
            }
        }
    });

    let server = api::serve::serve(
        listener,
        api::router_with(state, (&args.ui).into()),
        api::serve::ServeOptions {
            header_read_timeout: std::time::Duration::from_secs(
                args.limits.header_read_timeout_secs,
            ),
            max_connections: args.limits.max_connections,
            shutdown_grace: std::time::Duration::from_secs(10),
            ..args.connections.serve_options()
        },
        shutdown_signal(),
    );
    tokio::select! {
        res = server => res.context("serving")?,
        Ok(err) = failed_rx => {
            error!(error = %format!("{err:#}"), "model failed to load");
            return Err(err);
        }
    }
    info!("stopped");
    Ok(())
}

/// Signs a checkpoint of every head at each `every` (written and synced
/// only when a head moved since the last one).
fn spawn_checkpoints(
    store: Arc<dyn storage::Store>,
    key: ed25519_dalek::SigningKey,
    every: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let (store, key) = (Arc::clone(&store), key.clone());
            let made = tokio::task::spawn_blocking(move || {
                let cp = service::checkpoint::checkpoint(&*store, &key)?;
                if cp.is_some() {
                    store.flush()?;
                }
                Ok::<_, service::checkpoint::CheckpointError>(cp)
            })
            .await;
            match made {
                Ok(Ok(Some(cp))) => {
                    info!(workflows = cp.heads.len(), digest = %cp.digest, "checkpoint signed");
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => error!(error = %e, "checkpoint failed"),
                Err(e) => error!(error = %e, "checkpoint task failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
