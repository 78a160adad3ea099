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
