//! Log every request, and mark the errors it logged so that no reporter counts them: Armeria's
//! `LoggingService`, the fix the periodic warning asks for.
//!
//! Each request gets one `tracing` span, an OpenTelemetry HTTP server span (`otel.kind =
//! "server"`, `otel.name = "GET /users/{id}"`, the stable HTTP attributes and the peer address when
//! the server runs with `into_make_service_with_connect_info`), and at its end one event with
//! method, path, route, status and latency, plus the error's source chain or the panic message
//! when it failed. A failure is an unhandled [`Error`](crate::Error), a panic, a service `Err`, or
//! any 5xx response.
//!
//! What a client chose is bounded the way OpenTelemetry's conventions say: a method outside the
//! nine standard ones is `http.request.method = "_OTHER"` in a span named `HTTP /route` (its name,
//! cut, in `http.request.method_original`); the values of the usual secrets in `url.query`
//! (`sig`, `X-Goog-Signature`, `access_token`, …: [`LoggingLayer::redact_query_keys`]) are
//! `REDACTED`; error text is cut at 2,048 bytes. A failure sets `error.type`. No header but
//! `user-agent` and no body is read.
//!
//! A response whose body streams (no exact size: `Body::from_stream`, `Sse`, a file) is logged
//! when its body ends, so that the latency and the span cover the whole response. A body that
//! yields an error after the head is a failure (`kind = "body"`, with the error's source chain),
//! and so is a panic while it is polled (`kind = "panic"`); both are marked logged for the error
//! handler. A body dropped before its end (the client left) is logged at the success level as
//! "response body dropped before its end".
//!
//! # Where it goes
//!
//! Inside the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer), outermost among the route's other
//! layers: with `Router::layer`, the layer added *first* is the inner one.
//!
//! ```
//! use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
//! use tower::ServiceExt;
//! use unhandled::{Error, LoggingLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An error counts as logged only where a subscriber records the failure event.
//! tracing_subscriber::fmt().init();
//! let reporting = unhandled::ReportingErrorHandler::builder().build();
//! let app = Router::new()
//!     .route("/", get(|| async { Err::<(), _>(Error::msg("the database is down")) }))
//!     .layer(LoggingLayer::new())                                   // logs it, marks it logged
//!     .layer(unhandled::ErrorHandlerLayer::new(reporting.clone())); // renders it, counts nothing
//!
//! let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! assert_eq!(reporting.unhandled_count(), 0);
//! # }
//! ```
//!
//! Errors raised outside it (in layers wrapped around it) are still counted. A `LoggingLayer`
//! that finds itself outside the error handler still logs each failure, and says once, at `WARN`,
//! that it should move inside.
//!
//! Levels are set per layer:
//!
//! ```
//! use tracing::Level;
//! use unhandled::LoggingLayer;
//!
//! let layer = LoggingLayer::new()
//!     .request_level(Level::INFO)   // the span (default DEBUG)
//!     .success_level(Level::INFO)   // the event of a successful response (default DEBUG)
//!     .failure_level(Level::ERROR); // the event of a failure (default WARN)
//! ```
//!
//! | level | builder | default | what |
//! |---|---|---|---|
//! | request | [`request_level`](LoggingLayer::request_level) | `DEBUG` | the request span |
//! | success | [`success_level`](LoggingLayer::success_level) | `DEBUG` | the end event of a successful response |
//! | failure | [`failure_level`](LoggingLayer::failure_level) | `WARN` | the end event of a failure: an unhandled `Error`, a panic, a service `Err`, or any 5xx |
//!
//! An error counts as logged only when the subscriber records the failure event (target
//! `unhandled::logging`); filtered out, it is counted as usual. The end event carries `method`,
//! `path`, `route`, `status`, `latency_us` (whole microseconds, an integer), `trace_id` (feature
//! `opentelemetry`), and on failure `kind`, `error` (the source chain or the panic message),
//! `location` and `exception.type`.
//!
//! The method, path, route and kind, and the span's `http.*`, `url.path`, `url.scheme` and
//! `network.protocol.version`, are recorded as `Display` values, as tower-http's `TraceLayer`
//! records its own: `fmt` writes them unquoted (`method=GET path=/users/7`), JSON and OpenTelemetry
//! as strings. None of them can hold a space (a URI's path, a token); what a client sent is
//! escaped first (controls, bidirectional marks, `\` and `"`), so that it cannot break or
//! disguise a line. `error` and `user_agent.original`, free text, stay quoted `&str` fields. Why
//! not `&str` fields and a float latency: BENCHMARKS.md, "The whole stack".
//!
//! axum boxes every route again for each `Router::layer` call (about 1,000 instructions per
//! request, whatever the layer). To pay that once, hand both layers to one call in a
//! `tower::ServiceBuilder`, whose first layer is the outermost:
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower::ServiceBuilder;
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "ok" }))
//!     .layer(ServiceBuilder::new().layer(unhandled::layer()).layer(unhandled::LoggingLayer::new()));
//! ```
//!
//! # The span
//!
//! The span is an OpenTelemetry HTTP server span, so that Zipkin-based APMs accept it
//! (`tests/behaviour/server_span.rs` exports it through `tracing-opentelemetry` into the SDK's
//! in-memory exporter and checks each field):
//!
//! | field | value |
//! |---|---|
//! | `otel.kind` | `server` |
//! | `otel.name` | `GET /users/{id}`: method and route template, never the raw path; `HTTP /users/{id}` for a method outside the nine standard ones |
//! | `http.request.method` | the method; `_OTHER` for one outside the nine, whose name (cut at 64 bytes) is `http.request.method_original` |
//! | `url.query` | the query, with the values of the usual secrets (`AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`, `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, `access_token`, `refresh_token`, `id_token`, `client_secret`, `api_key`, `apikey`, `password`, compared without regard to case) `REDACTED`; [`redact_query_keys`](LoggingLayer::redact_query_keys) adds keys, [`record_query(false)`](LoggingLayer::record_query) leaves it out |
//! | `http.route`, `url.path`, `url.scheme`, `network.protocol.version`, `user_agent.original` | from the request |
//! | `http.response.status_code` | from the response |
//! | `client.address`/`client.port`, `network.peer.address`/`network.peer.port`, `net.peer.ip`/`net.peer.port` | the peer, when served with `into_make_service_with_connect_info::<SocketAddr>()` |
//! | `otel.status_code`, `otel.status_description` | `error` and the error text (cut at 2,048 bytes) on a failure or a 5xx |
//! | `error.type` | on a failure: the status code of a 5xx (`500`), a gRPC server-error code's name (`INTERNAL`), else the kind (`panic`, `service`, `body`) |
//!
//! A gRPC call's span is an RPC span named after its method (`grpc.health.v1.Health/Check`, at most
//! 128 bytes; `rpc.system = "grpc"`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), and its
//! event carries `grpc_status`.
//!
//! # Joining the caller's trace
//!
//! With the cargo feature `opentelemetry`, the span is a child of the caller's: the layer reads the
//! request headers through the application's global OpenTelemetry text-map propagator, so W3C
//! `traceparent`/`tracestate` join with the W3C propagator, and B3 (`b3`, or `X-B3-TraceId`,
//! `X-B3-SpanId`, `X-B3-Sampled`) with a B3 propagator. No header, or a malformed one, gives a new
//! root, and the request is served as usual. Every report's sample carries `sample.trace_id` of the
//! failing request, and the end event `trace_id`, so that a log line joins its trace. Without the
//! feature none of this is compiled and no OpenTelemetry crate is a dependency.
//!
//! ```
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
//! use tracing_subscriber::prelude::*;
//!
//! // W3C callers; add a B3 propagator in a TextMapCompositePropagator for Zipkin clients.
//! opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
//! // With OTLP to a Collector: .with_batch_exporter(opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?)
//! let provider = SdkTracerProvider::builder().build();
//! let _default = tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("my-service")))
//!     .set_default();
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/users/{id}", axum::routing::get(|| async { "ok" }))
//!     .layer(unhandled::LoggingLayer::new().request_level(tracing::Level::INFO))
//!     .layer(unhandled::layer());
//! ```
//!
//! Send OTLP to a Collector rather than using the Rust `opentelemetry-zipkin` exporter: that crate
//! is deprecated, and its span conversion never writes `remoteEndpoint`. Through the Collector's
//! Zipkin exporter, `otel.kind = "server"` becomes `"kind": "SERVER"` (APMs such as scouter turn
//! only SERVER spans into request records) and `net.peer.ip`/`net.peer.port` the `remoteEndpoint`.
//! `cargo run --example traced --features opentelemetry` prints each exported span;
//! `tests/behaviour/traces.rs` checks the W3C, B3 single and B3 multiple cases, malformed headers
//! and `sample.trace_id`.

