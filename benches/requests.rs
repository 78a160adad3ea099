//! Sends N successful requests through one router variant in-process, for counting instructions
//! per request with callgrind (see `benches/instructions.sh`): deterministic where wall-clock
//! timings on a shared 2-core machine are not.
//!
//!     requests VARIANT N      # VARIANT: bare | pass_through | unhandled | catch_panic | logging_disabled

use axum::{Router, body::Body, http::Request, routing::get};
use tower::ServiceExt;

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_default();
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let routes = Router::new().route("/users/{id}", get(|| async { "user" }));
    let app = match variant.as_str() {
        "bare" => routes,
        "pass_through" => routes.layer(tower::util::MapResponseLayer::new(|response| response)),
        "unhandled" => routes.layer(unhandled::layer()),
        "catch_panic" => routes.layer(tower_http::catch_panic::CatchPanicLayer::new()),
        "logging_disabled" => routes.layer(unhandled::LoggingLayer::new()),
        other => {
            eprintln!("unknown variant {other:?}: bare | pass_through | unhandled | catch_panic | logging_disabled");
            std::process::exit(2);
        }
    }
    .with_state(());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for _ in 0..count {
            let request = Request::get("/users/7")
                .body(Body::empty())
                .expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert!(response.status().is_success());
        }
    });
}
