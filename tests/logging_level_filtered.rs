//! An error is only "logged" if the failure event was enabled: a subscriber that drops `WARN`
//! leaves it unlogged, and so counted. In its own test binary, because `tracing` caches which
//! callsites are enabled process-wide, and the other tests install subscribers that enable all.

mod support;
use support::{fails, panics};

use std::time::Duration;

use axum::{Router, routing::get};
use tracing_subscriber::{filter::LevelFilter, prelude::*};
use unhandled::{ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

use support::send;

#[tokio::test]
async fn failure_level_filtered_out_means_not_logged_and_counted() {
    let events = support::Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(support::CaptureLayer::new(&events).with_filter(LevelFilter::ERROR));
    let _guard = tracing::subscriber::set_default(subscriber);
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::from_secs(1))
        .build();
    let app = Router::new()
        .route("/users/{id}", get(fails))
        .route("/panic", get(panics))
        .route(
            "/plain-500",
            get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    send(&app, "/users/7").await;
    send(&app, "/panic").await;
    send(&app, "/plain-500").await;

    assert!(events.all().is_empty(), "{:?}", events.all());
    assert_eq!(reporting.unhandled_count(), 3);
}
