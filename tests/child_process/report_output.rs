//! Where the periodic report goes, read from a child process's standard output and error: this
//! test binary runs itself again (the ignored `report_output::child` test) with one tracing setup
//! each time.

use crate::support;

use std::time::Duration;

use axum::{Router, routing::get};
use tracing::Level;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

const SETUP: &str = "UNHANDLED_TEST_SETUP";
/// The start of the report of the child's three failures, written when the child shuts the
/// reporter down (a flush reports the time since the last report), or at the tick.
const REPORT: &str = "Observed 3 unhandled errors in the last ";
const WHY: &str = "on standard error because";

/// What the child wrote.
struct Output {
    stdout: String,
    stderr: String,
}

/// Runs the child with `setup` and the variables `vars` (each `(name, value)`).
fn run(setup: &str, vars: &[(&str, &str)]) -> Output {
    let mut all = vec![(SETUP, setup), ("UNHANDLED_ERRORS_REPORT_INTERVAL", "1s")];
    all.extend_from_slice(vars);
    let removed = [
        "RUST_LOG",
        "RUST_LIB_BACKTRACE",
        "RUST_BACKTRACE",
        "UNHANDLED_ERRORS_REPORT_TO",
        "UNHANDLED_COUNT_ERROR_RESPONSES",
    ];
    let (stdout, stderr) = support::run_child("report_output::child", &all, &removed);
    Output { stdout, stderr }
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|line| line.contains(needle)).collect()
}

