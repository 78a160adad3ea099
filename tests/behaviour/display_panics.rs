//! An error whose `Display` panics is still rendered, counted, reported and logged (with a
//! placeholder for its text).

use std::{fmt, time::Duration};

use axum::{Router, http::StatusCode, routing::get};
use unhandled::{ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

use crate::support::{capture, send};

/// An error whose `Display` panics.
#[derive(Debug)]
struct Treacherous;

impl fmt::Display for Treacherous {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of Treacherous")
    }
}

impl std::error::Error for Treacherous {}

async fn treacherous() -> unhandled::Result<()> {
    Err(Treacherous)?
}

#[tokio::test(start_paused = true)]
async fn error_whose_display_panics_is_rendered_counted_reported_and_logged() {
    let (events, _guard) = capture();
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::from_secs(1))
        .build();
    let logged = Router::new()
        .route("/logged", get(treacherous))
        .layer(LoggingLayer::new());
    let app = Router::new()
        .route("/", get(treacherous))
        .merge(logged)
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(send(&app, "/").await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        send(&app, "/logged").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    assert_eq!(reporting.unhandled_count(), 1);
    let reports = events.reports();
    assert_eq!(reports.len(), 1, "{:#?}", events.all());
    assert!(
        reports[0]
            .field("sample.error")
            .contains("Display implementation panicked")
    );
    let failure = events
        .all()
        .into_iter()
        .find(|event| event.target == unhandled::logging::TARGET)
        .unwrap();
    assert!(
        failure
            .field("error")
            .contains("Display implementation panicked")
    );
}
