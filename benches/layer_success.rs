//! One successful request through an axum router called in-process (no network): bare, with a
//! layer that does nothing (what `Router::layer` itself costs), with `unhandled::layer()`, with tower-http's `CatchPanicLayer`, with tower-http's `TraceLayer` (no
//! subscriber), and with `LoggingLayer` (levels disabled, and enabled into a formatting subscriber
//! writing to a sink). At 1 and 2 threads, each thread with its own current-thread runtime.

use axum::{Router, http::StatusCode, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use unhandled::LoggingLayer;
use unhandled_benches::{MakeSubscriber, bench_routers, sink_subscriber};

fn routes() -> Router {
    Router::new().route("/users/{id}", get(|| async { "user" }))
}

fn success(c: &mut Criterion) {
    let contenders: [(&str, Router, MakeSubscriber); 7] = [
        ("bare", routes(), None),
        // What `Router::layer` costs whatever the layer: axum boxes each layered route.
        (
            "pass_through_layer",
            routes().layer(tower::util::MapResponseLayer::new(|response| response)),
            None,
        ),
        ("unhandled_layer", routes().layer(unhandled::layer()), None),
        (
            "catch_panic_layer",
            routes().layer(CatchPanicLayer::new()),
            None,
        ),
        (
            "trace_layer",
            routes().layer(TraceLayer::new_for_http()),
            None,
        ),
        (
            "logging_layer_disabled",
            routes().layer(LoggingLayer::new()),
            None,
        ),
        (
            "logging_layer_to_sink",
            routes().layer(LoggingLayer::new()),
            Some(sink_subscriber),
        ),
    ];
    bench_routers(c, "layer_success", &contenders, "/users/7", StatusCode::OK);
}

criterion_group! {
    name = benches;
    config = unhandled_benches::criterion(3);
    targets = success
}
criterion_main!(benches);
