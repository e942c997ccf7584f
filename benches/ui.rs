//! The analyst inbox page (`GET /ui/inbox`) over a generated store: server
//! time through the router (no network), unfiltered and with filters the
//! tracker applies (`subject`) and the page applies (`tool`, `reason`).
//!
//! `cargo bench --bench ui` generates 10,000 workflows of 10 steps each
//! (100,000 steps, one step in ten divergent); `TELOS_BENCH_UI_WORKFLOWS`
//! sets another number of workflows (100000 for the 1M steps).
//! In test mode (`cargo test --all-targets`) it generates 200.
#![expect(
    clippy::expect_used,
    reason = "a benchmark without its fixture cannot run"
)]
#![expect(
    missing_docs,
    reason = "criterion macros generate undocumented functions"
)]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::email_workflow;
use telos::intent::Subject;
use telos::service::{Service, ServiceConfig};
use telos::storage::{SledStore, Store};
use telos::workflow::{StepReport, Verdict};
use tower::ServiceExt;

const STEPS_PER_WORKFLOW: u64 = 10;

fn report(tool: &str) -> StepReport {
    StepReport {
        actor: Some(Subject::new("agent", "mailer")),
        tool: Some(tool.into()),
        arguments: json!({"to": "bob@example.com", "body": "hello"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..StepReport::default()
    }
}

/// A store of `workflows` workflows of [`STEPS_PER_WORKFLOW`] steps, the
/// last step of each divergent; the tool of a divergent step is one of
/// ten, its subject one of a thousand.
fn generate(rt: &tokio::runtime::Runtime, dir: &std::path::Path, workflows: u64) -> Arc<Service> {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).expect("store"));
    let service = {
        let _in_runtime = rt.enter();
        Arc::new(Service::new(Arc::clone(&store), ServiceConfig::default()))
    };
    let (template, allowed, divergent) = rt.block_on(async {
        let tracker = service.tracker();
        let wf = tracker
            .create(email_workflow("default"))
            .await
            .expect("workflow");
        let ok = tracker.observe(report("send_email")).expect("observe");
        let allowed = tracker.record("default", &wf.id, ok).await.expect("step");
        let bad = tracker.observe(report("wipe_0")).expect("observe");
        let divergent = tracker.record("default", &wf.id, bad).await.expect("step");
        (wf, allowed, divergent)
    });
    assert_eq!(divergent.verdict, Verdict::Divergent);
    let started = Instant::now();
    let base = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    for w in 0..workflows {
        let mut wf = template.clone();
        wf.id = uuid::Uuid::now_v7();
        wf.subject.id = format!("user-{}", w % 1000);
        store.put_workflow(&wf).expect("put workflow");
        for seq in 1..=STEPS_PER_WORKFLOW {
            let at = base + time::Duration::milliseconds((w * STEPS_PER_WORKFLOW + seq) as i64);
            let last = seq == STEPS_PER_WORKFLOW;
            let mut step = if last {
                divergent.clone()
            } else {
                allowed.clone()
            };
            step.seq = seq;
            step.received_at = at
                .format(&time::format_description::well_known::Rfc3339)
                .expect("time");
            if last {
                step.observed.name = format!("wipe_{}", w % 10);
            }
            let nanos = u64::try_from(at.unix_timestamp_nanos()).expect("after 1970");
            store
                .append_step("default", &wf.id, &step, last.then_some(nanos))
                .expect("append");
        }
    }
    store.flush().expect("flush");
    eprintln!(
        "ui bench: {workflows} workflows, {} steps generated in {:.1} s",
        workflows * STEPS_PER_WORKFLOW,
        started.elapsed().as_secs_f64()
    );
    service
}

fn bench(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let workflows = if full {
        std::env::var("TELOS_BENCH_UI_WORKFLOWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    } else {
        200
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let service = generate(&rt, dir.path(), workflows);
    let app = telos::api::router(telos::api::AppState {
        service,
        limits: telos::api::Limits {
            max_body_bytes: 1 << 20,
            max_prompt_chars: 16_000,
            max_arguments_bytes: 1 << 16,
            max_json_depth: 64,
            max_concurrent_requests: 64,
            request_timeout_secs: 30,
        },
        prometheus: None,
        pdp: Arc::new(telos::pdp::Pdp::new(None, false)),
        public_url: None,
        auth: telos::auth::Authenticator::open(),
        limiter: None,
        metrics_public: true,
    });
    let get = |uri: &'static str| {
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
                .await
                .expect("response");
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            assert!(body.len() > 1000, "{uri}: a page of rows");
        }
    };
    let mut group = c.benchmark_group("ui");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    for (name, uri) in [
        ("inbox", "/ui/inbox"),
        ("inbox_subject", "/ui/inbox?subject=user-7"),
        ("inbox_tool", "/ui/inbox?tool=wipe_3"),
        ("inbox_reason", "/ui/inbox?reason=unknown_tool&limit=100"),
    ] {
        group.bench_function(name, |b| b.iter(|| rt.block_on(get(uri))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
