//! Exactness under load: 8 tasks × 10,000 requests with mixed outcomes on a multi-thread runtime,
//! while the reporter's shortest interval (500 ms) fires, and a `shutdown()` halfway through
//! reports and restarts the task. Afterwards the striped counter, the
//! breakdown, the exported metric and the totals of the logged reports each equal exactly the
//! number of unlogged errors sent. Its own test binary: it installs the global recorder, the
//! global subscriber and a quiet panic hook.

mod support;
use support::{fails, panics};

use std::time::Duration;

use axum::{Router, http::StatusCode, routing::get};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::prelude::*;
use unhandled::{Error, ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

use support::{CaptureLayer, Events, send};

const TASKS: usize = 8;
const REQUESTS_PER_TASK: usize = 10_000;
/// Each task cycles through these; the first two are unlogged errors.
const PATHS: [(&str, StatusCode); 5] = [
    ("/error/1", StatusCode::INTERNAL_SERVER_ERROR),
    ("/panic", StatusCode::INTERNAL_SERVER_ERROR),
    ("/missing", StatusCode::NOT_FOUND),
    ("/ok", StatusCode::OK),
    ("/logged", StatusCode::INTERNAL_SERVER_ERROR),
];

#[test]
fn every_unlogged_error_is_counted_exported_and_reported_exactly_once() {
    std::panic::set_hook(Box::new(|_| {})); // 16,000 panics: keep stderr readable
    let events = Events::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(CaptureLayer::new(&events)),
    )
    .unwrap();
    let metrics = PrometheusBuilder::new().install_recorder().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::from_millis(1)) // raised to the shortest, 500 ms
        .build();
    let logged = Router::new()
        .route("/logged", get(fails))
        .layer(LoggingLayer::new());
    let app = Router::new()
        .route("/error/{id}", get(fails))
        .route("/panic", get(panics))
        .route(
            "/missing",
            get(|| async { Err::<(), _>(Error::status(StatusCode::NOT_FOUND)) }),
        )
        .route("/ok", get(|| async { "ok" }))
        .merge(logged)
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(());

    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let app = app.clone();
                let reporting = reporting.clone();
                tokio::spawn(async move {
                    for request in 0..REQUESTS_PER_TASK {
                        if task == 0 && request == REQUESTS_PER_TASK / 2 {
                            // A report now, whatever the machine's speed; the next error restarts
                            // the task while the other tasks go on counting.
                            reporting.shutdown().await;
                        }
                        let (path, expected) = PATHS[(request + task) % PATHS.len()];
                        assert_eq!(send(&app, path).await.0, expected, "{path}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        reporting.shutdown().await;
    });
    // The load is over: failed assertions below must be heard.
    drop(std::panic::take_hook());

    let per_path = (TASKS * REQUESTS_PER_TASK / PATHS.len()) as u64;
    let unlogged = 2 * per_path;
    let reports = events.reports();
    assert!(
        reports.len() > 1,
        "the interval fired {} times",
        reports.len()
    );
    let reported: u64 = reports
        .iter()
        .map(|report| report.field("count").parse::<u64>().unwrap())
        .sum();
    assert_eq!(reported, unlogged, "totals of {} reports", reports.len());
    assert_eq!(reporting.unhandled_count(), unlogged);
    let breakdown = reporting.breakdown();
    assert_eq!(breakdown.total(), unlogged);
    assert_eq!(breakdown.groups.len(), 2);
    let text = metrics.render();
    for (route, kind) in [("/error/{id}", "error"), ("/panic", "panic")] {
        let line = format!(
            r#"http_server_unhandled_errors_total{{method="GET",route="{route}",kind="{kind}"}} {per_path}"#
        );
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    let exported: u64 = text
        .lines()
        .filter(|line| line.starts_with("http_server_unhandled_errors_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(exported, unlogged);
    let logged_failures = events
        .all()
        .iter()
        .filter(|event| {
            event.target == unhandled::logging::TARGET
                && event.fields.get("route").is_some_and(|r| r == "/logged")
        })
        .count() as u64;
    assert_eq!(logged_failures, per_path);
}
