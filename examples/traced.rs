//! What an APM receives from `LoggingLayer`'s server span: a few routes served with the feature
//! `opentelemetry`, every span exported to stdout (kind, name, trace and parent ids, attributes).
//!
//! ```text
//! cargo run --example traced --features opentelemetry        # serves on 127.0.0.1:3001
//! curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
//!      http://127.0.0.1:3001/users/7
//! curl http://127.0.0.1:3001/error
//! ```
//!
//! The first span joins the trace of the `traceparent` header, as a child of its span; the second
//! starts a new trace. The W3C propagator is installed here; a service whose callers send B3
//! headers installs a B3 propagator as well (a `TextMapCompositePropagator`).

use std::{fmt::Write as _, net::SocketAddr};

use axum::{Router, routing::get};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use tracing_subscriber::{EnvFilter, prelude::*};
use unhandled::{Error, LoggingLayer};

/// Prints each finished span on one line.
#[derive(Debug)]
struct PrintSpans;

impl SpanExporter for PrintSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        for span in batch {
            let mut attributes = String::new();
            for attribute in &span.attributes {
                let _ = write!(attributes, " {}={}", attribute.key, attribute.value);
            }
            println!(
                "span kind={:?} name={:?} trace_id={} span_id={} parent_span_id={}{} status={:?}{attributes}",
                span.span_kind,
                span.name,
                span.span_context.trace_id(),
                span.span_context.span_id(),
                span.parent_span_id,
                if span.parent_span_is_remote {
                    " (remote)"
                } else {
                    ""
                },
                span.status,
            );
        }
        Ok(())
    }
}

async fn user() -> &'static str {
    "user 7\n"
}

async fn error() -> unhandled::Result<&'static str> {
    Err(Error::msg("the order service refused"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(PrintSpans)
        .build();
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with(tracing_subscriber::fmt::layer())
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("traced-example")))
        .init();

    let app = Router::new()
        .route("/users/{id}", get(user))
        .route("/error", get(error))
        .layer(
            LoggingLayer::new()
                .request_level(tracing::Level::INFO)
                .success_level(tracing::Level::INFO),
        )
        .layer(unhandled::layer());

    let addr: SocketAddr = match std::env::var("ADDR") {
        Ok(text) => text.parse().map_err(|error| {
            format!("invalid ADDR={text:?}: {error}; expected e.g. 127.0.0.1:3001")
        })?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3001)),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    provider.shutdown()?;
    Ok(())
}
