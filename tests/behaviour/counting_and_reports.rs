//! `ReportingErrorHandler`: what is counted, where, and when the periodic report logs.
//! Interval logic runs on tokio's paused clock; nothing here sleeps on a real clock.

use crate::support;
use support::{fails, panics};

use std::{
    sync::{Arc, Barrier},
    time::Duration,
};

use axum::{
    Router,
    http::{Method, StatusCode},
    response::Response,
    routing::get,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::ServiceBuilder;
use tracing::Level;
use unhandled::{
    DefaultErrorHandler, Error, ErrorContext, ErrorHandlerLayer, ErrorKind, ReportingErrorHandler,
    ServerErrorHandler,
};

use support::{capture, load_failed, send};

const INTERVAL: Duration = Duration::from_secs(10);

/// Marks the error a handler returned as logged, as a logging layer inside the error handler would.
fn mark_logged(response: Response) -> Response {
    if let Some(error) = response.extensions().get::<Error>() {
        error.mark_logged();
    }
    response
}

fn reporting() -> ReportingErrorHandler {
    ReportingErrorHandler::builder().interval(INTERVAL).build()
}

fn app(reporting: &ReportingErrorHandler) -> Router {
    Router::new()
        .route("/users/{id}", get(fails).post(panics))
        .route("/panic", get(panics))
        .route(
            "/not-found",
            get(|| async { Err::<(), _>(Error::status(StatusCode::NOT_FOUND)) }),
        )
        .route(
            "/status-500",
            get(|| async { Err::<(), _>(Error::status(StatusCode::INTERNAL_SERVER_ERROR)) }),
        )
        .route(
            "/status-500-with-cause",
            get(|| async {
                Err::<(), _>(
                    Error::status(StatusCode::INTERNAL_SERVER_ERROR).with_cause(load_failed()),
                )
            }),
        )
        .route(
            "/upstream-reset",
            get(|| async {
                Err::<(), _>(Error::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                )))
            }),
        )
        .route("/ok", get(|| async { "ok" }))
        .fallback(fails)
        .layer(ErrorHandlerLayer::new(reporting.clone()))
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

// --- What is counted (Armeria's unit scenarios) ---------------------------------------------

#[tokio::test]
async fn armeria_ordinary_error_is_reported_once() {
    let reporting = reporting();
    send(&app(&reporting), "/users/7").await;
    assert_eq!(reporting.unhandled_count(), 1);
}

