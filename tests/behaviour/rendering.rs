//! `ErrorHandlerLayer`: every handler error, service error and panic reaches the server error
//! handler; everything else passes untouched.

use crate::support;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::{
    Router,
    body::Body,
    extract::Path,
    http::{Request, Response, StatusCode},
    response::IntoResponse,
    routing::get,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{ServiceBuilder, ServiceExt};
use unhandled::{Error, ErrorContext, ErrorHandlerLayer, ErrorKind, ReportingErrorHandler};

use support::{counted, load_failed, send};

/// What a recording handler saw: kind, method, path, route, error chain.
type Seen = Arc<Mutex<Vec<(ErrorKind, String, String, Option<String>, String)>>>;

fn recording_handler(
    seen: &Seen,
) -> impl Fn(&Error, &ErrorContext<'_>) -> Option<axum::response::Response> + Clone + Send + Sync + 'static
{
    let seen = Arc::clone(seen);
    move |error: &Error, context: &ErrorContext<'_>| {
        seen.lock().unwrap().push((
            context.kind(),
            context.method().to_string(),
            context.path().to_owned(),
            context.route().map(str::to_owned),
            format!("{error:#}"),
        ));
        None
    }
}

#[tokio::test]
async fn handler_error_reaches_the_handler_with_method_path_route_and_chain() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|| async { Err::<(), _>(Error::new(load_failed())) }),
        )
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)));

    let (status, body) = send(&app, "/users/7?verbose=1").await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, "Internal Server Error");
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        [(
            ErrorKind::Error,
            "GET".to_owned(),
            "/users/7".to_owned(),
            Some("/users/{id}".to_owned()),
            "loading user 7: connection refused".to_owned()
        )]
    );
}

#[tokio::test]
async fn default_handler_renders_a_plain_500_that_leaks_no_error_text() {
    let app = Router::new()
        .route(
            "/",
            get(|| async { Err::<(), _>(Error::msg("password=hunter2 rejected")) }),
        )
        .layer(ErrorHandlerLayer::default());

    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    // The error stays in the extensions, for the layers outside to read; never in the body.
    let error = response.extensions().get::<Error>().expect("the error");
    assert_eq!(error.to_string(), "password=hunter2 rejected");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&body[..], b"Internal Server Error");
}

async fn fell_over() -> &'static str {
    panic!("the handler fell over")
}

#[tokio::test]
async fn panic_in_the_handler_future_becomes_a_500_of_kind_panic() {
    let seen = Seen::default();
    let app = Router::new()
        .route("/boom", get(fell_over))
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)));

    let (status, _) = send(&app, "/boom").await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, ErrorKind::Panic);
    assert_eq!(seen[0].3.as_deref(), Some("/boom"));
    assert_eq!(seen[0].4, "handler panicked: the handler fell over");
}

#[tokio::test]
async fn panic_with_a_payload_that_is_not_a_string_is_caught_too() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                std::panic::panic_any(42_u32);
                #[allow(unreachable_code)]
                ()
            }),
        )
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)));

    let (status, _) = send(&app, "/").await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(seen.lock().unwrap()[0].4.contains("not a string"));
}

#[tokio::test]
async fn panic_in_the_service_call_itself_is_caught() {
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)))
        .service_fn(
            |_: Request<Body>| -> std::future::Ready<Result<Response<Body>, Infallible>> {
                panic!("call panicked before returning a future")
            },
        );

    let response = service
        .oneshot(Request::post("/direct").body(Body::empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let seen = seen.lock().unwrap();
    assert_eq!((seen[0].0, seen[0].1.as_str()), (ErrorKind::Panic, "POST"));
    assert_eq!(seen[0].3, None);
}

#[tokio::test]
async fn service_error_becomes_a_500_of_kind_service() {
    let seen = Seen::default();
    let service = ServiceBuilder::new()
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)))
        .service(support::failing_service());

    let response = service
        .oneshot(Request::get("/svc").body(Body::empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, ErrorKind::Service);
    assert_eq!(seen[0].4, "upstream closed the pool");
}

/// A service that is never ready: `poll_ready` fails.
#[derive(Clone)]
struct NeverReady;

impl tower::Service<Request<Body>> for NeverReady {
    type Response = Response<Body>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Response<Body>, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Err(std::io::Error::other("overloaded")))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        unreachable!("called although poll_ready failed")
    }
}

#[tokio::test]
async fn service_not_ready_fails_the_request_with_503_of_kind_service() {
    let seen = Seen::default();
    let service = ErrorHandlerLayer::new(recording_handler(&seen));
    let service = tower::Layer::layer(&service, NeverReady);

    let response = service
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.lock().unwrap()[0].0, ErrorKind::Service);
}

