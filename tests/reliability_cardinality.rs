//! Cardinality attacks: 100,000 requests to distinct unmatched paths and 100,000 distinct error
//! messages; 50,000 requests that claim to be gRPC calls to distinct method paths, over real TCP.
//! Work handed off: 100,000 reported tasks from 1,000 concurrent requests, a tenth failing.
//! The breakdown and the metric's label sets stay bounded, and live heap memory does not grow with
//! the count (a counting global allocator, in this test binary alone; the tests take turns).

mod support;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicI64, Ordering},
};

use axum::{Router, extract::Path, http::StatusCode, routing::get};
use metrics_exporter_prometheus::PrometheusBuilder;
use unhandled::{Error, ErrorHandlerLayer, ReportingErrorHandler};

use support::send;

/// Tracks the bytes currently allocated, on every thread.
struct LiveBytes;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the bookkeeping is one atomic add, which does not allocate.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LiveBytes = LiveBytes;

const REQUESTS: u64 = 100_000;
const WARM_UP: u64 = 10_000;
/// What live memory may grow by between the end of the warm-up and the end of the run.
const ALLOWED_GROWTH: i64 = 256 * 1024;

async fn distinct_message(Path(id): Path<u64>) -> unhandled::Result<()> {
    Err(Error::msg(format!(
        "user {id} failed with a message never seen before"
    )))
}

