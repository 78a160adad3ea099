//! Hostile input, sent as an attacker would, and buggy errors, written as an application might:
//! nothing either sends forges a report, multiplies the metric, hangs a worker or leaks a secret.
//! Real axum servers on 127.0.0.1 and raw `TcpStream`s; what the process writes on standard error
//! is read from a child process (this binary run again as the ignored `child` test).

mod support;

use std::{
    error::Error as StdError,
    fmt,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::Path,
    http::{Method, Request, StatusCode},
    routing::{any, get, post},
};
use metrics_exporter_prometheus::PrometheusBuilder;
use opentelemetry::trace::Status;
use opentelemetry_sdk::trace::SpanData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use unhandled::{
    ErrorContext, ErrorHandlerLayer, ErrorKind, LoggingLayer, METRIC_NAME, ReportTo,
    ReportingErrorHandler, ReportingErrorHandlerBuilder, ServerErrorHandler,
};

use support::{capture, counted};

const CHILD: &str = "UNHANDLED_TEST_CHILD";

/// Sends `head` (a request line and headers, without the blank line) and `body` on a new
/// connection that closes after it; the whole response as text. Hangs are failures: the answer
/// must come within 10 s.
async fn raw(address: SocketAddr, head: &[u8], body: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!(
            "\r\nhost: {address}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("no answer within 10 s: a worker hangs")
        .ok();
    String::from_utf8_lossy(&response).into_owned()
}

/// An error whose `source()` returns itself: a one-line bug.
#[derive(Debug)]
struct Cyclic;

impl fmt::Display for Cyclic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the cache is cyclic")
    }
}

impl StdError for Cyclic {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self)
    }
}

/// Panics when dropped: `std::panic::panic_any(Bomb)` is a panic whose payload panics again.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the payload blew up as it was dropped");
        }
    }
}

/// An error whose `Display` panics with a [`Bomb`].
#[derive(Debug)]
struct BombDisplay;

impl fmt::Display for BombDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        std::panic::panic_any(Bomb)
    }
}

impl StdError for BombDisplay {}

/// The one child test: what it does depends on [`CHILD`].
#[tokio::test]
#[ignore = "run by the other tests as a child process"]
async fn child() {
    match std::env::var(CHILD).unwrap().as_str() {
        "lines" => child_writes_hostile_reports().await,
        "env" => {
            match ReportingErrorHandlerBuilder::try_from_env() {
                Ok(builder) => println!("CHILD try: ok {:?}", builder.build().interval()),
                Err(error) => println!("CHILD try: err {error}"),
            }
            let interval = ReportingErrorHandlerBuilder::from_env().build().interval();
            println!("CHILD from_env: {interval:?}");
        }
        other => panic!("no child {other}"),
    }
}