#[tokio::test]
async fn responses_the_handler_built_itself_are_kept_and_only_5xx_counted_as_status() {
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route(
            "/plain-500",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "handled here") }),
        )
        .route(
            "/users/{id}",
            get(|Path(id): Path<u64>| async move { id.to_string() }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(
        send(&app, "/plain-500").await,
        (StatusCode::INTERNAL_SERVER_ERROR, "handled here".to_owned())
    );
    let (status, body) = send(&app, "/users/not-a-number").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Cannot parse"), "{body}");
    let groups = reporting.breakdown().groups;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (groups[0].route.as_str(), groups[0].kind, groups[0].count),
        ("/plain-500", ErrorKind::Status, 1)
    );
}

#[tokio::test]
async fn intentional_status_is_rendered_with_its_status() {
    let app = Router::new()
        .route(
            "/missing",
            get(|| async { Err::<(), _>(Error::status(StatusCode::NOT_FOUND)) }),
        )
        .layer(ErrorHandlerLayer::default());

    assert_eq!(
        send(&app, "/missing").await,
        (StatusCode::NOT_FOUND, "Not Found".to_owned())
    );
}

#[tokio::test]
async fn custom_handler_renders_or_defers_to_the_default() {
    let teapot = |error: &Error, _: &ErrorContext<'_>| {
        (error.to_string() == "tea").then(|| StatusCode::IM_A_TEAPOT.into_response())
    };
    let app = Router::new()
        .route("/tea", get(|| async { Err::<(), _>(Error::msg("tea")) }))
        .route(
            "/coffee",
            get(|| async { Err::<(), _>(Error::msg("coffee")) }),
        )
        .layer(ErrorHandlerLayer::new(teapot));

    assert_eq!(send(&app, "/tea").await.0, StatusCode::IM_A_TEAPOT);
    assert_eq!(
        send(&app, "/coffee").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn handler_that_panics_gets_the_default_response() {
    let broken = |_: &Error, _: &ErrorContext<'_>| -> Option<axum::response::Response> {
        panic!("the error handler is broken too")
    };
    let app = Router::new()
        .route(
            "/",
            get(|| async { Err::<(), _>(Error::msg("first failure")) }),
        )
        .layer(ErrorHandlerLayer::new(broken));

    assert_eq!(
        send(&app, "/").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error".to_owned()
        )
    );
}

#[tokio::test]
async fn long_route_templates_are_reported_whole() {
    let seen = Seen::default();
    let template = format!("/{}/{{id}}", "segment".repeat(20));
    let app = Router::new()
        .route(&template, get(|| async { Err::<(), _>(Error::msg("x")) }))
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)));

    let path = format!("/{}/7", "segment".repeat(20));
    send(&app, &path).await;

    assert_eq!(
        seen.lock().unwrap()[0].3.as_deref(),
        Some(template.as_str())
    );
}

#[tokio::test]
async fn errors_from_the_fallback_have_no_route() {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(|| async { Err::<(), _>(Error::msg("no such page handler")) })
        .layer(ErrorHandlerLayer::new(recording_handler(&seen)));

    send(&app, "/whatever/123").await;

    let seen = seen.lock().unwrap();
    assert_eq!(
        (seen[0].2.as_str(), seen[0].3.as_deref()),
        ("/whatever/123", None)
    );
}

/// A real server on 127.0.0.1, a real keep-alive connection: a panic answers 500 and the same
/// connection serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_never_drops_the_connection() {
    let app = Router::new()
        .route("/panic", get(fell_over))
        .route("/ok", get(|| async { "fine" }))
        .layer(ErrorHandlerLayer::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut responses = String::new();
    for path in ["/panic", "/ok"] {
        let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
        connection.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = vec![0; 4096];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            connection.read(&mut buffer),
        )
        .await
        .expect("no response within 10s")
        .unwrap();
        assert!(read > 0, "the connection was closed after {path}");
        responses.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    server.abort();

    assert!(responses.starts_with("HTTP/1.1 500"), "{responses}");
    assert!(responses.contains("HTTP/1.1 200"), "{responses}");
    assert!(responses.ends_with("fine"), "{responses}");
}

#[tokio::test]
async fn nested_error_handlers_count_each_failure_once() {
    let reporting = ReportingErrorHandler::builder().build();
    let app = Router::new()
        .route("/panic", get(fell_over))
        .route(
            "/plain-500",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .layer(ErrorHandlerLayer::new(reporting.clone()));

    assert_eq!(
        send(&app, "/panic").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        send(&app, "/plain-500").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    assert_eq!(
        counted(&reporting),
        [
            ("/panic".to_owned(), ErrorKind::Panic, 1),
            ("/plain-500".to_owned(), ErrorKind::Status, 1),
        ]
    );
}
