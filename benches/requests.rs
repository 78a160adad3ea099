//! Sends N requests through one router variant in-process, for counting instructions per request
//! with callgrind (see `benches/instructions.sh`): deterministic where wall-clock timings on a
//! shared 2-core machine are not.
//!
//!     requests VARIANT N
//!
//! Successful requests: `bare`, `pass_through`, `unhandled`, `catch_panic`, `logging_disabled`;
//! `two_layer_calls` (a pass-through layer and `unhandled::layer()` in two `Router::layer` calls)
//! and `one_layer_call` (the same two in one `ServiceBuilder`, one call);
//! `unhandled_traceparent` (every request carries a W3C `traceparent` header), `logging_to_sink`
//! and `logging_to_sink_traceparent` (`LoggingLayer` under a formatting subscriber at `DEBUG`
//! writing to a sink: span and end event enabled). Built with the feature `opentelemetry`, a W3C
//! propagator is installed.
//! Failing requests (a formatting subscriber writing to a sink and a Prometheus recorder
//! installed for all of them): `error_alone`, `error_pass_through` and `error_unhandled` (the
//! handler returns an `unhandled::Error`, without a layer, with one that does nothing, with
//! `unhandled::layer()` counting it), `app_error_alone`, `app_error_pass_through`,
//! `app_error_unhandled`, `app_error_extension_logs` and `app_error_trace_logs` (the axum
//! error-handling example's error, without a layer, with one that does nothing, counted by
//! `unhandled::layer()` as a 5xx without a cause, logged by a `map_response` middleware, logged by
//! tower-http's `TraceLayer`); `status_pass_through` and `status_unhandled` (a plain `500` with a
//! text body and nothing in its extensions, behind a layer that does nothing and counted by
//! `unhandled::layer()`). Every layered route pays axum's route boxing alike, so a layer's
//! own cost is its variant minus the pass-through one.
//! The whole stack a user runs, in one `ServiceBuilder` each, under a formatting subscriber at
//! `DEBUG` or `INFO` writing to a sink, for a route answering 200 (`ok`) and one answering a plain
//! 500 (`500`): `stack_unhandled_{debug,info}_{ok,500}` (`unhandled::layer()` outside
//! `LoggingLayer`, as README writes it) and `stack_tower_{debug,info}_{ok,500}` (tower-http's
//! `TraceLayer::new_for_http()` outside `CatchPanicLayer`, as axum's examples write them). Each
//! is proved in a child process (`requests VARIANT prove`): the line only it writes, and for the
//! unhandled stack, a logged failure not counted. `event_message`, `event_tower` and
//! `event_unhandled`: no layer, a handler that emits one event shaped like the stacks' failure
//! events (the message alone, tower-http's two fields, `LoggingLayer`'s seven), under the same
//! subscriber at `INFO`, against `event_none`: what `fmt` costs for the event alone.

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
    middleware::map_response,
    routing::get,
};
use tower::ServiceExt;
use unhandled_benches::{app_error_routes, log_app_errors, status_routes, unhandled_error_routes};

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_default();
    let count = args.next();
    // `requests VARIANT prove`: only the proof that a stack variant is what it says, in a process
    // of its own, so that its allocations leave the counted process's heap as it was.
    let prove = count.as_deref() == Some("prove");
    let count: u64 = count.and_then(|n| n.parse().ok()).unwrap_or(1000);
    let ok = || Router::new().route("/users/{id}", get(|| async { "user" }));
    let unhandled_error = unhandled_error_routes;
    let app_error = app_error_routes;
    let (app, expected) = match variant.as_str() {
        "bare" => (ok(), StatusCode::OK),
        "pass_through" => (
            ok().layer(tower::util::MapResponseLayer::new(|response| response)),
            StatusCode::OK,
        ),
        "unhandled" => (ok().layer(unhandled::layer()), StatusCode::OK),
        "two_layer_calls" => (
            ok().layer(tower::util::MapResponseLayer::new(|response| response))
                .layer(unhandled::layer()),
            StatusCode::OK,
        ),
        "one_layer_call" => (
            ok().layer(
                tower::ServiceBuilder::new()
                    .layer(unhandled::layer())
                    .map_response(|response| response),
            ),
            StatusCode::OK,
        ),
        "subscribed" | "subscribed_layer" => (ok().layer(unhandled::layer()), StatusCode::OK),
        "subscribed_debug" | "subscribed_debug_layer" => (
            Router::new()
                .route(
                    "/users/{id}",
                    get(|| async {
                        tracing::debug!(user = 7, "loading the user");
                        "user"
                    }),
                )
                .layer(unhandled::layer()),
            StatusCode::OK,
        ),
        "catch_panic" => (
            ok().layer(tower_http::catch_panic::CatchPanicLayer::new()),
            StatusCode::OK,
        ),
        "logging_disabled" => (ok().layer(unhandled::LoggingLayer::new()), StatusCode::OK),
        "unhandled_traceparent" => (ok().layer(unhandled::layer()), StatusCode::OK),
        "logging_to_sink" | "logging_to_sink_traceparent" => {
            (ok().layer(unhandled::LoggingLayer::new()), StatusCode::OK)
        }
        "error_alone" => (unhandled_error(), StatusCode::INTERNAL_SERVER_ERROR),
        "error_pass_through" => (
            unhandled_error().layer(tower::util::MapResponseLayer::new(|response| response)),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "app_error_pass_through" => (
            app_error().layer(tower::util::MapResponseLayer::new(|response| response)),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "error_unhandled" => (
            unhandled_error().layer(unhandled::layer()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "status_pass_through" => (
            status_routes().layer(tower::util::MapResponseLayer::new(|response| response)),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "status_unhandled" => (
            status_routes().layer(unhandled::layer()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "app_error_alone" => (app_error(), StatusCode::INTERNAL_SERVER_ERROR),
        "app_error_unhandled" => (
            app_error().layer(unhandled::layer()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "app_error_extension_logs" => (
            app_error().layer(map_response(log_app_errors)),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        "app_error_trace_logs" => (
            app_error().layer(tower_http::trace::TraceLayer::new_for_http()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        stack if stack.starts_with("stack_") => stack_variant(stack),
        "event_none" => (ok(), StatusCode::OK),
        "event_message" | "event_tower" | "event_unhandled" => {
            (event_variant(&variant), StatusCode::OK)
        }
        other => {
            eprintln!("unknown variant {other:?}; see the module docs");
            std::process::exit(2);
        }
    };
    if variant.contains("error") || variant.contains("sink") {
        let _ = tracing::dispatcher::set_global_default(unhandled_benches::sink_subscriber());
    }
    if variant.starts_with("stack_") || variant.starts_with("event_") {
        let level = match variant.contains("_debug_") {
            true => tracing::Level::DEBUG,
            false => tracing::Level::INFO,
        };
        let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::sink)
                .finish(),
        ));
    }
    if variant.starts_with("subscribed") {
        let _ = tracing::dispatcher::set_global_default(unhandled_benches::app_subscriber(
            variant.ends_with("_layer"),
        ));
    }
    #[cfg(feature = "opentelemetry")]
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    if variant.contains("error") {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("install the Prometheus recorder");
    }
    let app = app.with_state(());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Warm up outside the counted function: lazily initialised state (the Prometheus recorder's
    // clock calibrates against wall time, so its instruction count varies from run to run).
    let traceparent = variant.ends_with("_traceparent");
    runtime.block_on(serve(&app, 10, expected, traceparent));
    if variant.starts_with("subscribed") {
        runtime.block_on(unhandled_benches::prove_subscriber_layer(
            variant.ends_with("_layer"),
        ));
    }
    if prove {
        prove_stack(&runtime, &app, &variant);
        return;
    }
    if variant.starts_with("stack_") || variant.starts_with("event_") {
        // Not followed by valgrind: its instructions are not counted.
        let proved = std::process::Command::new(std::env::current_exe().expect("this program"))
            .args([variant.as_str(), "prove"])
            .status()
            .expect("run the proof");
        assert!(proved.success(), "{variant}: the proof failed");
    }
    serve_counted(&runtime, &app, count, expected, traceparent);
}

/// A route whose handler emits one event shaped like a stack's failure event, and answers 200:
/// what `fmt` costs for the event alone, by its fields (`event_none` emits nothing).
fn event_variant(variant: &str) -> Router {
    let route = match variant {
        "event_message" => get(|| async {
            tracing::warn!("request failed");
            "user"
        }),
        // tower-http's `on_failure` line (`trace/on_failure.rs`): two `Display` fields.
        "event_tower" => get(|| async {
            let latency = std::time::Duration::from_micros(20).as_millis();
            tracing::error!(
                classification = display("Status code: 500 Internal Server Error"),
                latency = display(format_args!("{latency} ms")),
                "response failed"
            );
            "user"
        }),
        // `LoggingLayer`'s failure event for a plain 500 (`logging/outcome.rs`), its seven fields.
        _ => get(|| async {
            tracing::warn!(
                method = display("GET"),
                path = display("/users/7"),
                route = display("/users/{id}"),
                status = 500_u16,
                latency_us = 20_i64,
                kind = display("status"),
                error = "500 Internal Server Error",
                "request failed"
            );
            "user"
        }),
    };
    Router::new().route("/users/{id}", route)
}

/// The stack `variant` names: its layers in one `ServiceBuilder`, around a route answering 200 or
/// a plain 500.
fn stack_variant(variant: &str) -> (Router, StatusCode) {
    let (route, expected) = match variant.ends_with("_500") {
        true => (
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        false => (get(|| async { "user" }), StatusCode::OK),
    };
    let routes = Router::new().route("/users/{id}", route);
    let app = match variant.starts_with("stack_unhandled_") {
        true => routes.layer(
            tower::ServiceBuilder::new()
                .layer(unhandled::layer())
                .layer(unhandled::LoggingLayer::new()),
        ),
        false => routes.layer(
            tower::ServiceBuilder::new()
                .layer(tower_http::trace::TraceLayer::new_for_http())
                .layer(tower_http::catch_panic::CatchPanicLayer::new()),
        ),
    };
    (app, expected)
}

/// Shows that a `stack_*` or `event_*` variant is what it says: one request, under a subscriber
/// like the counted one (at the variant's level) that keeps what it writes, leaves the line only
/// that variant writes; and the unhandled stack's failure was logged, so not counted. Panics
/// otherwise.
fn prove_stack(runtime: &tokio::runtime::Runtime, app: &Router, variant: &str) {
    use std::sync::{Arc, Mutex};
    let level = match variant.contains("_debug_") {
        true => tracing::Level::DEBUG,
        false => tracing::Level::INFO,
    };
    let written = Arc::new(Mutex::new(Vec::new()));
    let keep = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(move || Kept(keep.clone()))
        .finish();
    let counted = unhandled::ReportingErrorHandler::global().unhandled_count();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let request = Request::get("/users/7")
                .body(Body::empty())
                .expect("request");
            app.clone().oneshot(request).await.expect("infallible");
        })
    });
    let written = String::from_utf8(written.lock().expect("written").clone()).expect("UTF-8");
    let fails = variant.ends_with("_500");
    let line = match (variant, fails, level) {
        ("event_none", ..) => "",
        ("event_message", ..) => "WARN requests: request failed",
        ("event_tower", ..) => "response failed classification=Status code: 500",
        ("event_unhandled", ..) => "request failed method=GET path=/users/7 route=/users/{id}",
        (stack, true, _) if stack.starts_with("stack_unhandled_") => {
            "unhandled::logging: request failed method=GET path=/users/7"
        }
        (stack, false, tracing::Level::DEBUG) if stack.starts_with("stack_unhandled_") => {
            "unhandled::logging: request completed"
        }
        (_, true, _) => "tower_http::trace::on_failure: response failed",
        (_, false, tracing::Level::DEBUG) => "tower_http::trace::on_response",
        // At INFO, neither stack logs a success.
        (_, false, _) => "",
    };
    assert!(
        written.contains(line),
        "{variant}: no {line:?} in {written:?}"
    );
    if line.is_empty() {
        assert_eq!(written, "", "{variant}: logged");
    }
    let now = unhandled::ReportingErrorHandler::global().unhandled_count();
    assert_eq!(now, counted, "{variant}: a logged failure was counted");
}

/// A writer into memory, for [`prove_stack`].
struct Kept(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Kept {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("written").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The part callgrind counts (`--toggle-collect=*serve_counted*`).
#[inline(never)]
fn serve_counted(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    count: u64,
    expected: StatusCode,
    traceparent: bool,
) {
    runtime.block_on(serve(app, count, expected, traceparent));
}

/// Sends `count` requests, each with a W3C `traceparent` header when `traceparent` is set.
async fn serve(app: &Router, count: u64, expected: StatusCode, traceparent: bool) {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for _ in 0..count {
        let mut request = Request::get("/users/7");
        if traceparent {
            request = request.header("traceparent", TRACEPARENT);
        }
        let request = request.body(Body::empty()).expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), expected);
    }
}
