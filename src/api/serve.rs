//! The HTTP server loop (hyper): HTTP/1.1 and HTTP/2 with connection-level
//! limits, and a graceful shutdown that lets requests in flight finish.
//!
//! Limits:
//! - a deadline for a connection's first bytes (before the protocol is even
//!   detected, so an idle socket or a client that never speaks is closed);
//! - HTTP/1 header read timeout (slow-loris);
//! - HTTP/2 keep-alive pings with a timeout, and a cap on concurrent streams;
//! - an idle timeout for both protocols: a connection with no request in
//!   flight for that long is shut down gracefully;
//! - at most `max_connections` connections, and at most
//!   `max_connections_per_ip` from one address (further ones are closed at
//!   once). When every slot is taken, the connection that has been idle
//!   longest (no request in flight) is closed to make room, so a crowd of
//!   idle sockets cannot lock out a health check; only when every
//!   connection is busy does a new client wait to be accepted.

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tower::ServiceExt;
use tracing::{debug, warn};

/// Limits of the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Time a client has to send a request's headers, and its first bytes.
    pub header_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one IP address at most (0: no cap).
    pub max_connections_per_ip: usize,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings.
    pub http2_keep_alive_interval: Duration,
    /// How long an HTTP/2 ping may go unanswered before the connection closes.
    pub http2_keep_alive_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection at most.
    pub http2_max_concurrent_streams: u32,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_ip: 256,
            idle_timeout: Duration::from_secs(60),
            http2_keep_alive_interval: Duration::from_secs(20),
            http2_keep_alive_timeout: Duration::from_secs(10),
            http2_max_concurrent_streams: 128,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What the loop knows of one open connection.
struct Conn {
    /// Requests in flight.
    in_flight: Arc<AtomicUsize>,
    /// Milliseconds since the server started, at the last request's start or end.
    last_active: Arc<AtomicU64>,
    /// Closes the connection when notified.
    evict: Arc<Notify>,
}

/// Open connections, by id, and per address.
struct Registry {
    started: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Conn>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Counts a connection from `ip`, unless `cap` is reached.
    fn admit_ip(&self, ip: IpAddr, cap: usize) -> bool {
        let Ok(mut m) = self.per_ip.lock() else {
            return false;
        };
        let n = m.entry(ip).or_insert(0);
        if cap > 0 && *n >= cap {
            return false;
        }
        *n += 1;
        true
    }

    fn release_ip(&self, ip: IpAddr) {
        if let Ok(mut m) = self.per_ip.lock()
            && let Some(n) = m.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }

    /// Asks the connection idle longest to close, and forgets it (so it is
    /// not picked twice); false when all are busy.
    fn evict_idlest(&self) -> bool {
        let Ok(mut conns) = self.conns.lock() else {
            return false;
        };
        let idlest = conns
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last_active.load(Ordering::Acquire))
            .map(|(id, _)| *id);
        match idlest.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
    ip: IpAddr,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.conns.lock() {
            m.remove(&self.id);
        }
        self.registry.release_ip(self.ip);
        metrics::gauge!("telos_http_connections").decrement(1.0);
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(opts.http2_keep_alive_interval)
        .keep_alive_timeout(opts.http2_keep_alive_timeout)
        .max_concurrent_streams(opts.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(64)
        .max_local_error_reset_streams(64);
    let builder = Arc::new(builder);
    let registry = Arc::new(Registry {
        started: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
        per_ip: Mutex::new(HashMap::new()),
    });
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    // `true` once shutdown begins; every connection task watches it.
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let tasks = tokio_util_tasks::Tasks::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(err) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if !registry.admit_ip(peer.ip(), opts.max_connections_per_ip) {
            metrics::counter!("telos_http_connections_refused_total", "reason" => "per_ip")
                .increment(1);
            debug!(%peer, "per-address connection cap reached");
            drop(stream);
            continue;
        }
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if registry.evict_idlest() {
                    metrics::counter!("telos_http_connections_evicted_total").increment(1);
                }
                // Wait for the evicted connection (or any other) to end.
                tokio::select! {
                    p = Arc::clone(&slots).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => {
                        registry.release_ip(peer.ip());
                        break;
                    }
                }
            }
        };
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            in_flight: Arc::new(AtomicUsize::new(0)),
            last_active: Arc::new(AtomicU64::new(registry.now_ms())),
            evict: Arc::new(Notify::new()),
        };
        let (in_flight, last_active, evict) = (
            Arc::clone(&conn.in_flight),
            Arc::clone(&conn.last_active),
            Arc::clone(&conn.evict),
        );
        if let Ok(mut m) = registry.conns.lock() {
            m.insert(id, conn);
        }
        metrics::gauge!("telos_http_connections").increment(1.0);
        let registered = Registered {
            registry: Arc::clone(&registry),
            id,
            ip: peer.ip(),
        };
        let (app, builder, stopping) = (app.clone(), Arc::clone(&builder), stopping_rx.clone());
        tasks.spawn(async move {
            // Dropped in reverse order: the registry forgets the
            // connection before its slot is given back.
            let _permit = permit;
            let _registered = registered;
            connection(
                stream,
                app,
                &builder,
                opts,
                Activity {
                    registry: Arc::clone(&_registered.registry),
                    in_flight,
                    last_active,
                },
                evict,
                stopping,
            )
            .await;
            debug!(%peer, "connection closed");
        });
    }
    let _ = stopping_tx.send(true);
    if tokio::time::timeout(opts.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        warn!("shutdown grace period elapsed with connections still open");
    }
    Ok(())
}

