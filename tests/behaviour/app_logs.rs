//! An application's own error logs count as logged with `unhandled::subscriber::layer()`, each
//! pattern written as its example writes it: not counted with the layer, counted without it.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    extract::Request,
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tracing::{Level, subscriber::DefaultGuard};
use tracing_subscriber::{EnvFilter, prelude::*};
use unhandled::{
    Error, ErrorContext, ErrorHandlerLayer, ErrorKind, ReportingErrorHandler, ServerErrorHandler,
};

use support::{counted, send};

/// Which subscriber the test installs on its thread.
enum Setup {
    /// A registry with a capturing layer, without `unhandled::subscriber`.
    Without,
    /// The same with `unhandled::subscriber::layer()`.
    With,
    /// The same with `layer_at(level)`.
    WithThreshold(Level),
    /// `unhandled::subscriber::layer()` behind a global filter (`RUST_LOG` syntax).
    Filtered(&'static str),
    /// The capturing layer and `unhandled::subscriber::layer()` under one per-layer filter, as
    /// the subscriber docs advise for `fmt::layer().with_filter(..)`.
    PerLayer(&'static str),
}

fn install(setup: Setup) -> (support::Events, DefaultGuard) {
    let (events, global) = support::capture();
    drop(global);
    let capture = support::CaptureLayer::new(&events);
    let registry = tracing_subscriber::registry().with(capture);
    let guard = match setup {
        Setup::Without => tracing::subscriber::set_default(registry),
        Setup::With => {
            tracing::subscriber::set_default(registry.with(unhandled::subscriber::layer()))
        }
        Setup::WithThreshold(level) => {
            tracing::subscriber::set_default(registry.with(unhandled::subscriber::layer_at(level)))
        }
        Setup::Filtered(filter) => tracing::subscriber::set_default(
            tracing_subscriber::registry()
                .with(EnvFilter::new(filter))
                .with(support::CaptureLayer::new(&events))
                .with(unhandled::subscriber::layer()),
        ),
        Setup::PerLayer(filter) => tracing::subscriber::set_default(
            tracing_subscriber::registry().with(
                support::CaptureLayer::new(&events)
                    .and_then(unhandled::subscriber::layer())
                    .with_filter(EnvFilter::new(filter)),
            ),
        ),
    };
    (events, guard)
}

/// `#[tracing::instrument(err)]`, as handlers write it.
#[tracing::instrument(err)]
async fn instrumented() -> unhandled::Result<()> {
    Err(Error::msg("the database is down"))
}

/// axum's oauth example: the application's error type logs in its `IntoResponse`.
struct OauthError(anyhow::Error);

impl IntoResponse for OauthError {
    fn into_response(self) -> Response {
        tracing::error!("Application error: {:#}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong").into_response()
    }
}

async fn oauth() -> Result<(), OauthError> {
    Err(OauthError(anyhow::anyhow!("token exchange failed")))
}

/// axum's error-handling example: the error travels in the response extensions and a `from_fn`
/// middleware logs it.
#[derive(Debug, Clone)]
struct AppError(Arc<String>);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

async fn extension() -> Result<(), AppError> {
    Err(AppError(Arc::new("inventory service timed out".to_owned())))
}

async fn log_app_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(err) = response.extensions().get::<AppError>() {
        tracing::error!(err = %err.0, "an unexpected error occurred inside a handler");
    }
    response
}

/// axum-extra's `InternalServerError`, which logs its error at ERROR.
async fn axum_extra() -> Result<(), axum_extra::response::InternalServerError<std::io::Error>> {
    Err(axum_extra::response::InternalServerError(
        std::io::Error::other("disk full"),
    ))
}

/// Logs on a later poll than the one that returns the error.
async fn over_polls() -> unhandled::Result<()> {
    tokio::task::yield_now().await;
    tracing::error!("the payment provider is unavailable");
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    Err(Error::msg("payment provider unavailable"))
}

/// A panic after the handler logged it.
async fn logged_panic() -> &'static str {
    tracing::error!("about to give up");
    panic!("gave up")
}

fn app(reporting: &ReportingErrorHandler) -> Router {
    Router::new()
        .route("/instrumented", get(instrumented))
        .route("/oauth", get(oauth))
        .route(
            "/extension",
            get(extension).layer(middleware::from_fn(log_app_errors)),
        )
        .route("/axum-extra", get(axum_extra))
        .route("/over-polls", get(over_polls))
        .route("/panic", get(logged_panic))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
}

