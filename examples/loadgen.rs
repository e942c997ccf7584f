//! A bounded loopback load generator for telos: N concurrent clients send
//! the same JSON request until a request count or a time limit is reached,
//! then the latency percentiles, throughput and status counts are printed.
//!
//! ```sh
//! cargo run --release --example loadgen -- \
//!   --url http://127.0.0.1:8080/v1/intents --body fixtures/load/intent.json \
//!   --concurrency 16 --requests 4000 --max-seconds 60
//! ```
//! With `--rate R` the load is open-loop instead: requests start on a fixed
//! schedule of R per second (at most `--concurrency` in flight; a request
//! that finds them all busy is counted as `late`), and each latency is
//! measured from its scheduled start, so a stalled server cannot hide its
//! queueing delay (no coordinated omission).
//!
//! Only loopback addresses are accepted.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    urls: Vec<String>,
    body: Vec<u8>,
    method: String,
    concurrency: usize,
    requests: usize,
    max_seconds: u64,
    warmup: usize,
    rate: Option<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        urls: Vec::new(),
        body: Vec::new(),
        method: "POST".into(),
        concurrency: 16,
        requests: 2000,
        max_seconds: 60,
        warmup: 50,
        rate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = val()?,
            "--url-file" => {
                let path = val()?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                a.urls = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(first) = a.urls.first() {
                    a.url = first.clone();
                }
            }
            "--body" => {
                let path = val()?;
                a.body = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
            }
            "--method" => a.method = val()?,
            "--concurrency" => a.concurrency = val()?.parse().map_err(|e| format!("{e}"))?,
            "--requests" => a.requests = val()?.parse().map_err(|e| format!("{e}"))?,
            "--max-seconds" => a.max_seconds = val()?.parse().map_err(|e| format!("{e}"))?,
            "--warmup" => a.warmup = val()?.parse().map_err(|e| format!("{e}"))?,
            "--rate" => {
                let r: f64 = val()?.parse().map_err(|e| format!("{e}"))?;
                if !(r > 0.0 && r.is_finite()) {
                    return Err("--rate must be a positive number".into());
                }
                a.rate = Some(r);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.urls.is_empty() {
        a.urls.push(a.url.clone());
    }
    for url in &a.urls {
        let host = url
            .strip_prefix("http://")
            .and_then(|r| r.split(['/', ':']).next())
            .ok_or("--url must be http://HOST[:PORT]/path")?;
        let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
        if !loopback {
            return Err(format!("refusing non-loopback host {host}"));
        }
    }
    Ok(a)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();
    let send = {
        let client = client.clone();
        let args = Arc::clone(&args);
        move |client_index: usize| {
            let url = &args.urls[client_index % args.urls.len()];
            let req = hyper::Request::builder()
                .method(args.method.as_str())
                .uri(url.as_str())
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(args.body.clone())));
            let client = client.clone();
            async move {
                let req = req.map_err(|e| e.to_string())?;
                let resp = client.request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                resp.into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<u16, String>(status)
            }
        }
    };
    for i in 0..args.warmup {
        let _ = send(i).await;
    }
    let issued = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let started = Instant::now();
    if let Some(rate) = args.rate {
        let (lat, statuses) = open_loop(&args, rate, deadline, send).await;
        report(&args, &lat, &statuses, started.elapsed().as_secs_f64());
        return;
    }
    let mut tasks = Vec::new();
    for client_index in 0..args.concurrency {
        let issued = Arc::clone(&issued);
        let args = Arc::clone(&args);
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
            while issued.fetch_add(1, Ordering::Relaxed) < args.requests
                && Instant::now() < deadline
            {
                let t = Instant::now();
                let key = match send(client_index).await {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("error: {e}"),
                };
                lat.push(t.elapsed());
                *statuses.entry(key).or_default() += 1;
            }
            (lat, statuses)
        }));
    }
    let mut lat = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        if let Ok((l, s)) = t.await {
            lat.extend(l);
            for (k, v) in s {
                *statuses.entry(k).or_default() += v;
            }
        }
    }
    report(&args, &lat, &statuses, started.elapsed().as_secs_f64());
}

/// Starts request `i` at `i / rate` seconds; latency counts from that time.
async fn open_loop<F, Fut>(
    args: &Args,
    rate: f64,
    deadline: Instant,
    send: F,
) -> (Vec<Duration>, BTreeMap<String, usize>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<u16, String>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(args.requests);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..args.requests {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        if scheduled.into_std() >= deadline {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            *statuses.entry("late".into()).or_default() += 1;
            continue;
        };
        let fut = send(i);
        tasks.push(tokio::spawn(async move {
            let result = fut.await;
            drop(permit);
            (scheduled.elapsed(), result)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok((l, r)) = t.await {
            lat.push(l);
            let key = match r {
                Ok(s) => s.to_string(),
                Err(e) => format!("error: {e}"),
            };
            *statuses.entry(key).or_default() += 1;
        }
    }
    (lat, statuses)
}

fn report(args: &Args, lat: &[Duration], statuses: &BTreeMap<String, usize>, elapsed: f64) {
    let mut lat = lat.to_vec();
    lat.sort();
    if let Some(rate) = args.rate {
        println!("open loop at {rate:.0} req/s (latency from scheduled start)");
    }
    println!(
        "requests {} in {:.2}s: {:.1} req/s, concurrency {}",
        lat.len(),
        elapsed,
        lat.len() as f64 / elapsed,
        args.concurrency
    );
    println!(
        "latency ms: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    println!("statuses: {statuses:?}");
}