/// Request activity of one connection.
#[derive(Clone)]
struct Activity {
    registry: Arc<Registry>,
    in_flight: Arc<AtomicUsize>,
    last_active: Arc<AtomicU64>,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.last_active.load(Ordering::Acquire);
        Some(Duration::from_millis(
            self.registry.now_ms().saturating_sub(since),
        ))
    }
}

/// Counts a request in flight while it lives.
struct InFlight(Activity);

impl InFlight {
    fn start(a: &Activity) -> Self {
        a.in_flight.fetch_add(1, Ordering::AcqRel);
        a.last_active.store(a.registry.now_ms(), Ordering::Release);
        Self(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .last_active
            .store(self.0.registry.now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection: waits (bounded) for its first bytes, then
/// hands it to hyper, closing it when idle, evicted or shutting down.
async fn connection(
    stream: TcpStream,
    app: Router,
    builder: &Builder<TokioExecutor>,
    opts: ServeOptions,
    activity: Activity,
    evict: Arc<Notify>,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let spoke = tokio::select! {
        r = tokio::time::timeout(opts.header_read_timeout, stream.peek(&mut first)) => {
            matches!(r, Ok(Ok(n)) if n > 0)
        }
        () = evict.notified() => false,
        _ = stopping.wait_for(|s| *s) => false,
    };
    if !spoke {
        return;
    }
    let tracked = activity.clone();
    let service = tower::service_fn(move |req: Request<hyper::body::Incoming>| {
        let guard = InFlight::start(&tracked);
        let app = app.clone();
        async move {
            let resp = app.oneshot(req.map(axum::body::Body::new)).await;
            drop(guard);
            resp
        }
    });
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut check = tokio::time::interval(
        opts.idle_timeout
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10)),
    );
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    // An idle connection asked to close that has not closed by then is
    // dropped (an HTTP/2 client can stall a graceful close).
    let mut force_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(err) = r {
                    debug!(%err, "connection closed with an error");
                }
                return;
            }
            () = evict.notified(), if !closing => {
                // Evicted while idle: close at once.
                return;
            }
            _ = stopping.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = check.tick(), if !closing => {
                if activity.idle_for().is_some_and(|d| d >= opts.idle_timeout) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    force_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
            () = sleep_until_some(force_at) => {
                if activity.idle_for().is_some() {
                    return;
                }
                force_at = None;
            }
        }
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Tracks spawned connection tasks so shutdown can wait for them.
mod tokio_util_tasks {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    #[derive(Default, Clone)]
    pub struct Tasks {
        live: Arc<AtomicUsize>,
        done: Arc<Notify>,
    }

    struct Live(Tasks);

    impl Drop for Live {
        fn drop(&mut self) {
            if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.0.done.notify_waiters();
            }
        }
    }

    impl Tasks {
        pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
            self.live.fetch_add(1, Ordering::AcqRel);
            let live = Live(self.clone());
            tokio::spawn(async move {
                let _live = live;
                fut.await;
            });
        }

        pub async fn wait(&self) {
            loop {
                let notified = self.done.notified();
                if self.live.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        }
    }
}
