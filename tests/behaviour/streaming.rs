//! Failures after the head, over real TCP on 127.0.0.1 with `axum::serve`, HTTP/1.1 and HTTP/2:
//! a streamed body that yields an error or panics is counted once (kind `body` or `panic`) with
//! its request, the response ends as after any body error and the server goes on serving; a body
//! that ends, is dropped by a client that leaves, belongs to a `HEAD` request or ends through
//! `is_end_stream()` is not counted; `LoggingLayer` logs a body failure in the request's span.
//!
//! Each test runs on one thread (the server, the clients and the capturing subscriber), so that
//! events are captured wherever they happen.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Method, Request, Response, StatusCode, header},
    response::{IntoResponse, Sse, sse::Event},
    routing::get,
};
use futures_util::{StreamExt as _, stream};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use unhandled::{
    Error, ErrorContext, ErrorHandlerLayer, ErrorKind, LoggingLayer, ResponseExt as _,
};

use crate::support;

use support::{capture, counted};

/// The error a failing stream yields: `export: the replica went away`.
#[derive(Debug)]
struct ExportFailed(std::io::Error);

impl std::fmt::Display for ExportFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("export")
    }
}

impl std::error::Error for ExportFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn export_failed() -> ExportFailed {
    ExportFailed(std::io::Error::other("the replica went away"))
}

/// How long a failing stream waits after its first chunk: long enough for the server to send
/// the head and that chunk (hyper sends nothing of a response that fails while buffered).
const PAUSE: Duration = Duration::from_millis(20);

/// One chunk, a pause, then what `last` yields.
fn first_chunk_then(
    last: impl Future<Output = Result<Bytes, ExportFailed>> + Send + 'static,
) -> Body {
    let first = stream::once(async { Ok(Bytes::from_static(b"row 1\n")) });
    let last = stream::once(async move {
        tokio::time::sleep(PAUSE).await;
        last.await
    });
    Body::from_stream(first.chain(last))
}

/// One chunk, then an error.
async fn stream_error() -> Body {
    first_chunk_then(async { Err(export_failed()) })
}

/// One chunk, then a panic while the body is polled.
async fn stream_panic() -> Body {
    first_chunk_then(async { panic!("the exporter fell over") })
}

/// Three chunks, then the end.
async fn stream_ok() -> Body {
    let chunks = ["a", "b", "c"].map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk)));
    Body::from_stream(stream::iter(chunks))
}

/// One chunk, then nothing ever again: the client leaves.
async fn stream_forever() -> Body {
    let first = stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"row 1\n")) });
    Body::from_stream(first.chain(stream::pending()))
}

/// Server-sent events whose stream fails after one event.
async fn sse_error() -> impl IntoResponse {
    let tick = stream::once(async { Ok(Event::default().data("tick")) });
    let failure = stream::once(async {
        tokio::time::sleep(PAUSE).await;
        Err(export_failed())
    });
    Sse::new(tick.chain(failure))
}

/// A body that says it ended after its only frame, and fails if it is polled again.
struct EndsByHint {
    sent: bool,
}

impl http_body::Body for EndsByHint {
    type Data = Bytes;
    type Error = ExportFailed;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExportFailed>>> {
        if self.sent {
            return Poll::Ready(Some(Err(export_failed())));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"all of it")))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent
    }
}

/// A body that announces 100 bytes, sends 6 and fails: what a proxied upstream body with a
/// `Content-Length` does when the upstream breaks off.
struct ShortUpstream(Body);

impl ShortUpstream {
    fn new() -> Self {
        Self(first_chunk_then(async { Err(export_failed()) }))
    }
}

impl http_body::Body for ShortUpstream {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(100)
    }
}

