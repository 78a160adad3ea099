//! The extension point: [`ServerErrorHandler`] turns a failure into a response;
//! [`DefaultErrorHandler`] is the safe default.

use axum::response::Response;

use crate::{context::ErrorContext, error::Error};

/// Turns every failure that reaches an [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) into a
/// response: handler errors, service errors and panics alike (Armeria's `ServerErrorHandler`).
///
/// Return `Some(response)` to answer, or `None` to defer to the default rendering: the response
/// the handler returned with the error when there is one (so headers it added stay), else what
/// [`DefaultErrorHandler`] describes. A handler that logs the error itself should call
/// [`Error::mark_logged`], so that a [`ReportingErrorHandler`](crate::ReportingErrorHandler) around
/// it does not count it.
///
/// Closures `Fn(&Error, &ErrorContext<'_>) -> Option<Response>` are handlers too:
///
/// ```
/// use axum::{response::IntoResponse, routing::get, Router};
/// use unhandled::{Error, ErrorContext, ErrorHandlerLayer};
///
/// let plain_errors = |error: &Error, context: &ErrorContext<'_>| {
///     let body = format!("{} failed; see the logs", context.route_label());
///     Some((error.status_code(), body).into_response())
/// };
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { Err::<(), _>(Error::msg("no")) }))
///     .layer(ErrorHandlerLayer::new(plain_errors));
/// ```
///
/// # Panics in the application's JSON shape
///
/// A panic, a service error and a 5xx the crate answers itself get `DefaultErrorHandler`'s plain
/// text. An application whose errors are JSON answers them in its own shape, and leaves the
/// responses its own error type rendered alone (`None`). Wrapped by the builder, the reporter
/// still counts and reports each failure; built with
/// [`from_env`](crate::ReportingErrorHandlerBuilder::from_env), as `unhandled::layer()` is, it
/// reads `UNHANDLED_ERRORS_REPORT_INTERVAL` and the others too (`builder()` reads none):
///
/// ```
/// use axum::{Router, body::Body, http::{Request, header}, response::{IntoResponse, Response}, routing::get};
/// use tower::ServiceExt;
/// use unhandled::{Error, ErrorContext, ErrorHandlerLayer, ErrorKind, ReportingErrorHandlerBuilder};
///
/// /// `{"error":{"code":"internal","message":"…"}}`, as the application's own errors are.
/// fn json_errors(error: &Error, context: &ErrorContext<'_>) -> Option<Response> {
///     if !matches!(context.kind(), ErrorKind::Panic | ErrorKind::Service) {
///         return None; // the handler's own response, which its error type rendered
///     }
///     // A fixed message: the panic's text stays in the report, out of the client's reach.
///     let body = r#"{"error":{"code":"internal","message":"Internal Server Error"}}"#;
///     let json = [(header::CONTENT_TYPE, "application/json")];
///     Some((error.status_code(), json, body).into_response())
/// }
///
/// async fn poisoned() -> &'static str {
///     panic!("the cache is poisoned")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let reporting = ReportingErrorHandlerBuilder::from_env().wrap(json_errors);
/// let app: Router = Router::new()
///     .route("/", get(poisoned))
///     .layer(ErrorHandlerLayer::new(reporting.clone()));
///
/// let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), 500);
/// assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
/// let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
/// assert_eq!(body, r#"{"error":{"code":"internal","message":"Internal Server Error"}}"#);
/// assert_eq!(reporting.unhandled_count(), 1); // counted all the same
/// # }
/// ```
pub trait ServerErrorHandler: Clone + Send + Sync + 'static {
    /// Renders `error`, which happened while serving the request described by `context`.
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response>;

    /// Whether `on_error` may read an error's text. A spawned task's error is formatted before
    /// its handler is called where it may; where it may not, only when a report keeps it.
    #[doc(hidden)]
    fn reads_errors(&self) -> bool {
        true
    }
}

impl<F> ServerErrorHandler for F
where
    F: Fn(&Error, &ErrorContext<'_>) -> Option<Response> + Clone + Send + Sync + 'static,
{
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response> {
        self(error, context)
    }
}

/// The default [`ServerErrorHandler`]: it always defers, so the response is the default
/// rendering: the error's status with its canonical reason as a plain-text body (`500 Internal
/// Server Error` for anything unhandled). For a gRPC call ([`ErrorContext::is_grpc`]) it is a gRPC
/// status instead, so that the client reads `INTERNAL` rather than failing to decode an HTML-ish
/// page: HTTP `200`, `content-type: application/grpc`, `grpc-status: 13` (`14` for a service that
/// was not ready) and `grpc-message: Internal Server Error`. No error text ever reaches the client.
///
/// ```
/// use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
/// use tower::ServiceExt;
/// use unhandled::{Error, ErrorHandlerLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let app = Router::new()
///     .route("/", get(|| async { Err::<(), _>(Error::msg("password=hunter2 rejected")) }))
///     .layer(ErrorHandlerLayer::default());
/// let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
/// assert_eq!(&body[..], b"Internal Server Error");
/// # }
/// ```
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct DefaultErrorHandler;

impl ServerErrorHandler for DefaultErrorHandler {
    fn on_error(&self, _error: &Error, _context: &ErrorContext<'_>) -> Option<Response> {
        None
    }

    fn reads_errors(&self) -> bool {
        false
    }
}