/// The report line on standard error, checked for its content; exactly one.
fn stderr_report(output: &Output) -> String {
    let lines = lines_with(&output.stderr, REPORT);
    assert_eq!(lines.len(), 1, "stderr:\n{}", output.stderr);
    assert!(
        !output.stdout.contains(REPORT),
        "stdout:\n{}",
        output.stdout
    );
    let line = lines[0].to_owned();
    for part in [
        " WARN unhandled: ",
        "count=3",
        "interval=",
        "top=\"GET /fail error at tests/child_process/report_output.rs:",
        "sample.method=GET",
        "sample.route=/fail",
        "sample.kind=error",
        "sample.status=500",
        "sample.error=\"loading user 7: connection refused\"",
        "unhandled::LoggingLayer",
        "unhandled::subscriber::layer()",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    line
}

/// The report through the subscriber (fmt writes to standard output): exactly once, and
/// nothing of it on standard error.
fn subscriber_report(output: &Output) {
    let lines = lines_with(&output.stdout, REPORT);
    assert_eq!(lines.len(), 1, "stdout:\n{}", output.stdout);
    assert!(
        !output.stderr.contains(REPORT),
        "stderr:\n{}",
        output.stderr
    );
    assert!(!output.stderr.contains(WHY), "stderr:\n{}", output.stderr);
}

#[test]
fn with_no_subscriber_the_report_is_on_standard_error_and_says_why() {
    let output = run("none", &[]);
    let line = stderr_report(&output);
    assert!(line.contains(WHY), "{line}");
    assert!(line.contains("RUST_LOG=unhandled=warn,"), "{line}");
    assert!(
        line.contains("UNHANDLED_ERRORS_REPORT_INTERVAL=0"),
        "{line}"
    );
}

/// The one test whose subject is the interval: the report is written when it ends, and says so.
#[test]
fn the_report_is_written_when_the_interval_ends() {
    let output = run("tick", &[]);
    let line = stderr_report(&output);
    assert!(
        line.contains("in the last 1s that no logging layer"),
        "{line}"
    );
    assert!(line.contains(" interval=1s "), "{line}");
}

#[test]
fn with_axum_examples_filter_the_report_is_on_standard_error() {
    let output = run("axum-examples", &[]);
    stderr_report(&output);
}

#[test]
fn with_fmt_init_and_rust_log_unset_the_report_is_on_standard_error() {
    let output = run("fmt-init", &[]);
    stderr_report(&output);
}

#[test]
fn a_subscriber_that_records_warn_gets_the_report_once_and_standard_error_nothing() {
    subscriber_report(&run("warn", &[]));
}

#[test]
fn enabling_target_unhandled_in_rust_log_moves_the_report_to_the_subscriber() {
    let rust_log = ("RUST_LOG", "unhandled=warn,child_process=debug");
    subscriber_report(&run("axum-examples", &[rust_log]));
}

#[test]
fn a_subscriber_installed_after_the_layer_was_built_counts() {
    subscriber_report(&run("warn-later", &[]));
}

#[test]
fn a_zero_interval_writes_nothing_anywhere() {
    for setup in ["none", "warn"] {
        let output = run(setup, &[("UNHANDLED_ERRORS_REPORT_INTERVAL", "0")]);
        assert!(!output.stdout.contains("Observed"), "{}", output.stdout);
        assert!(!output.stderr.contains("Observed"), "{}", output.stderr);
    }
}

#[test]
fn only_the_first_line_of_a_process_says_why() {
    let output = run("none-twice", &[]);
    let lines = lines_with(&output.stderr, "that no logging layer reported");
    assert_eq!(lines.len(), 2, "{}", output.stderr);
    assert!(lines[0].contains(WHY), "{}", lines[0]);
    assert!(!lines[1].contains(WHY), "{}", lines[1]);
}

#[test]
fn report_to_stderr_writes_there_even_when_the_subscriber_records_it() {
    let output = run("warn", &[("UNHANDLED_ERRORS_REPORT_TO", "stderr")]);
    let line = stderr_report(&output);
    assert!(line.contains("UNHANDLED_ERRORS_REPORT_TO=stderr"), "{line}");
}

#[test]
fn report_to_tracing_writes_through_tracing_even_when_nothing_records_it() {
    let output = run("none", &[("UNHANDLED_ERRORS_REPORT_TO", "tracing")]);
    assert!(!output.stderr.contains("Observed"), "{}", output.stderr);
    subscriber_report(&run("warn", &[("UNHANDLED_ERRORS_REPORT_TO", "Tracing")]));
}

#[test]
fn report_to_auto_is_the_default() {
    stderr_report(&run("none", &[("UNHANDLED_ERRORS_REPORT_TO", "auto")]));
    subscriber_report(&run("warn", &[("UNHANDLED_ERRORS_REPORT_TO", "AUTO")]));
}

#[test]
fn a_bad_report_to_is_named_on_standard_error_and_the_default_kept() {
    let output = run("none", &[("UNHANDLED_ERRORS_REPORT_TO", "stdout")]);
    let warning = lines_with(
        &output.stderr,
        "using the default for UNHANDLED_ERRORS_REPORT_TO",
    );
    assert_eq!(warning.len(), 1, "{}", output.stderr);
    assert!(
        warning[0].contains("invalid UNHANDLED_ERRORS_REPORT_TO=\\\"stdout\\\""),
        "{}",
        warning[0]
    );
    assert!(
        warning[0].contains("\\\"tracing\\\" or \\\"stderr\\\""),
        "{}",
        warning[0]
    );
    // The first line of the process is the one that says why.
    assert!(warning[0].contains(WHY), "{}", warning[0]);
    stderr_report(&output);
}

#[test]
fn a_bad_interval_is_named_on_standard_error_without_a_subscriber() {
    let output = run("none", &[("UNHANDLED_ERRORS_REPORT_INTERVAL", "ten")]);
    let warning = lines_with(
        &output.stderr,
        "using the default for UNHANDLED_ERRORS_REPORT_INTERVAL",
    );
    assert_eq!(warning.len(), 1, "{}", output.stderr);
    assert!(warning[0].contains("\\\"ten\\\""), "{}", warning[0]);
    assert!(
        warning[0].contains("using the default for UNHANDLED_ERRORS_REPORT_INTERVAL, 10s"),
        "{}",
        warning[0]
    );
}

#[test]
fn the_misordered_logging_layer_warning_reaches_standard_error_without_a_subscriber() {
    let output = run("misordered", &[]);
    let warning = lines_with(
        &output.stderr,
        "LoggingLayer is outside the ErrorHandlerLayer",
    );
    assert_eq!(warning.len(), 1, "{}", output.stderr);
    assert!(
        warning[0].contains(" WARN unhandled::logging: "),
        "{}",
        warning[0]
    );
}

#[test]
fn a_logging_layer_the_filter_silences_gets_the_directive_not_the_advice_to_add_it() {
    let output = run("axum-examples-logging", &[]);
    let lines = lines_with(&output.stderr, REPORT);
    assert_eq!(lines.len(), 1, "{}", output.stderr);
    let line = lines[0];
    assert!(
        line.contains(
            "unhandled::LoggingLayer saw them, but the tracing filter disables its events"
        ),
        "{line}"
    );
    assert!(
        line.contains("RUST_LOG=unhandled=warn,<your filter>"),
        "{line}"
    );
    assert!(!line.contains("add unhandled::LoggingLayer"), "{line}");
    // With the directive added, the layer logs each failure and nothing is counted.
    let rust_log = (
        "RUST_LOG",
        "report_output=debug,tower_http=debug,unhandled=warn",
    );
    let output = run("axum-examples-logging", &[rust_log]);
    assert!(!output.stderr.contains("Observed"), "{}", output.stderr);
    assert!(!output.stdout.contains("Observed"), "{}", output.stdout);
    assert_eq!(
        lines_with(&output.stdout, "request failed").len(),
        3,
        "{}",
        output.stdout
    );
}

#[test]
fn failures_behind_a_silenced_logging_layer_and_behind_none_get_both_pieces_of_advice() {
    let output = run("mixed-logging", &[]);
    let lines = lines_with(&output.stderr, "Observed 4 unhandled errors");
    assert_eq!(lines.len(), 1, "{}", output.stderr);
    let line = lines[0];
    assert!(
        line.contains("unhandled::LoggingLayer saw some of them, but the tracing filter"),
        "{line}"
    );
    assert!(
        line.contains("RUST_LOG=unhandled=warn,<your filter>"),
        "{line}"
    );
    assert!(
        line.contains("; for the other 1, add unhandled::LoggingLayer to log each one"),
        "{line}"
    );
}

#[test]
fn an_installed_subscriber_layer_is_not_advised_again() {
    let output = run("subscriber-layer", &[]);
    let lines = lines_with(&output.stdout, REPORT);
    assert_eq!(lines.len(), 1, "{}", output.stdout);
    let line = lines[0];
    assert!(
        !line.contains("add unhandled::subscriber::layer()"),
        "{line}"
    );
    assert!(
        line.contains("unhandled::subscriber::layer() is installed"),
        "{line}"
    );
    assert!(line.contains("at ERROR or more severe"), "{line}");
}

/// A logfmt reader, as strict as go-logfmt: `key`, `key=value` or `key="quoted \"value\""`
/// separated by spaces; `None` where the line is not logfmt.
fn logfmt(line: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if_eq(&' ').is_some() {}
        if chars.peek().is_none() {
            return Some(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != ' ' && c != '=' && c != '"') {
            key.push(c);
        }
        if key.is_empty() {
            return None;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            if chars.next_if_eq(&'"').is_some() {
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => value.push(chars.next()?),
                        c => value.push(c),
                    }
                }
                if chars.peek().is_some_and(|&c| c != ' ') {
                    return None;
                }
            } else {
                while let Some(c) = chars.next_if(|&c| c != ' ') {
                    if c == '"' || c == '=' {
                        return None;
                    }
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[test]
fn through_fmt_every_field_of_the_report_reads_back_with_a_logfmt_reader() {
    let output = run("logfmt", &[]);
    let lines = lines_with(&output.stdout, REPORT);
    assert_eq!(lines.len(), 1, "{}", output.stdout);
    let pairs = logfmt(lines[0]).unwrap_or_else(|| panic!("not logfmt: {}", lines[0]));
    let field = |name: &str| {
        let found = pairs.iter().find(|(key, _)| key == name);
        found
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name}: {pairs:?}"))
    };
    assert_eq!(field("count"), "3");
    assert!(humantime::parse_duration(field("interval")).is_ok());
    let top = field("top");
    assert!(
        top.starts_with("GET /fail error at tests/child_process/report_output.rs:"),
        "{top}"
    );
    assert!(top.ends_with(" ×3"), "{top}");
    assert_eq!(field("sample.path"), "/fail");
    assert_eq!(field("sample.error"), "loading user 7: connection refused");
    assert_eq!(
        field("sample.type"),
        "child_process::report_output::LoadFailed"
    );
    assert!(field("fix").starts_with("add unhandled::LoggingLayer to log each one"));
    // The message says what was observed; the advice is the `fix` field alone.
    assert!(
        !lines[0].contains("; add unhandled::LoggingLayer"),
        "{}",
        lines[0]
    );
}

#[test]
fn the_logfmt_reader_refuses_what_is_not_logfmt() {
    assert!(logfmt(r#"a=1 b="x y" c"#).is_some());
    assert!(logfmt("top=GET /x panic ×1").is_some_and(|pairs| pairs[0].1 == "GET"));
    assert!(logfmt(r#"a="unterminated"#).is_none());
    assert!(logfmt(r#"a=x"y"#).is_none());
}

#[test]
fn after_sigterm_a_gracefully_stopping_server_reports_the_last_interval() {
    use std::io::{BufRead, BufReader, Read};
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "report_output::child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SETUP, "sigterm")
        .env("UNHANDLED_ERRORS_REPORT_INTERVAL", "1h")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("UNHANDLED_ERRORS_REPORT_TO")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("failed three times") {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "the child ended early"
        );
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    // An hour's interval: only the shutdown can have written it.
    let reports = lines_with(&stderr, "Observed 3 unhandled errors in the last ");
    assert_eq!(reports.len(), 1, "{stderr}");
    assert!(reports[0].contains("count=3 "), "{}", reports[0]);
}

/// Ctrl+C or SIGTERM, as README's graceful shutdown has it.
async fn shutdown_signal() {
    let ctrl_c = async { tokio::signal::ctrl_c().await.expect("a Ctrl+C handler") };
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .expect("a SIGTERM handler")
            .recv()
            .await;
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// README's graceful shutdown: three failures, then served until SIGTERM, the guard in `main`.
fn serve_until_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let app = Router::new()
            .route("/fail", get(fail))
            .layer(unhandled::layer());
        let _flush_on_exit = unhandled::ReportingErrorHandler::global().shutdown_guard();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .unwrap()
        });
        fail_times(address, 3).await;
        println!("failed three times");
        server.await.unwrap();
    });
}

/// The lines right after the report on standard error that are its backtrace's frames.
fn frames_after_report(stderr: &str) -> Vec<&str> {
    let mut lines = stderr.lines().skip_while(|line| !line.contains(REPORT));
    assert!(lines.next().is_some(), "no report in:\n{stderr}");
    lines.take_while(|line| line.starts_with("    ")).collect()
}

#[test]
fn with_rust_backtrace_the_report_is_followed_by_frames_naming_the_handler() {
    let output = run("none", &[("RUST_BACKTRACE", "1")]);
    stderr_report(&output);
    let frames = frames_after_report(&output.stderr);
    assert!(
        frames[0].contains("report_output::fail"),
        "the first frame is not the handler's:\n{}",
        output.stderr
    );
    assert!(frames.len() <= 33, "{frames:#?}");
    for frame in &frames {
        assert!(!frame.contains(REPORT), "{frame}");
    }
}

/// Six times over: 2,000 failures at one site from 4 tasks at once, and the report's sample has the
/// backtrace that one of them took, whichever it was.
#[test]
fn under_concurrency_the_sample_carries_the_backtrace_its_interval_captured() {
    for _ in 0..6 {
        let output = run("concurrent", &[("RUST_LIB_BACKTRACE", "1")]);
        let report = lines_with(&output.stderr, "Observed 2000 unhandled errors");
        assert_eq!(report.len(), 1, "{}", output.stderr);
        let mut lines = output
            .stderr
            .lines()
            .skip_while(|line| !line.contains("Observed 2000"));
        lines.next();
        let frames: Vec<&str> = lines.take_while(|line| line.starts_with("    ")).collect();
        assert!(
            frames
                .first()
                .is_some_and(|frame| frame.contains("report_output::fail")),
            "{}",
            output.stderr
        );
    }
}

#[test]
fn a_panic_s_backtrace_starts_at_the_handler_that_panicked() {
    let output = run("panic", &[("RUST_BACKTRACE", "1")]);
    let frames = frames_after_report(&output.stderr);
    assert!(
        frames[0].contains("report_output::panicking"),
        "the first frame is not the handler's:\n{}",
        output.stderr
    );
    // The default hook, which ours chains, still printed the panic itself.
    assert!(
        output
            .stderr
            .contains("panicked at tests/child_process/report_output.rs:"),
        "{}",
        output.stderr
    );
}

#[test]
fn without_backtrace_variables_the_report_has_no_frames() {
    for vars in [
        &[("RUST_BACKTRACE", "0")][..],
        &[("RUST_LIB_BACKTRACE", "0"), ("RUST_BACKTRACE", "1")],
    ] {
        let output = run("none", vars);
        stderr_report(&output);
        assert_eq!(
            frames_after_report(&output.stderr),
            Vec::<&str>::new(),
            "{vars:?}"
        );
    }
}

#[test]
fn rust_lib_backtrace_decides_over_rust_backtrace_as_in_std() {
    let output = run(
        "none",
        &[("RUST_LIB_BACKTRACE", "1"), ("RUST_BACKTRACE", "0")],
    );
    stderr_report(&output);
    assert!(
        !frames_after_report(&output.stderr).is_empty(),
        "{}",
        output.stderr
    );
}

#[test]
fn set_backtraces_turns_them_off_whatever_the_environment_says() {
    let output = run("backtraces-off", &[("RUST_BACKTRACE", "1")]);
    stderr_report(&output);
    assert_eq!(frames_after_report(&output.stderr), Vec::<&str>::new());
}

#[test]
fn through_tracing_the_backtrace_is_the_sample_backtrace_field() {
    let output = run("warn", &[("RUST_BACKTRACE", "1")]);
    subscriber_report(&output);
    let line = lines_with(&output.stdout, REPORT)[0];
    assert!(line.contains("sample.backtrace"), "{line}");
    // One field: its frames are separated by escaped line breaks.
    assert!(
        line.contains("report_output::fail::{{closure}} at "),
        "{line}"
    );
    assert!(line.contains(r"\n"), "{line}");
}

#[test]
fn a_storm_of_ten_thousand_failures_captures_one_backtrace_per_group() {
    let output = run("storm", &[("RUST_BACKTRACE", "1")]);
    let counted: Vec<&str> = lines_with(&output.stdout, "storm:")
        .into_iter()
        .filter_map(|line| line.split_once("storm: ").map(|(_, counted)| counted))
        .collect();
    assert_eq!(
        counted,
        ["10000 failures, 2 with a backtrace"],
        "{}",
        output.stdout
    );
}

/// A handler failing as an application's does.
async fn fail() -> unhandled::Result<()> {
    let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
    Err(unhandled::Error::new(LoadFailed(refused)))
}

async fn panicking() -> &'static str {
    let cached: Option<&'static str> = std::env::var_os("UNHANDLED_TEST_NEVER_SET").map(|_| "x");
    cached.expect("the user 7 is cached")
}

#[derive(Debug)]
struct LoadFailed(std::io::Error);

impl std::fmt::Display for LoadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("loading user 7")
    }
}

impl std::error::Error for LoadFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Sends `count` requests to `/fail` over TCP.
async fn fail_times(address: std::net::SocketAddr, count: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /fail HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        assert!(response.starts_with(b"HTTP/1.1 500"));
    }
}

/// 2,000 failures at one site from 4 concurrent tasks, then the report: whichever failure took the
/// interval's one backtrace, the sample's report carries it.
fn concurrent() {
    use tower::ServiceExt;
    let app = Router::new()
        .route("/fail", get(fail))
        .layer(unhandled::layer());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    for _ in 0..500 {
                        let request = axum::http::Request::get("/fail")
                            .body(axum::body::Body::empty())
                            .unwrap();
                        let response = app.clone().oneshot(request).await.unwrap();
                        assert_eq!(response.status(), 500);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        unhandled::ReportingErrorHandler::global().shutdown().await;
    });
}