const PATTERNS: [&str; 6] = [
    "/instrumented",
    "/oauth",
    "/extension",
    "/axum-extra",
    "/over-polls",
    "/panic",
];

#[tokio::test]
async fn each_logging_pattern_counts_as_logged_with_the_layer() {
    let (_events, _guard) = install(Setup::With);
    let reporting = support::quiet_reporting();
    let app = app(&reporting);
    for path in PATTERNS {
        let (status, _) = send(&app, path).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }
    assert_eq!(
        counted(&reporting),
        vec![],
        "every pattern logged its failure"
    );
}

#[tokio::test]
async fn each_logging_pattern_is_counted_without_the_layer() {
    let (events, _guard) = install(Setup::Without);
    let reporting = support::quiet_reporting();
    let app = app(&reporting);
    for path in PATTERNS {
        send(&app, path).await;
    }
    let routes: Vec<_> = counted(&reporting)
        .into_iter()
        .map(|(route, _, count)| (route, count))
        .collect();
    let expected: Vec<_> = PATTERNS.iter().map(|path| (path.to_string(), 1)).collect();
    assert_eq!(routes, expected);
    // The application did log each one: the events are there, only unmarked.
    let logged = events
        .all()
        .into_iter()
        .filter(|event| event.level <= Level::WARN && !event.target.starts_with("unhandled"))
        .count();
    assert!(logged >= PATTERNS.len(), "{:?}", events.all());
}

/// Remembers what `Error::is_logged` said to it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(ErrorKind, bool)>>>);

impl ServerErrorHandler for Seen {
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response> {
        self.0
            .lock()
            .unwrap()
            .push((context.kind(), error.is_logged()));
        None
    }
}

#[tokio::test]
async fn the_error_handler_still_sees_the_failure_and_is_told_it_was_logged() {
    let (_events, _guard) = install(Setup::With);
    let seen = Seen::default();
    let app = Router::new()
        .route("/instrumented", get(instrumented))
        .route("/oauth", get(oauth))
        .route("/panic", get(logged_panic))
        .route(
            "/silent",
            get(|| async { Err::<(), _>(Error::msg("quiet")) }),
        )
        .layer(ErrorHandlerLayer::new(seen.clone()));
    for path in ["/instrumented", "/oauth", "/panic", "/silent"] {
        send(&app, path).await;
    }
    assert_eq!(
        *seen.0.lock().unwrap(),
        vec![
            (ErrorKind::Error, true),
            (ErrorKind::Status, true),
            (ErrorKind::Panic, true),
            (ErrorKind::Error, false),
        ]
    );
}

#[tokio::test]
async fn trace_layers_status_only_failure_line_does_not_count() {
    let (events, _guard) = install(Setup::With);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/",
            get(|| async { Err::<(), _>(Error::msg("the database is down")) }),
        )
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/").await;
    assert!(
        events
            .all()
            .iter()
            .any(|event| event.target == "tower_http::trace::on_failure"),
        "TraceLayer logged its failure line: {:?}",
        events.all()
    );
    assert_eq!(
        counted(&reporting),
        vec![("/".to_owned(), ErrorKind::Error, 1)]
    );
}

#[tokio::test]
async fn an_event_the_filter_drops_does_not_count() {
    for setup in [
        Setup::Filtered("warn,dropped=off"),
        Setup::PerLayer("warn,dropped=off"),
    ] {
        event_dropped_by(setup).await;
    }
}

