//! Spawns N tasks from one request's handler, in process, for counting instructions per task with
//! callgrind (see `benches/instructions.sh`, `ONLY=tasks`): what `.reported()` adds to
//! `tokio::spawn` of the same future, spawning it, polling it and completing it.
//!
//!     tasks VARIANT N
//!
//! Every variant serves one request of `/spawn/{n}` through `unhandled::layer()` (a Prometheus
//! recorder installed) on a current-thread runtime; its handler spawns `n` tasks and awaits them:
//! - `plain`: `tokio::spawn(work())`, a task that yields once and returns `Ok`;
//! - `reported`: `tokio::spawn(work().reported())`, the same, its failure to be reported under
//!   the request;
//! - `plain_failing` and `reported_failing`: the same tasks returning `Err(io::Error)`, which only
//!   the second counts.
//!
//! Before counting, each variant shows that it is what it says: a failing task is counted by the
//! `reported` variants only.

use axum::{
    Router,
    body::Body,
    extract::Path,
    http::{Request, StatusCode},
    routing::get,
};
use tower::ServiceExt;
use unhandled::TaskExt as _;

async fn work(fail: bool) -> Result<(), std::io::Error> {
    tokio::task::yield_now().await;
    match fail {
        true => Err(std::io::Error::other("the mail relay refused")),
        false => Ok(()),
    }
}

fn app(variant: &str) -> Router {
    let reported = variant.starts_with("reported");
    let fail = variant.ends_with("_failing");
    Router::new()
        .route(
            "/spawn/{n}",
            get(move |Path(n): Path<u64>| async move {
                let mut handles = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    handles.push(match reported {
                        true => tokio::spawn(work(fail).reported()),
                        false => tokio::spawn(work(fail)),
                    });
                }
                for handle in handles {
                    let _ = handle.await;
                }
                StatusCode::OK
            }),
        )
        .layer(unhandled::layer())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_default();
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    if !["plain", "reported", "plain_failing", "reported_failing"].contains(&variant.as_str()) {
        eprintln!("unknown variant {variant:?}; see the module docs");
        std::process::exit(2);
    }
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("install the Prometheus recorder");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = app(&variant);
    // Warm up outside the counted function, and prove the variant: one failing task of each
    // kind is counted by the `reported` variants only.
    runtime.block_on(spawn(&app, 10));
    let global = unhandled::ReportingErrorHandler::global();
    let counted = global.unhandled_count();
    let expected = match variant.as_str() {
        "reported_failing" => 10,
        _ => 0,
    };
    assert_eq!(counted, expected, "{variant} counted {counted} of 10 tasks");
    spawn_counted(&runtime, &app, count);
}

/// The part callgrind counts (`--toggle-collect=*spawn_counted*`).
#[inline(never)]
fn spawn_counted(runtime: &tokio::runtime::Runtime, app: &Router, count: u64) {
    runtime.block_on(spawn(app, count));
}

/// One request whose handler spawns `count` tasks and awaits them.
async fn spawn(app: &Router, count: u64) {
    let request = Request::get(format!("/spawn/{count}"))
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}