fn routes() -> Router {
    Router::new()
        .route("/stream-error", get(stream_error))
        .route("/stream-panic", get(stream_panic))
        .route("/stream-ok", get(stream_ok))
        .route("/stream-forever", get(stream_forever))
        .route("/sse-error", get(sse_error))
        .route(
            "/ends-by-hint",
            get(|| async { Body::new(EndsByHint { sent: false }) }),
        )
        .route("/sized", get(|| async { Body::new(ShortUpstream::new()) }))
        .route(
            "/sized-watched",
            get(|| async { Body::new(ShortUpstream::new()).into_response().watch_body() }),
        )
        .route("/ok", get(|| async { "ok" }))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Http {
    One,
    Two,
}

/// A client connection of either version.
enum Client {
    One(hyper::client::conn::http1::SendRequest<Body>),
    Two(hyper::client::conn::http2::SendRequest<Body>),
}

impl Client {
    async fn connect(address: SocketAddr, http: Http) -> Self {
        let io = TokioIo::new(TcpStream::connect(address).await.unwrap());
        match http {
            Http::One => {
                let (sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(connection);
                Self::One(sender)
            }
            Http::Two => {
                let (sender, connection) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                Self::Two(sender)
            }
        }
    }

    async fn send(&mut self, method: Method, path: &str) -> hyper::Result<Response<Incoming>> {
        let mut request = Request::builder().method(method).uri(path);
        if let Self::One(_) = self {
            request = request.header(header::HOST, "127.0.0.1");
        } else {
            request = request.uri(format!("http://127.0.0.1{path}"));
        }
        let request = request.body(Body::empty()).unwrap();
        match self {
            Self::One(sender) => sender.send_request(request).await,
            Self::Two(sender) => sender.send_request(request).await,
        }
    }
}

/// What a client received: the status, the bytes of the body, and how the body ended (`None`:
/// complete, else the error the client saw).
#[derive(Debug)]
struct Received {
    status: StatusCode,
    bytes: Vec<u8>,
    error: Option<String>,
}

async fn read(response: Response<Incoming>) -> Received {
    let status = response.status();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let error = loop {
        match body.frame().await {
            None => break None,
            Some(Ok(frame)) => bytes.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
            Some(Err(error)) => break Some(format!("{error:?}")),
        }
    };
    Received {
        status,
        bytes,
        error,
    }
}

/// `GET path` on a new connection, read to its end.
async fn get_once(address: SocketAddr, http: Http, path: &str) -> Received {
    let mut client = Client::connect(address, http).await;
    read(client.send(Method::GET, path).await.unwrap()).await
}

const BOTH: [Http; 2] = [Http::One, Http::Two];

#[tokio::test]
async fn a_body_that_fails_mid_stream_is_counted_once_as_body_with_its_request() {
    let (events, _guard) = capture();
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let app = routes().layer(ErrorHandlerLayer::new(reporting.clone()));
        let address = support::serve(app).await;

        let received = get_once(address, http, "/stream-error").await;
        assert_eq!(received.status, StatusCode::OK, "{http:?}");
        assert_eq!(
            received.bytes, b"row 1\n",
            "{http:?}: the chunk before the failure"
        );
        let error = received.error.expect("the client sees a broken body");
        if http == Http::Two {
            // HTTP/2 resets the stream with INTERNAL_ERROR.
            assert!(error.contains("INTERNAL_ERROR"), "{error}");
        }
        support::eventually(|| {
            counted(&reporting) == [("/stream-error".to_owned(), ErrorKind::Body, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [("/stream-error".to_owned(), ErrorKind::Body, 1)],
            "{http:?}"
        );
        // The report's sample: the request, the status the client got, the whole chain once.
        reporting.shutdown().await;
        let report = events.reports().pop().expect("a report at shutdown");
        assert_eq!(report.field("sample.method"), "GET");
        assert_eq!(report.field("sample.route"), "/stream-error");
        assert_eq!(report.field("sample.path"), "/stream-error");
        assert_eq!(report.field("sample.kind"), "body");
        assert_eq!(report.field("sample.status"), "200");
        assert_eq!(
            report.field("sample.error"),
            "export: the replica went away",
            "{http:?}"
        );
        // The server goes on serving, on a new connection.
        let next = get_once(address, http, "/ok").await;
        assert_eq!(
            (next.status, next.bytes.as_slice()),
            (StatusCode::OK, &b"ok"[..])
        );
    }
}

#[tokio::test]
async fn a_panic_while_the_body_streams_is_caught_counted_and_the_server_keeps_serving() {
    let (events, _guard) = capture();
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let app = routes().layer(ErrorHandlerLayer::new(reporting.clone()));
        let address = support::serve(app).await;
        let mut client = Client::connect(address, http).await;

        let received = read(client.send(Method::GET, "/stream-panic").await.unwrap()).await;
        assert_eq!(received.status, StatusCode::OK, "{http:?}");
        assert_eq!(received.bytes, b"row 1\n", "{http:?}");
        assert!(
            received.error.is_some(),
            "{http:?}: the body ends as after an error"
        );
        support::eventually(|| {
            counted(&reporting) == [("/stream-panic".to_owned(), ErrorKind::Panic, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [("/stream-panic".to_owned(), ErrorKind::Panic, 1)],
            "{http:?}"
        );
        reporting.shutdown().await;
        let report = events.reports().pop().expect("a report at shutdown");
        assert_eq!(report.field("sample.kind"), "panic");
        assert_eq!(
            report.field("sample.error"),
            "response body panicked: the exporter fell over"
        );

        match http {
            // HTTP/2 reset that stream only: the same connection serves the next request.
            Http::Two => {
                let next = read(client.send(Method::GET, "/ok").await.unwrap()).await;
                assert_eq!(
                    (next.status, next.bytes.as_slice()),
                    (StatusCode::OK, &b"ok"[..])
                );
            }
            // HTTP/1 closed that connection; a new one is served.
            Http::One => {
                assert!(client.send(Method::GET, "/ok").await.is_err());
                let next = get_once(address, http, "/ok").await;
                assert_eq!(
                    (next.status, next.bytes.as_slice()),
                    (StatusCode::OK, &b"ok"[..])
                );
            }
        }
    }
}

#[tokio::test]
async fn sse_that_fails_is_counted_as_body() {
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let address =
            support::serve(routes().layer(ErrorHandlerLayer::new(reporting.clone()))).await;
        let received = get_once(address, http, "/sse-error").await;
        assert_eq!(received.status, StatusCode::OK);
        assert_eq!(received.bytes, b"data: tick\n\n", "{http:?}");
        assert!(received.error.is_some(), "{http:?}");
        support::eventually(|| {
            counted(&reporting) == [("/sse-error".to_owned(), ErrorKind::Body, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [("/sse-error".to_owned(), ErrorKind::Body, 1)],
            "{http:?}"
        );
    }
}

#[tokio::test]
async fn bodies_that_end_are_left_unpolled_or_are_dropped_are_no_failures() {
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let app = routes().layer(ErrorHandlerLayer::new(reporting.clone()));
        let address = support::serve(app).await;
        let mut client = Client::connect(address, http).await;

        // A body that ends normally.
        let ok = read(client.send(Method::GET, "/stream-ok").await.unwrap()).await;
        assert_eq!(
            (ok.bytes.as_slice(), ok.error),
            (&b"abc"[..], None),
            "{http:?}"
        );
        // A body that ends by its `is_end_stream()`, without the poll that would fail.
        let hinted = read(client.send(Method::GET, "/ends-by-hint").await.unwrap()).await;
        assert_eq!(
            (hinted.bytes.as_slice(), hinted.error),
            (&b"all of it"[..], None),
            "{http:?}"
        );
        // A HEAD request: its body, which would fail, is never polled.
        let head = client.send(Method::HEAD, "/stream-error").await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        let head = read(head).await;
        assert_eq!((head.bytes.len(), head.error), (0, None), "{http:?}");

        // A client that leaves mid-stream: it reads the first chunk, then drops the connection.
        let mut leaving = Client::connect(address, http).await;
        let response = leaving.send(Method::GET, "/stream-forever").await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap().as_ref(), b"row 1\n");
        drop(body);
        drop(leaving);

        assert_eq!(counted(&reporting), [], "{http:?}");
        assert_eq!(reporting.unhandled_count(), 0);
    }
}

#[tokio::test]
async fn a_sized_body_that_fails_is_counted_only_when_its_response_asks_to_be_watched() {
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let address =
            support::serve(routes().layer(ErrorHandlerLayer::new(reporting.clone()))).await;

        // Not watched: the response is passed on untouched, and its failure only ends the
        // response (HTTP/1 closes the connection) and is not counted.
        let unwatched = get_once(address, http, "/sized").await;
        assert_eq!(unwatched.status, StatusCode::OK);
        assert_eq!(unwatched.bytes, b"row 1\n", "{http:?}");
        assert!(
            unwatched.error.is_some(),
            "{http:?}: short of its Content-Length"
        );
        assert_eq!(counted(&reporting), [], "{http:?}");

        // Watched: counted, and its Content-Length still sent.
        let mut client = Client::connect(address, http).await;
        let response = client.send(Method::GET, "/sized-watched").await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "100");
        let watched = read(response).await;
        assert!(watched.error.is_some());
        support::eventually(|| {
            counted(&reporting) == [("/sized-watched".to_owned(), ErrorKind::Body, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [("/sized-watched".to_owned(), ErrorKind::Body, 1)],
            "{http:?}"
        );
    }
}

/// An upstream that announces 100 bytes, sends 6 and closes its connection.
async fn breaking_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = [0; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nrow 1\n";
                let _ = socket.write_all(head.as_bytes()).await;
                // Closed here, 94 bytes short.
            });
        }
    });
    address
}

/// axum's reverse-proxy pattern: the upstream's `Incoming` body becomes the response body.
async fn proxy(upstream: SocketAddr, watch: bool) -> Response<Body> {
    let mut client = Client::connect(upstream, Http::One).await;
    let response = client.send(Method::GET, "/").await.unwrap();
    let response = response.into_response();
    if watch {
        response.watch_body()
    } else {
        response
    }
}

#[tokio::test]
async fn a_proxied_upstream_body_that_breaks_off_is_counted_with_the_upstream_error_when_watched() {
    let (events, _guard) = capture();
    let upstream = breaking_upstream().await;
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let app = Router::new()
            .route("/proxy", get(move || proxy(upstream, false)))
            .route("/proxy-watched", get(move || proxy(upstream, true)))
            .layer(ErrorHandlerLayer::new(reporting.clone()));
        let address = support::serve(app).await;

        let unwatched = get_once(address, http, "/proxy").await;
        assert_eq!(unwatched.bytes, b"row 1\n");
        assert!(unwatched.error.is_some(), "{http:?}");
        let watched = get_once(address, http, "/proxy-watched").await;
        assert!(watched.error.is_some(), "{http:?}");
        support::eventually(|| {
            counted(&reporting) == [("/proxy-watched".to_owned(), ErrorKind::Body, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [("/proxy-watched".to_owned(), ErrorKind::Body, 1)],
            "{http:?}: the upstream's failure is not the client leaving"
        );
        reporting.shutdown().await;
        let report = events.reports().pop().expect("a report at shutdown");
        let sample = report.field("sample.error");
        assert!(
            sample.contains("error reading a body from connection"),
            "{sample}"
        );
    }
}

#[tokio::test]
async fn a_server_error_handler_sees_a_body_failure_and_its_response_is_not_sent() {
    for http in BOTH {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler = {
            let seen = Arc::clone(&seen);
            move |error: &Error, context: &ErrorContext<'_>| {
                seen.lock().unwrap().push(format!(
                    "{} {} {} {} {error:#}",
                    context.method(),
                    context.route_label(),
                    context.path(),
                    context.kind()
                ));
                Some((StatusCode::SERVICE_UNAVAILABLE, "too late").into_response())
            }
        };
        let address = support::serve(routes().layer(ErrorHandlerLayer::new(handler))).await;
        let received = get_once(address, http, "/stream-error").await;
        assert_eq!(received.status, StatusCode::OK);
        assert_eq!(
            received.bytes, b"row 1\n",
            "{http:?}: nothing of the handler's response"
        );
        support::eventually(|| seen.lock().unwrap().len() == 1).await;
        assert_eq!(
            *seen.lock().unwrap(),
            ["GET /stream-error /stream-error body export: the replica went away"]
        );
    }
}

#[tokio::test]
async fn logging_layer_logs_a_body_failure_in_the_request_span_and_it_is_not_counted() {
    let (events, _guard) = capture();
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let app = routes()
            .layer(LoggingLayer::new())
            .layer(ErrorHandlerLayer::new(reporting.clone()));
        let address = support::serve(app).await;
        let before = events.all().len();

        let received = get_once(address, http, "/stream-error").await;
        assert!(received.error.is_some());
        let panicked = get_once(address, http, "/stream-panic").await;
        assert!(panicked.error.is_some());
        let ok = get_once(address, http, "/stream-ok").await;
        assert_eq!(ok.error, None);

        assert_eq!(counted(&reporting), [], "{http:?}: logged, so not counted");
        let logged: Vec<_> = events.all()[before..]
            .iter()
            .filter(|event| event.target == unhandled::logging::TARGET)
            .cloned()
            .collect();
        let failure = logged
            .iter()
            .find(|event| event.fields.get("route").map(String::as_str) == Some("/stream-error"))
            .expect("the body failure is logged");
        assert_eq!(failure.level, tracing::Level::WARN);
        assert_eq!(failure.field("message"), "request failed");
        assert_eq!(failure.field("kind"), "body");
        assert_eq!(failure.field("status"), "200");
        assert_eq!(failure.field("error"), "export: the replica went away");
        assert_eq!(
            failure.span.as_deref(),
            Some("request"),
            "in the request's span"
        );
        let panic = logged
            .iter()
            .find(|event| event.fields.get("route").map(String::as_str) == Some("/stream-panic"))
            .expect("the body panic is logged");
        assert_eq!(panic.field("kind"), "panic");
        assert_eq!(
            panic.field("error"),
            "response body panicked: the exporter fell over"
        );
        let completed = logged
            .iter()
            .find(|event| event.fields.get("route").map(String::as_str) == Some("/stream-ok"))
            .expect("the streamed success is logged");
        assert_eq!(completed.field("message"), "request completed");
        assert_eq!(completed.level, tracing::Level::DEBUG);
        // One event per request.
        assert_eq!(logged.len(), 3, "{http:?}: {logged:#?}");
    }
}

#[tokio::test]
async fn logging_layer_logs_a_client_that_leaves_as_no_failure() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let app = routes()
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    let mut client = Client::connect(address, Http::One).await;
    let mut body = client
        .send(Method::GET, "/stream-forever")
        .await
        .unwrap()
        .into_body();
    body.frame().await.unwrap().unwrap();
    drop((body, client));
    support::eventually(|| {
        events
            .all()
            .iter()
            .any(|event| event.target == unhandled::logging::TARGET)
    })
    .await;
    let logged: Vec<_> = events
        .all()
        .into_iter()
        .filter(|event| event.target == unhandled::logging::TARGET)
        .collect();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(
        logged[0].field("message"),
        "response body dropped before its end"
    );
    assert_eq!(logged[0].level, tracing::Level::DEBUG);
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn logging_layer_outside_the_error_handler_logs_a_body_failure_that_is_still_counted() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let app = routes()
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(LoggingLayer::new());
    let address = support::serve(app).await;
    let received = get_once(address, Http::Two, "/stream-error").await;
    assert!(received.error.is_some());
    support::eventually(|| {
        counted(&reporting) == [("/stream-error".to_owned(), ErrorKind::Body, 1)]
    })
    .await;
    assert_eq!(
        counted(&reporting),
        [("/stream-error".to_owned(), ErrorKind::Body, 1)]
    );
    let failure = events
        .all()
        .into_iter()
        .find(|event| event.fields.get("message").map(String::as_str) == Some("request failed"))
        .expect("logged");
    assert_eq!(failure.field("kind"), "body");
    assert_eq!(failure.field("error"), "export: the replica went away");
}

#[tokio::test]
async fn nested_error_handlers_count_a_body_failure_once() {
    let inner = support::quiet_reporting();
    let outer = support::quiet_reporting();
    let app = routes()
        .layer(ErrorHandlerLayer::new(inner.clone()))
        .layer(ErrorHandlerLayer::new(outer.clone()));
    let address = support::serve(app).await;
    for http in BOTH {
        get_once(address, http, "/stream-error").await;
        get_once(address, http, "/stream-panic").await;
    }
    support::eventually(|| inner.unhandled_count() == 4).await;
    assert_eq!(inner.unhandled_count(), 4);
    assert_eq!(outer.unhandled_count(), 0);
}

#[tokio::test]
async fn an_error_the_stream_logs_itself_counts_as_logged_with_the_subscriber_layer() {
    use tracing_subscriber::prelude::*;

    async fn logs_then_fails() -> Body {
        first_chunk_then(async {
            let error = export_failed();
            tracing::error!(%error, "export failed");
            Err(error)
        })
    }

    let events = support::Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(support::CaptureLayer::new(&events))
        .with(unhandled::subscriber::layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route("/logs-then-fails", get(logs_then_fails))
        .route("/stream-error", get(stream_error))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    get_once(address, Http::One, "/logs-then-fails").await;
    get_once(address, Http::One, "/stream-error").await;
    support::eventually(|| {
        counted(&reporting) == [("/stream-error".to_owned(), ErrorKind::Body, 1)]
    })
    .await;
    assert_eq!(
        counted(&reporting),
        [("/stream-error".to_owned(), ErrorKind::Body, 1)],
        "the one the application logged is not counted"
    );
}

#[tokio::test]
async fn a_known_share_of_concurrent_streams_fails_and_the_count_is_exact() {
    const REQUESTS: usize = 200;
    // Every fourth stream fails after its first chunk.
    async fn maybe_fail(axum::extract::Path(index): axum::extract::Path<usize>) -> Body {
        let fails = index % 4 == 0;
        let chunks = stream::iter(0..3).then(move |chunk| async move {
            tokio::task::yield_now().await;
            if fails && chunk == 1 {
                Err(export_failed())
            } else {
                Ok(Bytes::from(format!("{index}:{chunk};")))
            }
        });
        Body::from_stream(chunks)
    }
    for http in BOTH {
        let reporting = support::quiet_reporting();
        let app = Router::new()
            .route("/rows/{index}", get(maybe_fail))
            .layer(ErrorHandlerLayer::new(reporting.clone()));
        let address = support::serve(app).await;
        let failed = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        // HTTP/2: all on one connection; HTTP/1: a connection each.
        let shared = match http {
            Http::Two => Some(match Client::connect(address, http).await {
                Client::Two(sender) => sender,
                Client::One(_) => unreachable!(),
            }),
            Http::One => None,
        };
        for index in 0..REQUESTS {
            let failed = Arc::clone(&failed);
            let shared = shared.clone();
            tasks.spawn(async move {
                let path = format!("/rows/{index}");
                let mut client = match shared {
                    Some(sender) => Client::Two(sender),
                    None => Client::connect(address, http).await,
                };
                let received = read(client.send(Method::GET, &path).await.unwrap()).await;
                if received.error.is_some() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
        support::eventually(|| {
            failed.load(Ordering::Relaxed) == REQUESTS / 4
                && reporting.unhandled_count() == (REQUESTS / 4) as u64
        })
        .await;
        assert_eq!(failed.load(Ordering::Relaxed), REQUESTS / 4, "{http:?}");
        assert_eq!(
            counted(&reporting),
            [(
                "/rows/{index}".to_owned(),
                ErrorKind::Body,
                (REQUESTS / 4) as u64
            )],
            "{http:?}"
        );
    }
}

#[tokio::test]
async fn a_watched_body_passes_its_trailers_on() {
    // gRPC sends its status in a trailers frame of the same body: the wrapper lets it through.
    async fn with_trailers() -> Body {
        let mut trailers = axum::http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames = [
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"reply"))),
            Ok(Frame::trailers(trailers)),
        ];
        Body::new(http_body_util::StreamBody::new(stream::iter(frames)))
    }
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route("/trailers", get(with_trailers))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    let mut client = Client::connect(address, Http::Two).await;
    let response = client.send(Method::GET, "/trailers").await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(&collected.to_bytes()[..], b"reply");
    assert_eq!(reporting.unhandled_count(), 0);
}
