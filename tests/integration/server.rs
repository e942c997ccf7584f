//! The server loop over a real socket: a client that does not finish its
//! headers is disconnected, and requests beyond the in-flight limit get 429
//! (health checks excepted).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let (app, _) = crate::common::app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = telos::api::serve::ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 8,
        shutdown_grace: Duration::from_secs(1),
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(telos::api::serve::serve(listener, app, opts, async {
        let _ = stop_rx.await;
    }));
    // A complete request is served.
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    ok.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    // A client that stalls inside its headers is disconnected.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the stalled connection was not closed");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed() {
    let mut limits = crate::common::limits();
    limits.max_concurrent_requests = 1;
    let store = std::sync::Arc::new(telos::storage::SledStore::temporary().unwrap());
    let service = std::sync::Arc::new(telos::service::Service::new(
        store,
        crate::common::service_config(),
    ));
    let app = telos::api::router(telos::api::AppState {
        service,
        limits: limits.into(),
        prometheus: None,
        pdp: std::sync::Arc::new(telos::pdp::Pdp::new(None, false)),
        public_url: None,
        auth: telos::auth::Authenticator::open(),
        limiter: None,
        metrics_public: true,
    });
    // The first request holds the only slot: its body never finishes.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    tx.send(Ok(axum::body::Bytes::from_static(b"{")))
        .await
        .unwrap();
    let stream = tokio_stream_from(rx);
    let held = Request::builder()
        .method("POST")
        .uri("/v1/intents")
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    let first = {
        let app = app.clone();
        tokio::spawn(async move {
            use tower::ServiceExt;
            app.oneshot(held).await.unwrap().status()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (s, b) = crate::common::send(&app, "GET", "/v1/drift", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("overloaded"))
    );
    // Health checks are never shed.
    let (s, b) = crate::common::send(&app, "GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = crate::common::send(&app, "GET", "/readyz", None).await;
    assert_ne!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    drop(tx);
    assert_eq!(first.await.unwrap(), StatusCode::BAD_REQUEST);
    let (s, _) = crate::common::send(&app, "GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
