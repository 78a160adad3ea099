//! `UNHANDLED_ERRORS_REPORT_INTERVAL`, `UNHANDLED_COUNT_ERROR_RESPONSES` and
//! `UNHANDLED_ERRORS_REPORT_TO`: read by `from_env`, `try_from_env` and `unhandled::layer()`.
//! Each case runs this binary again as a child process with the variable set, so no test mutates
//! its own environment.

use crate::support;

use axum::{Router, http::StatusCode, routing::get};
use unhandled::{
    ReportingErrorHandler, ReportingErrorHandlerBuilder,
    config::{COUNT_ERROR_RESPONSES_VAR, INTERVAL_VAR, PANIC_LOCATIONS_VAR, REPORT_TO_VAR},
};

/// Runs [`child_reports_what_it_read`] with the variable set to `value` (or unset); its lines.
fn child(value: Option<&str>) -> Vec<String> {
    run_child("child_reports_what_it_read", &[(INTERVAL_VAR, value)])
}

/// Runs the ignored test `name` of this module with each variable set to its value (or unset),
/// and the others of the four unset; its `CHILD` lines.
fn run_child(name: &str, variables: &[(&str, Option<&str>)]) -> Vec<String> {
    let set: Vec<(&str, &str)> = variables
        .iter()
        .filter_map(|(variable, value)| value.map(|value| (*variable, value)))
        .collect();
    let removed: Vec<&str> = [
        INTERVAL_VAR,
        COUNT_ERROR_RESPONSES_VAR,
        REPORT_TO_VAR,
        PANIC_LOCATIONS_VAR,
    ]
    .into_iter()
    .filter(|variable| !set.iter().any(|(name, _)| name == variable))
    .collect();
    let (stdout, _) = support::run_child(&format!("env_config::{name}"), &set, &removed);
    stdout
        .lines()
        // libtest's `test … ... ` may stand before the first line on the same line.
        .filter_map(|line| line.split_once("CHILD ").map(|(_, rest)| rest.to_owned()))
        .collect()
}

#[test]
#[ignore = "run as a child process by the other tests of this file"]
fn child_reports_what_it_read() {
    let (events, _guard) = support::capture();
    match ReportingErrorHandlerBuilder::try_from_env() {
        Ok(builder) => println!("CHILD try: ok {:?}", builder.build().interval()),
        Err(error) => println!("CHILD try: err {error}"),
    }
    println!(
        "CHILD from_env: {:?}",
        ReportingErrorHandlerBuilder::from_env().build().interval()
    );
    println!(
        "CHILD global: {:?}",
        ReportingErrorHandler::global().interval()
    );
    for event in events.all() {
        println!("CHILD event: {} {}", event.level, event.field("error"));
    }
}

/// Set by the parent to have the child turn panic locations off with `set_panic_locations`.
const FUNCTION_OFF: &str = "UNHANDLED_TEST_PANIC_LOCATIONS_OFF";

#[test]
#[ignore = "run as a child process by the other tests of this file"]
fn child_reports_a_panic_s_location() {
    let (events, _guard) = support::capture();
    let builder = ReportingErrorHandlerBuilder::from_env()
        .interval(std::time::Duration::from_secs(3600))
        .report_to(unhandled::ReportTo::Tracing);
    if std::env::var_os(FUNCTION_OFF).is_some() {
        unhandled::set_panic_locations(false);
    }
    let reporting = builder.build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = Router::new()
            .route("/panic", get(support::panics))
            .layer(unhandled::ErrorHandlerLayer::new(reporting.clone()));
        support::send(&app, "/panic").await;
        reporting.shutdown().await;
    });
    println!("CHILD counted: {}", reporting.unhandled_count());
    for event in events.all() {
        if let Some(location) = event.fields.get("sample.location") {
            println!("CHILD location: {location}");
        } else if event.fields.contains_key("count") {
            println!("CHILD location: none");
        }
        if let Some(error) = event.fields.get("error") {
            println!("CHILD event: {} {error}", event.level);
        }
    }
}

