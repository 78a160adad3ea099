//! Real axum applications' own error types, written as axum's examples write them: each 5xx is
//! counted once (`kind="status"` alone, `kind="error"` with its cause attached), 1xx-4xx never;
//! a real Prometheus recorder exports the same counts, and the report shows the whole chain.

use crate::support;

use std::{fmt, sync::Arc};

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use unhandled::{
    ErrorHandlerLayer, ErrorKind, LoggingLayer, ReportingErrorHandler, ResponseExt as _,
};

use support::{Captured, capture, counted, load_failed, send};

// --- axum's anyhow-error-response example, as it is --------------------------------------

struct AppError(anyhow::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Something went wrong: {}", self.0),
        )
            .into_response()
    }
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(err: E) -> Self {
        Self(err.into())
    }
}

async fn anyhow_handler() -> Result<(), AppError> {
    try_thing()?;
    Ok(())
}

fn try_thing() -> anyhow::Result<()> {
    Err(anyhow::Error::new(load_failed()).context("it failed!"))
}

// --- the same, attaching its cause in one line --------------------------------------------

struct AttachedAppError(anyhow::Error);

impl IntoResponse for AttachedAppError {
    fn into_response(self) -> Response {
        let body = format!("Something went wrong: {}", self.0);
        (StatusCode::INTERNAL_SERVER_ERROR, body)
            .into_response()
            .with_cause(self.0)
    }
}

async fn attached_anyhow_handler() -> Result<(), AttachedAppError> {
    try_thing().map_err(AttachedAppError)
}

// --- the `internal_error` helper of axum's sqlx/tokio-postgres/diesel/redis/mongodb examples ---

fn internal_error<E: std::error::Error>(err: E) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

/// A database query that fails, as `sqlx::query_scalar(…).fetch_one(&pool)` would.
fn query() -> Result<String, support::LoadFailed> {
    Err(load_failed())
}

async fn database_handler() -> Result<String, (StatusCode, String)> {
    query().map_err(internal_error)
}

fn internal_error_attached<E>(err: E) -> Response
where
    E: std::error::Error + Send + Sync + 'static,
{
    (StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
        .into_response()
        .with_cause(err)
}

async fn attached_database_handler() -> Result<String, Response> {
    query().map_err(internal_error_attached)
}

// --- an error enum, as axum's jwt example: one variant 500, the others 4xx ----------------

#[derive(Debug)]
enum AuthError {
    WrongCredentials,
    MissingCredentials,
    InvalidToken,
    TokenCreation,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::WrongCredentials => StatusCode::UNAUTHORIZED,
            Self::MissingCredentials => StatusCode::BAD_REQUEST,
            Self::InvalidToken => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TokenCreation => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = format!("{{\"error\":\"{self}\"}}");
        (self.status(), [("content-type", "application/json")], body).into_response()
    }
}

/// The same enum attaching itself as the cause of every variant: only the 5xx counts.
struct AttachedAuthError(AuthError);

impl IntoResponse for AttachedAuthError {
    fn into_response(self) -> Response {
        (self.0.status(), self.0.to_string())
            .into_response()
            .with_cause(self.0)
    }
}

fn auth_routes() -> Router {
    let variant = |error: fn() -> AuthError| move || async move { Err::<(), _>(error()) };
    let attached =
        |error: fn() -> AuthError| move || async move { Err::<(), _>(AttachedAuthError(error())) };
    Router::new()
        .route("/auth/500", get(variant(|| AuthError::TokenCreation)))
        .route("/auth/401", get(variant(|| AuthError::WrongCredentials)))
        .route("/auth/400", get(variant(|| AuthError::MissingCredentials)))
        .route("/auth/422", get(variant(|| AuthError::InvalidToken)))
        .route("/attached/500", get(attached(|| AuthError::TokenCreation)))
        .route(
            "/attached/401",
            get(attached(|| AuthError::WrongCredentials)),
        )
        .route("/attached/422", get(attached(|| AuthError::InvalidToken)))
}

// --- the app ---------------------------------------------------------------------------

async fn axum_extra_handler()
-> Result<(), axum_extra::response::InternalServerError<std::io::Error>> {
    let write = std::fs::write("/proc/unhandled-test/not-writable", "x");
    write.map_err(axum_extra::response::InternalServerError)
}

fn app(reporting: &ReportingErrorHandler) -> Router {
    Router::new()
        .route("/anyhow", get(anyhow_handler))
        .route("/anyhow/attached", get(attached_anyhow_handler))
        .route("/db", get(database_handler))
        .route("/db/attached", get(attached_database_handler))
        .route(
            "/bare-500",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/axum-extra", get(axum_extra_handler))
        .route("/ok", get(|| async { "ok" }))
        .merge(auth_routes())
        .layer(ErrorHandlerLayer::new(reporting.clone()))
}

/// The value of the exported `GET` series with these labels, if there is one.
fn exported(text: &str, route: &str, kind: &str) -> Option<u64> {
    support::exported(text, "GET", route, kind)
}

/// Sends each path once through `app` with a real Prometheus recorder in force; the rendered
/// metrics, and the one report `shutdown` logs.
async fn run(reporting: &ReportingErrorHandler, paths: &[&str]) -> (String, Vec<Captured>) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let (events, _subscriber) = capture();
    let app = app(reporting);
    for path in paths {
        send(&app, path).await;
    }
    reporting.shutdown().await;
    (handle.render(), events.reports())
}

