//! Route every handler error, service error and panic to a [`ServerErrorHandler`](crate::ServerErrorHandler).
//!
//! Add the layer with `Router::layer` so that it wraps each route and sees the matched route
//! template. Wrapped around a whole router from outside, it runs before routing and reports every
//! route as `unmatched`.
//!
//! # What counts as a failure
//!
//! Each of these reaches the handler, as an [`ErrorKind`](crate::ErrorKind):
//! - a response that carries an [`Error`](crate::Error): a handler returned `Err(error)`, or an
//!   application's error type attached its cause with [`ResponseExt`](crate::ResponseExt)
//!   (`kind="error"`);
//! - any other 5xx response: the handler or the application's own error type built it
//!   (`kind="status"`); unless the handler renders another, the response is kept;
//! - an `Err` from the inner service (`kind="service"`);
//! - a panic in the inner service's `call` or while its future is polled, whatever the payload
//!   (`kind="panic"`): the client gets a `500`, and the connection stays open;
//! - after the head, an error a streamed body yields (`kind="body"`) or a panic while it is polled
//!   ([Failures after the head](#failures-after-the-head));
//! - a gRPC server-error status ([gRPC](#grpc)).
//!
//! Every other response (1xx to 4xx, extractor rejections included) passes through untouched.
//! An error handler outside another one leaves the failures the inner one saw alone: each failure
//! is counted once. A failure raised in a layer wrapped around this one is not seen.
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
//!
//! # gRPC
//!
//! A request is a gRPC call when it is a `POST` with `content-type: application/grpc` or
//! `application/grpc+…` ([`ErrorContext::is_grpc`](crate::ErrorContext::is_grpc)). Its response is
//! an HTTP `200` whatever happened, so its `grpc-status` decides, in the headers or in the
//! trailers that end a stream:
//! - `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`
//!   (OpenTelemetry's six server errors) are failures: `kind="status"`, or `kind="error"` with the
//!   source of a `tonic::Status` when the cargo feature `tonic` is on;
//! - tonic's own `UNIMPLEMENTED` without a message (a method or service it does not serve) is not;
//! - every other code is the client's, and is not.
//!
//! A `grpc-status` is read only from a gRPC answer (`content-type: application/grpc`): a REST
//! route's response is not a gRPC status.
//!
//! A panic or a service error of a call to a route of a service's shape (`/package.Service/{*rest}`,
//! as tonic registers) or to no route of the router (the layer outside it, as with tonic's
//! `Server::builder().layer(..)`) is answered as gRPC: `grpc-status: 13` (`14` for a service that
//! was not ready) and `grpc-message: Internal Server Error`, never the error's text. A client that
//! says it is gRPC to any other route gets that route's HTTP answer, a `500` that HTTP monitoring
//! sees.
//!
//! The route of a call is its method, `/package.Service/Method`, only when the server answered it
//! as gRPC with a server-error status, to a route of a service's shape or to no route. The client
//! chose that path, so at most 8 of a reporter's 64 groups take such a label
//! ([`reporting`](crate::reporting)); beyond them, and for a panic or a service error (which has no
//! answer of the server's), a call keeps its route template, or `unmatched`.
//!
//! # Failures after the head
//!
//! A response whose body has no exact size (`Body::from_stream`, `Sse`, a file through
//! `ReaderStream`, a proxied upstream body) leaves the layer with its body watched. When the body
//! yields an error, the handler sees an [`ErrorKind::Body`](crate::ErrorKind::Body) failure (its
//! cause the error the body yielded, its status the one the client already received); when it
//! panics while polled, the panic is caught and the handler sees an
//! [`ErrorKind::Panic`](crate::ErrorKind::Panic). The head is gone by then, so a response the
//! handler returns is dropped: it can log and count, not answer. The response then ends as after
//! any body error: HTTP/1 closes that connection, HTTP/2 resets that stream, and the server goes
//! on serving. A body that ends, or that is dropped before its end (the client left, a `HEAD`
//! request), is no failure.
//!
//! ```
//! use std::{pin::Pin, task::{Context, Poll}};
//! use axum::{Router, body::{Body, Bytes}, http::Request, routing::get};
//! use http_body::Frame;
//! use tower::ServiceExt;
//! use unhandled::ReportingErrorHandler;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! /// One row, then the replica goes away.
//! struct Export(u8);
//!
//! impl http_body::Body for Export {
//!     type Data = Bytes;
//!     type Error = std::io::Error;
//!     fn poll_frame(
//!         mut self: Pin<&mut Self>,
//!         _: &mut Context<'_>,
//!     ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
//!         self.0 += 1;
//!         Poll::Ready(Some(match self.0 {
//!             1 => Ok(Frame::data(Bytes::from("row 1\n"))),
//!             _ => Err(std::io::Error::other("the replica went away")),
//!         }))
//!     }
//! }
//!
//! async fn export() -> Body {
//!     Body::new(Export(0)) // as Body::from_stream would, with no exact size
//! }
//!
//! let reporting = ReportingErrorHandler::builder().build();
//! let app = Router::new()
//!     .route("/export", get(export))
//!     .layer(unhandled::ErrorHandlerLayer::new(reporting.clone()));
//!
//! let response = app.oneshot(Request::get("/export").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 200); // sent before the body failed
//! assert!(axum::body::to_bytes(response.into_body(), 1024).await.is_err());
//! assert_eq!(reporting.unhandled_count(), 1);
//! assert_eq!(reporting.breakdown().groups[0].kind, unhandled::ErrorKind::Body);
//! # }
//! ```
//!
//! A body with an exact size is not watched (nearly every response: `Full`, `String`, `Bytes`,
//! `Json`, empty, none of which can fail), so that the success path costs nothing more. One that
//! can fail although it has one, such as a proxied hyper `Incoming` with a `Content-Length`, is
//! watched when its response asks for it with [`ResponseExt::watch_body`](crate::ResponseExt::watch_body).

mod body;
mod future;
mod handle;
mod service;

use tower_layer::Layer;

pub use self::{future::ResponseFuture, service::ErrorHandlerService};
use crate::handler::DefaultErrorHandler;

/// A [`Layer`] that applies [`ErrorHandlerService`]: every failure goes to the handler `H`.
///
/// See the [module docs](crate::error_handler) for examples.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct ErrorHandlerLayer<H = DefaultErrorHandler> {
    handler: H,
}

impl<H> ErrorHandlerLayer<H> {
    /// A layer that sends every failure to `handler`.
    ///
    /// The first layer built in a process installs a panic hook, once, which chains the hook in
    /// force then (std's message, the application's own keep working) and notes where each panic
    /// inside a layer's scope happened, for [`Error::location`](crate::Error::location). Set the
    /// application's own hook before, or turn the notes off with
    /// [`set_panic_locations(false)`](crate::set_panic_locations) or `UNHANDLED_PANIC_LOCATIONS=0`.
    pub fn new(handler: H) -> Self {
        crate::panic_location::install();
        Self { handler }
    }
}

/// A layer that renders failures with [`DefaultErrorHandler`] and counts nothing.
impl Default for ErrorHandlerLayer<DefaultErrorHandler> {
    fn default() -> Self {
        Self::new(DefaultErrorHandler)
    }
}

impl<S, H: Clone> Layer<S> for ErrorHandlerLayer<H> {
    type Service = ErrorHandlerService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorHandlerService::new(inner, self.handler.clone())
    }
}
