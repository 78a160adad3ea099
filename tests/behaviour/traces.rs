//! The feature `opentelemetry`, over real HTTP on 127.0.0.1, through tracing-opentelemetry into the
//! OpenTelemetry SDK's in-memory exporter: the server span joins the caller's trace from W3C
//! `traceparent` and B3 (single and multiple) headers, malformed headers give a root span and the
//! normal response, and a failing request's report names its trace.

#![cfg(feature = "opentelemetry")]

use crate::support;
use crate::support::b3;
use support::fails;

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    routing::{future::RouteFuture, get},
};
use opentelemetry::{
    propagation::TextMapCompositePropagator,
    trace::{SpanId, SpanKind, TraceId},
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::util::MapFutureLayer;
use tracing::{Instrument, subscriber::DefaultGuard};
use unhandled::{ErrorContext, ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

use support::{Captured, Events};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

async fn user() -> &'static str {
    "user"
}

/// What one test sees: the spans exported and the events captured on its thread.
struct Observed {
    _provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
    events: Events,
    _guard: DefaultGuard,
}

impl Observed {
    fn spans(&self) -> Vec<SpanData> {
        self.exporter.get_finished_spans().unwrap()
    }

    fn span(&self, name: &str) -> SpanData {
        let spans = self.spans();
        spans
            .iter()
            .find(|span| span.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
    }

    fn event(&self, message: &str) -> Captured {
        let events = self.events.all();
        events
            .iter()
            .find(|event| event.fields.get("message").map(String::as_str) == Some(message))
            .cloned()
            .unwrap_or_else(|| panic!("no event {message:?} in {events:#?}"))
    }
}

/// W3C and B3 propagators, as an application with both kinds of callers installs them; spans and
/// events of this thread exported and captured.
fn observe() -> Observed {
    static PROPAGATOR: std::sync::Once = std::sync::Once::new();
    PROPAGATOR.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(b3::B3),
        ]));
    });
    let exported = support::export_spans();
    Observed {
        _provider: exported.provider,
        exporter: exported.exporter,
        events: exported.events,
        _guard: exported.guard,
    }
}

/// Serves `app` on 127.0.0.1 (on this thread's runtime) and sends `GET path` with `headers`; the
/// status code.
async fn fetch(app: Router, path: &str, headers: &[(&str, &str)]) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).await.unwrap();
    server.abort();
    response[9..12].parse().unwrap()
}

fn logged_app(reporting: &ReportingErrorHandler) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/fails", get(fails))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()))
}

fn hex(id: TraceId) -> String {
    id.to_string()
}

/// Serves `GET /users/7` with `headers` through the logged app, observing what it exports.
async fn observe_users_request(headers: &[(&str, &str)]) -> Observed {
    let observed = observe();
    let reporting = ReportingErrorHandler::builder().build();
    assert_eq!(
        fetch(logged_app(&reporting), "/users/7", headers).await,
        200
    );
    observed
}

/// Asserts that the server span of `GET /users/{id}` joined trace `TRACE` under span `PARENT`.
async fn assert_joins(headers: &[(&str, &str)]) {
    let observed = observe_users_request(headers).await;
    let span = observed.span("GET /users/{id}");
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(hex(span.span_context.trace_id()), TRACE, "{headers:?}");
    assert_eq!(span.parent_span_id, SpanId::from_hex(PARENT).unwrap());
    assert!(span.parent_span_is_remote);
    // The end event names the same trace, so that the log line joins it.
    assert_eq!(observed.event("request completed").field("trace_id"), TRACE);
}

#[tokio::test(flavor = "current_thread")]
async fn w3c_traceparent_makes_the_server_span_a_child_of_the_caller() {
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    assert_joins(&[("traceparent", &traceparent), ("tracestate", "vendor=1")]).await;
}

#[tokio::test(flavor = "current_thread")]
async fn b3_single_header_makes_the_server_span_a_child_of_the_caller() {
    assert_joins(&[("b3", &format!("{TRACE}-{PARENT}-1"))]).await;
}

