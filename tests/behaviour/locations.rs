//! Where it failed: an error made by `?`, `Error::new`, `Error::msg` or `with_cause` names the line
//! that made it, and its cause's type, in the report's sample and in `LoggingLayer`'s failure
//! event (real axum servers on 127.0.0.1, a hyper client).

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;

use axum::{Router, http::StatusCode, response::IntoResponse, response::Response, routing::get};
use unhandled::{Error, ErrorHandlerLayer, LoggingLayer, ResponseExt};

use crate::support::{self, Captured, capture};

/// The line each handler's failing expression is on, as `line!()` gives it there.
static IO_LINE: AtomicU32 = AtomicU32::new(0);
static ANYHOW_LINE: AtomicU32 = AtomicU32::new(0);
static CUSTOM_LINE: AtomicU32 = AtomicU32::new(0);
static ATTACHED_LINE: AtomicU32 = AtomicU32::new(0);

async fn io() -> unhandled::Result<()> {
    IO_LINE.store(line!() + 1, Ordering::Relaxed);
    std::fs::read("/definitely/not/here")?;
    Ok(())
}

async fn with_anyhow() -> unhandled::Result<()> {
    let result: anyhow::Result<()> = Err(anyhow::anyhow!("the ledger is locked"));
    ANYHOW_LINE.store(line!() + 1, Ordering::Relaxed);
    result?;
    Ok(())
}

async fn custom() -> unhandled::Result<()> {
    CUSTOM_LINE.store(line!() + 1, Ordering::Relaxed);
    Err(support::load_failed())?
}

/// An application error type that renders its own 500 and attaches itself.
struct AppError(std::io::Error);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let response = (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response();
        ATTACHED_LINE.store(line!() + 1, Ordering::Relaxed);
        response.with_cause(self.0)
    }
}

async fn attached() -> Result<(), AppError> {
    Err(AppError(std::io::Error::other("disk on fire")))
}

static PANIC_LINE: AtomicU32 = AtomicU32::new(0);
static BODY_PANIC_LINE: AtomicU32 = AtomicU32::new(0);
static MIDDLEWARE_PANIC_LINE: AtomicU32 = AtomicU32::new(0);

async fn panics(axum::extract::Path(id): axum::extract::Path<String>) -> &'static str {
    let found: Option<&str> = (id == "never").then_some("x");
    PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
    found.unwrap()
}

async fn body_panics() -> axum::body::Body {
    let chunks = futures_util::stream::iter(0..2).map(|index| {
        if index == 1 {
            BODY_PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
            panic!("the exporter fell over at chunk {index}");
        }
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"first"))
    });
    axum::body::Body::from_stream(chunks)
}

async fn middleware_panics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path() == "/middleware" {
        MIDDLEWARE_PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
        panic!("the auth middleware fell over");
    }
    next.run(request).await
}

static FIRST_SITE_LINE: AtomicU32 = AtomicU32::new(0);
static SECOND_SITE_LINE: AtomicU32 = AtomicU32::new(0);

/// One route, two places that fail.
async fn two_sites(
    axum::extract::Path(site): axum::extract::Path<String>,
) -> unhandled::Result<()> {
    if site == "first" {
        FIRST_SITE_LINE.store(line!() + 1, Ordering::Relaxed);
        Err(std::io::Error::other("the first site"))?;
    }
    SECOND_SITE_LINE.store(line!() + 1, Ordering::Relaxed);
    Err(std::io::Error::other("the second site"))?
}

static NESTED_LINE: AtomicU32 = AtomicU32::new(0);
static UNWOUND_LINE: AtomicU32 = AtomicU32::new(0);

/// Catches a panic of its own, then panics for good.
async fn nested() -> &'static str {
    let _ = std::panic::catch_unwind(|| panic!("caught inside the handler"));
    NESTED_LINE.store(line!() + 1, Ordering::Relaxed);
    panic!("the handler's own panic")
}

/// Catches a panic in its `Drop`, which runs while the handler's panic unwinds.
struct CatchesWhileDropped;

impl Drop for CatchesWhileDropped {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| panic!("caught in a drop during unwinding"));
    }
}

async fn unwound() -> &'static str {
    let _guard = CatchesWhileDropped;
    UNWOUND_LINE.store(line!() + 1, Ordering::Relaxed);
    panic!("the panic being unwound")
}

static SPAWNED_PANIC_LINE: AtomicU32 = AtomicU32::new(0);

