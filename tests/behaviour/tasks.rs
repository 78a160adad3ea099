//! Work a request hands off (`TaskExt::reported`, `unhandled::spawn`): a spawned task's failure is
//! counted, located and reported under the request that spawned it, over real TCP.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use axum::{Router, http::StatusCode, routing::post};
use tokio::task::JoinSet;
use unhandled::{ErrorHandlerLayer, ErrorKind, ReportingErrorHandler, TaskExt as _};

use crate::support::{self, Captured, capture};

static ERR_LINE: AtomicU32 = AtomicU32::new(0);
static SPAWN_LINE: AtomicU32 = AtomicU32::new(0);
static PANIC_LINE: AtomicU32 = AtomicU32::new(0);

async fn send_welcome_mail() -> unhandled::Result<()> {
    ERR_LINE.store(line!() + 1, Ordering::Relaxed);
    Err(std::io::Error::other("the mail relay refused the message"))?;
    Ok(())
}

async fn create_user() -> StatusCode {
    SPAWN_LINE.store(line!() + 1, Ordering::Relaxed);
    tokio::spawn(send_welcome_mail().reported());
    StatusCode::CREATED
}

async fn warm_cache() {
    PANIC_LINE.store(line!() + 1, Ordering::Relaxed);
    panic!("the cache warmer fell over");
}

async fn create_order() -> StatusCode {
    unhandled::spawn(warm_cache());
    StatusCode::CREATED
}

/// A task spawned by a task of the request: still the request's.
async fn create_invoice() -> StatusCode {
    unhandled::spawn(async {
        unhandled::spawn(async { Err::<(), _>(std::io::Error::other("the printer is offline")) });
    });
    StatusCode::CREATED
}

async fn with_join_set() -> StatusCode {
    let mut set = JoinSet::new();
    set.spawn(async { Err::<(), _>(anyhow::anyhow!("the ledger is locked")) }.reported());
    // Awaited: the caller gets the task's own `Err`.
    let output = set.join_next().await.unwrap().unwrap();
    assert_eq!(output.unwrap_err().to_string(), "the ledger is locked");
    StatusCode::CREATED
}

async fn with_task_tracker() -> StatusCode {
    let tracker = tokio_util::task::TaskTracker::new();
    tracker.spawn(async { Err::<(), _>(eyre::eyre!("the queue is full")) }.reported());
    tracker.close();
    tracker.wait().await;
    StatusCode::CREATED
}

async fn with_message_and_boxed_errors() -> StatusCode {
    let message = tokio::spawn(async { Err::<(), _>("the quota is spent") }.reported());
    let owned = tokio::spawn(async { Err::<(), _>(String::from("the quota is gone")) }.reported());
    let boxed = tokio::spawn(
        async { Err::<(), Box<dyn std::error::Error + Send + Sync>>("the quota is void".into()) }
            .reported(),
    );
    // A task that never returns (`!`) is reported too: its panic is.
    let never = tokio::spawn(
        async {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        .reported(),
    );
    never.abort();
    let _ = (message.await, owned.await, boxed.await, never.await);
    StatusCode::CREATED
}

async fn with_spawn_blocking() -> StatusCode {
    let handle = unhandled::spawn_blocking(|| std::fs::read("/definitely/not/here"));
    assert!(handle.await.unwrap().is_err());
    StatusCode::CREATED
}

#[tracing::instrument(err)]
async fn logged_task() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("logged by the task itself"))
}

async fn with_logged_task() -> StatusCode {
    let handle = tokio::spawn(logged_task().reported());
    let _ = handle.await;
    StatusCode::CREATED
}

async fn with_succeeding_tasks() -> StatusCode {
    // Awaited, so that the count read after the answer has seen them end.
    tokio::spawn(async {}.reported()).await.unwrap();
    let _ = tokio::spawn(async { Ok::<_, std::io::Error>(7) }.reported()).await;
    let aborted = tokio::spawn(
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            panic!("never reached");
        }
        .reported(),
    );
    aborted.abort();
    assert!(aborted.await.unwrap_err().is_cancelled());
    StatusCode::CREATED
}

fn app(reporting: &ReportingErrorHandler) -> Router {
    Router::new()
        .route("/users", post(create_user))
        .route("/orders", post(create_order))
        .route("/invoices", post(create_invoice))
        .route("/ledger", post(with_join_set))
        .route("/queue", post(with_task_tracker))
        .route("/files", post(with_spawn_blocking))
        .route("/messages", post(with_message_and_boxed_errors))
        .route("/logged", post(with_logged_task))
        .route("/fine", post(with_succeeding_tasks))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
}

