//! Raw sled throughput on this disk, for comparison with durable step
//! ingestion: N inserts of a step-sized value, each followed by a flush.
//!
//! ```sh
//! cargo run --release --example sled_raw -- 2000
//! ```

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let store = telos::storage::SledStore::open(dir.path())?;
    let value = vec![7u8; 700];
    let started = Instant::now();
    for i in 0..n {
        store.raw_insert(&i.to_be_bytes(), &value)?;
        telos::storage::Store::flush(&store)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "raw sled insert+flush: {n} in {secs:.2}s = {:.1} writes/s",
        n as f64 / secs
    );
    Ok(())
}
