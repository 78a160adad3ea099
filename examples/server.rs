//! The demo server: every way a handler can fail, behind `unhandled::layer()`.
//!
//! ```text
//! cargo run --example server                 # serves on 127.0.0.1:3000
//! ADDR=127.0.0.1:8080 UNHANDLED_ERRORS_REPORT_INTERVAL=5s RUST_LOG=debug cargo run --example server
//! ```
//!
//! - `GET /ok`: 200
//! - `GET /error`: an unhandled error with a two-level source chain (counted)
//! - `GET /panic`: a panic (counted; the connection survives)
//! - `GET /spawn-error`, `GET /spawn-panic`: a `202` whose handler hands work to a reported task
//!   that fails or panics afterwards (counted under the route, `kind="task"` / `"task_panic"`)
//! - `GET /users/{name}`: an error that echoes the path parameter, as many handlers' errors do
//!   (counted; whatever a client puts in the name, the report on standard error stays one line)
//! - `GET /not-found`: an intentional 404 via `Error::status` (not counted)
//! - `GET /app-error`: axum's anyhow-error-response pattern, an application error type that
//!   renders its own `500` (counted as `kind="status"`)
//! - `GET /app-error/attached`: the same error type attaching its cause in one line (counted as
//!   `kind="error"`, with the whole context chain in the report)
//! - `GET /logged/error`, `GET /logged/panic`, `GET /logged/app-error`: the same failures behind
//!   `unhandled::LoggingLayer`, logged at once and never counted
//! - `GET /own-log/error`: the same error logged by the handler itself with
//!   `#[tracing::instrument(err)]`; `unhandled::subscriber::layer()` in the subscriber makes it
//!   count as logged (never counted)
//! - `GET /stream-error`: a `200` whose streamed body fails after its first chunk (counted as
//!   `kind="body"`: the client gets a truncated response, the connection is closed)
//! - `GET /stream-panic`: a `200` whose streamed body panics after its first chunk (counted as
//!   `kind="panic"`; the server goes on serving)
//! - `GET /logged/stream-error`: the failing stream behind `unhandled::LoggingLayer`, logged when
//!   it fails and never counted
//! - `GET /metrics`: Prometheus text, including `http_server_unhandled_errors_total`
//!
//! For `benches/wrk.sh` and `benches/server_instructions.sh`, `UNHANDLED_BARE=1` serves the same
//! routes with neither `unhandled::layer()` nor the logging layer (failures go uncounted), and
//! `UNHANDLED_BARE=pass-through` puts a layer that does nothing where they were: what any
//! `Router::layer` costs in axum, which boxes every layered route; `UNHANDLED_BARE=catch-panic` puts
//! tower-http's `CatchPanicLayer` there, which only catches panics. Every response carries
//! `x-unhandled-variant: bare`, `pass-through`, `catch-panic` or `layered`, so that a benchmark can
//! tell them apart. `UNHANDLED_BARE=stack` and `UNHANDLED_BARE=tower-stack` serve every route
//! behind the whole stack a user runs, in one `ServiceBuilder` each: `unhandled::layer()` and
//! `LoggingLayer`, or tower-http's `TraceLayer` and `CatchPanicLayer` as axum's examples write
//! them (`benches/server_instructions.sh`, `ONLY=stack`).

use std::{fmt, net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use futures_util::{StreamExt as _, stream};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::util::MapResponseLayer;
use tracing_subscriber::{EnvFilter, prelude::*};
use unhandled::{Error, LoggingLayer, ReportingErrorHandler, ResponseExt as _, TaskExt as _};

#[derive(Debug)]
struct QueryFailed(std::io::Error);

impl fmt::Display for QueryFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loading the order history")
    }
}

impl std::error::Error for QueryFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// axum's anyhow-error-response example: the application's error type renders its own `500`.
struct AppError(anyhow::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = format!("Something went wrong: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

/// The same error type, handing its cause to the layer in one line.
struct AttachedAppError(anyhow::Error);

impl IntoResponse for AttachedAppError {
    fn into_response(self) -> Response {
        let body = format!("Something went wrong: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, body)
            .into_response()
            .with_cause(self.0)
    }
}

fn list_orders() -> anyhow::Result<()> {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "database refused");
    Err(anyhow::Error::new(QueryFailed(refused)).context("listing the orders of user 7"))
}

async fn app_error() -> Result<(), AppError> {
    list_orders()?;
    Ok(())
}

async fn app_error_attached() -> Result<(), AttachedAppError> {
    list_orders().map_err(AttachedAppError)
}

async fn ok() -> &'static str {
    "ok\n"
}

async fn error() -> unhandled::Result<&'static str> {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "database refused");
    Err(QueryFailed(refused))?
}