/// The one report after `path` was posted `times` times and `count` failures were counted.
async fn report_after(path: &str, times: usize, count: u64) -> (ReportingErrorHandler, Captured) {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let address = support::serve(app(&reporting)).await;
    for _ in 0..times {
        assert_eq!(post_status(address, path).await, StatusCode::CREATED);
    }
    support::eventually(|| reporting.unhandled_count() >= count).await;
    assert_eq!(reporting.unhandled_count(), count);
    reporting.shutdown().await;
    let reports = events.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    (reporting, reports.into_iter().next().unwrap())
}

async fn post_status(address: std::net::SocketAddr, path: &str) -> StatusCode {
    let request = axum::http::Request::post(path)
        .header("host", "localhost")
        .body(axum::body::Body::empty())
        .unwrap();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender.send_request(request).await.unwrap().status()
}

#[tokio::test(flavor = "current_thread")]
async fn a_spawned_task_s_error_is_counted_under_the_request_that_spawned_it() {
    let (reporting, report) = report_after("/users", 3, 3).await;
    let group = &reporting.breakdown().groups[0];
    assert_eq!(
        (group.method, group.route.as_str(), group.kind, group.count),
        ("POST", "/users", ErrorKind::Task, 3)
    );
    let file = file!();
    let at = format!("{file}:{}:", ERR_LINE.load(Ordering::Relaxed));
    let spawned = format!("{file}:{}:", SPAWN_LINE.load(Ordering::Relaxed));
    assert!(
        report.field("sample.location").starts_with(&at),
        "{report:?}"
    );
    assert_eq!(report.field("sample.kind"), "task");
    assert_eq!(report.field("sample.route"), "/users");
    assert!(
        report
            .field("sample.error")
            .contains("the mail relay refused")
    );
    let top = report.field("top");
    assert!(
        top.starts_with(&format!("POST /users task at {at}")),
        "{top}"
    );
    assert!(top.contains(&format!("×3, spawned at {spawned}")), "{top}");
    assert!(group.spawned_at.as_deref().unwrap().starts_with(&spawned));
    // The advice fits a task: no logging layer sees one.
    let fix = report.field("fix");
    assert!(fix.starts_with("log them in the task"), "{fix}");
    assert!(!fix.contains("LoggingLayer"), "{fix}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_spawned_task_s_panic_is_counted_with_its_line_and_the_request_still_got_its_answer() {
    let (reporting, report) = report_after("/orders", 2, 2).await;
    let group = &reporting.breakdown().groups[0];
    assert_eq!(
        (group.route.as_str(), group.kind, group.count),
        ("/orders", ErrorKind::TaskPanic, 2)
    );
    let at = format!("{}:{}:", file!(), PANIC_LINE.load(Ordering::Relaxed));
    assert!(
        report.field("sample.location").starts_with(&at),
        "{report:?}"
    );
    assert_eq!(report.field("sample.kind"), "task_panic");
    assert!(
        report
            .field("sample.error")
            .contains("the cache warmer fell over")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_spawned_by_a_task_join_sets_task_trackers_and_spawn_blocking_are_the_request_s() {
    for (path, error) in [
        ("/invoices", "the printer is offline"),
        ("/ledger", "the ledger is locked"),
        ("/queue", "the queue is full"),
        ("/files", "No such file or directory"),
    ] {
        let (reporting, report) = report_after(path, 1, 1).await;
        let group = &reporting.breakdown().groups[0];
        assert_eq!((group.route.as_str(), group.kind), (path, ErrorKind::Task));
        assert!(report.field("sample.error").contains(error), "{report:?}");
        // None of these errors went through a `?` into `unhandled::Error`: the note says how.
        assert!(!report.fields.contains_key("sample.location"), "{report:?}");
        assert!(
            report
                .field("sample.location_note")
                .contains("make the task return unhandled::Result"),
            "{report:?}"
        );
        assert_eq!(
            report.field("sample.location_note"),
            "the task returned an error that records no line; make the task return \
             unhandled::Result, so that its ? names the line"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn message_and_boxed_errors_are_counted_with_their_text() {
    let (reporting, _report) = report_after("/messages", 1, 3).await;
    let groups = reporting.breakdown().groups;
    assert!(
        groups
            .iter()
            .all(|group| group.route == "/messages" && group.kind == ErrorKind::Task),
        "{groups:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn successes_aborted_tasks_and_tasks_that_log_their_failure_are_not_counted() {
    let _layer = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(unhandled::subscriber::layer()),
    );
    let reporting = support::quiet_reporting();
    let address = support::serve(app(&reporting)).await;
    // Each handler awaits its tasks before it answers: counted by then, if they were.
    assert_eq!(post_status(address, "/fine").await, StatusCode::CREATED);
    assert_eq!(post_status(address, "/logged").await, StatusCode::CREATED);
    assert_eq!(
        reporting.unhandled_count(),
        0,
        "{:?}",
        reporting.breakdown()
    );
    // A positive control: the same server counts a task that does not log.
    assert_eq!(post_status(address, "/users").await, StatusCode::CREATED);
    support::eventually(|| reporting.unhandled_count() == 1).await;
    assert_eq!(reporting.unhandled_count(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn an_awaiting_caller_sees_what_it_saw_without_reported() {
    let error = tokio::spawn(
        async { Err::<(), _>(std::io::Error::other("gone")) }.reported_as("tests-awaited-error"),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::Other);
    let joined = tokio::spawn(
        async {
            panic!("boom");
        }
        .reported_as("tests-awaited-panic"),
    )
    .await;
    let payload = joined.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
}

#[tokio::test(flavor = "current_thread")]
async fn outside_a_request_a_task_is_counted_by_the_process_wide_reporter_under_its_name() {
    let global = ReportingErrorHandler::global();
    let named = || {
        global
            .breakdown()
            .groups
            .into_iter()
            .find(|group| group.route == "nightly-gc")
    };
    let _ = tokio::spawn(
        async { Err::<(), _>(anyhow::anyhow!("the store is read-only")) }.reported_as("nightly-gc"),
    )
    .await;
    let group = named().expect("a group named nightly-gc");
    assert_eq!(
        (group.method, group.kind, group.count),
        ("_OTHER", ErrorKind::Task, 1)
    );

    let background = || {
        global
            .breakdown()
            .groups
            .into_iter()
            .find(|group| group.route == "_background" && group.kind == ErrorKind::Task)
            .map_or(0, |group| group.count)
    };
    let before = background();
    let _ = unhandled::spawn(async { Err::<(), _>(std::io::Error::other("unnamed")) }).await;
    assert_eq!(background(), before + 1);

    // A task a named background task spawns is no request's, nor that task's: `_background`.
    let _ = tokio::spawn(
        async {
            let inner = unhandled::spawn(async { Err::<(), _>(std::io::Error::other("inner")) });
            let _ = inner.await;
        }
        .reported_as("tests-outer-job"),
    )
    .await;
    assert_eq!(background(), before + 2);
    let outer = global.breakdown().groups.into_iter();
    assert!(
        outer
            .filter(|group| group.route == "tests-outer-job")
            .count()
            == 0
    );
}

use tracing_subscriber::prelude::*;

#[tokio::test(flavor = "current_thread")]
async fn a_custom_handler_sees_a_task_s_failure_with_its_kind_text_and_spawn_site() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = std::sync::Arc::clone(&seen);
    let handler = move |error: &unhandled::Error, context: &unhandled::ErrorContext<'_>| {
        recorded.lock().unwrap().push((
            context.kind(),
            context.is_task(),
            context.route().map(str::to_owned),
            context.spawned_at().map(|site| site.line()),
            error.to_string(),
        ));
        // Dropped: the task's response, if it had one, was sent long ago.
        Some(axum::response::IntoResponse::into_response(
            StatusCode::IM_A_TEAPOT,
        ))
    };
    let app = Router::new()
        .route("/users", post(create_user))
        .route("/invoices", post(create_invoice))
        .layer(ErrorHandlerLayer::new(handler));
    let address = support::serve(app).await;
    assert_eq!(post_status(address, "/users").await, StatusCode::CREATED);
    support::eventually(|| !seen.lock().unwrap().is_empty()).await;
    // A standard error's text, written before a handler that may read it is called.
    assert_eq!(post_status(address, "/invoices").await, StatusCode::CREATED);
    support::eventually(|| seen.lock().unwrap().len() == 2).await;
    let seen = seen.lock().unwrap();
    assert!(
        seen[1].4.contains("the printer is offline"),
        "{:?}",
        seen[1]
    );
    let (kind, is_task, route, line, text) = &seen[0];
    assert_eq!((*kind, *is_task), (ErrorKind::Task, true));
    assert_eq!(route.as_deref(), Some("/users"));
    assert_eq!(*line, Some(SPAWN_LINE.load(Ordering::Relaxed)));
    assert!(text.contains("the mail relay refused"), "{text}");
}