#[tokio::test(flavor = "current_thread")]
async fn each_pattern_is_counted_once_with_its_route_and_kind_and_exported_alike() {
    let reporting = support::quiet_reporting();
    let paths = [
        "/anyhow",
        "/anyhow/attached",
        "/db",
        "/db/attached",
        "/bare-500",
        "/axum-extra",
        "/auth/500",
        "/attached/500",
    ];
    let (metrics, _) = run(&reporting, &paths).await;

    let expected = [
        ("/anyhow", ErrorKind::Status),
        ("/anyhow/attached", ErrorKind::Error),
        ("/db", ErrorKind::Status),
        ("/db/attached", ErrorKind::Error),
        ("/bare-500", ErrorKind::Status),
        ("/axum-extra", ErrorKind::Status),
        ("/auth/500", ErrorKind::Status),
        ("/attached/500", ErrorKind::Error),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(route, kind)| ((*route).to_owned(), *kind, 1))
        .collect();
    assert_eq!(counted(&reporting), expected);
    assert_eq!(reporting.unhandled_count(), 8);
    for (route, kind, _) in &expected {
        assert_eq!(
            exported(&metrics, route, kind.as_str()),
            Some(1),
            "{route} {kind}: {metrics}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn responses_keep_their_status_headers_and_body() {
    let reporting = support::quiet_reporting();
    let app = app(&reporting);
    assert_eq!(
        send(&app, "/anyhow").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong: it failed!".to_owned()
        )
    );
    assert_eq!(
        send(&app, "/anyhow/attached").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong: it failed!".to_owned()
        )
    );
    assert_eq!(
        send(&app, "/db/attached").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "loading user 7".to_owned()
        )
    );
    let (status, body) = send(&app, "/auth/500").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("TokenCreation"), "{body}");
}

