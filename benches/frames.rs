//! Reads one streamed response of N frames through one router variant in-process, for counting
//! instructions per frame with callgrind (see `benches/instructions.sh`, `ONLY=frames`).
//!
//!     frames VARIANT N
//!
//! Every variant runs under the same formatting subscriber at `DEBUG` writing to a sink (so that
//! the spans of `LoggingLayer` and tower-http's `TraceLayer` are real), and reads a
//! `Body::from_stream` of N one-byte frames:
//! - `pass_through`: a layer that does nothing (the body as the handler made it);
//! - `unhandled`: `unhandled::layer()`, which watches the body for failures after its head;
//! - `logging`: `LoggingLayer` inside `unhandled::layer()`, which also logs the request at the
//!   body's end and polls it in the request's span;
//! - `trace_layer`: tower-http's `TraceLayer::new_for_http()`, whose body wrapper is the peer.
//!
//! Before counting, each variant shows that it is what it says: a failing stream is counted by
//! `unhandled` only (with `logging` it is logged instead), and `TraceLayer`'s request callback
//! fires in its variant only (its failure callback never: it classifies at the head).

use std::{
    convert::Infallible,
    sync::atomic::{AtomicU64, Ordering},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::Path,
    http::Request,
    routing::get,
};
use futures_util::stream;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A stream of `n` one-byte frames, or one frame and an error for `n = 0`.
async fn frames(Path(n): Path<u64>) -> Body {
    if n == 0 {
        let chunks = [
            Ok(Bytes::from_static(b"x")),
            Err(std::io::Error::other("failed")),
        ];
        return Body::from_stream(stream::iter(chunks));
    }
    Body::from_stream(stream::iter(
        (0..n).map(|_| Ok::<_, Infallible>(Bytes::from_static(b"x"))),
    ))
}

/// Body failures tower-http's `TraceLayer` saw.
static TRACE_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Requests tower-http's `TraceLayer` saw: its variant only.
static TRACE_REQUESTS: AtomicU64 = AtomicU64::new(0);

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_default();
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let routes = || Router::new().route("/frames/{n}", get(frames));
    let reporting = unhandled::ReportingErrorHandler::builder()
        .interval(std::time::Duration::ZERO)
        .build();
    let counting = unhandled::ErrorHandlerLayer::new(reporting.clone());
    let app = match variant.as_str() {
        "pass_through" => routes().layer(tower::util::MapResponseLayer::new(|response| response)),
        "unhandled" => routes().layer(counting),
        "logging" => routes()
            .layer(unhandled::LoggingLayer::new())
            .layer(counting),
        "trace_layer" => routes().layer(
            tower_http::trace::TraceLayer::new_for_http()
                .on_request(|_: &Request<Body>, _: &tracing::Span| {
                    TRACE_REQUESTS.fetch_add(1, Ordering::Relaxed);
                })
                .on_failure(
                    |_: tower_http::classify::ServerErrorsFailureClass, _, _: &tracing::Span| {
                        TRACE_FAILURES.fetch_add(1, Ordering::Relaxed);
                    },
                ),
        ),
        other => {
            eprintln!("unknown variant {other:?}; see the module docs");
            std::process::exit(2);
        }
    };
    let _ = tracing::dispatcher::set_global_default(unhandled_benches::sink_subscriber());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Warm up, and show what the variant watches: a failing stream is counted by `unhandled`
    // only, and by neither with `logging` (logged instead) nor the others.
    assert_eq!(runtime.block_on(read(&app, 0)), 1);
    assert_eq!(runtime.block_on(read(&app, 10)), 10);
    let counted = reporting.unhandled_count();
    assert_eq!(counted, u64::from(variant == "unhandled"), "{variant}");
    // tower-http's classifier decides at the head: its body wrapper never sees a body error.
    assert_eq!(TRACE_FAILURES.load(Ordering::Relaxed), 0);
    let traced = TRACE_REQUESTS.load(Ordering::Relaxed);
    assert_eq!(
        traced > 0,
        variant == "trace_layer",
        "{variant}: TraceLayer saw {traced}"
    );
    read_counted(&runtime, &app, count);
}

/// The part callgrind counts (`--toggle-collect=*read_counted*`).
#[inline(never)]
fn read_counted(runtime: &tokio::runtime::Runtime, app: &Router, count: u64) {
    assert_eq!(runtime.block_on(read(app, count)), count);
}

/// Reads `/frames/{n}` frame by frame; how many data bytes arrived.
async fn read(app: &Router, n: u64) -> u64 {
    let request = Request::get(format!("/frames/{n}"))
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let mut body = response.into_body();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes += frame.data_ref().map_or(0, |data| data.len() as u64),
            Err(_) => break,
        }
    }
    bytes
}
