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
    let runs = application_hook();
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

/// Sets an application's panic hook that counts its runs.
fn application_hook() -> Arc<AtomicUsize> {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    std::panic::set_hook(Box::new(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    }));
    runs
}

/// The stray panics of a child: a `std::thread` and a plain `tokio::spawn` that panic, outside
/// any request; how many the process-wide reporter counted under `_unscoped`, and how many times
/// the application's hook ran.
fn stray_panics_counted(vars: &[(&str, &str)]) -> String {
    stray_child_output(vars).0
}

/// [`stray_panics_counted`], and what the child wrote on standard error.
fn stray_child_output(vars: &[(&str, &str)]) -> (String, String) {
    let (stdout, stderr) = support::run_child(
        "panic_hook::stray_child",
        vars,
        &["UNHANDLED_COUNT_STRAY_PANICS"],
    );
    let counted = stdout
        .lines()
        .find_map(|line| line.split_once("stray: ").map(|(_, count)| count))
        .unwrap_or_else(|| panic!("no count in {stdout}"))
        .to_owned();
    (counted, stderr)
}

#[test]
fn stray_panics_are_counted_only_when_asked_and_the_application_s_hook_still_runs() {
    assert_eq!(
        stray_panics_counted(&[]),
        "counted 0, hook ran 2",
        "off by default: a library may catch its own panics"
    );
    assert_eq!(
        stray_panics_counted(&[("UNHANDLED_COUNT_STRAY_PANICS", "true")]),
        "counted 2 at panic_hook.rs, hook ran 2"
    );
    assert_eq!(
        stray_panics_counted(&[("STRAY_BY_CODE", "1")]),
        "counted 2 at panic_hook.rs, hook ran 2",
        "count_stray_panics(true) in code"
    );
    assert_eq!(
        stray_panics_counted(&[
            ("UNHANDLED_COUNT_STRAY_PANICS", "true"),
            ("STRAY_BY_CODE", "0")
        ]),
        "counted 0, hook ran 2",
        "code decides over the environment"
    );
    assert_eq!(
        stray_panics_counted(&[
            ("UNHANDLED_COUNT_STRAY_PANICS", "true"),
            ("UNHANDLED_PANIC_LOCATIONS", "false")
        ]),
        "counted 2 at panic_hook.rs, hook ran 2",
        "the hook counts them with the location notes off"
    );
    let (counted, stderr) = stray_child_output(&[("UNHANDLED_COUNT_STRAY_PANICS", "maybe")]);
    assert_eq!(
        counted, "counted 0, hook ran 2",
        "a bad value keeps the default"
    );
    assert!(
        stderr.contains("using the default for UNHANDLED_COUNT_STRAY_PANICS, off")
            && stderr.contains("not a switch"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "run as a child process by the test above"]
async fn stray_child() {
    // The application's hook, set before the first layer: it must keep running once per panic.
    let runs = application_hook();
    match std::env::var("STRAY_BY_CODE").as_deref() {
        Ok("1") => unhandled::count_stray_panics(true),
        Ok("0") => unhandled::count_stray_panics(false),
        _ => {}
    }
    let _layer = unhandled::layer(); // installs the hook
    std::thread::spawn(|| panic!("the cache warmer fell over"))
        .join()
        .unwrap_err();
    let joined = tokio::spawn(async {
        panic!("a plain task fell over");
    })
    .await;
    assert!(joined.unwrap_err().is_panic());
    let groups = unhandled::ReportingErrorHandler::global()
        .breakdown()
        .groups;
    let stray: Vec<_> = groups
        .iter()
        .filter(|group| group.route == "_unscoped")
        .collect();
    let count: u64 = stray.iter().map(|group| group.count).sum();
    let hook_ran = runs.load(Ordering::SeqCst);
    match stray.first() {
        Some(group) => {
            assert_eq!(group.kind, unhandled::ErrorKind::TaskPanic);
            assert_eq!(group.method, "_OTHER");
            let file = group.location.as_deref().unwrap();
            let name = file.rsplit('/').next().unwrap().split(':').next().unwrap();
            println!("stray: counted {count} at {name}, hook ran {hook_ran}");
        }
        None => println!("stray: counted {count}, hook ran {hook_ran}"),
    }
}