#[tokio::test]
async fn armeria_error_marked_logged_is_not_reported() {
    let reporting = reporting();
    let app = Router::new()
        .route("/users/{id}", get(fails))
        .route_layer(ServiceBuilder::new().map_response(mark_logged))
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(
        send(&app, "/users/7").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn a_dependency_connection_reset_is_reported_not_taken_for_a_client_disconnect() {
    let reporting = reporting();
    assert_eq!(
        send(&app(&reporting), "/upstream-reset").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(reporting.unhandled_count(), 1);
}

#[tokio::test]
async fn armeria_delegate_marking_logged_while_handling_is_not_reported() {
    let logs_it = |error: &Error, _: &ErrorContext<'_>| {
        error.mark_logged();
        None
    };
    let reporting = ReportingErrorHandler::builder().wrap(logs_it);
    let app = Router::new()
        .route("/users/{id}", get(fails))
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(
        send(&app, "/users/7").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn armeria_status_500_without_cause_is_not_reported() {
    let reporting = reporting();
    assert_eq!(
        send(&app(&reporting), "/status-500").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        send(&app(&reporting), "/not-found").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn armeria_status_500_with_cause_is_reported_once() {
    let reporting = reporting();
    send(&app(&reporting), "/status-500-with-cause").await;
    assert_eq!(reporting.unhandled_count(), 1);
}

#[tokio::test]
async fn armeria_builder_keeps_the_interval_and_zero_disables() {
    let builder = ReportingErrorHandler::builder();
    assert_eq!(
        builder
            .clone()
            .interval(Duration::from_millis(1000))
            .build()
            .interval(),
        Duration::from_millis(1000)
    );
    assert_eq!(
        builder.clone().interval(Duration::ZERO).build().interval(),
        Duration::ZERO
    );
    assert_eq!(builder.build().interval(), Duration::from_secs(10));
}

#[tokio::test]
async fn successes_and_handler_built_responses_are_not_counted() {
    let reporting = reporting();
    let app = app(&reporting);
    assert_eq!(send(&app, "/ok").await.0, StatusCode::OK);
    assert_eq!(reporting.unhandled_count(), 0);
    assert!(reporting.breakdown().groups.is_empty());
}

#[tokio::test]
async fn delegate_renders_the_response_and_the_error_is_still_counted() {
    let teapot = |_: &Error, _: &ErrorContext<'_>| {
        Some(axum::response::IntoResponse::into_response(
            StatusCode::IM_A_TEAPOT,
        ))
    };
    let reporting = ReportingErrorHandler::builder().wrap(teapot);
    let app = Router::new()
        .route("/", get(fails))
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(send(&app, "/").await.0, StatusCode::IM_A_TEAPOT);
    assert_eq!(reporting.unhandled_count(), 1);
}

#[tokio::test]
async fn delegate_that_panics_still_gets_the_error_counted() {
    let broken = |_: &Error, _: &ErrorContext<'_>| -> Option<Response> { panic!("broken handler") };
    let reporting = ReportingErrorHandler::builder().wrap(broken);
    let app = Router::new()
        .route("/", get(fails))
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(send(&app, "/").await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reporting.unhandled_count(), 1);
}

// --- The breakdown and the metric -------------------------------------------------------------

#[tokio::test]
async fn breakdown_groups_by_method_route_and_kind_never_by_raw_path() {
    let reporting = reporting();
    let app = app(&reporting);
    for path in [
        "/users/1",
        "/users/2",
        "/panic",
        "/no/such/page/1",
        "/no/such/page/2",
    ] {
        send(&app, path).await;
    }
    let request = axum::http::Request::post("/users/3")
        .body(axum::body::Body::empty())
        .unwrap();
    tower::ServiceExt::oneshot(app, request).await.unwrap();

    let groups: Vec<(&str, String, ErrorKind, u64)> = reporting
        .breakdown()
        .groups
        .into_iter()
        .map(|group| (group.method, group.route, group.kind, group.count))
        .collect();
    assert_eq!(
        groups,
        [
            ("GET", "/users/{id}".to_owned(), ErrorKind::Error, 2),
            ("GET", "/panic".to_owned(), ErrorKind::Panic, 1),
            ("GET", "unmatched".to_owned(), ErrorKind::Error, 2),
            ("POST", "/users/{id}".to_owned(), ErrorKind::Panic, 1),
        ]
    );
    assert_eq!(reporting.unhandled_count(), 6);
}

/// Renders what a real Prometheus recorder, set as this thread's recorder, exported.
async fn exported_after(install_first: bool) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (reporting, _recorder_guard) = if install_first {
        let guard = metrics::set_default_local_recorder(&recorder);
        (reporting(), guard)
    } else {
        let reporting = reporting();
        (reporting, metrics::set_default_local_recorder(&recorder))
    };
    let app = app(&reporting);
    for path in [
        "/users/1",
        "/users/2",
        "/panic",
        "/not-found",
        "/ok",
        "/upstream-reset",
    ] {
        send(&app, path).await;
    }
    handle.render()
}

#[tokio::test]
async fn metric_counts_with_bounded_labels_when_the_recorder_is_installed_first() {
    let text = exported_after(true).await;
    assert_metric_text(&text);
}

#[tokio::test]
async fn metric_counts_with_bounded_labels_when_the_layer_is_built_first() {
    let text = exported_after(false).await;
    assert_metric_text(&text);
}

#[tokio::test]
async fn metric_counts_in_the_recorder_installed_after_earlier_errors() {
    let reporting = reporting();
    let app = app(&reporting);
    send(&app, "/users/1").await; // no recorder yet: this count reaches no exporter
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    {
        let _recorder_guard = metrics::set_default_local_recorder(&recorder);
        send(&app, "/users/2").await;
        send(&app, "/users/3").await;
    }
    send(&app, "/users/4").await; // the recorder is no longer in force

    let text = handle.render();
    assert!(
        text.contains(
            r#"http_server_unhandled_errors_total{method="GET",route="/users/{id}",kind="error"} 2"#
        ),
        "{text}"
    );
    assert_eq!(reporting.unhandled_count(), 4);
}

fn assert_metric_text(text: &str) {
    assert!(
        text.contains("# TYPE http_server_unhandled_errors_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# HELP http_server_unhandled_errors_total "),
        "{text}"
    );
    let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
    let mut samples = samples
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>();
    samples.sort_unstable();
    assert_eq!(
        samples,
        [
            r#"http_server_unhandled_errors_total{method="GET",route="/panic",kind="panic"} 1"#,
            r#"http_server_unhandled_errors_total{method="GET",route="/upstream-reset",kind="error"} 1"#,
            r#"http_server_unhandled_errors_total{method="GET",route="/users/{id}",kind="error"} 2"#,
        ]
    );
}

// --- The periodic report ----------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn the_sample_is_the_panic_not_the_larger_group_of_cause_less_500s() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/plain",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/panic", get(panics))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    for path in ["/plain", "/plain", "/panic"] {
        assert_eq!(support::get_status(address, path).await, 500);
    }
    support::eventually(|| reporting.unhandled_count() == 3).await;
    reporting.shutdown().await;
    let reports = events.reports();
    let report = &reports[0];
    assert_eq!(report.field("sample.kind"), "panic", "{report:?}");
    assert_eq!(report.field("sample.route"), "/panic");
    // `top` keeps every group's count, the larger first.
    let top = report.field("top");
    assert!(
        top.starts_with("GET /plain status ×2, GET /panic panic at "),
        "{top}"
    );
}

/// An error type that embeds its source in its own text, as sqlx's database error does.
#[derive(Debug)]
struct DatabaseError(std::io::Error);

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error returned from database: {}", self.0)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_cause_its_error_already_prints_is_printed_once_in_the_report_and_the_log_line() {
    const ONCE: &str = "error returned from database: LIMIT must not be negative at line 398";
    async fn query() -> unhandled::Result<()> {
        let limit = std::io::Error::other("LIMIT must not be negative at line 398");
        Err(DatabaseError(limit))?
    }
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let logged = Router::new()
        .route("/logged", get(query))
        .layer(unhandled::LoggingLayer::new());
    let app = Router::new()
        .route("/query", get(query))
        .merge(logged)
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    for path in ["/query", "/logged"] {
        assert_eq!(support::get_status(address, path).await, 500);
    }
    support::eventually(|| reporting.unhandled_count() == 1).await;
    reporting.shutdown().await;
    assert_eq!(events.reports()[0].field("sample.error"), ONCE);
    let failed = events
        .all()
        .into_iter()
        .find(|event| event.fields.get("message").map(String::as_str) == Some("request failed"));
    assert_eq!(failed.expect("logged").field("error"), ONCE);
}

#[tokio::test(start_paused = true)]
async fn report_logs_count_interval_top_groups_sample_and_fix_as_fields() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = app(&reporting);
    for path in ["/users/7", "/users/8", "/users/9", "/panic"] {
        send(&app, path).await;
    }
    assert!(
        events.reports().is_empty(),
        "reported before the interval elapsed"
    );

    tokio::time::sleep(INTERVAL + Duration::from_millis(1)).await;

    let reports = events.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report.level, Level::WARN);
    assert_eq!(report.field("count"), "4");
    assert_eq!(report.field("interval"), "10s");
    // Each group names where its errors were made (`support`'s handlers).
    let top = report.field("top");
    let groups: Vec<&str> = top.split(", ").collect();
    assert_eq!(groups.len(), 2, "{top}");
    assert!(
        groups[0].starts_with("GET /users/{id} error at tests/behaviour/../support/mod.rs:"),
        "{top}"
    );
    assert!(groups[0].ends_with(" ×3"), "{top}");
    assert!(
        groups[1].starts_with("GET /panic panic at tests/behaviour/../support/mod.rs:"),
        "{top}"
    );
    assert!(groups[1].ends_with(" ×1"), "{top}");
    assert_eq!(report.field("sample.method"), "GET");
    assert_eq!(report.field("sample.path"), "/users/7");
    assert_eq!(report.field("sample.route"), "/users/{id}");
    assert_eq!(report.field("sample.kind"), "error");
    assert_eq!(report.field("sample.status"), "500");
    assert_eq!(
        report.field("sample.error"),
        "loading user 7: connection refused"
    );
    assert!(report.field("fix").contains("unhandled::LoggingLayer"));
    assert!(
        report.field("message").starts_with(
            "Observed 4 unhandled errors in the last 10s that no logging layer reported"
        ),
        "{report:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_growth_no_log_and_growth_logs_only_the_new_errors() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = app(&reporting);
    send(&app, "/users/7").await;
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(events.reports().len(), 1);

    send(&app, "/panic").await;
    send(&app, "/panic").await;
    tokio::time::sleep(INTERVAL + Duration::from_millis(1)).await;

    let reports = events.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].field("count"), "2");
    assert_eq!(reports[1].field("sample.kind"), "panic");
    assert_eq!(reporting.unhandled_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn no_errors_no_task_and_no_log() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = app(&reporting);
    send(&app, "/ok").await;
    send(&app, "/not-found").await;
    tokio::time::sleep(INTERVAL * 10).await;
    assert_eq!(alive_tasks(), 0);
    assert!(events.reports().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_first_error_starts_exactly_one_task() {
    let reporting = reporting();
    let app = app(&reporting);
    let requests: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, "/users/7").await })
        })
        .collect();
    for request in requests {
        request.await.unwrap();
    }
    tokio::task::yield_now().await;
    assert_eq!(reporting.unhandled_count(), 50);
    assert_eq!(alive_tasks(), 1);
}

