//! Where an application's own error type failed: a `thiserror` enum with `#[from]` variants (a
//! database driver's error, `io::Error`, `anyhow::Error`), rendered in its `IntoResponse`, as
//! axum applications write it. With `unhandled::At` recorded in its `From`, the report names the
//! handler's `?` line and the source's own type; without it, the report says that its location is
//! where the cause was attached, and how to get the `?` line. Real axum server on 127.0.0.1.

use std::sync::atomic::{AtomicU32, Ordering};

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use unhandled::{At, ErrorHandlerLayer, ResponseExt as _};

use crate::support::{self, Captured, capture};

/// A database driver's error, as `sqlx::Error` is to the application: a type of its own.
#[derive(Debug, thiserror::Error)]
#[error("error returned from database: relation \"articles\" does not exist")]
struct DriverError;

/// What went wrong, as the application's `thiserror` enum says it.
#[derive(Debug, thiserror::Error)]
enum Kind {
    #[error("an error occurred with the database")]
    Database(#[from] DriverError),
    #[error("an error occurred reading a file")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The application's error: what went wrong, and where (`?` calls the `From` below).
struct AppError {
    kind: Kind,
    at: At,
}

impl<E: Into<Kind>> From<E> for AppError {
    #[track_caller]
    fn from(error: E) -> Self {
        Self {
            at: At::here::<E>(),
            kind: error.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        (status, "internal server error")
            .into_response()
            .with_cause_at(self.kind, self.at)
    }
}

static DATABASE_LINE: AtomicU32 = AtomicU32::new(0);
static IO_LINE: AtomicU32 = AtomicU32::new(0);
static ANYHOW_LINE: AtomicU32 = AtomicU32::new(0);

async fn list_articles() -> Result<(), AppError> {
    DATABASE_LINE.store(line!() + 1, Ordering::Relaxed);
    Err(DriverError)?;
    Ok(())
}

async fn read_avatar() -> Result<(), AppError> {
    IO_LINE.store(line!() + 1, Ordering::Relaxed);
    std::fs::read("/definitely/not/an/avatar")?;
    Ok(())
}

async fn hash_password() -> Result<(), AppError> {
    ANYHOW_LINE.store(line!() + 1, Ordering::Relaxed);
    Err(anyhow::anyhow!("argon2 refused the parameters"))?;
    Ok(())
}

/// The same enum, rendered as README's one-line recipe renders it, without `At`.
struct PlainError(Kind);

impl<E: Into<Kind>> From<E> for PlainError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PlainError {
    fn into_response(self) -> Response {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        (status, "internal server error")
            .into_response()
            .with_cause(self.0)
    }
}

async fn plain() -> Result<(), PlainError> {
    Err(DriverError)?;
    Ok(())
}

/// A handler that converts with a function path: the location `core` gives.
async fn through_map_err() -> unhandled::Result<()> {
    std::fs::read("/definitely/not/here").map_err(unhandled::Error::from)?;
    Ok(())
}

/// The report of one failure of `path`.
async fn report_of(path: &str) -> Captured {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route("/articles", get(list_articles))
        .route("/avatar", get(read_avatar))
        .route("/password", get(hash_password))
        .route("/plain", get(plain))
        .route("/map-err", get(through_map_err))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    assert_eq!(
        support::get_status(address, path).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    support::eventually(|| reporting.unhandled_count() == 1).await;
    reporting.shutdown().await;
    let reports = events.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    reports.into_iter().next().unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn with_at_the_report_names_the_handler_s_question_mark_and_the_source_s_type() {
    for (path, line, type_name) in [
        (
            "/articles",
            &DATABASE_LINE,
            "behaviour::own_error_type::DriverError",
        ),
        ("/avatar", &IO_LINE, "std::io::error::Error"),
        ("/password", &ANYHOW_LINE, "anyhow::Error"),
    ] {
        let report = report_of(path).await;
        let expected = format!("{}:{}:", file!(), line.load(Ordering::Relaxed));
        let location = report.field("sample.location");
        assert!(location.starts_with(&expected), "{path}: {location}");
        assert_eq!(report.field("sample.type"), type_name, "{path}");
        assert!(
            !report.fields.contains_key("sample.location_note"),
            "{report:?}"
        );
        assert!(report.field("top").contains(&expected), "{path}");
    }
}

/// The sample's path keeps the query that caused the failure, its secrets redacted.
#[tokio::test(flavor = "current_thread")]
async fn the_sample_s_path_keeps_the_redacted_query() {
    let report = report_of("/articles?limit=-1&token=SECRET&api_key=SECRET").await;
    assert_eq!(
        report.field("sample.path"),
        "/articles?limit=-1&token=REDACTED&api_key=REDACTED"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn without_at_the_report_says_where_its_location_comes_from_and_how_to_get_the_line() {
    let report = report_of("/plain").await;
    let note = report.field("sample.location_note");
    assert!(
        note.starts_with("where ResponseExt::with_cause attached the cause"),
        "{note}"
    );
    assert!(note.contains("unhandled::At"), "{note}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_location_inside_the_standard_library_is_never_shown_as_the_place() {
    let report = report_of("/map-err").await;
    let top = report.field("top");
    match report.fields.get("sample.backtrace") {
        // With backtraces on (RUST_BACKTRACE in the environment): the first frame of the
        // application.
        Some(_) => {
            let location = report.field("sample.location");
            assert!(location.contains("own_error_type.rs"), "{location}");
        }
        None => {
            assert!(
                !report.fields.contains_key("sample.location"),
                "a line of core is no place: {report:?}"
            );
            assert!(
                report
                    .field("sample.location_note")
                    .starts_with("inside the standard library"),
                "{report:?}"
            );
        }
    }
    assert!(top.contains("at a line the standard library hid"), "{top}");
    assert!(!top.contains("/rustc/"), "{top}");
}