async fn user(axum::extract::Path(name): axum::extract::Path<String>) -> unhandled::Result<()> {
    Err(unhandled::Error::msg(format!("no user named {name}")))
}

async fn panic() -> &'static str {
    panic!("the handler divided by zero")
}

/// Work handed off: the welcome mail fails after the `202` was sent.
async fn send_welcome_mail() -> unhandled::Result<()> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "the relay refused");
    Err(QueryFailed(refused))?
}

async fn spawn_error() -> StatusCode {
    tokio::spawn(send_welcome_mail().reported());
    StatusCode::ACCEPTED
}

async fn spawn_panic() -> StatusCode {
    unhandled::spawn(async {
        let cache: Vec<u8> = Vec::new();
        let _ = cache[7]; // the cache warmer indexes an empty cache
    });
    StatusCode::ACCEPTED
}

async fn not_found() -> unhandled::Result<&'static str> {
    Err(Error::status(StatusCode::NOT_FOUND))
}

/// An export that streams one row, then fails (`fail`) or panics.
fn export(fail: bool) -> Body {
    let first = stream::once(async { Ok(Bytes::from_static(b"row 1\n")) });
    let rest = stream::once(async move {
        // Long enough for the head and the first row to reach the client.
        tokio::time::sleep(Duration::from_millis(10)).await;
        if !fail {
            panic!("the exporter indexed past the last row");
        }
        let gone = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "replica went away");
        Err(QueryFailed(gone))
    });
    Body::from_stream(first.chain(rest))
}

async fn stream_error() -> Body {
    export(true)
}

async fn stream_panic() -> Body {
    export(false)
}

fn routes() -> Router {
    Router::new()
        .route("/ok", get(ok))
        .route("/stream-error", get(stream_error))
        .route("/stream-panic", get(stream_panic))
        .route("/error", get(error))
        .route("/panic", get(panic))
        .route("/spawn-error", get(spawn_error))
        .route("/spawn-panic", get(spawn_panic))
        .route("/users/{name}", get(user))
        .route("/not-found", get(not_found))
        .route("/app-error", get(app_error))
        .route("/app-error/attached", get(app_error_attached))
        .route("/own-log/error", get(own_log_error))
}

/// Logs its own error at ERROR (`instrument(err)`): logged, so not counted.
#[tracing::instrument(err)]
async fn own_log_error() -> unhandled::Result<&'static str> {
    error().await
}

fn logged_routes() -> Router {
    Router::new()
        .route("/logged/error", get(error))
        .route("/logged/panic", get(panic))
        .route("/logged/app-error", get(app_error))
        .route("/logged/stream-error", get(stream_error))
}

/// What the demo serves its routes with (`UNHANDLED_BARE`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `unhandled::layer()`, and the logging layer on `/logged/*`.
    Layered,
    /// Neither.
    Bare,
    /// A layer that does nothing, in place of both.
    PassThrough,
    /// tower-http's `CatchPanicLayer`, in place of both.
    CatchPanic,
    /// `unhandled::layer()` outside `LoggingLayer`, around every route.
    Stack,
    /// tower-http's `TraceLayer` outside `CatchPanicLayer`, around every route.
    TowerStack,
}

impl Variant {
    const VAR: &str = "UNHANDLED_BARE";