#[test]
fn racing_threads_start_exactly_one_task() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let reporting = reporting();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (barrier, reporting, runtime) = (&barrier, &reporting, &runtime);
            scope.spawn(move || {
                let _entered = runtime.enter();
                let error = Error::new(load_failed());
                let context = ErrorContext::new(&Method::GET, "/x", Some("/x"), ErrorKind::Error);
                barrier.wait();
                for _ in 0..100 {
                    reporting.on_error(&error, &context);
                }
            });
        }
    });
    assert_eq!(reporting.unhandled_count(), 800);
    assert_eq!(runtime.metrics().num_alive_tasks(), 1);
}

#[tokio::test(start_paused = true)]
async fn report_level_is_configurable() {
    let (events, _guard) = capture();
    let reporting = ReportingErrorHandler::builder()
        .interval(INTERVAL)
        .level(Level::ERROR)
        .build();
    send(&app(&reporting), "/users/7").await;
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(events.reports()[0].level, Level::ERROR);
}

#[tokio::test(start_paused = true)]
async fn zero_interval_counts_and_exports_but_never_starts_a_task() {
    let (events, _guard) = capture();
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::ZERO)
        .build();
    send(&app(&reporting), "/users/7").await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(reporting.unhandled_count(), 1);
    assert_eq!(alive_tasks(), 0);
    assert!(events.reports().is_empty());
}

