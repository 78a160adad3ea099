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
//! - `GET /not-found`: an intentional 404 via `Error::status` (not counted)
//! - `GET /logged/error`, `GET /logged/panic`: the same failures behind `unhandled::LoggingLayer`,
//!   logged at once and never counted
//! - `GET /metrics`: Prometheus text, including `http_server_unhandled_errors_total`

use std::{fmt, net::SocketAddr, time::Duration};

use axum::{Router, http::StatusCode, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use unhandled::{Error, LoggingLayer, ReportingErrorHandler};

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

async fn ok() -> &'static str {
    "ok\n"
}

async fn error() -> unhandled::Result<&'static str> {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "database refused");
    Err(QueryFailed(refused))?
}

async fn panic() -> &'static str {
    panic!("the handler divided by zero")
}

async fn not_found() -> unhandled::Result<&'static str> {
    Err(Error::status(StatusCode::NOT_FOUND))
}

fn app(metrics: PrometheusHandle) -> Router {
    let logged = Router::new()
        .route("/logged/error", get(error))
        .route("/logged/panic", get(panic))
        .layer(LoggingLayer::new());
    Router::new()
        .route("/ok", get(ok))
        .route("/error", get(error))
        .route("/panic", get(panic))
        .route("/not-found", get(not_found))
        .merge(logged)
        .layer(unhandled::layer())
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
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
            format!("invalid ADDR={text:?}: {error}; expected e.g. 127.0.0.1:3000")
        })?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let reporting = ReportingErrorHandler::global();
    let _flush_on_exit = reporting.shutdown_guard();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "listening on http://{} (report interval {})",
        listener.local_addr()?,
        describe_interval(reporting.interval())
    );
    axum::serve(listener, app(metrics))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn describe_interval(interval: Duration) -> String {
    if interval.is_zero() {
        "off".to_owned()
    } else {
        format!("{interval:?}")
    }
}
