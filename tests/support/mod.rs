//! Shared by the integration tests: a capturing `tracing` layer and request helpers.
#![allow(dead_code)] // each test binary uses its own part of this module

/// A B3 propagator, for the traces tests.
#[cfg(feature = "opentelemetry")]
pub mod b3;

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use tower::ServiceExt;
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    subscriber::DefaultGuard,
};
use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

/// One captured event: its level, target and fields (the message under `message`).
#[derive(Debug, Clone)]
pub struct Captured {
    pub level: Level,
    pub target: String,
    pub fields: BTreeMap<String, String>,
    /// The name of the span the event happened in, if any.
    pub span: Option<String>,
}

impl Captured {
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no field {name:?} in {self:?}"))
    }
}

/// Events captured by [`capture`], shared with the layer that records them.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Captured>>>);

impl Events {
    pub fn all(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }

    /// The periodic reports (and flushes) of `unhandled`.
    pub fn reports(&self) -> Vec<Captured> {
        self.all()
            .into_iter()
            .filter(|event| event.target == "unhandled" && event.fields.contains_key("count"))
            .collect()
    }
}

/// A layer that records every event it sees into `Events`.
pub struct CaptureLayer(Events);

impl CaptureLayer {
    pub fn new(events: &Events) -> Self {
        Self(events.clone())
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let span = context.event_span(event).map(|span| span.name().to_owned());
        self.0.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: fields.0,
            span,
        });
    }
}

#[derive(Default)]
struct FieldMap(BTreeMap<String, String>);

impl Visit for FieldMap {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Captures every event on this thread until the guard drops.
///
/// The first call also installs a global subscriber that records nothing. Without one,
/// tracing-core can cache a callsite as never enabled when a test on another thread registers it
/// while no thread's subscriber is alive, and a later capture misses that callsite's events.
pub fn capture() -> (Events, DefaultGuard) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(CaptureLayer(events.clone()));
    (events, tracing::subscriber::set_default(subscriber))
}

/// The groups `reporting` counted, as `(route, kind, count)` in the order they first failed.
pub fn counted<H>(
    reporting: &unhandled::ReportingErrorHandler<H>,
) -> Vec<(String, unhandled::ErrorKind, u64)> {
    reporting
        .breakdown()
        .groups
        .into_iter()
        .map(|group| (group.route, group.kind, group.count))
        .collect()
}

/// Sends `GET path` through `app` in-process; the status and the body as text.
pub async fn send(app: &Router, path: &str) -> (StatusCode, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The status of a `POST` of `path` through `app`, in process.
pub async fn send_post(app: &Router, path: &str) -> StatusCode {
    let request = Request::post(path).body(Body::empty()).unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

/// An error with a two-level source chain: `loading user 7: connection refused`.
#[derive(Debug)]
pub struct LoadFailed(pub std::io::Error);

impl fmt::Display for LoadFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loading user 7")
    }
}

impl std::error::Error for LoadFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

pub fn load_failed() -> LoadFailed {
    LoadFailed(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused",
    ))
}

/// A service that fails every call with `upstream closed the pool` (a service error, not an
/// error response).
pub fn failing_service() -> impl tower::Service<
    Request<Body>,
    Response = axum::http::Response<Body>,
    Error = std::io::Error,
    Future = impl Future<Output = Result<axum::http::Response<Body>, std::io::Error>> + Send,
> + Clone
+ Send {
    tower::service_fn(|_: Request<Body>| async {
        Err::<axum::http::Response<Body>, _>(std::io::Error::other("upstream closed the pool"))
    })
}

/// Runs the ignored test `test` of this binary again as a child process, with the variables
/// `vars` set and `removed` unset; its standard output and error, once it passed.
pub fn run_child(test: &str, vars: &[(&str, &str)], removed: &[&str]) -> (String, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for name in removed {
        command.env_remove(name);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stdout.contains("1 passed"),
        "the child failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// Spans of this thread exported through tracing-opentelemetry into the SDK's in-memory exporter,
/// and its events captured, until `guard` drops.
pub struct Exported {
    pub provider: opentelemetry_sdk::trace::SdkTracerProvider,
    pub exporter: opentelemetry_sdk::trace::InMemorySpanExporter,
    pub events: Events,
    pub guard: DefaultGuard,
}

pub fn export_spans() -> Exported {
    use opentelemetry::trace::TracerProvider as _;
    drop(capture()); // installs the global subscriber that `capture` explains
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let events = Events::default();
    let subscriber = tracing_subscriber::registry()
        .with(CaptureLayer(events.clone()))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    Exported {
        provider,
        exporter,
        events,
        guard: tracing::subscriber::set_default(subscriber),
    }
}

impl Exported {
    /// The spans finished so far.
    pub fn spans(&self) -> Vec<opentelemetry_sdk::trace::SpanData> {
        self.provider.force_flush().unwrap();
        self.exporter.get_finished_spans().unwrap()
    }
}

/// Serves `app` on 127.0.0.1, on this runtime; its address.
pub async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// Sends `GET path` to the server at `address` over HTTP/1.1 with hyper's client; the status. A
/// body that breaks can end the connection before its head is read: a 500 then, as the client saw
/// no status.
pub async fn get_status(address: std::net::SocketAddr, path: &str) -> StatusCode {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", "localhost")
        .body(http_body_util::Empty::<axum::body::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await;
    response.map_or(StatusCode::INTERNAL_SERVER_ERROR, |response| {
        response.status()
    })
}

/// The value of the counter's series with these labels in a Prometheus exposition, if any.
pub fn exported(text: &str, method: &str, route: &str, kind: &str) -> Option<u64> {
    let series = format!(
        "{}{{method=\"{method}\",route=\"{route}\",kind=\"{kind}\"}} ",
        unhandled::METRIC_NAME
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map(|value| value.trim().parse().unwrap())
}

/// Waits until `done()` holds, checking every 2 ms for 10 s at the most, for what a server finishes
/// after its client got the answer; the assertion that follows says what was expected.
pub async fn eventually(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// A reporting handler that reports only when told to (`shutdown()`): an hour's interval, and the
/// report through `tracing`, where [`capture`] sees it. Tests whose subject is the interval or
/// where the report goes build their own.
pub fn quiet_reporting() -> unhandled::ReportingErrorHandler {
    unhandled::ReportingErrorHandler::builder()
        .interval(std::time::Duration::from_secs(3600))
        .report_to(unhandled::ReportTo::Tracing)
        .build()
}

/// A handler that fails with [`load_failed`]: `loading user 7: connection refused`.
pub async fn fails() -> unhandled::Result<()> {
    Err(load_failed())?
}

/// A handler that panics with `index out of bounds`.
pub async fn panics() -> &'static str {
    panic!("index out of bounds")
}
