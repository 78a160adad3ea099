//! Which connection failures count: a client that aborts while its request body is read is
//! not counted (nothing to act on), a dependency that resets its connection is. Real TCP on
//! 127.0.0.1. (Apart from `cancellation.rs`, whose leak check wants no other test's load.)

use std::time::Duration;

use axum::{
    Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use tokio::{io::AsyncWriteExt, sync::mpsc};
use unhandled::{ErrorHandlerLayer, ErrorKind, ReportingErrorHandler, ResponseExt as _};

use crate::support;

/// Reads the whole request body and tells the test how that went.
async fn read_and_tell(
    seen: &mpsc::UnboundedSender<String>,
    body: axum::body::Body,
) -> Result<axum::body::Bytes, axum::Error> {
    let read = axum::body::to_bytes(body, usize::MAX).await;
    let _ = seen.send(match &read {
        Ok(bytes) => format!("{} bytes", bytes.len()),
        Err(error) => format!("error: {error}"),
    });
    read
}

/// Reads the whole request body, as a handler that streams an upload does; says what it got.
async fn read_body(
    State(seen): State<mpsc::UnboundedSender<String>>,
    body: axum::body::Body,
) -> unhandled::Result<&'static str> {
    let read = read_and_tell(&seen, body).await;
    read?;
    Ok("read")
}

/// An application's own error type, as most axum apps have one: it renders its 500 and attaches
/// the error it holds, with the context the handler added.
#[derive(Debug)]
struct AppError {
    context: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.context)
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "something went wrong")
            .into_response()
            .with_cause(self)
    }
}

/// Reads the upload, then stores it in a "database" that refuses: its own error type for both.
async fn store_upload(
    State(seen): State<mpsc::UnboundedSender<String>>,
    body: axum::body::Body,
) -> Result<&'static str, AppError> {
    let read = read_and_tell(&seen, body).await;
    read.map_err(|error| AppError {
        context: "reading the upload",
        source: error.into(),
    })?;
    Err(AppError {
        context: "storing the upload",
        source: "database refused: connection closed".into(),
    })
}

/// Calls an "upstream" on 127.0.0.1 that resets the connection, as a failing database or
/// service would, and returns the I/O error it gets.
async fn call_upstream(
    State(upstream): State<std::net::SocketAddr>,
) -> unhandled::Result<&'static str> {
    use tokio::io::AsyncReadExt;
    let mut connection = tokio::net::TcpStream::connect(upstream).await?;
    connection.write_all(b"SELECT 1;\n").await?;
    let mut reply = [0; 64];
    let read = connection.read(&mut reply).await?;
    if read == 0 {
        return Err(unhandled::Error::msg("upstream closed without a reply"));
    }
    Ok("replied")
}

/// Sends one request (`method_and_path`, extra `headers` lines, `body`) on its own connection,
/// and reads the whole response.
async fn exchange(
    address: std::net::SocketAddr,
    method_and_path: &str,
    headers: &str,
    body: &str,
) -> String {
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method_and_path} HTTP/1.1\r\nhost: {address}\r\n{headers}connection: close\r\n\r\n{body}"
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut client, &mut response)
        .await
        .unwrap();
    response
}

/// Serves `upload` on `/upload` behind a fresh error handler; the handler, the address, and what
/// the handler says it read.
async fn serve_upload(
    upload: MethodRouter<mpsc::UnboundedSender<String>>,
) -> (
    ReportingErrorHandler,
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<String>,
) {
    let reporting = ReportingErrorHandler::builder().build();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/upload", upload)
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(seen_tx);
    (reporting, support::serve(app).await, seen)
}

/// Posts 10 of 1000 announced bytes to `/upload`, goes away, and waits until the handler says
/// its read failed.
async fn abort_upload(address: std::net::SocketAddr, seen: &mut mpsc::UnboundedReceiver<String>) {
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!("POST /upload HTTP/1.1\r\nhost: {address}\r\ncontent-length: 1000\r\n\r\n");
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&[b'x'; 10]).await.unwrap();
    client.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(client);
    let got = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the handler never finished reading")
        .unwrap();
    assert!(got.starts_with("error: "), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_aborts_while_its_body_is_read_is_not_counted() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    // What the error handler answered, counted outside it: the positive control that each failure
    // went through the layer before the count is read.
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let reporting = ReportingErrorHandler::builder().build();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/upload", axum::routing::post(read_body))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(axum::middleware::map_response(move |response: Response| {
            let counter = Arc::clone(&counter);
            async move {
                if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                response
            }
        }))
        .with_state(seen_tx);
    let address = support::serve(app).await;

    for _ in 0..3 {
        abort_upload(address, &mut seen).await;
    }
    // Each error reached the layer (the handler returned it, and it answered 500) and was not
    // counted.
    support::eventually(|| answered.load(Ordering::SeqCst) == 3).await;
    assert_eq!(answered.load(Ordering::SeqCst), 3);
    assert_eq!(
        reporting.unhandled_count(),
        0,
        "{:?}",
        reporting.breakdown()
    );
}