mod body;
mod future;
mod grpc;
mod outcome;
mod service;
mod span;

use tower_layer::Layer;
use tracing::Level;

use self::span::Query;
pub use self::{future::ResponseFuture, service::LoggingService};

/// The `tracing` target of the spans and events of this layer.
pub const TARGET: &str = "unhandled::logging";

/// A [`Layer`] that applies [`LoggingService`]. See the [module docs](mod@crate::logging).
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct LoggingLayer {
    levels: Levels,
    query: Query,
}

#[derive(Debug, Clone, Copy)]
struct Levels {
    request: Level,
    success: Level,
    failure: Level,
}

impl LoggingLayer {
    /// The default levels: span and success at `DEBUG`, failure at `WARN`; the query recorded
    /// with the usual secrets `REDACTED`.
    pub fn new() -> Self {
        Self {
            levels: Levels {
                request: Level::DEBUG,
                success: Level::DEBUG,
                failure: Level::WARN,
            },
            query: Query {
                recorded: true,
                redacted: &[],
            },
        }
    }

    /// Also records the values of these query keys as `REDACTED` in the span's `url.query`
    /// (compared without regard to case), beside the ones redacted by default: `AWSAccessKeyId`,
    /// `Signature`, `sig`, `X-Goog-Signature` (the OpenTelemetry HTTP conventions' list),
    /// `X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, `access_token`,
    /// `refresh_token`, `id_token`, `client_secret`, `api_key`, `apikey` and `password`, and any
    /// key whose letters and digits, percent-decoded and in lowercase, end like a secret: `token`,
    /// `key`, `keyid`, `secret`, `password`, `passwd`, `pwd`, `passphrase`, `signature`, `sig`,
    /// `credential(s)`, `code`, `auth`, `authorization`, `session` (so `X-API-Key`, `token`,
    /// `code` and `%73ig` are all redacted). The query is written escaped: no control,
    /// bidirectional or invisible character a client sent reaches the log raw.
    ///
    /// The keys live for the rest of the process: build the layer once, not per request.
    ///
    /// ```
    /// let layer = unhandled::LoggingLayer::new().redact_query_keys(["session", "otp"]);
    /// ```
    pub fn redact_query_keys<K: Into<String>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        let mut all: Vec<Box<str>> = self.query.redacted.to_vec();
        all.extend(keys.into_iter().map(|key| key.into().into_boxed_str()));
        self.query.redacted = Box::leak(all.into_boxed_slice());
        self
    }

    /// Whether the span records `url.query` at all (default `true`, with secrets redacted):
    /// `false` for a service whose queries carry what no trace should hold.
    ///
    /// ```
    /// let layer = unhandled::LoggingLayer::new().record_query(false);
    /// ```
    pub fn record_query(mut self, recorded: bool) -> Self {
        self.query.recorded = recorded;
        self
    }

    /// The level of the request span (Armeria's request log level).
    pub fn request_level(mut self, level: Level) -> Self {
        self.levels.request = level;
        self
    }

    /// The level of the event for a successful response.
    pub fn success_level(mut self, level: Level) -> Self {
        self.levels.success = level;
        self
    }

    /// The level of the event for a failure. A failure is marked logged (and so not counted) only
    /// when this level is enabled for the target [`TARGET`].
    pub fn failure_level(mut self, level: Level) -> Self {
        self.levels.failure = level;
        self
    }
}

impl LoggingLayer {
    /// `inner`, logged with this layer's settings.
    fn service<S>(&self, inner: S) -> LoggingService<S> {
        LoggingService::with(inner, self.levels, self.query)
    }
}

impl Default for LoggingLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for LoggingLayer {
    type Service = LoggingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.service(inner)
    }
}
