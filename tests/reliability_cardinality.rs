//! A cardinality attack: 100,000 requests to distinct unmatched paths and 100,000 distinct error
//! messages. The breakdown and the metric's label sets stay bounded, and live heap memory does not
//! grow with the count (a counting global allocator, in this test binary alone).

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

#[tokio::test(flavor = "current_thread")]
async fn distinct_paths_and_messages_keep_breakdown_metric_and_memory_bounded() {
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
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("http_server_unhandled_errors_total{"))
        .collect();
    assert_eq!(series.len(), 2, "{text}");
    assert!(
        growth < ALLOWED_GROWTH,
        "live heap grew by {growth} bytes over {} requests after warm-up",
        2 * (REQUESTS - WARM_UP)
    );
}