/// The tests take turns: each measures the live heap of the whole process.
static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "current_thread")]
async fn distinct_paths_and_messages_keep_breakdown_metric_and_memory_bounded() {
    let _turn = TURNS.lock().await;
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route("/users/{id}", get(distinct_message))
        .fallback(|| async { Err::<(), _>(Error::msg("no such page")) })
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(());

    let mut live_after_warm_up = 0;
    for request in 0..REQUESTS {
        if request == WARM_UP {
            live_after_warm_up = LIVE.load(Ordering::Relaxed);
        }
        let unmatched = format!("/attack/{request}/{}", request * 7919);
        assert_eq!(
            send(&app, &unmatched).await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let distinct = format!("/users/{request}");
        assert_eq!(
            send(&app, &distinct).await.0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    let growth = LIVE.load(Ordering::Relaxed) - live_after_warm_up;

    assert_eq!(reporting.unhandled_count(), 2 * REQUESTS);
    let breakdown = reporting.breakdown();
    let groups: Vec<(&str, &str)> = breakdown
        .groups
        .iter()
        .map(|group| (group.method, group.route.as_str()))
        .collect();
    assert_eq!(groups, [("GET", "unmatched"), ("GET", "/users/{id}")]);
    assert_eq!(breakdown.total(), 2 * REQUESTS);
    let text = metrics.render();
    assert_eq!(series(&text).len(), 2, "{text}");
    assert!(
        growth < ALLOWED_GROWTH,
        "live heap grew by {growth} bytes over {} requests after warm-up",
        2 * (REQUESTS - WARM_UP)
    );
}

/// The counter's series in an exposition.
fn series(text: &str) -> Vec<&str> {
    let name = format!("{}{{", unhandled::METRIC_NAME);
    text.lines()
        .filter(|line| line.starts_with(&name))
        .collect()
}

/// The resident set of this process, in bytes (Linux).
fn resident_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    let kib: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

const CLAIMS: usize = 50_000;
const CLAIMS_WARM_UP: usize = 5_000;
const CONNECTIONS: usize = 4;

/// Sends `POST /a<i>.S/M<i>` with `content-type: application/grpc` for each `i` of `paths` on one
/// keep-alive connection, each answered 502 by the catch-all.
async fn claim_grpc(address: std::net::SocketAddr, paths: std::ops::Range<usize>) {
    let paths = paths.map(|index| format!("/a{index}.S/M{index}")).collect();
    post_grpc(address, paths, "HTTP/1.1 502").await;
}

#[tokio::test(flavor = "current_thread")]
async fn requests_that_only_claim_to_be_grpc_keep_their_route_template_as_label() {
    let _turn = TURNS.lock().await;
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route(
            "/real",
            get(|| async { Err::<(), _>(Error::msg("the real failure")) }),
        )
        .route(
            "/{*path}",
            axum::routing::post(|| async { StatusCode::BAD_GATEWAY }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    claim_grpc(address, 0..CLAIMS_WARM_UP).await;
    let live = LIVE.load(Ordering::Relaxed);
    let resident = resident_bytes();
    let per_connection = (CLAIMS - CLAIMS_WARM_UP) / CONNECTIONS;
    let connections = (0..CONNECTIONS).map(|connection| {
        let start = CLAIMS_WARM_UP + connection * per_connection;
        claim_grpc(address, start..start + per_connection)
    });
    futures_util::future::join_all(connections).await;
    let live_growth = LIVE.load(Ordering::Relaxed) - live;
    let resident_growth = resident_bytes() - resident;
    let mut real = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = "GET /real HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut real, request.as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut real, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    reporting.shutdown().await;

    let breakdown = reporting.breakdown();
    let groups: Vec<(&str, &str, u64)> = breakdown
        .groups
        .iter()
        .map(|group| (group.method, group.route.as_str(), group.count))
        .collect();
    assert_eq!(
        groups,
        [("POST", "/{*path}", CLAIMS as u64), ("GET", "/real", 1)],
        "a real failing route keeps its group"
    );
    assert_eq!(breakdown.other, 0);
    let text = metrics.render();
    let mut series = series(&text);
    series.sort_unstable();
    assert_eq!(
        series,
        [
            r#"http_server_unhandled_errors_total{method="GET",route="/real",kind="error"} 1"#,
            r#"http_server_unhandled_errors_total{method="POST",route="/{*path}",kind="status"} 50000"#,
        ],
        "{text}"
    );
    assert!(
        live_growth < ALLOWED_GROWTH,
        "live heap grew by {live_growth} bytes over {} requests after warm-up",
        CLAIMS - CLAIMS_WARM_UP
    );
    // The resident set moves with the allocator's own caches too: a looser bound, still far
    // below the 47 MB a label per path cost.
    assert!(
        resident_growth < 8 << 20,
        "RSS grew by {resident_growth} bytes"
    );
}

/// A gateway's answer to a gRPC call: HTTP 200, `content-type: application/grpc`, and the
/// server-error status `UNAVAILABLE` in its headers (Trailers-Only), as a proxy whose upstream is
/// down answers.
fn upstream_down() -> axum::response::Response {
    axum::response::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", "14")
        .header("grpc-message", "upstream connect error")
        .body(axum::body::Body::empty())
        .unwrap()
}

/// Sends `POST` with `content-type: application/grpc` to each of `paths` on one keep-alive
/// connection, reading each answer (its head and `content-length` body) before the next; each
/// answer must start with `status`.
async fn post_grpc(address: std::net::SocketAddr, paths: Vec<String>, status: &str) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    for path in paths {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/grpc\r\n\
             content-length: 0\r\n\r\n"
        );
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        let mut length = 0;
        let mut first = true;
        loop {
            line.clear();
            stream.read_line(&mut line).await.unwrap();
            if first {
                assert!(line.starts_with(status), "{path}: {line}");
                first = false;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
    }
}

/// 10,000 gRPC-looking calls with client-chosen method names, to a REST catch-all and to the
/// fallback, each answered as gRPC with a server-error status: at most 8 groups take a method
/// name from the path, the rest keep the declared label, and the application's own failing route
/// still gets its group, its sample and its series.
#[tokio::test(flavor = "current_thread")]
async fn client_chosen_method_names_never_push_out_the_application_s_routes() {
    let _turn = TURNS.lock().await;
    let (events, _capture) = support::capture();
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = support::quiet_reporting();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async { Err::<(), _>(Error::msg("the orders table is locked")) }),
        )
        .route(
            "/api/{*rest}",
            axum::routing::post(|| async { upstream_down() }),
        )
        .fallback(|| async { upstream_down() })
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let address = support::serve(app).await;

    let attacks = 5_000;
    let routed = (0..attacks)
        .map(|index| format!("/api/Attacker{index}"))
        .collect();
    post_grpc(address, routed, "HTTP/1.1 200").await;
    let unrouted = (0..attacks)
        .map(|index| format!("/squat.S{index}/M"))
        .collect();
    post_grpc(address, unrouted, "HTTP/1.1 200").await;
    assert_eq!(
        support::get_status(address, "/orders/7").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    reporting.shutdown().await;

    let breakdown = reporting.breakdown();
    assert_eq!(breakdown.total(), 2 * attacks + 1);
    assert_eq!(breakdown.other, 0, "{breakdown:?}");
    let from_path = breakdown
        .groups
        .iter()
        .filter(|group| group.route.contains("Attacker") || group.route.contains("squat"))
        .count();
    assert_eq!(from_path, 8, "{breakdown:#?}");
    let declared: Vec<(&str, u64)> = breakdown
        .groups
        .iter()
        .filter(|group| !group.route.contains("Attacker") && !group.route.contains("squat"))
        .map(|group| (group.route.as_str(), group.count))
        .collect();
    assert_eq!(
        declared,
        [
            ("/api/{*rest}", attacks - 8),
            ("unmatched", attacks),
            ("/orders/{id}", 1)
        ]
    );
    let report = &events.reports()[0];
    assert_eq!(report.field("sample.route"), "/orders/{id}");
    assert_eq!(report.field("sample.error"), "the orders table is locked");
    let text = metrics.render();
    assert!(
        text.contains(r#"http_server_unhandled_errors_total{method="GET",route="/orders/{id}",kind="error"} 1"#),
        "{text}"
    );
    assert_eq!(series(&text).len(), 8 + 3, "{text}");
}

/// Requests of the task load, each spawning [`TASKS_PER_REQUEST`] reported tasks.
const SPAWNING_REQUESTS: u64 = 1_000;
const TASKS_PER_REQUEST: u64 = 100;

/// Spawns [`TASKS_PER_REQUEST`] reported tasks, every tenth of which fails after the response,
/// and answers `201`.
async fn spawn_tasks() -> StatusCode {
    for task in 0..TASKS_PER_REQUEST {
        unhandled::spawn(async move {
            tokio::task::yield_now().await;
            match task % 10 {
                0 => Err(std::io::Error::other("the mail relay refused")),
                _ => Ok(()),
            }
        });
    }
    StatusCode::CREATED
}

#[tokio::test(flavor = "current_thread")]
async fn a_hundred_thousand_reported_tasks_are_counted_exactly_with_memory_flat() {
    let _turn = TURNS.lock().await;
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let reporting = ReportingErrorHandler::builder()
        .interval(std::time::Duration::from_secs(3600))
        .build();
    let app = Router::new()
        .route("/spawn", axum::routing::post(spawn_tasks))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .with_state(());
    // Twice: the first round warms up (tokio's task slabs, the group); the second must leave
    // the live heap where the first did.
    let mut live = Vec::new();
    for round in 1..=2 {
        let requests: Vec<_> = (0..SPAWNING_REQUESTS)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { support::send_post(&app, "/spawn").await })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap(), StatusCode::CREATED);
        }
        let failing = round * SPAWNING_REQUESTS * TASKS_PER_REQUEST / 10;
        support::eventually(|| reporting.unhandled_count() == failing).await;
        assert_eq!(reporting.unhandled_count(), failing);
        reporting.shutdown().await; // publishes every count
        live.push(LIVE.load(Ordering::Relaxed));
    }
    let failing = 2 * SPAWNING_REQUESTS * TASKS_PER_REQUEST / 10;
    let text = metrics.render();
    let line = format!(
        r#"http_server_unhandled_errors_total{{method="POST",route="/spawn",kind="task"}} {failing}"#
    );
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    assert_eq!(series(&text).len(), 1, "{text}");
    let growth = live[1] - live[0];
    assert!(
        growth < ALLOWED_GROWTH,
        "live heap grew by {growth} bytes over the second 100,000 tasks ({live:?})"
    );
}
