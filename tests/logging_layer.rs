//! `LoggingLayer`: one span and one event per request; what it logged is never counted. Its own
//! test binary: the misordered-layer warning it checks is said once per process.

mod support;
use support::{fails, panics};

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{Request, Response, StatusCode},
    response::IntoResponse,
    routing::get,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::{ServiceBuilder, ServiceExt};
use tracing::Level;
use unhandled::{Error, ErrorHandlerLayer, LoggingLayer, ReportingErrorHandler};

use support::{Captured, capture, send};

fn reporting() -> ReportingErrorHandler {
    ReportingErrorHandler::builder()
        .interval(Duration::from_secs(1))
        .build()
}

/// Failing, panicking and succeeding routes, logged, inside the error handler.
fn logged_app(reporting: &ReportingErrorHandler) -> Router {
    Router::new()
        .route("/users/{id}", get(fails))
        .route("/panic", get(panics))
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/missing",
            get(|| async { Err::<(), _>(Error::status(StatusCode::NOT_FOUND)) }),
        )
        .route(
            "/plain-500",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()))
}

fn request_events(events: &support::Events) -> Vec<Captured> {
    events
        .all()
        .into_iter()
        .filter(|event| event.target == unhandled::logging::TARGET)
        .collect()
}

#[tokio::test]
async fn error_inside_is_logged_once_with_its_chain_and_not_counted() {
    let (events, _guard) = capture();
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = reporting();

    let (status, body) = send(&logged_app(&reporting), "/users/7").await;

    assert_eq!(
        (status, body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    );
    let logged = request_events(&events);
    assert_eq!(logged.len(), 1, "{logged:?}");
    let event = &logged[0];
    assert_eq!(event.level, Level::WARN);
    assert_eq!(event.field("message"), "request failed");
    assert_eq!(event.field("method"), "GET");
    assert_eq!(event.field("path"), "/users/7");
    assert_eq!(event.field("route"), "/users/{id}");
    assert_eq!(event.field("status"), "500");
    assert_eq!(event.field("kind"), "error");
    assert_eq!(event.field("error"), "loading user 7: connection refused");
    assert!(event.field("latency_us").parse::<i64>().unwrap() >= 0);
    assert_eq!(reporting.unhandled_count(), 0);
    assert!(
        !metrics
            .render()
            .contains("http_server_unhandled_errors_total{")
    );
}

#[tokio::test]
async fn panic_inside_is_logged_once_with_its_message_and_not_counted() {
    let (events, _guard) = capture();
    let reporting = reporting();

    let (status, _) = send(&logged_app(&reporting), "/panic").await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let logged = request_events(&events);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].field("kind"), "panic");
    assert_eq!(
        logged[0].field("error"),
        "handler panicked: index out of bounds"
    );
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn service_error_inside_is_logged_once_and_not_counted() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let service = ServiceBuilder::new()
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(LoggingLayer::new())
        .service(support::failing_service());

    let response = service
        .oneshot(Request::get("/svc").body(Body::empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let logged = request_events(&events);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].field("kind"), "service");
    assert_eq!(logged[0].field("error"), "upstream closed the pool");
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn success_is_logged_at_debug_with_status_and_latency() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = logged_app(&reporting);

    send(&app, "/ok").await;
    send(&app, "/missing").await;

    let logged = request_events(&events);
    let summary: Vec<(Level, &str, &str)> = logged
        .iter()
        .map(|event| (event.level, event.field("message"), event.field("status")))
        .collect();
    assert_eq!(
        summary,
        [
            (Level::DEBUG, "request completed", "200"),
            (Level::DEBUG, "request completed", "404"),
        ]
    );
}

#[tokio::test]
async fn any_5xx_response_is_a_failure() {
    let (events, _guard) = capture();
    let reporting = reporting();

    send(&logged_app(&reporting), "/plain-500").await;

    let logged = request_events(&events);
    assert_eq!(logged[0].level, Level::WARN);
    assert_eq!(logged[0].field("error"), "500 Internal Server Error");
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn levels_are_configurable() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = Router::new()
        .route("/users/{id}", get(fails))
        .route("/ok", get(|| async { "ok" }))
        .layer(
            LoggingLayer::new()
                .success_level(Level::INFO)
                .failure_level(Level::ERROR),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    send(&app, "/ok").await;
    send(&app, "/users/7").await;

    let levels: Vec<Level> = request_events(&events)
        .iter()
        .map(|event| event.level)
        .collect();
    assert_eq!(levels, [Level::INFO, Level::ERROR]);
}

/// A layer that fails every request it wraps, as a broken middleware would.
fn failing_layer() -> tower::util::MapResponseLayer<fn(Response<Body>) -> Response<Body>> {
    fn fail(_: Response<Body>) -> Response<Body> {
        Error::msg("the auth middleware failed").into_response()
    }
    tower::util::MapResponseLayer::new(fail as fn(_) -> _)
}

/// Armeria's integration scenario: a failing layer inside the logging layer is logged and not
/// counted; the same layer outside it is counted and appears in the periodic report.
#[tokio::test(start_paused = true)]
async fn armeria_failing_layer_inside_vs_outside_the_logging_layer() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let inside = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(failing_layer())
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let outside = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(LoggingLayer::new())
        .layer(failing_layer())
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    send(&inside, "/").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reporting.unhandled_count(), 0);
    assert!(events.reports().is_empty());

    send(&outside, "/").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reporting.unhandled_count(), 1);
    let reports = events.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].field("sample.error"),
        "the auth middleware failed"
    );
}

