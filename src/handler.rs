//! The extension point: [`ServerErrorHandler`] turns a failure into a response;
//! [`DefaultErrorHandler`] is the safe default.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use crate::{context::ErrorContext, error::Error};

/// Turns every failure that reaches an [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) into a
/// response: handler errors, service errors and panics alike (Armeria's `ServerErrorHandler`).
///
/// Return `Some(response)` to answer, or `None` to defer to [`DefaultErrorHandler`]. A handler that
/// logs the error itself should call [`Error::mark_logged`], so that a
/// [`ReportingErrorHandler`](crate::ReportingErrorHandler) around it does not count it.
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
pub trait ServerErrorHandler: Clone + Send + Sync + 'static {
    /// Renders `error`, which happened while serving the request described by `context`.
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response>;
}

impl<F> ServerErrorHandler for F
where
    F: Fn(&Error, &ErrorContext<'_>) -> Option<Response> + Clone + Send + Sync + 'static,
{
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response> {
        self(error, context)
    }
}

/// The default [`ServerErrorHandler`]: the error's status with its canonical reason as a plain-text
/// body (`500 Internal Server Error` for anything unhandled). No error text ever reaches the client.
///
/// ```
/// use axum::http::{Method, StatusCode};
/// use unhandled::{DefaultErrorHandler, Error, ErrorContext, ErrorKind, ServerErrorHandler};
///
/// let error = Error::msg("password=hunter2 rejected by the database");
/// let context = ErrorContext::new(&Method::GET, "/", None, ErrorKind::Error);
/// let response = DefaultErrorHandler::default().on_error(&error, &context).unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// ```
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct DefaultErrorHandler;

impl ServerErrorHandler for DefaultErrorHandler {
    fn on_error(&self, error: &Error, _context: &ErrorContext<'_>) -> Option<Response> {
        Some(render_default(error))
    }
}

/// The default rendering, shared by [`DefaultErrorHandler`] and `Error::into_response`.
pub(crate) fn render_default(error: &Error) -> Response {
    const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
    let status = error.status_code();
    let reason = status.canonical_reason().unwrap_or("Error");
    (status, [(header::CONTENT_TYPE, TEXT_PLAIN)], reason).into_response()
}
