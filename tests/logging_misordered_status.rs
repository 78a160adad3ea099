//! A `LoggingLayer` outside the error handler, in an application whose failures are all plain
//! 5xx responses (its own error type renders them, no `unhandled::Error` attached): it still says
//! once how to reorder, logs each failure as `kind="status"`, and each is counted once. In its
//! own test binary: the warning is said once per process.

mod support;

use std::time::Duration;

use axum::{Router, http::StatusCode, routing::get};
use unhandled::{ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

use support::{capture, send};

#[tokio::test]
async fn a_logging_layer_outside_the_handler_warns_about_plain_5xx_too() {
    let (events, _guard) = capture();
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::from_secs(10))
        .build();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong") }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(LoggingLayer::new());

    for _ in 0..3 {
        assert_eq!(
            send(&app, "/orders").await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    let logged: Vec<_> = events
        .all()
        .into_iter()
        .filter(|event| event.target == unhandled::logging::TARGET)
        .collect();
    let warnings = logged
        .iter()
        .filter(|event| event.fields.contains_key("fix"))
        .count();
    assert_eq!(warnings, 1, "{logged:?}");
    let kinds: Vec<&str> = logged
        .iter()
        .filter(|event| event.fields.contains_key("kind"))
        .map(|event| event.field("kind"))
        .collect();
    assert_eq!(kinds, ["status", "status", "status"]);
    assert_eq!(reporting.unhandled_count(), 3);
}
