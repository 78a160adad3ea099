//! One failing request (the handler returns an error), per request: counting it with
//! `unhandled::layer()` against logging it, either with tower-http's `TraceLayer` (its failure
//! callback logs at ERROR) or with the axum error-handling-example pattern (the error travels in
//! the response extensions and a middleware logs it). Every variant runs with the same formatting
//! subscriber writing to a sink and a Prometheus recorder installed, at 1 and 2 threads. The same
//! handlers without any layer are measured too: the cost of counting or logging is the difference.

use std::sync::Arc;

use axum::{
    Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
use tower_http::trace::TraceLayer;
use unhandled_benches::{bench_routers, sink_subscriber};

/// The error of the axum error-handling example: it renders a 500 and rides along in the
/// response extensions for a logging middleware.
#[derive(Debug, Clone)]
struct AppError(Arc<std::io::Error>);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

fn log_app_errors(response: Response) -> Response {
    if let Some(AppError(error)) = response.extensions().get::<AppError>() {
        tracing::error!(%error, "request failed");
    }
    response
}

fn database_down() -> std::io::Error {
    std::io::Error::other("the database is down")
}

fn error(c: &mut Criterion) {
    let recorder = PrometheusBuilder::new()
        .install_recorder()
        .expect("install the Prometheus recorder");
    let counting = Router::new()
        .route(
            "/users/{id}",
            get(|| async { Err::<(), unhandled::Error>(database_down().into()) }),
        )
        .layer(unhandled::layer());
    let trace_layer = Router::new()
        .route(
            "/users/{id}",
            get(|| async { Err::<(), _>(AppError(Arc::new(database_down()))) }),
        )
        .layer(TraceLayer::new_for_http());
    let extension_pattern = Router::new()
        .route(
            "/users/{id}",
            get(|| async { Err::<(), _>(AppError(Arc::new(database_down()))) }),
        )
        .layer(axum::middleware::map_response(
            |response: Response| async move { log_app_errors(response) },
        ));
    // The same failing handlers without any layer: subtracted to get what each layer adds.
    let unhandled_error_alone = Router::new().route(
        "/users/{id}",
        get(|| async { Err::<(), unhandled::Error>(database_down().into()) }),
    );
    let app_error_alone = Router::new().route(
        "/users/{id}",
        get(|| async { Err::<(), _>(AppError(Arc::new(database_down()))) }),
    );
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