/// The same through an application's own error type that attaches its cause to the 500 it
/// renders: the aborted upload is not counted, the database's refusal after a whole upload is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_error_that_wraps_an_aborted_upload_is_not_counted_and_its_other_failures_are() {
    let (reporting, address, mut seen) = serve_upload(axum::routing::post(store_upload)).await;

    for _ in 0..2 {
        abort_upload(address, &mut seen).await;
    }
    // A whole upload: the handler reads it, then its database refuses. Counted, with the chain.
    let response = exchange(address, "POST /upload", "content-length: 3\r\n", "abc").await;
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    assert_eq!(seen.recv().await.unwrap(), "3 bytes");

    assert_eq!(
        support::counted(&reporting),
        [("/upload".to_owned(), ErrorKind::Error, 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_resets_the_connection_is_counted() {
    // Linger zero: closing sends RST, so the caller's read fails with ECONNRESET.
    let upstream_address = upstream(b"", true).await;
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route("/orders", get(call_upstream))
        .route(
            "/database",
            get(|| async {
                Err::<(), _>(unhandled::Error::msg(
                    "error communicating with database: connection closed",
                ))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(upstream_address);
    let address = support::serve(app).await;

    for path in ["/orders", "/orders", "/database"] {
        let response = exchange(address, &format!("GET {path}"), "", "").await;
        assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    }

    assert_eq!(
        support::counted(&reporting),
        [
            ("/orders".to_owned(), ErrorKind::Error, 2),
            ("/database".to_owned(), ErrorKind::Error, 1)
        ]
    );
}

/// An "upstream" on 127.0.0.1 that reads a request, writes `answer` and closes the connection,
/// with a reset (linger zero) when `reset`; its address.
async fn upstream(answer: &'static [u8], reset: bool) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut connection, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0; 256];
            let _ = tokio::io::AsyncReadExt::read(&mut connection, &mut request).await;
            let _ = connection.write_all(answer).await;
            if reset {
                connection.set_zero_linger().unwrap();
            }
            drop(connection);
        }
    });
    address
}

/// What a proxy's streamed body yields when its upstream breaks: the upstream's `hyper::Error`,
/// inside the `axum::Error` of the `Body` it was read through, inside the proxy's own context.
#[derive(Debug)]
struct UpstreamBroke(axum::Error);

impl std::fmt::Display for UpstreamBroke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("forwarding the upstream's body")
    }
}

impl std::error::Error for UpstreamBroke {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Forwards the upstream's answer, its body streamed through `axum::body::Body`.
async fn proxy(State(upstream): State<std::net::SocketAddr>) -> axum::body::Body {
    use futures_util::TryStreamExt;
    let stream = tokio::net::TcpStream::connect(upstream).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let request = axum::http::Request::get("/export")
        .header("host", "upstream")
        .body(http_body_util::Empty::<axum::body::Bytes>::new())
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    let body = axum::body::Body::new(answer.into_body());
    axum::body::Body::from_stream(body.into_data_stream().map_err(UpstreamBroke))
}

/// An upstream that breaks off its body is the upstream's failure, not the client leaving: the
/// proxy's streamed response is counted as a body failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_body_that_breaks_off_while_a_proxy_streams_it_is_counted() {
    // 100 bytes promised, 5 sent, then the connection ends.
    let upstream_address = upstream(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst",
        false,
    )
    .await;
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route("/export", get(proxy))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(upstream_address);
    let address = support::serve(app).await;
    let response = exchange(address, "GET /export", "", "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    support::eventually(|| reporting.unhandled_count() == 1).await;
    assert_eq!(
        support::counted(&reporting),
        [("/export".to_owned(), ErrorKind::Body, 1)]
    );
}
