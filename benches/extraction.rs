//! Model throughput and extraction latency with the committed model:
//! encoder forward passes at batch 1, 8 and 32 (20-token sentences), and a
//! whole extraction (segment, encode, split, match, quads) of one request.
#![expect(
    clippy::expect_used,
    reason = "a benchmark without its fixture cannot run"
)]
#![expect(
    missing_docs,
    reason = "criterion macros generate undocumented functions"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use telos::catalog::{Limits, parse_catalog};
use telos::config::ModelArgs;
use telos::extraction::{Encoder, ExtractionConfig, Extractor};
use telos::intent::Subject;

const SENTENCE: &str =
    "Book me a flight to Paris next Friday and email the receipt to bob@example.com";

fn model_args() -> ModelArgs {
    ModelArgs {
        model_dir: None,
        intra_threads: 2,
        max_batch: 32,
        max_batch_tokens: 8192,
        max_queued: 4096,
        grant_threshold: 0.5,
        read_threshold: 0.5,
        second_margin: 0.0,
        verb_boost: 0.0,
        read_margin: 0.0,
        open_ended: telos::config::OpenEndedArg::RequireApproval,
        max_prompt_chars: telos::config::DEFAULT_MAX_PROMPT_CHARS,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let encoder: Arc<dyn Encoder> = Arc::new(
        rt.block_on(async { model_args().load_encoder() })
            .expect("model"),
    );
    let mut group = c.benchmark_group("extraction");
    group.sample_size(20);
    for batch in [1usize, 8, 32] {
        let texts: Vec<String> = (0..batch).map(|i| format!("{SENTENCE} {i}")).collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("encode", batch), &texts, |b, texts| {
            b.iter(|| rt.block_on(encoder.encode(texts)).expect("encode"));
        });
    }
    let catalog_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/intents/travel/catalog.json"
    );
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(catalog_path).expect("catalog")).expect("json");
    let catalog = parse_catalog(&body, Limits::default()).expect("catalog");
    let extractor = Extractor::new(Arc::clone(&encoder), ExtractionConfig::default());
    let embeddings = rt
        .block_on(extractor.embed_catalog(&catalog))
        .expect("embed");
    group.throughput(Throughput::Elements(1));
    group.bench_function("extract_request", |b| {
        b.iter(|| {
            rt.block_on(extractor.extract(
                Subject::new("user", "alice"),
                SENTENCE,
                &catalog,
                &embeddings,
            ))
            .expect("extract")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
