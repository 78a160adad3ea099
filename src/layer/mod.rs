//! Route every handler error, service error and panic to a [`ServerErrorHandler`](crate::ServerErrorHandler).
//!
//! Add the layer with `Router::layer` so that it wraps each route and sees the matched route
//! template. Wrapped around a whole router from outside, it runs before routing and reports every
//! route as `unmatched`.
//!
//! Only failures that happen before the response head is returned reach the handler: an error
//! raised while the body streams is the body's to report.
//!
//! # Example
//!
//! ```
//! use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
//! use tower::ServiceExt;
//! use unhandled::ErrorHandlerLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! async fn boom() -> &'static str {
//!     panic!("the handler fell over")
//! }
//!
//! let app = Router::new()
//!     .route("/boom", get(boom))
//!     .layer(ErrorHandlerLayer::default());
//!
//! let response = app.oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! # }
//! ```
//!
//! With a custom handler that logs what it renders (and so marks it logged):
//!
//! ```
//! use axum::{Router, body::Body, http::{Request, StatusCode}, response::IntoResponse, routing::get};
//! use tower::ServiceExt;
//! use unhandled::{Error, ErrorContext, ErrorHandlerLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let logging_handler = |error: &Error, context: &ErrorContext<'_>| {
//!     eprintln!("{} {} failed: {error:#}", context.method(), context.path());
//!     error.mark_logged();
//!     Some((StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response())
//! };
//! let app = Router::new()
//!     .route("/", get(|| async { Err::<(), _>(Error::msg("pool exhausted")) }))
//!     .layer(ErrorHandlerLayer::new(logging_handler));
//!
//! let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! # }
//! ```

mod future;

mod service;

use tower_layer::Layer;

pub use self::{future::ResponseFuture, service::ErrorHandlerService};
use crate::{handler::DefaultErrorHandler, reporting::ReportingErrorHandler};

/// A [`Layer`] that applies [`ErrorHandlerService`]: every failure goes to the handler `H`.
///
/// See the [module docs](mod@crate::layer) for examples.
#[derive(Debug, Clone, Copy)]
pub struct ErrorHandlerLayer<H = DefaultErrorHandler> {
    handler: H,
}

impl<H> ErrorHandlerLayer<H> {
    /// A layer that sends every failure to `handler`.
    pub fn new(handler: H) -> Self {
        Self { handler }
    }
}

/// A layer that renders failures with [`DefaultErrorHandler`] and counts nothing.
impl Default for ErrorHandlerLayer<DefaultErrorHandler> {
    fn default() -> Self {
        Self::new(DefaultErrorHandler)
    }
}

impl ErrorHandlerLayer<ReportingErrorHandler> {
    /// The layer [`unhandled::layer()`](crate::layer()) returns: the process-wide
    /// [`ReportingErrorHandler::global`] around [`DefaultErrorHandler`].
    pub fn reporting() -> Self {
        Self::new(ReportingErrorHandler::global())
    }
}

impl<S, H: Clone> Layer<S> for ErrorHandlerLayer<H> {
    type Service = ErrorHandlerService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorHandlerService::new(inner, self.handler.clone())
    }
}