/// Three reports of hostile requests, a bad configuration value's warning and the misordered
/// logging layer's warning, all on standard error.
async fn child_writes_hostile_reports() {
    let reporting = ReportingErrorHandlerBuilder::from_env()
        .report_to(ReportTo::Stderr)
        .build();
    let app = Router::new()
        .route(
            "/lookup/{name}",
            get(|Path(name): Path<String>| async move {
                Err::<(), _>(unhandled::Error::msg(format!("no user named {name}")))
            }),
        )
        .route(
            "/raw/{*rest}",
            get(|| async { Err::<(), _>(unhandled::Error::msg("a raw path")) }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let misordered = Router::new()
        .route(
            "/misordered",
            get(|| async { Err::<(), _>(unhandled::Error::msg("x")) }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(LoggingLayer::new());
    let address = support::serve(app.merge(Router::new().nest_service("/m", misordered))).await;
    let forged = "/lookup/%0D%1B%5B2K%1B%5B32m%20INFO%20unhandled%3A%20all%20clear%0A\
                  FORGED%1B%5D0%3Bpwned%07%E2%80%AE%00%7F";
    let raw_utf8 = "/raw/\u{9b}2J\u{85}next\u{2028}line\u{202e}reversed\u{2066}";
    for path in [forged, raw_utf8, "/m/misordered"] {
        let response = raw(address, format!("GET {path} HTTP/1.1").as_bytes(), b"").await;
        assert!(response.starts_with("HTTP/1.1 500"), "{path}: {response}");
        reporting.shutdown().await;
    }
}

/// Runs the child `name` with the variables `vars`; its standard output and error.
fn run_child(name: &str, vars: &[(&str, &str)]) -> (String, String) {
    let mut vars = vars.to_vec();
    vars.push((CHILD, name));
    // Backtraces are off: their frame lines are the one thing a report writes below its line.
    let removed = [
        "RUST_LOG",
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "UNHANDLED_ERRORS_REPORT_TO",
        "UNHANDLED_ERRORS_REPORT_INTERVAL",
    ];
    support::run_child("child", &vars, &removed)
}

/// Whether `c` may never reach the output raw.
fn forbidden(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[test]
fn every_report_and_warning_is_one_escaped_line_whatever_the_request_or_the_value() {
    let bad = "ten\r\n\u{1b}[32m INFO unhandled: all clear\u{7}";
    let (_, stderr) = run_child("lines", &[("UNHANDLED_ERRORS_REPORT_INTERVAL", bad)]);
    let forbidden: Vec<char> = stderr.chars().filter(|&c| forbidden(c)).collect();
    assert!(forbidden.is_empty(), "raw {forbidden:?} in\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    // The configuration warning, two reports, the misordered layer's warning and its report.
    assert_eq!(lines.len(), 5, "{stderr}");
    for line in &lines {
        assert!(line.starts_with("20") && line.contains(" WARN "), "{line}");
        assert!(line.len() <= 8192, "{}", line.len());
    }
    assert!(lines[0].contains(r"using the default for UNHANDLED_ERRORS_REPORT_INTERVAL"));
    assert!(
        lines[0].contains(r#"\"ten\\r\\n\\u{1b}[32m INFO unhandled: all clear\\u{7}\""#),
        "{}",
        lines[0]
    );
    let reports: Vec<&&str> = lines
        .iter()
        .filter(|line| line.contains("Observed 1"))
        .collect();
    assert_eq!(reports.len(), 3, "{stderr}");
    assert!(
        reports[0].contains(
            r#"sample.error="no user named \r\u{1b}[2K\u{1b}[32m INFO unhandled: all clear\nFORGED\u{1b}]0;pwned\u{7}\u{202e}\u{0}\u{7f}""#
        ),
        "{}",
        reports[0]
    );
    assert!(
        reports[0].contains("sample.path=/lookup/%0D%1B%5B2K"),
        "{}",
        reports[0]
    );
    assert!(
        reports[1].contains(
            r#"sample.path="/raw/\u{9b}2J\u{85}next\u{2028}line\u{202e}reversed\u{2066}""#
        ),
        "{}",
        reports[1]
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("LoggingLayer is outside the ErrorHandlerLayer"))
    );
}

#[test]
fn an_interval_under_a_second_from_the_environment_is_refused_and_the_default_kept() {
    let (stdout, stderr) = run_child("env", &[("UNHANDLED_ERRORS_REPORT_INTERVAL", "1ns")]);
    assert!(
        stdout.contains(r#"CHILD try: err invalid UNHANDLED_ERRORS_REPORT_INTERVAL="1ns": shorter than one second"#),
        "{stdout}"
    );
    assert!(stdout.contains("at least one second"), "{stdout}");
    assert!(stdout.contains("CHILD from_env: 10s"), "{stdout}");
    assert!(
        stderr.contains("using the default for UNHANDLED_ERRORS_REPORT_INTERVAL"),
        "{stderr}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_builder_raises_a_tiny_interval_so_a_storm_gives_at_most_two_reports_a_second() {
    let (events, _guard) = capture();
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::from_nanos(1))
        .build();
    assert_eq!(reporting.interval(), unhandled::config::MIN_INTERVAL);
    let app = Router::new()
        .route(
            "/",
            get(|| async { Err::<(), _>(unhandled::Error::msg("x")) }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    for _ in 0..2000 {
        support::send(&app, "/").await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let reports = events.reports().len();
    assert!((1..=5).contains(&reports), "{reports} reports in 2 s");
    assert_eq!(reporting.unhandled_count(), 2000);
}

/// A buggy error reaches every layer: answered, counted once, its chain cut where it loops.
#[tokio::test(flavor = "current_thread")]
async fn a_cyclic_source_chain_is_answered_counted_once_and_reported_behind_every_layer() {
    let (events, _guard) = capture();
    let bare = support::quiet_reporting();
    let logged = support::quiet_reporting();
    let streamed = support::quiet_reporting();
    let cyclic = || async { Err::<(), _>(unhandled::Error::new(Cyclic)) };
    let cyclic_stream = || async {
        let chunks = futures_util::stream::iter([
            Ok(axum::body::Bytes::from_static(b"row 1\n")),
            Err(Cyclic),
        ]);
        Body::from_stream(chunks)
    };
    let app = Router::new()
        .route("/bare", get(cyclic))
        .layer(ErrorHandlerLayer::new(bare.clone()))
        .merge(
            Router::new()
                .route("/logged", get(cyclic))
                .route("/logged/stream", get(cyclic_stream))
                .layer(LoggingLayer::new())
                .layer(ErrorHandlerLayer::new(logged.clone())),
        )
        .merge(
            Router::new()
                .route("/stream", get(cyclic_stream))
                .layer(ErrorHandlerLayer::new(streamed.clone())),
        )
        .merge(
            Router::new()
                .route("/default", get(cyclic_stream))
                .layer(ErrorHandlerLayer::default()),
        );
    let address = support::serve(app).await;
    for path in ["/bare", "/logged"] {
        let response = raw(address, format!("GET {path} HTTP/1.1").as_bytes(), b"").await;
        assert!(response.starts_with("HTTP/1.1 500"), "{path}: {response}");
    }
    // A body that fails at once may close the connection before its head was written: the
    // point is that the connection ends (`raw` waits 10 s at most), not what it carried.
    for path in ["/logged/stream", "/stream", "/default"] {
        let response = raw(address, format!("GET {path} HTTP/1.1").as_bytes(), b"").await;
        assert!(!response.contains("HTTP/1.1 500"), "{path}: {response}");
    }
    assert_eq!(counted(&bare), [("/bare".to_owned(), ErrorKind::Error, 1)]);
    assert_eq!(counted(&logged), [], "logged by the logging layer");
    assert_eq!(
        counted(&streamed),
        [("/stream".to_owned(), ErrorKind::Body, 1)]
    );
    bare.shutdown().await;
    let report = events.reports().pop().expect("a report");
    let sample = report.field("sample.error");
    assert!(sample.starts_with("the cache is cyclic: "), "{sample}");
    assert!(
        sample.ends_with(": …[the source chain loops back]"),
        "{sample}"
    );
    let failures: Vec<_> = events
        .all()
        .into_iter()
        .filter(|event| {
            event.target == unhandled::logging::TARGET && event.fields.contains_key("error")
        })
        .collect();
    assert_eq!(failures.len(), 2, "{failures:#?}");
    for failure in failures {
        assert!(
            failure
                .field("error")
                .ends_with("…[the source chain loops back]"),
            "{failure:?}"
        );
    }
}

/// Errors of any size and depth: their text is cut at 2,048 bytes, in the report, the logging
/// layer's event and the span's status.
#[tokio::test(flavor = "current_thread")]
async fn a_huge_or_deep_error_is_cut_in_the_report_the_event_and_the_span() {
    let exported = support::export_spans();
    let events = &exported.events;
    let reporting = support::quiet_reporting();
    let huge = || async { Err::<(), _>(unhandled::Error::msg("x".repeat(1 << 20))) };
    let deep = || async { Err::<(), _>(unhandled::Error::new(Deep::new(20_000))) };
    let app = Router::new()
        .route("/huge", get(huge))
        .route("/deep", get(deep))
        .layer(LoggingLayer::new().failure_level(tracing::Level::TRACE))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    // TRACE is enabled, so both are logged; the unlogged copy behind the error handler alone
    // gives the report.
    let unlogged = Router::new()
        .route("/huge", get(huge))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    support::send(&app, "/huge").await;
    support::send(&app, "/deep").await;
    support::send(&unlogged, "/huge").await;
    reporting.shutdown().await;
    let report = events.reports().pop().expect("a report");
    let sample = report.field("sample.error");
    assert!(sample.len() <= 2048 + "…[cut]".len(), "{}", sample.len());
    assert!(sample.ends_with("…[cut]"));
    let logged: Vec<String> = events
        .all()
        .into_iter()
        .filter(|event| event.target == unhandled::logging::TARGET)
        .map(|event| event.field("error").to_owned())
        .collect();
    assert_eq!(logged.len(), 2);
    assert!(logged[0].len() <= 2048 + "…[cut]".len() && logged[0].ends_with("…[cut]"));
    assert!(
        logged[1].ends_with(": …[source chain cut after 32 links]"),
        "{}",
        logged[1]
    );
    assert!(logged[1].starts_with("level 19999: level 19998: "));
    for span in exported.spans() {
        let Status::Error { description } = &span.status else {
            panic!("{span:?}");
        };
        assert!(
            description.len() <= 2048 + "…[cut]".len(),
            "{}",
            description.len()
        );
    }
}

/// A chain `depth` links deep.
#[derive(Debug)]
struct Deep(usize, Option<Box<Deep>>);

impl Deep {
    fn new(depth: usize) -> Self {
        (1..depth).fold(Deep(0, None), |inner, n| Deep(n, Some(Box::new(inner))))
    }
}

impl fmt::Display for Deep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.0)
    }
}

impl StdError for Deep {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.1
            .as_deref()
            .map(|deep| deep as &(dyn StdError + 'static))
    }
}

impl Drop for Deep {
    /// Iteratively: dropping 20,000 nested boxes recursively would overflow a test thread's stack.
    fn drop(&mut self) {
        let mut next = self.1.take();
        while let Some(mut deep) = next {
            next = deep.1.take();
        }
    }
}

fn attributes(span: &SpanData) -> std::collections::HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_in_the_query_headers_and_body_appear_in_no_span_event_report_or_metric() {
    let exported = support::export_spans();
    let events = &exported.events;
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = support::quiet_reporting();
    let app = |layer: LoggingLayer| {
        Router::new()
            .route(
                "/fail",
                post(|body: String| async move {
                    let _ = body;
                    Err::<(), _>(unhandled::Error::msg("the ledger refused"))
                }),
            )
            .layer(layer)
            .layer(ErrorHandlerLayer::new(reporting.clone()))
    };
    let head = "POST /fail?access_token=SECRET_A&sig=SECRET_B&X-Goog-Signature=SECRET_C\
                &AWSAccessKeyId=SECRET_D&page=2 HTTP/1.1\r\nauthorization: Bearer SECRET_E\r\n\
                cookie: session=SECRET_F\r\nx-api-key: SECRET_G\r\nproxy-authorization: SECRET_I";
    // Logged (so the span and the event have it all), then unlogged (so the report has it).
    let address = support::serve(app(LoggingLayer::new())).await;
    assert!(
        raw(address, head.as_bytes(), b"SECRET_H")
            .await
            .starts_with("HTTP/1.1 500")
    );
    let quiet = support::serve(app(LoggingLayer::new()
        .failure_level(tracing::Level::TRACE)
        .record_query(false)))
    .await;
    let unlogged = Router::new()
        .route(
            "/fail",
            post(|| async { Err::<(), _>(unhandled::Error::msg("refused")) }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let unlogged = support::serve(unlogged).await;
    assert!(
        raw(quiet, head.as_bytes(), b"SECRET_H")
            .await
            .starts_with("HTTP/1.1 500")
    );
    assert!(
        raw(unlogged, head.as_bytes(), b"SECRET_H")
            .await
            .starts_with("HTTP/1.1 500")
    );
    reporting.shutdown().await;
    let spans = exported.spans();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        attributes(&spans[0])["url.query"],
        "access_token=REDACTED&sig=REDACTED&X-Goog-Signature=REDACTED&AWSAccessKeyId=REDACTED&page=2"
    );
    assert!(
        !attributes(&spans[1]).contains_key("url.query"),
        "record_query(false)"
    );
    let everything = format!("{spans:?} {:?} {}", events.all(), metrics.render());
    assert!(!events.reports().is_empty());
    for secret in 'A'..='I' {
        let secret = format!("SECRET_{secret}");
        assert!(
            !everything.contains(&secret),
            "{secret} leaked:\n{everything}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn more_query_keys_can_be_redacted() {
    let exported = support::export_spans();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(LoggingLayer::new().redact_query_keys(["session", "OTP"]))
        .layer(ErrorHandlerLayer::default());
    support::send(&app, "/?session=s1&otp=123&page=2&sig=x").await;
    let spans = exported.spans();
    assert_eq!(
        attributes(&spans[0])["url.query"],
        "session=REDACTED&otp=REDACTED&page=2&sig=REDACTED"
    );
}

/// Keys that end like a secret, percent-encoded ones too, are redacted; a client's query reaches
/// the span escaped: no bidirectional, line-breaking, C1 or invisible character raw.
#[tokio::test(flavor = "current_thread")]
async fn secret_like_query_keys_are_redacted_and_the_query_is_escaped() {
    let exported = support::export_spans();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::default());
    let address = support::serve(app).await;
    let query = "token=T1&X-API-Key=T2&code=T3&%73ig=T4&user_key=T5&zip=1&q=\u{202e}x\u{85}\u{2028}\u{61c}\u{200b}\u{e0041}";
    let head = format!("GET /?{query} HTTP/1.1");
    assert!(
        raw(address, head.as_bytes(), b"")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let spans = exported.spans();
    let recorded = &attributes(&spans[0])["url.query"];
    assert_eq!(
        recorded,
        r"token=REDACTED&X-API-Key=REDACTED&code=REDACTED&%73ig=REDACTED&user_key=REDACTED&zip=1&q=\u{202e}x\u{85}\u{2028}\u{61c}\u{200b}\u{e0041}"
    );
    for secret in ["T1", "T2", "T3", "T4", "T5"] {
        assert!(!recorded.contains(secret), "{recorded}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn span_names_follow_the_conventions_for_client_chosen_methods_and_paths() {
    let exported = support::export_spans();
    let app = Router::new()
        .route("/any", any(|| async { "ok" }))
        .route(
            "/fails",
            get(|| async { Err::<(), _>(unhandled::Error::msg("down")) }),
        )
        .route("/panics", get(|| async { panic!("boom") as &str }))
        .route("/{*path}", post(|| async { StatusCode::BAD_GATEWAY }))
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::default());
    let address = support::serve(app).await;
    let method = "A".repeat(100);
    let answer = raw(address, format!("{method} /any HTTP/1.1").as_bytes(), b"").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let long = format!("/{}.S/M", "a".repeat(4096));
    let grpc = format!("POST {long} HTTP/1.1\r\ncontent-type: application/grpc");
    raw(address, grpc.as_bytes(), b"").await;
    let claims = "POST /attacker.S/Method HTTP/1.1\r\ncontent-type: application/grpc";
    raw(address, claims.as_bytes(), b"").await;
    raw(address, b"GET /fails HTTP/1.1", b"").await;
    raw(address, b"GET /panics HTTP/1.1", b"").await;
    let spans = exported.spans();
    let names: Vec<&str> = spans.iter().map(|span| &*span.name).collect();
    assert_eq!(
        names,
        [
            "HTTP /any",
            "POST /{*path}",
            "POST /{*path}",
            "GET /fails",
            "GET /panics"
        ]
    );
    let other = attributes(&spans[0]);
    assert_eq!(other["http.request.method"], "_OTHER");
    assert_eq!(other["http.request.method_original"], "A".repeat(64));
    let completed = exported.events.all();
    let completed = completed
        .iter()
        .find(|event| event.fields.get("path").map(String::as_str) == Some("/any"))
        .expect("the end event of /any");
    assert_eq!(
        completed.field("method"),
        "A".repeat(64),
        "the event's method is cut too"
    );
    for claimed in &spans[1..3] {
        let attributes = attributes(claimed);
        assert!(!attributes.contains_key("rpc.system"), "{attributes:?}");
        assert_eq!(attributes["error.type"], "502");
    }
    assert_eq!(attributes(&spans[3])["error.type"], "500");
    assert_eq!(attributes(&spans[4])["error.type"], "panic");
    assert!(!attributes(&spans[3]).contains_key("http.request.method_original"));
    assert_eq!(attributes(&spans[3])["http.response.status_code"], "500");
    assert_eq!(spans[3].status, Status::error("down"));
    assert_eq!(
        attributes(&spans[0]).get("error.type"),
        None,
        "no failure, no error.type"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_whose_payload_panics_when_dropped_is_answered_counted_and_reported() {
    let (events, _guard) = capture();
    let reporting = support::quiet_reporting();
    let bombs = || {
        Router::new()
            .route(
                "/bomb",
                get(|| async { std::panic::panic_any(Bomb) as &str }),
            )
            .route(
                "/display",
                get(|| async { Err::<(), _>(unhandled::Error::new(BombDisplay)) }),
            )
    };
    let app = bombs().layer(ErrorHandlerLayer::new(reporting.clone()));
    let logged = bombs()
        .layer(LoggingLayer::new())
        .layer(ErrorHandlerLayer::default());
    let address = support::serve(app.merge(Router::new().nest("/logged", logged))).await;
    for path in ["/bomb", "/display", "/logged/bomb", "/logged/display"] {
        let answer = raw(address, format!("GET {path} HTTP/1.1").as_bytes(), b"").await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{path}: {answer}");
        assert!(
            answer.ends_with("Internal Server Error"),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        counted(&reporting),
        [
            ("/bomb".to_owned(), ErrorKind::Panic, 1),
            ("/display".to_owned(), ErrorKind::Error, 1)
        ]
    );
    reporting.shutdown().await;
    let report = events.reports().pop().expect("the report was not lost");
    assert_eq!(report.field("count"), "2");
    let logged: Vec<_> = events
        .all()
        .into_iter()
        .filter(|event| {
            event.target == unhandled::logging::TARGET && event.fields.contains_key("error")
        })
        .map(|event| event.field("error").to_owned())
        .collect();
    assert_eq!(
        logged,
        [
            "handler panicked: panic payload of a type that is not a string",
            "<the error's Display implementation panicked>"
        ]
    );
}

/// A cause that says when it is dropped.
#[derive(Debug)]
struct Tracked(Arc<AtomicBool>);

impl fmt::Display for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("holding a connection")
    }
}

impl StdError for Tracked {}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn no_sample_outlives_the_report_that_shows_it_and_none_is_kept_with_the_report_off() {
    for interval in [Duration::ZERO, Duration::from_secs(3600)] {
        let dropped = Arc::new(AtomicBool::new(false));
        let reporting = ReportingErrorHandler::builder().interval(interval).build();
        let cause = Arc::clone(&dropped);
        let app = Router::new()
            .route(
                "/",
                get(move || {
                    let cause = Tracked(Arc::clone(&cause));
                    async move { Err::<(), _>(unhandled::Error::new(cause)) }
                }),
            )
            .layer(ErrorHandlerLayer::new(reporting.clone()));
        support::send(&app, "/").await;
        drop(app);
        assert_eq!(reporting.unhandled_count(), 1);
        // Kept as the sample only while a report will show it.
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            interval.is_zero(),
            "{interval:?}"
        );
        reporting.shutdown().await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "{interval:?}: kept after its report"
        );
    }
}

#[test]
fn a_recorder_installed_after_the_first_failures_gets_the_description() {
    let reporting = ReportingErrorHandler::builder()
        .interval(Duration::ZERO)
        .build();
    let error = unhandled::Error::msg("down");
    let context = ErrorContext::new(&Method::GET, "/x", Some("/x"), ErrorKind::Error);
    let first = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&first, || reporting.on_error(&error, &context));
    let late = PrometheusBuilder::new().build_recorder();
    let metrics = late.handle();
    metrics::with_local_recorder(&late, || reporting.on_error(&error, &context));
    let text = metrics.render();
    assert!(text.contains(&format!("# HELP {METRIC_NAME} ")), "{text}");
    assert!(
        text.contains(&format!("# TYPE {METRIC_NAME} counter")),
        "{text}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn failures_beyond_the_groups_are_one_overflow_series_and_the_report_keeps_real_routes() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = support::quiet_reporting();
    let mut app = Router::new();
    for index in 0..70 {
        app = app.route(
            &format!("/r{index}"),
            get(|| async { Err::<(), _>(unhandled::Error::msg("down")) }),
        );
    }
    let app = app.layer(ErrorHandlerLayer::new(reporting.clone()));
    for index in 0..70 {
        for _ in 0..2 {
            let request = Request::get(format!("/r{index}"))
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
    }
    reporting.shutdown().await;
    let text = metrics.render();
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{METRIC_NAME}{{")))
        .collect();
    assert_eq!(series.len(), unhandled::config::MAX_GROUPS + 1, "{text}");
    let overflow = format!(r#"{METRIC_NAME}{{method="_OTHER",route="_OTHER",kind="_OTHER"}} 12"#);
    assert!(series.contains(&overflow.as_str()), "{text}");
    assert_eq!(reporting.breakdown().other, 12);
}

/// A handler that answers what [`ServerErrorHandler`] is for: used to prove a custom handler sees
/// the bounded chain too.
#[derive(Clone)]
struct Counting(Arc<std::sync::atomic::AtomicUsize>);

impl ServerErrorHandler for Counting {
    fn on_error(
        &self,
        error: &unhandled::Error,
        _: &ErrorContext<'_>,
    ) -> Option<axum::response::Response> {
        self.0.store(error.chain().count(), Ordering::SeqCst);
        None
    }
}

#[tokio::test]
async fn a_custom_handler_walks_a_cyclic_chain_in_bounded_steps() {
    let links = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/",
            get(|| async { Err::<(), _>(unhandled::Error::new(Cyclic)) }),
        )
        .layer(ErrorHandlerLayer::new(Counting(Arc::clone(&links))));
    assert_eq!(
        support::send(&app, "/").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!((1..=32).contains(&links.load(Ordering::SeqCst)));
}

/// A client's long method takes the head's buffer from the route template, and more long
/// templates than the process-wide table holds are cut into what is left: nothing. The layer still
/// answers and counts each failure, bounded, and never panics or spins (this request once did).
#[tokio::test(flavor = "current_thread")]
async fn a_long_method_to_many_long_routes_is_answered_counted_and_labelled_by_whole_templates() {
    let reporting = support::quiet_reporting();
    let template = |n: usize| format!("/{}/{n}/{{id}}", "a-long-route-segment".repeat(4));
    let app = (0..80)
        .fold(Router::new(), |app, n| {
            app.route(
                &template(n),
                any(|| async { Err::<(), _>(unhandled::Error::msg("down")) }),
            )
        })
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    for n in 0..80 {
        let path = template(n).replace("{id}", "7");
        let request = Request::builder()
            .method("A".repeat(100).as_str())
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(reporting.unhandled_count(), 80);
    let breakdown = reporting.breakdown();
    assert!(
        breakdown
            .groups
            .iter()
            .all(|group| group.method == "_OTHER")
    );
    // Every group has its whole template: none is cut, none is empty.
    let routes: Vec<&str> = breakdown
        .groups
        .iter()
        .map(|group| group.route.as_str())
        .collect();
    let expected: Vec<String> = (0..64).map(template).collect();
    assert_eq!(routes, expected);
    assert_eq!(breakdown.other, 16);
}