#[test]
fn panic_locations_are_on_by_default_and_off_by_variable_or_set_panic_locations() {
    let run = |value, builder_off| {
        let mut variables = vec![(PANIC_LOCATIONS_VAR, value)];
        if builder_off {
            variables.push((FUNCTION_OFF, Some("1")));
        }
        run_child("child_reports_a_panic_s_location", &variables)
    };
    let on = run(None, false);
    assert_eq!(on[0], "counted: 1");
    assert!(
        on[1].starts_with("location: tests/child_process/../support/mod.rs:"),
        "{on:?}"
    );
    for off in [
        run(Some("0"), false),
        run(Some("off"), false),
        run(None, true),
    ] {
        // Counted all the same, and the report does not claim a hook replaced ours.
        assert_eq!(off, ["counted: 1", "location: none"]);
    }
    // A bad value is named once, and the default (on) kept.
    let bad = run(Some("maybe"), false);
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert_eq!(bad[0], "counted: 1");
    assert!(
        bad[1].starts_with("event: WARN invalid UNHANDLED_PANIC_LOCATIONS=\"maybe\""),
        "{bad:?}"
    );
    assert!(
        bad[2].starts_with("location: tests/child_process/../support/mod.rs:"),
        "{bad:?}"
    );
}

#[test]
fn unset_variable_gives_the_ten_second_default() {
    assert_eq!(child(None), ["try: ok 10s", "from_env: 10s", "global: 10s"]);
}

#[test]
fn humantime_values_set_every_entry_point() {
    assert_eq!(
        child(Some("1m 30s")),
        ["try: ok 90s", "from_env: 90s", "global: 90s"]
    );
    assert_eq!(
        child(Some("0")),
        ["try: ok 0ns", "from_env: 0ns", "global: 0ns"]
    );
}

#[test]
fn invalid_values_are_refused_by_try_and_logged_once_per_read_by_from_env() {
    for bad in ["ten", "10", "-1s", "", " ", "1.5.3s", "99999999999999y"] {
        let lines = child(Some(bad));
        let quoted = format!("{bad:?}");
        assert!(
            lines[0].starts_with("try: err invalid UNHANDLED_ERRORS_REPORT_INTERVAL="),
            "{lines:?}"
        );
        assert!(lines[0].contains(&quoted), "{lines:?}");
        assert!(lines[0].contains("\"10s\""), "{lines:?}");
        assert_eq!(lines[1], "from_env: 10s", "{lines:?}");
        assert_eq!(lines[2], "global: 10s", "{lines:?}");
        let warnings: Vec<_> = lines
            .iter()
            .filter(|line| line.starts_with("event: WARN"))
            .collect();
        // One from `from_env` and one from the global reporter's first build, none later.
        assert_eq!(warnings.len(), 2, "{lines:?}");
        assert!(
            warnings.iter().all(|line| line.contains(&quoted)),
            "{lines:?}"
        );
    }
}

#[test]
#[ignore = "run as a child process by the other tests of this file"]
fn child_reports_the_switch_and_what_the_global_layer_counts() {
    let (events, _guard) = support::capture();
    match ReportingErrorHandlerBuilder::try_from_env() {
        Ok(builder) => println!("CHILD try: ok {}", builder.build().counts_error_responses()),
        Err(error) => println!("CHILD try: err {error}"),
    }
    let from_env = ReportingErrorHandlerBuilder::from_env().build();
    println!(
        "CHILD from_env: {} {:?}",
        from_env.counts_error_responses(),
        from_env.interval()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = Router::new()
            .route(
                "/plain",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .layer(unhandled::layer());
        support::send(&app, "/plain").await;
    });
    println!(
        "CHILD global counted: {}",
        ReportingErrorHandler::global().unhandled_count()
    );
    for event in events.all() {
        if let Some(error) = event.fields.get("error") {
            println!("CHILD event: {} {error}", event.level);
        }
    }
}

