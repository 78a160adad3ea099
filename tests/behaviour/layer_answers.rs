//! A 5xx that a layer between the error handler and the handler answered, which no
//! `IntoResponse` of the application built: tower-http's `TimeoutLayer` 504 and a load-shed 503
//! through axum's `HandleErrorLayer`. Each is counted with advice that fits who built it, and
//! marked intentional where it passes, it is not counted.

use std::time::Duration;

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use unhandled::ErrorHandlerLayer;

use crate::support::{self, Events, capture, send};

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "never"
}

/// Marks a timeout's answer intentional where it passes: the advice's fix.
async fn intentional_timeouts(mut response: Response) -> Response {
    if response.status() == StatusCode::GATEWAY_TIMEOUT {
        let status = response.status();
        response
            .extensions_mut()
            .insert(unhandled::Error::status(status));
    }
    response
}

/// One failure counted, on `route`, a 5xx without a cause: the advice its report gives.
async fn the_one_report_s_fix(
    reporting: &unhandled::ReportingErrorHandler,
    events: &Events,
    route: &str,
) -> String {
    assert_eq!(
        reporting.unhandled_count(),
        1,
        "{:?}",
        reporting.breakdown()
    );
    reporting.shutdown().await;
    let report = &events.reports()[0];
    assert_eq!(report.field("sample.route"), route);
    assert_eq!(report.field("sample.kind"), "status");
    report.field("sample.fix").to_owned()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_timeout_layer_s_504_gets_the_timeout_advice_and_marked_intentional_is_not_counted() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(1));
    let app = Router::new()
        .route("/slow", get(slow).layer(timeout))
        .route(
            "/slow-but-intended",
            get(slow).layer(
                ServiceBuilder::new()
                    .layer(axum::middleware::map_response(intentional_timeouts))
                    .layer(timeout),
            ),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    assert_eq!(send(&app, "/slow").await.0, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        send(&app, "/slow-but-intended").await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    let fix = the_one_report_s_fix(&reporting, &events, "/slow").await;
    assert!(fix.contains("what a timeout layer answers"), "{fix}");
    assert!(
        fix.contains("unhandled::Error::status(response.status())"),
        "{fix}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_load_shed_503_gets_the_shed_advice_and_marked_intentional_is_not_counted() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let (release, released) = tokio::sync::watch::channel(false);
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    // Holds its slot until released, having said that it entered.
    let held = move || {
        let mut released = released.clone();
        let entered = entered_tx.clone();
        async move {
            let _ = entered.send(());
            let _ = released.wait_for(|released| *released).await;
            "served"
        }
    };
    // Sheds when its one slot is taken, as a service under load does.
    let shedding = |intended: bool| {
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |_: BoxError| async move {
                let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
                if intended {
                    let shed = unhandled::Error::status(StatusCode::SERVICE_UNAVAILABLE);
                    response.extensions_mut().insert(shed);
                }
                response
            }))
            .load_shed()
            .concurrency_limit(1)
    };
    let app = Router::new()
        .route("/busy", get(held.clone()).layer(shedding(false)))
        .route("/busy-by-design", get(held).layer(shedding(true)))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        // Routes made once, so that each keeps one concurrency limit (without a state, axum
        // makes a handler's route, layers included, per request).
        .with_state(());
    for path in ["/busy", "/busy-by-design"] {
        let first = tokio::spawn({
            let app = app.clone();
            async move { send(&app, path).await.0 }
        });
        // The first request holds the slot until released: the second is shed.
        entered.recv().await.unwrap();
        assert_eq!(send(&app, path).await.0, StatusCode::SERVICE_UNAVAILABLE);
        release.send_replace(true);
        assert_eq!(first.await.unwrap(), StatusCode::OK);
        release.send_replace(false);
    }
    let fix = the_one_report_s_fix(&reporting, &events, "/busy").await;
    assert!(fix.contains("load-shedding or rate-limit layer"), "{fix}");
    assert!(
        fix.contains("unhandled::Error::status(StatusCode::SERVICE_UNAVAILABLE)"),
        "{fix}"
    );
}