#[tokio::test(flavor = "current_thread")]
async fn client_error_variants_of_the_same_types_are_never_counted() {
    let reporting = support::quiet_reporting();
    let paths = [
        "/auth/401",
        "/auth/400",
        "/auth/422",
        "/attached/401",
        "/attached/422",
        "/ok",
    ];
    let (metrics, reports) = run(&reporting, &paths).await;
    assert_eq!(reporting.unhandled_count(), 0, "{:?}", counted(&reporting));
    assert!(
        !metrics.contains("http_server_unhandled_errors_total{"),
        "{metrics}"
    );
    assert!(reports.is_empty(), "{reports:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_attached_cause_shows_its_whole_chain_in_the_report() {
    let reporting = support::quiet_reporting();
    let (_, reports) = run(&reporting, &["/anyhow/attached"]).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = &reports[0];
    assert_eq!(report.field("sample.kind"), "error");
    assert_eq!(report.field("sample.route"), "/anyhow/attached");
    assert_eq!(
        report.field("sample.error"),
        "it failed!: loading user 7: connection refused"
    );
    assert!(!report.fields.contains_key("sample.fix"), "{report:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_plain_5xx_sample_names_the_status_and_request_and_how_to_attach_a_cause() {
    let reporting = support::quiet_reporting();
    let (_, reports) = run(&reporting, &["/db"]).await;
    let report = &reports[0];
    assert_eq!(report.field("sample.kind"), "status");
    assert_eq!(report.field("sample.status"), "500");
    assert_eq!(report.field("sample.method"), "GET");
    assert_eq!(report.field("sample.path"), "/db");
    assert_eq!(
        report.field("sample.error"),
        "500 Internal Server Error with no cause attached"
    );
    let fix = report.field("sample.fix");
    assert!(fix.contains("no cause was attached"), "{fix}");
    assert!(fix.contains(".with_cause(error)"), "{fix}");
}

/// anyhow, eyre and `Arc<E>` causes keep their chains; so does `?` on their results.
#[tokio::test(flavor = "current_thread")]
async fn anyhow_eyre_and_arc_causes_keep_their_chains() {
    let reporting = support::quiet_reporting();
    let respond =
        |cause: unhandled::BoxError| StatusCode::BAD_GATEWAY.into_response().with_cause(cause);
    let app = Router::new()
        .route(
            "/eyre",
            get(move || async move {
                let report = eyre::Report::new(load_failed()).wrap_err("calling billing");
                respond(report.into())
            }),
        )
        .route(
            "/arc",
            get(move || async move { respond(Arc::new(load_failed()).into()) }),
        )
        .route(
            "/question-mark/anyhow",
            get(|| async {
                try_thing()?;
                Ok::<(), unhandled::Error>(())
            }),
        )
        .route(
            "/question-mark/eyre",
            get(|| async {
                Err(eyre::Report::new(load_failed()).wrap_err("syncing"))?;
                Ok::<(), unhandled::Error>(())
            }),
        )
        .route(
            "/question-mark/text",
            get(|| async {
                Err("the cache is cold")?;
                Ok::<(), unhandled::Error>(())
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    let (events, _subscriber) = capture();
    let mut chains = Vec::new();
    for path in [
        "/eyre",
        "/arc",
        "/question-mark/anyhow",
        "/question-mark/eyre",
        "/question-mark/text",
    ] {
        send(&app, path).await;
        reporting.shutdown().await;
        let reports = events.reports();
        chains.push(reports.last().unwrap().field("sample.error").to_owned());
    }
    assert_eq!(
        chains,
        [
            "calling billing: loading user 7: connection refused",
            "loading user 7: connection refused",
            "it failed!: loading user 7: connection refused",
            "syncing: loading user 7: connection refused",
            "the cache is cold",
        ]
    );
    assert!(
        counted(&reporting)
            .iter()
            .all(|(_, kind, count)| *kind == ErrorKind::Error && *count == 1)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn turned_off_plain_5xx_are_not_counted_and_attached_causes_still_are() {
    let reporting = ReportingErrorHandler::builder()
        .count_error_responses(false)
        .build();
    let (metrics, _) = run(
        &reporting,
        &[
            "/anyhow",
            "/db",
            "/bare-500",
            "/anyhow/attached",
            "/db/attached",
        ],
    )
    .await;
    assert_eq!(
        counted(&reporting),
        [
            ("/anyhow/attached".to_owned(), ErrorKind::Error, 1),
            ("/db/attached".to_owned(), ErrorKind::Error, 1),
        ]
    );
    assert_eq!(exported(&metrics, "/anyhow", "status"), None, "{metrics}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_logged_cause_is_seen_by_the_handler_and_not_counted() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let handler = move |error: &unhandled::Error,
                        context: &unhandled::ErrorContext<'_>|
          -> Option<Response> {
        recorded
            .lock()
            .unwrap()
            .push((context.kind(), error.is_logged(), format!("{error:#}")));
        None
    };
    let reporting = ReportingErrorHandler::builder().wrap(handler);
    let app = Router::new()
        .route(
            "/oauth",
            get(|| async {
                let cause = anyhow::Error::new(load_failed()).context("token exchange");
                tracing::error!("Application error: {cause:#}"); // what axum's oauth example does
                StatusCode::INTERNAL_SERVER_ERROR
                    .into_response()
                    .with_logged_cause(cause)
            }),
        )
        .route("/plain", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(
        send(&app, "/oauth").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        send(&app, "/plain").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                ErrorKind::Error,
                true,
                "token exchange: loading user 7: connection refused".to_owned()
            ),
            (
                ErrorKind::Status,
                false,
                "503 Service Unavailable with no cause attached".to_owned()
            ),
        ]
    );
    assert_eq!(
        counted(&reporting),
        [("/plain".to_owned(), ErrorKind::Status, 1)]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn behind_the_logging_layer_each_5xx_is_logged_once_and_never_counted() {
    let reporting = support::quiet_reporting();
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let (events, _subscriber) = capture();
    let app = Router::new()
        .route("/anyhow", get(anyhow_handler))
        .route("/anyhow/attached", get(attached_anyhow_handler))
        .route("/db", get(database_handler))
        .route("/auth/401", get(|| async { AuthError::WrongCredentials }))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    for path in ["/anyhow", "/anyhow/attached", "/db", "/auth/401"] {
        send(&app, path).await;
    }
    reporting.shutdown().await;

    let failures: Vec<(String, String, String)> = events
        .all()
        .into_iter()
        .filter(|event| event.target == unhandled::logging::TARGET)
        .filter(|event| event.field("message") == "request failed")
        .map(|event| {
            (
                event.field("route").to_owned(),
                event.field("kind").to_owned(),
                event.field("error").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            (
                "/anyhow".to_owned(),
                "status".to_owned(),
                "500 Internal Server Error".to_owned()
            ),
            (
                "/anyhow/attached".to_owned(),
                "error".to_owned(),
                "it failed!: loading user 7: connection refused".to_owned()
            ),
            (
                "/db".to_owned(),
                "status".to_owned(),
                "500 Internal Server Error".to_owned()
            ),
        ]
    );
    assert_eq!(reporting.unhandled_count(), 0, "{:?}", counted(&reporting));
    assert!(events.reports().is_empty());
    assert!(
        !handle
            .render()
            .contains("http_server_unhandled_errors_total{")
    );
}