fn switch_child(switch: Option<&str>, interval: Option<&str>) -> Vec<String> {
    run_child(
        "child_reports_the_switch_and_what_the_global_layer_counts",
        &[
            (COUNT_ERROR_RESPONSES_VAR, switch),
            (INTERVAL_VAR, interval),
        ],
    )
}

#[test]
fn plain_5xx_are_counted_unless_the_switch_says_off() {
    assert_eq!(
        switch_child(None, None),
        ["try: ok true", "from_env: true 10s", "global counted: 1"]
    );
    for off in ["false", "0", "off", "NO"] {
        assert_eq!(
            switch_child(Some(off), None),
            ["try: ok false", "from_env: false 10s", "global counted: 0"],
            "{off}"
        );
    }
    assert_eq!(
        switch_child(Some("on"), None),
        ["try: ok true", "from_env: true 10s", "global counted: 1"]
    );
}

#[test]
fn an_invalid_switch_is_refused_by_try_and_logged_by_from_env_which_keeps_counting() {
    for bad in ["maybe", "", "2"] {
        let lines = switch_child(Some(bad), None);
        let quoted = format!("{bad:?}");
        assert!(
            lines[0].starts_with(&format!(
                "try: err invalid {COUNT_ERROR_RESPONSES_VAR}={quoted}"
            )),
            "{lines:?}"
        );
        assert!(lines[0].contains("\"true\" or \"false\""), "{lines:?}");
        assert_eq!(
            lines[1..3],
            ["from_env: true 10s", "global counted: 1"],
            "{lines:?}"
        );
        let warnings: Vec<_> = lines
            .iter()
            .filter(|line| line.starts_with("event: WARN"))
            .collect();
        assert_eq!(warnings.len(), 2, "{lines:?}");
        assert!(
            warnings
                .iter()
                .all(|line| line.contains(COUNT_ERROR_RESPONSES_VAR)),
            "{lines:?}"
        );
    }
}

#[test]
fn one_invalid_variable_does_not_discard_the_other() {
    let lines = switch_child(Some("off"), Some("ten"));
    assert!(
        lines[0].starts_with("try: err invalid UNHANDLED_ERRORS_REPORT_INTERVAL"),
        "{lines:?}"
    );
    assert_eq!(
        lines[1..3],
        ["from_env: false 10s", "global counted: 0"],
        "{lines:?}"
    );
    let lines = switch_child(Some("nope"), Some("1m"));
    assert_eq!(
        lines[1..3],
        ["from_env: true 60s", "global counted: 1"],
        "{lines:?}"
    );
}

#[test]
#[ignore = "run as a child process by the other tests of this file"]
fn child_reports_where_reports_go() {
    let (events, _guard) = support::capture();
    match ReportingErrorHandlerBuilder::try_from_env() {
        Ok(builder) => println!("CHILD try: ok {}", builder.build().report_to()),
        Err(error) => println!("CHILD try: err {error}"),
    }
    println!(
        "CHILD from_env: {}",
        ReportingErrorHandlerBuilder::from_env().build().report_to()
    );
    for event in events.all() {
        println!("CHILD event: {} {}", event.level, event.field("error"));
    }
}

#[test]
fn report_to_is_read_from_the_environment_and_a_bad_value_is_named() {
    let run = |value| run_child("child_reports_where_reports_go", &[(REPORT_TO_VAR, value)]);
    assert_eq!(run(None), ["try: ok auto", "from_env: auto"]);
    assert_eq!(run(Some("stderr")), ["try: ok stderr", "from_env: stderr"]);
    assert_eq!(
        run(Some(" Tracing ")),
        ["try: ok tracing", "from_env: tracing"]
    );
    let lines = run(Some("stdout"));
    let refused = "invalid UNHANDLED_ERRORS_REPORT_TO=\"stdout\": not a place reports go; expected \
                   \"auto\" (tracing when the subscriber records the report, else standard error), \
                   \"tracing\" or \"stderr\"";
    assert_eq!(
        lines,
        [
            format!("try: err {refused}"),
            "from_env: auto".to_owned(),
            format!("event: WARN {refused}"),
        ]
    );
}
