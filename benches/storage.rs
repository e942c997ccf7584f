//! Durable step ingestion through the tracker (judge, hash-chain, append,
//! group-committed flush), parameterised by the number of concurrent
//! writers, next to raw sled insert-plus-flush on the same disk.
#![expect(
    clippy::expect_used,
    reason = "a benchmark without its fixture cannot run"
)]
#![expect(
    missing_docs,
    reason = "criterion macros generate undocumented functions"
)]

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::email_workflow;
use telos::intent::Subject;
use telos::service::tracker::{Tracker, TrackerConfig};
use telos::storage::SledStore;
use telos::workflow::{StepReport, TokenVerifier};

fn step() -> StepReport {
    StepReport {
        actor: Some(Subject::new("agent", "mailer")),
        tool: Some("send_email".into()),
        arguments: json!({"to": "bob@example.com", "body": "hello"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..StepReport::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("storage");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for writers in [1usize, 8, 32] {
        let per_writer = 50usize;
        group.throughput(Throughput::Elements((writers * per_writer) as u64));
        group.bench_with_input(
            BenchmarkId::new("durable_steps", writers),
            &writers,
            |b, &writers| {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Arc::new(SledStore::open(dir.path()).expect("store"));
                let tracker = rt.block_on(async {
                    Arc::new(Tracker::new(
                        store,
                        TokenVerifier::unverified(),
                        TrackerConfig::default(),
                    ))
                });
                let ids: Vec<_> = rt.block_on(async {
                    let mut ids = Vec::new();
                    for _ in 0..writers {
                        ids.push(
                            tracker
                                .create(email_workflow("bench"))
                                .await
                                .expect("workflow")
                                .id,
                        );
                    }
                    ids
                });
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        rt.block_on(async {
                            let tasks: Vec<_> = ids
                                .iter()
                                .map(|id| {
                                    let (tracker, id) = (Arc::clone(&tracker), *id);
                                    tokio::spawn(async move {
                                        for _ in 0..per_writer {
                                            let observed =
                                                tracker.observe(step()).expect("observe");
                                            tracker
                                                .record("bench", &id, observed)
                                                .await
                                                .expect("record");
                                        }
                                    })
                                })
                                .collect();
                            for t in tasks {
                                t.await.expect("task");
                            }
                        });
                        total += start.elapsed();
                    }
                    total
                });
            },
        );
    }
    group.throughput(Throughput::Elements(50));
    group.bench_function("raw_sled_insert_flush", |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("store");
        let value = vec![7u8; 600];
        let mut n = 0u64;
        b.iter(|| {
            for _ in 0..50 {
                n += 1;
                store.raw_insert(&n.to_be_bytes(), &value).expect("insert");
                telos::storage::Store::flush(&store).expect("flush");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