/// 10,000 failures at two sites (a `?` and a panic), each seen by the application's own handler
/// behind the reporter, which counts those that carry a backtrace.
fn storm() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower::ServiceExt;
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static WITH_BACKTRACE: AtomicU64 = AtomicU64::new(0);
    let counting = |error: &unhandled::Error, _: &unhandled::ErrorContext<'_>| {
        SEEN.fetch_add(1, Ordering::Relaxed);
        if error.backtrace().is_some() {
            WITH_BACKTRACE.fetch_add(1, Ordering::Relaxed);
        }
        None
    };
    // The default hook would print 5,000 panics with their backtraces: not the point here. Set
    // before the layer is built, this hook is chained by unhandled's.
    std::panic::set_hook(Box::new(|_| {}));
    let reporting = unhandled::ReportingErrorHandler::builder()
        .interval(Duration::from_secs(3600))
        .wrap(counting);
    async fn panics() -> &'static str {
        panic!("storm")
    }
    let app = Router::new()
        .route("/fail", get(fail))
        .route("/panic", get(panics))
        .layer(unhandled::ErrorHandlerLayer::new(reporting));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for index in 0..10_000 {
            let path = if index % 2 == 0 { "/fail" } else { "/panic" };
            let request = axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 500);
        }
    });
    println!(
        "storm: {} failures, {} with a backtrace",
        SEEN.load(Ordering::Relaxed),
        WITH_BACKTRACE.load(Ordering::Relaxed)
    );
}