/// Armeria's integration scenario, on a 1 s interval: an error that a layer inside the error
/// handler logged gives no report; the same error outside it does.
#[tokio::test(start_paused = true)]
async fn armeria_integration_only_errors_outside_the_logging_layer_are_reported() {
    let (events, _guard) = capture();
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::from_secs(1))
        .build();
    let inside = Router::new()
        .route("/inside", get(fails))
        .route_layer(ServiceBuilder::new().map_response(mark_logged))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&inside, "/inside").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(events.reports().is_empty());

    let outside = Router::new()
        .route("/outside", get(fails))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .route_layer(ServiceBuilder::new().map_response(mark_logged));
    send(&outside, "/outside").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reports = events.reports();
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0]
            .field("message")
            .starts_with("Observed 1 unhandled error in the last 1s")
    );
}

// --- Nothing is lost at the end ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn shutdown_reports_pending_counts_at_once() {
    let (events, _guard) = capture();
    let reporting = reporting();
    send(&app(&reporting), "/users/7").await;
    send(&app(&reporting), "/users/7").await;

    reporting.shutdown().await;

    let reports = events.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].field("count"), "2");
    assert_eq!(alive_tasks(), 0);
    reporting.shutdown().await;
    assert_eq!(
        events.reports().len(),
        1,
        "a second shutdown reported nothing new"
    );
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_a_new_error_starts_the_task_again() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = app(&reporting);
    send(&app, "/users/7").await;
    reporting.shutdown().await;
    assert_eq!(alive_tasks(), 0);

    send(&app, "/panic").await;
    assert_eq!(alive_tasks(), 1);
    tokio::time::sleep(INTERVAL + Duration::from_millis(1)).await;

    let reports = events.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].field("sample.kind"), "panic");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_shutdown_guard_reports_pending_counts() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let guard = reporting.shutdown_guard();
    send(&app(&reporting), "/users/7").await;

    drop(guard);

    assert_eq!(events.reports()[0].field("count"), "1");
}

