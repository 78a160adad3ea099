//! `UNHANDLED_ERRORS_REPORT_INTERVAL`: read by `from_env`, `try_from_env` and `unhandled::layer()`.
//! Each case runs this binary again as a child process with the variable set, so no test mutates
//! its own environment.

mod support;

use std::process::Command;

use unhandled::{INTERVAL_VAR, ReportingErrorHandler, ReportingErrorHandlerBuilder};

/// Runs [`child_reports_what_it_read`] with the variable set to `value` (or unset); its lines.
fn child(value: Option<&str>) -> Vec<String> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--ignored",
        "--exact",
        "child_reports_what_it_read",
        "--nocapture",
    ]);
    match value {
        Some(value) => command.env(INTERVAL_VAR, value),
        None => command.env_remove(INTERVAL_VAR),
    };
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("CHILD ").map(str::to_owned))
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
