//! Shared by the benchmarks: running the same work on N threads released together.

use std::{
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

/// The thread counts every multi-threaded benchmark runs at.
pub const THREADS: [usize; 3] = [1, 2, 4];

/// On each of `threads` threads, runs `setup()` untimed, then waits for the others; all are
/// released together to run the work `setup` returned, `work(iters)`. The time from the first
/// thread's start until the last thread finished, each read on its own thread (the main thread
/// may be descheduled at the release when threads oversubscribe the cores, and a clock read
/// there came after the work: criterion then saw zero time); what the work returns is dropped
/// after the clock stops.
pub fn parallel<S, W, R>(threads: usize, iters: u64, setup: S) -> Duration
where
    S: Fn() -> W + Send + Sync + 'static,
    W: FnOnce(u64) -> R,
{
    let setup = Arc::new(setup);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (setup, start) = (Arc::clone(&setup), Arc::clone(&start));
            thread::spawn(move || {
                let work = setup();
                start.wait();
                let started = Instant::now();
                let leftovers = work(iters);
                let finished = Instant::now();
                drop(leftovers);
                (started, finished)
            })
        })
        .collect();
    let times: Vec<(Instant, Instant)> = handles
        .into_iter()
        .map(|handle| handle.join().expect("benchmark thread panicked"))
        .collect();
    let started = times.iter().map(|(started, _)| *started).min();
    let finished = times.iter().map(|(_, finished)| *finished).max();
    finished
        .zip(started)
        .map(|(finished, started)| finished.duration_since(started))
        .expect("at least one thread")
}

/// Makes the `tracing` subscriber a benchmark thread runs under; `None` runs it under none.
pub type MakeSubscriber = Option<fn() -> tracing::Dispatch>;

/// Sends `iters` requests for `path` through `app` on a current-thread runtime built untimed,
/// on each of `threads` threads; every response must have status `expected`.
pub fn serve_in_process(
    threads: usize,
    iters: u64,
    app: &axum::Router,
    path: &'static str,
    expected: axum::http::StatusCode,
    subscriber: MakeSubscriber,
) -> Duration {
    use tower::ServiceExt;
    let app = app.clone();
    parallel(threads, iters, move || {
        let app = app.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        move |iters| {
            let _subscriber = subscriber.map(|make| tracing::dispatcher::set_default(&make()));
            runtime.block_on(async {
                for _ in 0..iters {
                    let request = axum::http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .expect("request");
                    let response = app.clone().oneshot(request).await.expect("infallible");
                    assert_eq!(response.status(), expected);
                    std::hint::black_box(response);
                }
            });
            // Shutting the runtime down (and the reporter task's final report) is not a request.
            runtime
        }
    })
}

/// A formatting subscriber at `DEBUG` writing every event to `io::sink`: all the work of logging
/// but the I/O.
pub fn sink_subscriber() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::sink)
            .finish(),
    )
}

/// An application's subscriber: a global `INFO` filter and a formatting layer writing to a sink,
/// with `unhandled::subscriber::layer()` when `with_layer`.
pub fn app_subscriber(with_layer: bool) -> tracing::Dispatch {
    use tracing_subscriber::prelude::*;
    let base = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    if with_layer {
        tracing::Dispatch::new(base.with(unhandled::subscriber::layer()))
    } else {
        tracing::Dispatch::new(base)
    }
}

/// Shows that the subscriber in force has `unhandled::subscriber::layer()` exactly when
/// `with_layer`: a handler that logs at ERROR and fails is counted only without it. Panics
/// otherwise, so that the two variants of a comparison are known to differ.
pub async fn prove_subscriber_layer(with_layer: bool) {
    use tower::ServiceExt;
    let reporting = unhandled::ReportingErrorHandler::builder()
        .interval(Duration::ZERO)
        .build();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async {
                tracing::error!("the database is down");
                Err::<(), _>(unhandled::Error::msg("the database is down"))
            }),
        )
        .layer(unhandled::ErrorHandlerLayer::new(reporting.clone()));
    let request = axum::http::Request::get("/")
        .body(axum::body::Body::empty())
        .expect("request");
    app.oneshot(request).await.expect("infallible");
    let expected = u64::from(!with_layer);
    assert_eq!(
        reporting.unhandled_count(),
        expected,
        "subscriber layer installed: {with_layer}"
    );
}

/// The criterion settings every benchmark here uses: short warm-up, `seconds` of measurement,
/// 30 samples (the whole suite runs in about five minutes on two cores).
pub fn criterion(seconds: u64) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(seconds))
        .sample_size(30)
}

/// Benchmarks each `(name, router, subscriber)` in the group `{group}/{threads}_threads`, at 1 and
/// 2 threads, sending `GET path` and expecting `status`.
pub fn bench_routers(
    c: &mut criterion::Criterion,
    group: &str,
    contenders: &[(&str, axum::Router, MakeSubscriber)],
    path: &'static str,
    status: axum::http::StatusCode,
) {
    for threads in [1, 2] {
        let mut bench_group = c.benchmark_group(format!("{group}/{threads}_threads"));
        bench_group.throughput(criterion::Throughput::Elements(threads as u64));
        for (name, app, subscriber) in contenders {
            // `with_state` materialises the routes once, as `axum::serve` does per connection.
            let app = app.clone().with_state(());
            bench_group.bench_function(criterion::BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| {
                    serve_in_process(threads, iters, &app, path, status, *subscriber)
                });
            });
        }
        bench_group.finish();
    }
}

/// The error of the axum error-handling example: it renders a 500 and rides along in the response
/// extensions for a logging middleware ([`log_app_errors`]).
#[derive(Debug, Clone)]
pub struct AppError(pub std::sync::Arc<std::io::Error>);

impl axum::response::IntoResponse for AppError {
    fn into_response(self) -> axum::response::Response {
        let mut response = axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The example's logging middleware: logs the [`AppError`] a response carries.
pub async fn log_app_errors(response: axum::response::Response) -> axum::response::Response {
    if let Some(AppError(error)) = response.extensions().get::<AppError>() {
        tracing::error!(%error, "request failed");
    }
    response
}

fn database_down() -> std::io::Error {
    std::io::Error::other("the database is down")
}

/// `/users/{id}` failing with an `unhandled::Error`, no layer.
pub fn unhandled_error_routes() -> axum::Router {
    axum::Router::new().route(
        "/users/{id}",
        axum::routing::get(|| async { Err::<(), unhandled::Error>(database_down().into()) }),
    )
}

/// `/users/{id}` answering a plain `500` with a text body, no layer: what an application's own
/// error type renders when it keeps nothing in the extensions (axum's anyhow example).
pub fn status_routes() -> axum::Router {
    axum::Router::new().route(
        "/users/{id}",
        axum::routing::get(|| async {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong: the database is down",
            )
        }),
    )
}

/// `/users/{id}` failing with an [`AppError`], no layer.
pub fn app_error_routes() -> axum::Router {
    axum::Router::new().route(
        "/users/{id}",
        axum::routing::get(|| async {
            Err::<(), _>(AppError(std::sync::Arc::new(database_down())))
        }),
    )
}