/// Awaits a task that panicked and resumes its panic: `resume_unwind` calls no panic hook.
async fn resumes() -> &'static str {
    let task = tokio::spawn(async {
        SPAWNED_PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
        panic!("the spawned job fell over")
    });
    match task.await {
        Ok(()) => "never",
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn routes() -> Router {
    Router::new()
        .route("/resumed", get(resumes))
        .route("/two/{site}", get(two_sites))
        .route("/nested", get(nested))
        .route("/unwound", get(unwound))
        .route("/io", get(io))
        .route("/anyhow", get(with_anyhow))
        .route("/custom", get(custom))
        .route("/attached", get(attached))
        .route("/panic/{id}", get(panics))
        .route("/stream-panic", get(body_panics))
        .route("/middleware", get(|| async { "never" }))
        .layer(axum::middleware::from_fn(middleware_panics))
}

/// One failure of `path` counted and reported: the report.
async fn report_of(path: &str) -> Captured {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let address = support::serve(routes().layer(ErrorHandlerLayer::new(reporting.clone()))).await;
    let status = support::get_status(address, path).await;
    assert!(
        status.is_server_error() || path == "/stream-panic",
        "{path}: {status}"
    );
    support::eventually(|| reporting.unhandled_count() == 1).await;
    reporting.shutdown().await;
    let reports = events.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    reports.into_iter().next().unwrap()
}

fn here(line: &AtomicU32) -> String {
    let line = line.load(Ordering::Relaxed);
    assert_ne!(line, 0, "the handler ran");
    format!("{}:{line}:", file!())
}

#[tokio::test(flavor = "current_thread")]
async fn the_question_mark_line_and_the_type_are_the_sample_s() {
    for (path, line, type_name) in [
        ("/io", &IO_LINE, "std::io::error::Error"),
        ("/anyhow", &ANYHOW_LINE, "anyhow::Error"),
        ("/custom", &CUSTOM_LINE, "behaviour::support::LoadFailed"),
        ("/attached", &ATTACHED_LINE, "std::io::error::Error"),
    ] {
        let report = report_of(path).await;
        let location = report.field("sample.location");
        assert!(location.starts_with(&here(line)), "{path}: {location}");
        assert_eq!(report.field("sample.type"), type_name, "{path}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_s_line_is_the_sample_s_in_the_handler_the_body_and_a_middleware() {
    for (path, line) in [
        ("/middleware", &MIDDLEWARE_PANIC_LINE),
        ("/panic/7", &PANIC_LINE),
        // Resumed from a task: the task's line, not "a panic hook replaced ours".
        ("/resumed", &SPAWNED_PANIC_LINE),
        ("/stream-panic", &BODY_PANIC_LINE),
    ] {
        let report = report_of(path).await;
        assert_eq!(report.field("sample.kind"), "panic", "{path}");
        let location = report.field("sample.location");
        assert!(location.starts_with(&here(line)), "{path}: {location}");
        assert!(!report.fields.contains_key("sample.type"), "{report:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn another_panic_caught_meanwhile_does_not_lend_its_line() {
    for (path, line) in [("/nested", &NESTED_LINE), ("/unwound", &UNWOUND_LINE)] {
        let report = report_of(path).await;
        let location = report.field("sample.location");
        assert!(location.starts_with(&here(line)), "{path}: {location}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn two_sites_on_one_route_are_two_groups_with_their_own_counts() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let address = support::serve(routes().layer(ErrorHandlerLayer::new(reporting.clone()))).await;
    for path in ["/two/first", "/two/second", "/two/first"] {
        assert_eq!(support::get_status(address, path).await, 500);
    }
    support::eventually(|| reporting.unhandled_count() == 3).await;
    let groups = reporting.breakdown().groups;
    let sites: Vec<(&str, Option<&str>, u64)> = groups
        .iter()
        .map(|group| (group.route.as_str(), group.location.as_deref(), group.count))
        .collect();
    assert_eq!(sites.len(), 2, "{sites:?}");
    assert!(sites.iter().all(|(route, _, _)| *route == "/two/{site}"));
    assert!(
        sites[0].1.unwrap().starts_with(&here(&FIRST_SITE_LINE)),
        "{sites:?}"
    );
    assert_eq!(sites[0].2, 2);
    assert!(
        sites[1].1.unwrap().starts_with(&here(&SECOND_SITE_LINE)),
        "{sites:?}"
    );
    assert_eq!(sites[1].2, 1);
    reporting.shutdown().await;
    let reports = events.reports();
    let top = reports[0].field("top");
    let first = format!("GET /two/{{site}} error at {}", sites[0].1.unwrap());
    let second = format!("GET /two/{{site}} error at {}", sites[1].1.unwrap());
    assert_eq!(top, format!("{first} ×2, {second} ×1"));
}

#[tokio::test(flavor = "current_thread")]
async fn logging_layer_s_failure_event_names_the_line_and_the_type() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let app = routes()
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;
    assert_eq!(
        support::get_status(address, "/io").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    support::eventually(|| !failures(&events.all()).is_empty()).await;
    let failed = failures(&events.all());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].field("location").starts_with(&here(&IO_LINE)));
    assert_eq!(failed[0].field("exception.type"), "std::io::error::Error");
    assert_eq!(reporting.unhandled_count(), 0);
    // A panic inside the logging layer: logged with its line, then resumed and caught outside.
    let status = support::get_status(address, "/panic/7").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    support::eventually(|| failures(&events.all()).len() == 2).await;
    let failed = failures(&events.all());
    let location = failed[1].field("location");
    assert!(location.starts_with(&here(&PANIC_LINE)), "{failed:?}");
    // The status the error handler outside answers a panic with.
    assert_eq!(failed[1].field("status"), "500", "{failed:?}");
    assert_eq!(reporting.unhandled_count(), 0);
}

fn failures(events: &[Captured]) -> Vec<Captured> {
    events
        .iter()
        .filter(|event| event.fields.get("message").map(String::as_str) == Some("request failed"))
        .cloned()
        .collect()
}

#[test]
fn msg_names_its_caller_and_map_err_from_names_core() {
    let error = Error::msg("x");
    assert_eq!(error.location().unwrap().file(), file!());
    assert_eq!(error.type_name(), None);
    let read = std::fs::read("/definitely/not/here");
    let mapped: unhandled::Result<Vec<u8>> = read.map_err(Error::from);
    // A function path goes through core's untracked `FnOnce` shim: the location is core's.
    let error = mapped.unwrap_err();
    let location = error.location().unwrap();
    assert_ne!(location.file(), file!(), "{location}");
}