/// The child: one tracing setup, a real axum server on 127.0.0.1, three failures, one interval.
#[test]
#[ignore = "run as a child process by the tests above"]
fn child() {
    let setup = std::env::var(SETUP).unwrap();
    match setup.as_str() {
        "none" | "tick" | "none-twice" | "warn-later" | "misordered" | "panic"
        | "backtraces-off" => {}
        "storm" => return storm(),
        "concurrent" => return concurrent(),
        "sigterm" => return serve_until_sigterm(),
        "axum-examples" | "axum-examples-logging" | "mixed-logging" => {
            tracing_subscriber::registry()
                .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                    format!("{}=debug,tower_http=debug", env!("CARGO_CRATE_NAME")).into()
                }))
                .with(fmt::layer())
                .init()
        }
        "fmt-init" => fmt::init(),
        "warn" => fmt().with_max_level(Level::WARN).init(),
        "logfmt" => fmt().with_ansi(false).with_max_level(Level::WARN).init(),
        "subscriber-layer" => tracing_subscriber::registry()
            .with(fmt::layer().with_filter(tracing_subscriber::filter::LevelFilter::WARN))
            .with(unhandled::subscriber::layer())
            .init(),
        other => panic!("unknown setup {other}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let layer = match setup.as_str() {
            "backtraces-off" => {
                unhandled::set_backtraces(false);
                unhandled::layer()
            }
            _ => unhandled::layer(),
        };
        let mut app = match setup.as_str() {
            "panic" => Router::new().route("/fail", get(panicking)),
            _ => Router::new().route("/fail", get(fail)),
        };
        if setup == "misordered" {
            app = app.layer(layer).layer(unhandled::LoggingLayer::new());
        } else if setup == "axum-examples-logging" {
            app = app.layer(unhandled::LoggingLayer::new()).layer(layer);
        } else if setup == "mixed-logging" {
            app = app
                .layer(unhandled::LoggingLayer::new())
                .route("/bare", get(fail))
                .layer(layer);
        } else {
            app = app.layer(layer);
        }
        if setup == "warn-later" {
            fmt().with_max_level(Level::WARN).init();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fail_times(address, 3).await;
        if setup == "mixed-logging" {
            let status = support::get_status(address, "/bare").await;
            assert_eq!(status, 500);
        }
        // Reported now, by a flush, rather than after sleeping through an interval: except for
        // `tick`, whose subject is the interval.
        let reporting = unhandled::ReportingErrorHandler::global();
        match setup.as_str() {
            "tick" => tokio::time::sleep(Duration::from_millis(1500)).await,
            _ => reporting.shutdown().await,
        }
        if setup == "none-twice" {
            fail_times(address, 2).await;
            reporting.shutdown().await;
        }
    });
}
