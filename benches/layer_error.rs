//! One failing request (the handler returns an error), per request: counting it with
//! `unhandled::layer()` against logging it, either with tower-http's `TraceLayer` (its failure
//! callback logs at ERROR) or with the axum error-handling-example pattern (the error travels in
//! the response extensions and a middleware logs it). Every variant runs with the same formatting
//! subscriber writing to a sink and a Prometheus recorder installed, at 1 and 2 threads. The same
//! handlers without any layer are measured too: the cost of counting or logging is the difference.

use axum::{http::StatusCode, middleware::map_response};
use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
use tower_http::trace::TraceLayer;
use unhandled_benches::{
    app_error_routes, bench_routers, log_app_errors, sink_subscriber, unhandled_error_routes,
};

fn error(c: &mut Criterion) {
    let recorder = PrometheusBuilder::new()
        .install_recorder()
        .expect("install the Prometheus recorder");
    let counting = unhandled_error_routes().layer(unhandled::layer());
    let trace_layer = app_error_routes().layer(TraceLayer::new_for_http());
    let extension_pattern = app_error_routes().layer(map_response(log_app_errors));
    // The same failing handlers without any layer: subtracted to get what each layer adds.
    let unhandled_error_alone = unhandled_error_routes();
    let app_error_alone = app_error_routes();
    let sink = Some(sink_subscriber as fn() -> tracing::Dispatch);
    let contenders = [
        ("unhandled_error_without_layer", unhandled_error_alone, sink),
        ("unhandled_layer_counts", counting, sink),
        ("app_error_without_layer", app_error_alone, sink),
        ("trace_layer_logs", trace_layer, sink),
        ("extension_pattern_logs", extension_pattern, sink),
    ];
    bench_routers(
        c,
        "layer_error",
        &contenders,
        "/users/7",
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    assert!(
        recorder
            .render()
            .contains("http_server_unhandled_errors_total{"),
        "the counting variant never reached the recorder"
    );
}

criterion_group! {
    name = benches;
    config = unhandled_benches::criterion(3);
    targets = error
}
criterion_main!(benches);