async fn event_dropped_by(setup: Setup) {
    let (_events, _guard) = install(setup);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/dropped",
            get(|| async {
                tracing::error!(target: "dropped", "nobody reads this");
                Err::<(), _>(Error::msg("lost"))
            }),
        )
        .route(
            "/kept",
            get(|| async {
                tracing::error!(target: "kept", "the log shows this");
                Err::<(), _>(Error::msg("seen"))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/dropped").await;
    send(&app, "/kept").await;
    assert_eq!(
        counted(&reporting),
        vec![("/dropped".to_owned(), ErrorKind::Error, 1)]
    );
}

#[tokio::test]
async fn this_crates_own_events_and_less_severe_ones_do_not_count() {
    let (_events, _guard) = install(Setup::With);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/ours",
            get(|| async {
                tracing::error!(target: "unhandled", "not the application's");
                Err::<(), _>(Error::msg("a"))
            }),
        )
        .route(
            "/info",
            get(|| async {
                tracing::info!("loading the user");
                Err::<(), _>(Error::msg("b"))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/ours").await;
    send(&app, "/info").await;
    let routes = counted_routes(&reporting);
    assert_eq!(routes, ["/ours", "/info"]);
}

/// A request that runs a slow query (sqlx warns of it at `WARN`, as its pool does of a slow
/// acquire) and then fails without the application logging anything.
async fn slow_query_then_silent_500() -> unhandled::Result<()> {
    tracing::warn!(
        target: "sqlx::query",
        elapsed = 1.2,
        "slow statement: execution time exceeded alert threshold"
    );
    tracing::warn!(target: "sqlx::pool::acquire", "acquired connection, but time to acquire exceeded slow threshold");
    Err(Error::msg("the order total is negative"))
}

#[tokio::test]
async fn a_library_s_warning_does_not_count_as_the_application_logging_the_failure() {
    let (_events, _guard) = install(Setup::With);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route("/slow", get(slow_query_then_silent_500))
        .route(
            "/logged",
            get(|| async {
                tracing::error!("loading the order failed");
                Err::<(), _>(Error::msg("b"))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/slow").await;
    send(&app, "/logged").await;
    let routes = counted_routes(&reporting);
    assert_eq!(routes, ["/slow"], "the default threshold is ERROR");
}

#[tokio::test]
async fn widened_to_warn_a_library_s_warning_hides_the_failure() {
    // What the docs warn of: the risk of `layer_at(Level::WARN)`.
    let (_events, _guard) = install(Setup::WithThreshold(Level::WARN));
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route("/slow", get(slow_query_then_silent_500))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/slow").await;
    assert_eq!(reporting.unhandled_count(), 0);
}

#[tokio::test]
async fn the_threshold_is_configurable() {
    let (_events, _guard) = install(Setup::WithThreshold(Level::ERROR));
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/warn",
            get(|| async {
                tracing::warn!("slow upstream");
                Err::<(), _>(Error::msg("a"))
            }),
        )
        .route(
            "/error",
            get(|| async {
                tracing::error!("upstream failed");
                Err::<(), _>(Error::msg("b"))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/warn").await;
    send(&app, "/error").await;
    let routes = counted_routes(&reporting);
    assert_eq!(routes, ["/warn"]);
}

#[tokio::test]
async fn an_event_on_a_task_the_handler_spawned_does_not_count() {
    let (_events, _guard) = install(Setup::With);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tokio::spawn(async { tracing::error!("logged by a background task") })
                    .await
                    .unwrap();
                Err::<(), _>(Error::msg("the handler's own failure"))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    send(&app, "/").await;
    assert_eq!(
        counted(&reporting),
        vec![("/".to_owned(), ErrorKind::Error, 1)]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn of_two_requests_at_once_on_one_thread_exactly_the_silent_one_is_counted() {
    let (_events, _guard) = install(Setup::With);
    let reporting = support::quiet_reporting();
    let polls = Arc::new(Mutex::new(Vec::new()));
    let (logs, silent) = (polls.clone(), polls.clone());
    let app = Router::new()
        .route(
            "/logs",
            get(move || async move {
                logs.lock().unwrap().push("logs");
                tokio::task::yield_now().await;
                tracing::error!("failing the order");
                logs.lock().unwrap().push("logs");
                tokio::task::yield_now().await;
                Err::<(), _>(Error::msg("order failed"))
            }),
        )
        .route(
            "/silent",
            get(move || async move {
                silent.lock().unwrap().push("silent");
                tokio::task::yield_now().await;
                silent.lock().unwrap().push("silent");
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                Err::<(), _>(Error::msg("order failed"))
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let (first, second) = tokio::join!(send(&app, "/logs"), send(&app, "/silent"));
    assert_eq!(first.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(second.0, StatusCode::INTERNAL_SERVER_ERROR);
    // Both handlers had started before either went on: their polls interleaved on this thread.
    let polls = polls.lock().unwrap();
    assert_eq!(polls[..2], ["logs", "silent"], "{polls:?}");
    drop(polls);
    assert_eq!(
        counted(&reporting),
        vec![("/silent".to_owned(), ErrorKind::Error, 1)]
    );
}

/// The routes of the counted groups, in the order they opened.
fn counted_routes(reporting: &unhandled::ReportingErrorHandler) -> Vec<String> {
    counted(reporting)
        .into_iter()
        .map(|group| group.0)
        .collect()
}
