//! An application's hook set before the first error-handler layer keeps running exactly once per
//! panic, with the location still reported; one set after it, that does not chain, loses only the
//! location: the panic is still caught and counted, and the report says how to keep locations
//! (real axum server on 127.0.0.1). In a child process: a panic hook is process-wide.

use crate::support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, http::StatusCode, routing::get};
use unhandled::ErrorHandlerLayer;

/// The line of [`fall_over`]'s panic.
const FALL_OVER_LINE: u32 = line!() + 3;

async fn fall_over() -> &'static str {
    panic!("the hook test fell over")
}

#[test]
fn hooks_set_before_keep_running_and_hooks_set_after_lose_only_the_location() {
    support::run_child("panic_hook::child", &[], &[]);
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run as a child process by the test above"]
async fn child() {
    // Before the first layer: it runs once per panic, and the location is still noted.
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    std::panic::set_hook(Box::new(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    }));
    let (events, _guard) = support::capture();
    let reporting = support::quiet_reporting();
    let app = Router::new().route("/panic", get(fall_over));
    let address = support::serve(app.layer(ErrorHandlerLayer::new(reporting.clone()))).await;
    let status = support::get_status(address, "/panic").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    support::eventually(|| reporting.unhandled_count() == 1).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the application's hook ran once"
    );
    reporting.shutdown().await;
    let reports = events.reports();
    let location = reports[0].field("sample.location");
    assert!(
        location.starts_with(&format!("{}:{FALL_OVER_LINE}:", file!())),
        "{location}"
    );

    // After it, without chaining: counted, no location, and the report says why.
    std::panic::set_hook(Box::new(|_| {}));
    let status = support::get_status(address, "/panic").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    support::eventually(|| reporting.unhandled_count() == 2).await;
    assert_eq!(reporting.unhandled_count(), 2);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "replaced, it no longer runs"
    );
    reporting.shutdown().await;
    let reports = events.reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let location = reports[1].field("sample.location");
    assert!(
        location.starts_with("unknown: a panic hook set after"),
        "{location}"
    );
    assert!(location.contains("std::panic::take_hook"), "{location}");
}
