//! Connection-level limits over real sockets: thousands of idle
//! connections cannot lock out a health check, a client that never speaks
//! is closed at the first-bytes deadline, one address cannot take more
//! than its share, and an idle HTTP/2 connection is closed.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use telos::api::serve::{ServeOptions, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(opts: ServeOptions) -> Running {
    let (app, _) = crate::common::app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, opts, async {
        let _ = rx.await;
    }));
    Running { addr, stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Connects from the loopback address `127.0.0.<host>`.
async fn connect_from(host: u8, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)),
        0,
    ))?;
    socket.connect(to).await
}

async fn healthz(to: SocketAddr) -> String {
    let mut s = connect_from(1, to).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

/// Whether the server closes `s` within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// 2,000 idle connections (this process's soft `ulimit -n` is 20,000 on
/// the machines this runs on; the client and server ends fit easily), from
/// 40 loopback addresses so the per-address cap lets them all in, against
/// a server that holds 256 connections. A health check still answers in
/// under a second: the idlest connection gives up its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_do_not_lock_out_healthz() {
    let server = start(ServeOptions {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 256,
        max_connections_per_ip: 64,
        ..ServeOptions::default()
    })
    .await;
    let mut idle = Vec::with_capacity(2000);
    for i in 0..2000 {
        let host = 2 + (i % 40) as u8;
        idle.push(connect_from(host, server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let resp = tokio::time::timeout(Duration::from_secs(5), healthz(server.addr))
            .await
            .expect("/healthz answered");
        let took = started.elapsed();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    }
    drop(idle);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_speaks_is_closed_at_the_deadline() {
    let server = start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let mut silent = connect_from(1, server.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    server.stop().await;
}

#[tokio::test]
async fn a_bare_http2_preface_is_closed_when_idle() {
    let server = start(ServeOptions {
        idle_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let mut s = connect_from(1, server.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // The server's SETTINGS may arrive first; the close must follow.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 256];
    let mut closed = false;
    while Instant::now() < deadline {
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a silent HTTP/2 client kept its connection");
    server.stop().await;
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_cap() {
    let server = start(ServeOptions {
        max_connections_per_ip: 4,
        ..ServeOptions::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(3, server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = connect_from(3, server.addr).await.unwrap();
    assert!(closed_within(&mut fifth, Duration::from_secs(2)).await);
    // Other addresses are unaffected.
    assert!(healthz(server.addr).await.starts_with("HTTP/1.1 200"));
    for s in &mut held {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let server = start(ServeOptions {
        idle_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    })
    .await;
    let stream = connect_from(1, server.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(format!("http://{}/healthz", server.addr))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3), conn).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection stayed open");
    server.stop().await;
}
