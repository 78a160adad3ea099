//! The request span, exported through tracing-opentelemetry into the OpenTelemetry SDK's
//! in-memory exporter, from a real server on 127.0.0.1: kind SERVER, `GET /users/{id}`, the HTTP
//! attributes and the peer address that Zipkin's `remoteEndpoint` is built from.

use crate::support;
use support::fails;

use std::{collections::HashMap, net::SocketAddr};

use axum::{Router, routing::get};
use opentelemetry::{
    Value,
    trace::{SpanKind, Status},
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::subscriber::DefaultGuard;
use unhandled::{ErrorHandlerLayer, LoggingLayer};

async fn user() -> &'static str {
    "user"
}

/// Spans on this thread go through tracing-opentelemetry into an in-memory exporter.
fn export_on_this_thread() -> (SdkTracerProvider, InMemorySpanExporter, DefaultGuard) {
    let exported = support::export_spans();
    (exported.provider, exported.exporter, exported.guard)
}

/// Serves `app` with `ConnectInfo` on 127.0.0.1, sends one `GET path`, returns the exported spans
/// and the client's local address.
async fn export_one_request(app: Router, path: &str) -> (Vec<SpanData>, SocketAddr) {
    let (provider, exporter, _guard) = export_on_this_thread();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let request = format!(
        "GET {path}?page=2 HTTP/1.1\r\nhost: {addr}\r\nuser-agent: span-test/1.0\r\nconnection: close\r\n\r\n"
    );
    client.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.read_to_string(&mut response),
    )
    .await
    .expect("no response within 10s")
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
    server.abort();
    let _ = server.await;
    provider.force_flush().unwrap();
    (exporter.get_finished_spans().unwrap(), client_addr)
}

fn attributes(span: &SpanData) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.clone()))
        .collect()
}

/// How long a streamed export takes between its first chunk and its end.
const STREAMING: std::time::Duration = std::time::Duration::from_millis(50);

/// A streamed export: one chunk, a pause, then a second chunk or (`fail`) an error.
fn export(fail: bool) -> axum::body::Body {
    use futures_util::{StreamExt as _, stream};
    let first = stream::once(async { Ok(axum::body::Bytes::from_static(b"row 1\n")) });
    let last = stream::once(async move {
        tokio::time::sleep(STREAMING).await;
        if fail {
            Err(support::load_failed())
        } else {
            Ok(axum::body::Bytes::from_static(b"row 2\n"))
        }
    });
    axum::body::Body::from_stream(first.chain(last))
}

fn app() -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/fails/{id}", get(fails))
        .route("/export/{id}", get(|| async { export(false) }))
        .route("/export-fails/{id}", get(|| async { export(true) }))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::default())
}

#[tokio::test(flavor = "current_thread")]
async fn request_span_is_a_server_span_with_route_name_http_attributes_and_peer() {
    let (spans, client) = export_one_request(app(), "/users/7").await;

    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(span.status, Status::Unset);
    let attributes = attributes(span);
    let text = |key: &str| {
        attributes
            .get(key)
            .unwrap_or_else(|| panic!("no attribute {key} in {attributes:#?}"))
            .to_string()
    };
    assert_eq!(text("http.request.method"), "GET");
    assert_eq!(text("http.route"), "/users/{id}");
    assert_eq!(text("url.path"), "/users/7");
    assert_eq!(text("url.query"), "page=2");
    assert_eq!(text("url.scheme"), "http");
    assert_eq!(text("network.protocol.version"), "1.1");
    assert_eq!(text("user_agent.original"), "span-test/1.0");
    assert_eq!(text("http.response.status_code"), "200");
    for (address, port) in [
        ("client.address", "client.port"),
        ("network.peer.address", "network.peer.port"),
        ("net.peer.ip", "net.peer.port"),
    ] {
        assert_eq!(text(address), "127.0.0.1");
        assert_eq!(attributes[port], Value::I64(i64::from(client.port())));
    }
    assert!(!attributes.contains_key("span.kind"));
    assert!(!attributes.contains_key("error"));
}

#[tokio::test(flavor = "current_thread")]
async fn failed_request_span_has_error_status_with_a_description() {
    let (spans, _) = export_one_request(app(), "/fails/7").await;

    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].name, "GET /fails/{id}");
    assert_eq!(
        spans[0].status,
        Status::error("loading user 7: connection refused")
    );
    assert_eq!(
        attributes(&spans[0])["http.response.status_code"],
        Value::I64(500)
    );
    // The cause's type, where the error names it; the status description above is unchanged.
    let exception_type = attributes(&spans[0])["exception.type"].to_string();
    assert!(
        exception_type.ends_with("support::LoadFailed"),
        "{exception_type}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn without_connect_info_the_peer_fields_are_omitted() {
    let (provider, exporter, _guard) = export_on_this_thread();

    support::send(&app(), "/users/7").await;

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let attributes = attributes(&spans[0]);
    assert_eq!(spans[0].span_kind, SpanKind::Server);
    for key in [
        "client.address",
        "network.peer.address",
        "net.peer.ip",
        "net.peer.port",
    ] {
        assert!(!attributes.contains_key(key), "{key} in {attributes:#?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_streamed_response_span_lasts_until_its_body_ends() {
    let (spans, _) = export_one_request(app(), "/export/7").await;

    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "GET /export/{id}");
    assert_eq!(span.status, Status::Unset);
    assert_eq!(
        attributes(span)["http.response.status_code"],
        Value::I64(200)
    );
    let lasted = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        lasted >= STREAMING,
        "the span ended after {lasted:?}, before the body did"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_streamed_body_that_fails_gives_its_span_the_error_status() {
    let (spans, _) = export_one_request(app(), "/export-fails/7").await;

    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "GET /export-fails/{id}");
    assert_eq!(
        span.status,
        Status::error("loading user 7: connection refused")
    );
    assert_eq!(
        attributes(span)["http.response.status_code"],
        Value::I64(200),
        "the status the client got"
    );
    let lasted = span.end_time.duration_since(span.start_time).unwrap();
    assert!(lasted >= STREAMING, "{lasted:?}");
}