    fn from_env() -> Result<Self, String> {
        match std::env::var(Self::VAR).as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("" | "0") => Ok(Self::Layered),
            Ok("1") => Ok(Self::Bare),
            Ok("pass-through") => Ok(Self::PassThrough),
            Ok("catch-panic") => Ok(Self::CatchPanic),
            Ok("stack") => Ok(Self::Stack),
            Ok("tower-stack") => Ok(Self::TowerStack),
            Ok(other) => Err(format!(
                "invalid {}={other:?}: expected \"1\" (no layer), \"pass-through\" (a layer \
                 that does nothing), \"catch-panic\" (tower-http's CatchPanicLayer), \"stack\" \
                 (unhandled::layer() and LoggingLayer on every route), \"tower-stack\" \
                 (tower-http's TraceLayer and CatchPanicLayer) or \"0\" (unhandled's layers, \
                 the default)",
                Self::VAR
            )),
            Err(std::env::VarError::NotUnicode(value)) => Err(format!(
                "invalid {}={value:?}: not UTF-8; expected \"1\", \"pass-through\", \
                 \"catch-panic\", \"stack\", \"tower-stack\" or \"0\"",
                Self::VAR
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Layered => "layered",
            Self::Bare => "bare",
            Self::PassThrough => "pass-through",
            Self::CatchPanic => "catch-panic",
            Self::Stack => "stack",
            Self::TowerStack => "tower-stack",
        }
    }
}

fn app(metrics: PrometheusHandle, variant: Variant) -> Router {
    let served = match variant {
        Variant::Bare => routes().merge(logged_routes()),
        Variant::PassThrough => routes()
            .merge(logged_routes())
            .layer(MapResponseLayer::new(|response: Response| response)),
        Variant::CatchPanic => routes()
            .merge(logged_routes())
            .layer(tower_http::catch_panic::CatchPanicLayer::new()),
        Variant::Layered => {
            let logged = logged_routes().layer(LoggingLayer::new());
            routes().merge(logged).layer(unhandled::layer())
        }
        Variant::Stack => routes().merge(logged_routes()).layer(
            tower::ServiceBuilder::new()
                .layer(unhandled::layer())
                .layer(LoggingLayer::new()),
        ),
        Variant::TowerStack => routes().merge(logged_routes()).layer(
            tower::ServiceBuilder::new()
                .layer(tower_http::trace::TraceLayer::new_for_http())
                .layer(tower_http::catch_panic::CatchPanicLayer::new()),
        ),
    };
    let variant = HeaderValue::from_static(variant.name());
    served
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .layer(MapResponseLayer::new(move |mut response: Response| {
            let name = axum::http::HeaderName::from_static("x-unhandled-variant");
            response.headers_mut().insert(name, variant.clone());
            response
        }))
}

#[tokio::main]
async fn main() -> Result<(), Fatal> {
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with(tracing_subscriber::fmt::layer())
        .with(unhandled::subscriber::layer()) // the application's own error logs count as logged
        .init();
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    let addr: SocketAddr = match std::env::var("ADDR") {
        Ok(text) => text.parse().map_err(|error| {
            Fatal(format!(
                "invalid ADDR={text:?}: {error}; expected e.g. 127.0.0.1:3000"
            ))
        })?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let variant = Variant::from_env().map_err(Fatal)?;
    let reporting = ReportingErrorHandler::global();
    let _flush_on_exit = reporting.shutdown_guard();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let serving = match variant {
        Variant::Layered => format!(
            "report interval {}",
            describe_interval(reporting.interval())
        ),
        Variant::Bare => "bare: without unhandled::layer()".to_owned(),
        Variant::PassThrough => "pass-through: a layer that does nothing".to_owned(),
        Variant::CatchPanic => "catch-panic: tower-http's CatchPanicLayer".to_owned(),
        Variant::Stack => "stack: unhandled::layer() and LoggingLayer on every route".to_owned(),
        Variant::TowerStack => {
            "tower-stack: tower-http's TraceLayer and CatchPanicLayer".to_owned()
        }
    };
    println!("listening on http://{} ({serving})", listener.local_addr()?);
    // Stopped by Ctrl+C or by SIGTERM (how containers stop a service): the last request is
    // answered, then the guard reports what is pending as main returns.
    axum::serve(listener, app(metrics, variant))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Ctrl+C, or SIGTERM where there are signals.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => drop(terminate.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// What `main` fails with: printed as its text (`Error: invalid ADDR=...`), not quoted.
struct Fatal(String);

impl fmt::Debug for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Fatal {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

fn describe_interval(interval: Duration) -> String {
    if interval.is_zero() {
        "off".to_owned()
    } else {
        format!("{interval:?}")
    }
}