#[test]
fn runtime_shutdown_reports_pending_counts() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        send(&app(&reporting), "/users/7").await;
    });
    assert!(events.reports().is_empty());

    drop(runtime);

    assert_eq!(events.reports()[0].field("count"), "1");
}

#[test]
fn first_error_without_a_runtime_neither_panics_nor_loses_the_count() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let error = Error::new(load_failed());
    let context = ErrorContext::new(
        &Method::GET,
        "/users/7",
        Some("/users/{id}"),
        ErrorKind::Error,
    );
    assert!(
        reporting.on_error(&error, &context).is_none(),
        "defers to the default rendering"
    );
    assert_eq!(reporting.unhandled_count(), 1);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        send(&app(&reporting), "/panic").await;
        tokio::time::sleep(INTERVAL + Duration::from_millis(1)).await;
    });

    let reports = events.reports();
    assert_eq!(reports[0].field("count"), "2", "{reports:?}");
}

#[tokio::test]
async fn default_error_handler_is_the_delegate_of_build_and_keeps_the_handler_response_and_a_4xx_with_a_cause_is_not_counted()
 {
    let reporting = ReportingErrorHandler::builder().build();
    let _: &DefaultErrorHandler = reporting.delegate();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                let error = Error::status(StatusCode::NOT_FOUND).with_cause(load_failed());
                ([("retry-after", "5")], error)
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    let response = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["retry-after"], "5");
    // 1xx to 4xx never count, with or without a cause: the client got the answer it was meant to.
    assert_eq!(reporting.unhandled_count(), 0);
    // A 5xx status with a cause does (positive control).
    let app = Router::new()
        .route(
            "/",
            get(|| async { Error::status(StatusCode::BAD_GATEWAY).with_cause(load_failed()) }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let request = axum::http::Request::get("/").body(axum::body::Body::empty());
    let response = tower::ServiceExt::oneshot(app, request.unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(reporting.unhandled_count(), 1);
}

// --- The metric under an error storm -------------------------------------------------------------

fn exported_count(text: &str, route: &str) -> u64 {
    support::exported(text, "GET", route, "error").unwrap_or(0)
}

/// The first 64 errors of a thread on a route are exported as they happen; after that a thread
/// exports every 64th, and the rest is exported within a second, exactly.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_storm_is_exported_in_batches_and_exactly_within_a_second() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = reporting();
    let app = app(&reporting);

    for _ in 0..64 {
        send(&app, "/users/7").await;
    }
    assert_eq!(exported_count(&handle.render(), "/users/{id}"), 64);

    for _ in 64..1000 {
        send(&app, "/users/7").await;
    }
    assert_eq!(reporting.unhandled_count(), 1000);
    let batched = exported_count(&handle.render(), "/users/{id}");
    assert!((960..1000).contains(&batched), "{batched}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(exported_count(&handle.render(), "/users/{id}"), 1000);
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_exports_what_a_storm_left_unexported() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = reporting();
    let app = app(&reporting);
    for _ in 0..100 {
        send(&app, "/users/7").await;
    }
    assert!(exported_count(&handle.render(), "/users/{id}") < 100);
    reporting.shutdown().await;
    assert_eq!(exported_count(&handle.render(), "/users/{id}"), 100);
}
