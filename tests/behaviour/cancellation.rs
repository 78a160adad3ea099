//! A client that disconnects while the handler awaits: on a real server on 127.0.0.1, the request
//! future is dropped, nothing is counted, and nothing the request held is leaked. The leak check
//! counts only this test's own probe, with a deadline: other tests' load does not disturb it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, routing::get};
use tokio::{io::AsyncWriteExt, sync::mpsc};
use unhandled::{ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

/// Shared by every request: counts live clones, and says when a handler starts and is dropped.
#[derive(Clone)]
struct Probe {
    live: Arc<AtomicUsize>,
    started: mpsc::UnboundedSender<()>,
    dropped: mpsc::UnboundedSender<()>,
}

struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

async fn slow(State(probe): State<Probe>) -> unhandled::Result<&'static str> {
    probe.live.fetch_add(1, Ordering::SeqCst);
    let _signal = DropSignal(probe.dropped.clone());
    let _ = probe.started.send(());
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Err(unhandled::Error::msg(
        "unreachable: the client left long ago",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_disconnects_mid_request_is_not_counted_and_leaks_nothing() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (dropped_tx, mut dropped) = mpsc::unbounded_channel();
    let live = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        live: Arc::clone(&live),
        started: started_tx,
        dropped: dropped_tx,
    };
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route("/slow", get(slow))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(probe.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    for _ in 0..5 {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET /slow HTTP/1.1\r\nhost: {addr}\r\n\r\n");
        client.write_all(request.as_bytes()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), started.recv())
            .await
            .expect("the handler never started")
            .unwrap();
        drop(client);
        tokio::time::timeout(Duration::from_secs(10), dropped.recv())
            .await
            .expect("the handler future was not dropped after the client left")
            .unwrap();
    }
    server.abort();
    let _ = server.await;

    assert_eq!(live.load(Ordering::SeqCst), 5, "every handler started");
    assert_eq!(reporting.unhandled_count(), 0);
    assert!(reporting.breakdown().groups.is_empty());
    drop(probe);
    // Each connection is its own task holding a router (and so a `Probe`); it ends on its own
    // after seeing the client's FIN, later than the handler future's drop. Wait for them, bounded:
    // a leaked request or router keeps the count above 1 and fails here.
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while Arc::strong_count(&live) > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{} handles to the probe outlived every connection: a request or router leaked",
        Arc::strong_count(&live) - 1
    );
}
