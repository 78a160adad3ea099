//! A logging layer hands the panics and service errors it logged to the error handler around it
//! without ever taking one failure for another, even two with the same text, served at the same
//! time over real TCP on 127.0.0.1. Its own test binary: it installs the global subscriber.

mod support;

use std::{sync::Arc, time::Duration};

use axum::{Router, error_handling::HandleErrorLayer, http::StatusCode, routing::get};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Barrier,
};
use tower::ServiceBuilder;
use unhandled::{ErrorHandlerLayer, ErrorKind, LoggingLayer, ReportingErrorHandler};

use support::{capture, counted, failing_service};

/// `GET path` over a new connection; the status code.
async fn get_status(address: std::net::SocketAddr, path: &str) -> u16 {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    response[9..12].parse().unwrap()
}

/// `/logged`: a service error, logged by the logging layer, then turned into a `408` by
/// `HandleErrorLayer` before it reaches the error handler (so nobody claims the logging layer's
/// note). `/unlogged`: a service error with the same text that nobody logs. A handoff that
/// compared texts took the second for the first and counted nothing.
#[tokio::test(flavor = "current_thread")]
async fn a_logged_and_an_unlogged_service_error_with_the_same_text_count_exactly_one() {
    let (events, _subscriber) = capture();
    let reporting = ReportingErrorHandler::builder().build();
    let logged = ServiceBuilder::new()
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(HandleErrorLayer::new(|_: std::io::Error| async {
            StatusCode::REQUEST_TIMEOUT
        }))
        .layer(LoggingLayer::new())
        .service(failing_service());
    let unlogged = ServiceBuilder::new()
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .service(failing_service());
    let app = Router::new()
        .route_service("/logged", logged)
        .route_service("/unlogged", unlogged);
    let address = support::serve(app).await;

    for _ in 0..20 {
        let (a, b) = tokio::join!(
            get_status(address, "/logged"),
            get_status(address, "/unlogged")
        );
        assert_eq!((a, b), (408, 500));
    }

    assert_eq!(
        counted(&reporting),
        [("/unlogged".to_owned(), ErrorKind::Service, 20)]
    );
    let logged_failures = events
        .all()
        .into_iter()
        .filter(|event| event.fields.get("message").map(String::as_str) == Some("request failed"))
        .filter(|event| event.field("error") == "upstream closed the pool")
        .count();
    assert_eq!(logged_failures, 20);
}

/// Two panics with the same message on two requests in flight at once, on a multi-thread
/// runtime: the one behind the logging layer is logged, the other counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_and_an_unlogged_panic_with_the_same_text_count_exactly_one() {
    let reporting = ReportingErrorHandler::builder().build();
    let barrier = Arc::new(Barrier::new(2));
    let panics = move || {
        let barrier = Arc::clone(&barrier);
        move || async move {
            barrier.wait().await; // both requests are in their handlers now
            panic!("the same message");
            #[allow(unreachable_code)]
            ""
        }
    };
    let app = Router::new()
        .route("/logged", get(panics()))
        .layer(LoggingLayer::new().failure_level(tracing::Level::ERROR))
        .route("/unlogged", get(panics()))
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    // The failure event must be recorded somewhere for the error to count as logged.
    let _subscriber = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish(),
    );
    let address = support::serve(app).await;

    for round in 1..=10 {
        let (a, b) = tokio::join!(
            get_status(address, "/logged"),
            get_status(address, "/unlogged")
        );
        assert_eq!((a, b), (500, 500));
        assert_eq!(
            counted(&reporting),
            [("/unlogged".to_owned(), ErrorKind::Panic, round)]
        );
    }
}