/// Outside the error handler the layer cannot mark anything: it still logs the failure, with its
/// chain, and warns once with the fix; the error is counted.
#[tokio::test]
async fn misordered_logging_layer_warns_once_and_the_error_is_counted() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = Router::new()
        .route("/users/{id}", get(fails))
        .route(
            "/status",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/panic", get(panics))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(LoggingLayer::new());

    send(&app, "/users/7").await;
    send(&app, "/users/8").await;

    let logged = request_events(&events);
    let warnings: Vec<&Captured> = logged
        .iter()
        .filter(|event| event.fields.contains_key("fix"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logged:?}");
    assert!(
        warnings[0]
            .field("fix")
            .contains(".layer(unhandled::LoggingLayer::new()).layer(unhandled::layer())")
    );
    let failures: Vec<&Captured> = logged
        .iter()
        .filter(|event| {
            event
                .fields
                .get("message")
                .is_some_and(|m| m == "request failed")
        })
        .collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(
        failures[0].field("error"),
        "loading user 7: connection refused"
    );
    assert_eq!(reporting.unhandled_count(), 2);

    // Failures without an `Error` of the handler's own are logged with their kind too, and
    // counted once.
    send(&app, "/status").await;
    send(&app, "/panic").await;
    let logged = request_events(&events);
    let kinds: Vec<(&str, &str)> = logged
        .iter()
        .filter(|event| event.fields.contains_key("kind"))
        .map(|event| (event.field("kind"), event.field("error")))
        .skip(2)
        .collect();
    assert_eq!(
        kinds,
        [
            ("status", "500 Internal Server Error"),
            ("panic", "handler panicked: index out of bounds")
        ]
    );
    let counted: Vec<(&str, u64)> = reporting
        .breakdown()
        .groups
        .iter()
        .map(|group| (group.kind.as_str(), group.count))
        .collect();
    assert_eq!(counted, [("error", 2), ("status", 1), ("panic", 1)]);
}

/// Both layers in one `Router::layer` call (axum boxes every route once per call): the first
/// layer of a `ServiceBuilder` is the outer one, so the error handler goes first. Each failure is
/// logged once and none is counted, as with two calls.
#[tokio::test]
async fn both_layers_in_one_service_builder_log_and_do_not_count() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let app = Router::new()
        .route("/users/{id}", get(fails))
        .route("/panic", get(panics))
        .route(
            "/plain-500",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(ErrorHandlerLayer::new(reporting.clone()))
                .layer(LoggingLayer::new()),
        );

    for path in ["/users/7", "/panic", "/plain-500"] {
        let (status, _) = send(&app, path).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }

    let kinds: Vec<String> = request_events(&events)
        .iter()
        .map(|event| event.field("kind").to_owned())
        .collect();
    assert_eq!(kinds, ["error", "panic", "status"]);
    assert_eq!(reporting.unhandled_count(), 0);
}

/// A `fmt` subscriber's writer into a shared buffer.
#[derive(Clone, Default)]
struct Written(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn fmt_writes_tokens_unquoted_and_free_text_quoted_and_escaped() {
    let written = Written::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async { Err::<(), _>(Error::msg("bad id=7 status=200 \"x\"\nforged")) }),
        )
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting()));
    let request = Request::get("/users/\u{202e}7")
        .header("user-agent", "curl/8 status=200")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("request failed"))
        .unwrap_or_else(|| panic!("no failure event in {text:?}"));
    // Tokens and a URI's path unquoted, as tower-http's TraceLayer writes its fields; the
    // client's bidirectional control escaped.
    for field in [
        "method=GET",
        r"path=/users/\u{202e}7",
        "route=/users/{id}",
        "kind=error",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(line.contains("latency_us="), "{line}");
    // Free text quoted and escaped, so that it cannot forge a field or a line.
    assert!(
        line.contains(r#"error="bad id=7 status=200 \"x\"\nforged""#),
        "{line}"
    );
    assert!(
        line.contains(r#"user_agent.original="curl/8 status=200""#),
        "{line}"
    );
    assert_eq!(
        text.lines().filter(|line| line.contains("forged")).count(),
        1
    );
    assert!(!text.contains('\u{202e}'), "{text}");
}

/// A plain 5xx the logging layer logged is handed to the error handler by the note of the poll that
/// made it (here the second poll, after the handler yielded), not by an `Error` in the response:
/// it leaves the stack as the handler built it, logged once and not counted.
#[tokio::test]
async fn a_logged_plain_5xx_is_handed_over_without_an_extension_and_not_counted() {
    let (events, _guard) = capture();
    let reporting = reporting();
    let slow_502 = || async {
        tokio::task::yield_now().await;
        StatusCode::BAD_GATEWAY
    };
    let logged = Router::new()
        .route("/upstream", get(slow_502))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let request = || Request::get("/upstream").body(Body::empty()).unwrap();

    let response = logged.oneshot(request()).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response.extensions().get::<Error>().is_none());
    let failed: Vec<(Level, String)> = request_events(&events)
        .iter()
        .map(|event| (event.level, event.field("error").to_owned()))
        .collect();
    assert_eq!(failed, [(Level::WARN, "502 Bad Gateway".to_owned())]);
    assert_eq!(reporting.unhandled_count(), 0);

    // Without the logging layer, the same response is counted.
    let unlogged = Router::new()
        .route("/upstream", get(slow_502))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let response = unlogged.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(reporting.unhandled_count(), 1);
}