#[tokio::test(flavor = "current_thread")]
async fn b3_multiple_headers_make_the_server_span_a_child_of_the_caller() {
    assert_joins(&[
        ("X-B3-TraceId", TRACE),
        ("X-B3-SpanId", PARENT),
        ("X-B3-Sampled", "1"),
    ])
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn no_header_or_a_malformed_one_gives_a_root_span_and_the_normal_response() {
    let cases: [&[(&str, &str)]; 7] = [
        &[],
        &[("traceparent", "00-not-a-trace-01")],
        &[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )],
        &[("b3", "garbage")],
        &[("b3", "4bf92f3577b34da6a3ce929d0e0e4736")],
        &[("X-B3-TraceId", "xyz"), ("X-B3-SpanId", PARENT)],
        &[("X-B3-TraceId", TRACE), ("X-B3-SpanId", "0000000000000000")],
    ];
    for headers in cases {
        let span = observe_users_request(headers).await.span("GET /users/{id}");
        assert_eq!(span.parent_span_id, SpanId::INVALID, "{headers:?}");
        assert_ne!(hex(span.span_context.trace_id()), TRACE, "{headers:?}");
        assert!(span.span_context.is_valid());
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_logging_layers_failure_event_names_the_callers_trace() {
    let observed = observe();
    let reporting = ReportingErrorHandler::builder().build();
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let status = fetch(
        logged_app(&reporting),
        "/fails",
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(observed.event("request failed").field("trace_id"), TRACE);
    assert_eq!(reporting.unhandled_count(), 0, "logged, so not counted");
}

/// Records what a custom handler sees of the trace.
fn recording(
    seen: &Arc<std::sync::Mutex<Vec<Option<String>>>>,
) -> ReportingErrorHandler<impl unhandled::ServerErrorHandler> {
    let seen = Arc::clone(seen);
    ReportingErrorHandler::builder().wrap(
        move |_: &unhandled::Error,
              context: &ErrorContext<'_>|
              -> Option<axum::response::Response> {
            let trace = context.trace_id().map(|id| id.to_string());
            seen.lock().unwrap().push(trace);
            None
        },
    )
}

/// A span around the error handler, as tower-http's `TraceLayer` makes with tracing-opentelemetry:
/// a failure's report names that span's trace, and so does the handler's `ErrorContext`.
#[tokio::test(flavor = "current_thread")]
async fn a_reports_sample_names_the_trace_of_the_span_the_failure_happened_in() {
    let observed = observe();
    let seen = Arc::default();
    let reporting = recording(&seen);
    let app = Router::new()
        .route("/fails", get(fails))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(MapFutureLayer::new(|future: RouteFuture<Infallible>| {
            future.instrument(tracing::info_span!("outer", otel.kind = "server"))
        }));
    assert_eq!(fetch(app, "/fails", &[]).await, 500);
    reporting.shutdown().await;

    let outer = hex(observed.span("outer").span_context.trace_id());
    let reports = observed.events.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].field("sample.trace_id"), outer);
    assert_eq!(*seen.lock().unwrap(), [Some(outer)]);
}

/// Without any span, the report names the trace of the request's `traceparent` header; without
/// that either, no trace.
#[tokio::test(flavor = "current_thread")]
async fn without_a_span_the_sample_names_the_traceparent_headers_trace_else_none() {
    let observed = observe();
    let seen = Arc::default();
    let reporting = recording(&seen);
    let app = Router::new()
        .route("/fails", get(fails))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    assert_eq!(
        fetch(app.clone(), "/fails", &[("traceparent", &traceparent)]).await,
        500
    );
    reporting.shutdown().await;
    assert_eq!(
        fetch(app, "/fails", &[("traceparent", "00-bad-01")]).await,
        500
    );
    reporting.shutdown().await;

    assert!(observed.spans().is_empty(), "{:?}", observed.spans());
    let reports = observed.events.reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0].field("sample.trace_id"), TRACE);
    assert!(
        !reports[1].fields.contains_key("sample.trace_id"),
        "{:?}",
        reports[1]
    );
    assert_eq!(*seen.lock().unwrap(), [Some(TRACE.to_owned()), None]);
}
