//! Faults the reporter survives: an error handler that panics, a panic payload that is not a
//! string. (An error whose `Display` panics: `tests/behaviour/display_panics.rs`; shutdown with
//! pending counts, restart after shutdown and the first error without a runtime:
//! `tests/behaviour/counting_and_reports.rs`.)

use crate::support;
use support::fails;

use std::time::Duration;

use axum::{Router, http::StatusCode, response::Response, routing::get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use unhandled::{Error, ErrorContext, ErrorHandlerLayer, ReportingErrorHandler};

use support::send;

/// A real server on 127.0.0.1 whose error handler panics on every error: each request still
/// gets a 500, every error is counted, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_error_handler_still_answers_500_counts_and_keeps_serving() {
    let broken = |_: &Error, _: &ErrorContext<'_>| -> Option<Response> { panic!("handler bug") };
    let reporting = ReportingErrorHandler::builder().wrap(broken);
    let app = Router::new()
        .route("/fails", get(fails))
        .route("/ok", get(|| async { "ok" }))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    for path in ["/fails", "/fails", "/ok", "/fails", "/ok"] {
        let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        connection.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            connection.read_to_string(&mut response),
        )
        .await
        .expect("no response within 10s")
        .unwrap();
        let expected = if path == "/ok" {
            "HTTP/1.1 200"
        } else {
            "HTTP/1.1 500"
        };
        assert!(response.starts_with(expected), "{path}: {response}");
    }
    server.abort();
    assert_eq!(reporting.unhandled_count(), 3);
}

#[tokio::test]
async fn panic_payload_that_is_not_a_string_is_counted_as_a_panic() {
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                std::panic::panic_any(vec![1_u8, 2, 3]);
                #[allow(unreachable_code)]
                ()
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(send(&app, "/").await.0, StatusCode::INTERNAL_SERVER_ERROR);

    let groups = reporting.breakdown().groups;
    assert_eq!(
        (groups[0].kind, groups[0].count),
        (unhandled::ErrorKind::Panic, 1)
    );
}
