//! Route every handler error, service error and panic to a [`ServerErrorHandler`](crate::ServerErrorHandler).
//!
//! Add the layer with `Router::layer` so that it wraps each route and sees the matched route
//! template. Wrapped around a whole router from outside, it runs before routing and reports every
//! route as `unmatched`.
//!
//! # What counts as a failure
//!
//! Each of these reaches the handler as an [`ErrorKind`](crate::ErrorKind), and
//! [`ReportingErrorHandler`](crate::ReportingErrorHandler) counts it unless it was logged:
//!
//! | the handler… | response | counted? |
//! |---|---|---|
//! | returns `Err(e)` (any `std::error::Error`, `anyhow`, `eyre`, via `?`) | `500`, plain, no error text | yes (`kind="error"`) |
//! | panics (any payload), in `call` or in its future | `500`; connection kept | yes (`kind="panic"`) |
//! | inner service returns `Err` / fails `poll_ready` | `500` / `503` | yes (`kind="service"`) |
//! | returns a 5xx its own error type rendered, or builds one (`StatusCode::INTERNAL_SERVER_ERROR`) | untouched | yes (`kind="status"`); off with [`count_error_responses(false)`](crate::ReportingErrorHandlerBuilder::count_error_responses) |
//! | the same, with [`.with_cause(e)`](crate::ResponseExt::with_cause) attached | untouched | yes (`kind="error"`, with `e`'s chain) |
//! | returns `Err(Error::status(404))`, with or without `.with_cause(e)` | `404` | no: an intentional status, a client's answer |
//! | returns `Err(Error::status(502).with_cause(e))` | `502` | yes: a 5xx with a cause |
//! | a layer marks its 5xx intentional ([`Error::status`](crate::Error::status) in the response's extensions) | as rendered | no |
//! | fails reading its request body because the client went away | `500` | no: nothing to act on |
//! | error marked logged ([`Error::mark_logged`](crate::Error::mark_logged), `.with_logged_cause(e)`) | as rendered | no |
//! | any 1xx-4xx response, extractor rejections included | untouched | no |
//! | returns a streamed body (`Body::from_stream`, `Sse`, a file's `ReaderStream`) that yields `Err` after the head | the head and what was sent; then HTTP/1 closes that connection, HTTP/2 resets that stream | yes (`kind="body"`, the status sent, the error's chain) |
//! | the same body panics while it is polled | the same; the panic is caught, the server keeps serving | yes (`kind="panic"`) |
//! | a streamed body that ends, that a client that leaves drops, or of a `HEAD` request (never polled) | as sent | no |
//! | a body with an exact size that fails (a proxied hyper `Incoming` with a `Content-Length`) | the connection is closed | only with `.watch_body()` on the response (`kind="body"`) |
//! | a gRPC call answered with a server-error status ([gRPC](#grpc)) | as sent | yes (`kind="status"`) |
//! | hands work to a task with [`.reported()`](crate::TaskExt::reported) that returns `Err` or panics, after the response | its own answer | yes (`kind="task"`, `kind="task_panic"`; the [`task`](crate::task) manual) |
//!
//! An error from anything else is counted whatever it says: a database's or another service's
//! "connection reset" or "connection closed" is a failing dependency, not a client that left. Only
//! an `axum::Error` wrapping hyper's error, what axum's `Body` yields when the served connection
//! breaks while the handler reads the request body, is the client's (`tests/behaviour/disconnects.rs`
//! shows both over real TCP).
//!
//! The response leaves the layer with the [`Error`](crate::Error) in its extensions (for a panic or
//! a service error, the one made of it), for the layers outside to read. An error handler outside
//! another one leaves the failures the inner one saw alone: each failure is counted once. A failure
//! raised in a layer wrapped around this one is not seen.
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
//! # An application's own error type
//!
//! axum turns a handler's `Err(e)` into a response before any middleware runs, so the error value
//! of an application's own error type is gone by the time a layer sees the response. The layer still
//! sees every 5xx such a type renders, and counts it as `kind="status"`: that is what each of axum's
//! own example patterns gets without a change (`tests/behaviour/app_error_types.rs` writes each as
//! its example does).
//!
//! | pattern (axum example) | what it returns | what the layer does |
//! |---|---|---|
//! | `AppError(anyhow::Error)` rendering `500` (anyhow-error-response) | `500` "Something went wrong: …" | counted, `kind="status"` |
//! | `(StatusCode, String)` from `internal_error(err)` (sqlx-postgres, tokio-postgres, diesel, tokio-redis, mongodb) | `500`, body = error text | counted, `kind="status"` |
//! | an error enum, one variant `500`, others 4xx (jwt) | as mapped | the `500` counted, `kind="status"`; 401/400/422 never |
//! | axum-extra's `InternalServerError<E>` (logs inside `into_response`) | `500` | counted, `kind="status"`: the layer cannot see that it logged |
//! | any of these plus `.with_cause(err)` | unchanged | counted, `kind="error"`, with `err`'s source chain |
//! | any of these plus `.with_cause_at(err, at)` ([`At`](crate::At)) | unchanged | the same, located at the handler's `?` |
//! | an `IntoResponse` that logs, plus `.with_logged_cause(err)` | unchanged | not counted; a handler still sees it |
//!
//! [`ResponseExt::with_cause`](crate::ResponseExt::with_cause) takes anything that converts into
//! `Box<dyn Error + Send + Sync>`: any `std::error::Error`, `anyhow::Error` and `eyre::Report` with
//! their context chains, `Arc<E>`, a `String`. On a response that is not a 5xx it does nothing, so an
//! enum can attach itself in every arm and only its 5xx variants count. Without [`At`](crate::At),
//! the report gives the `with_cause` line as the location and says so (`sample.location_note`).
//!
//! A 5xx that a layer answered, not the application's `IntoResponse`, gets advice that fits it:
//! tower-http's `TimeoutLayer` 504 (look at the slow handler) and a load-shed 503 from a
//! `HandleErrorLayer`. An intentional one is marked where it is made, with
//! [`Error::status`](crate::Error::status) in the response's extensions
//! (`tests/behaviour/layer_answers.rs` holds both).
//!
//! A panic (and a service error) has no response of the application's: the layer answers it with a
//! plain-text `500`. An application whose errors are JSON renders `ErrorKind::Panic` and
//! `ErrorKind::Service` in its own [`ServerErrorHandler`](crate::ServerErrorHandler) (whose docs have
//! it) and returns `None` for the rest.
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
//! A tonic service runs on the same tower stack, and the same layer sees its calls, both ways of
//! serving it: `tonic::service::Routes::new(service).into_axum_router().layer(unhandled::layer())`
//! inside an axum application, or `tonic::transport::Server::builder().layer(unhandled::layer())`.
//! Reading a status needs no tonic: the cargo feature `tonic` only adds the source of the
//! `tonic::Status` a handler's error carries.
//!
//! | the call… | the client gets | counted? |
//! |---|---|---|
//! | returns `Err(Status)` with one of the six codes | that status (Trailers-Only) | yes (`kind="status"`; the sample: `gRPC status INTERNAL (13): the message`) |
//! | the same `Status` with a source (`status.set_source(..)`), feature `tonic` on | that status | yes (`kind="error"`, with the source's chain) |
//! | a stream whose item is `Err(Status)` with such a code | the messages, then that status in the trailers | yes (`kind="status"`) |
//! | any other code (`NOT_FOUND`, `INVALID_ARGUMENT`, …) or `OK` | as sent | no: the client's |
//! | an unknown method or service (no handler ran) | `UNIMPLEMENTED` | no, and its path never becomes a label |
//! | panics | `INTERNAL` "Internal Server Error" in a `200`; the channel goes on | yes (`kind="panic"`) |
//! | a middleware inside the layer returns `Err` | `INTERNAL` (`UNAVAILABLE` when it was not ready) | yes (`kind="service"`) |
//!
//! tonic's own layers sit outside those added with `Server::builder().layer(..)`: its `timeout`
//! answers `CANCELLED` before this layer sees an answer, and the layer only sees the call dropped,
//! as when a client leaves: not counted. `tests/behaviour/grpc.rs` holds each case through both ways
//! of serving, over HTTP/2 with a tonic client.
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
//!
//! # What is not guaranteed
//!
//! - A gRPC call answered with a server-error status is labelled with its method as the client sent
//!   it: a gateway that answers made-up methods that way makes labels of them, 8 at most.
//! - A body with an exact size is not watched unless its response asks; neither is the body of a
//!   response that failed already (a 5xx seen at its head).
//! - A streamed body that fails after hyper stopped polling it (the client left) is dropped, not
//!   failed. One that streams the request body back and fails because that client left is counted
//!   as `kind="body"`: its error cannot be told from an upstream's.
//! - A handler that reads another server's response body through axum's `Body` and returns that
//!   read's failure gets the same `axum::Error` around hyper's error as a client that left, and it
//!   is not counted: read it through the client's own body type (hyper's `Incoming`, reqwest's).
//! - Error handlers nested in one another count each failure once; but a 5xx without an
//!   [`Error`](crate::Error) that the inner one saw while a layer between them ran it on another task
//!   (tower's `Buffer`) is counted by both, and so is a gRPC status that came in a stream's trailers.
//! - An error whose `Drop` panics is dropped under a guard where the crate drops it (a report's
//!   sample), not where hyper drops a response that carries it.
//! - A build with `panic = "abort"` ends the process at the panic; no layer can catch it.

mod body;
mod future;
mod handle;
mod service;

use std::fmt;

use tower_layer::Layer;

pub use self::{future::ResponseFuture, service::ErrorHandlerService};
use crate::{handler::DefaultErrorHandler, handoff::Sink};

/// A [`Layer`] that applies [`ErrorHandlerService`]: every failure goes to the handler `H`.
///
/// See the [module docs](crate::error_handler) for examples.
#[derive(Clone, Copy)]
#[must_use]
pub struct ErrorHandlerLayer<H = DefaultErrorHandler> {
    handler: H,
    /// The handler, kept for the process: for the response futures, the watched bodies and the
    /// tasks its requests spawn ([`TaskExt`](crate::TaskExt)).
    kept: &'static Sink,
}

impl<H: fmt::Debug> fmt::Debug for ErrorHandlerLayer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorHandlerLayer")
            .field("handler", &self.handler)
            .finish_non_exhaustive()
    }
}

impl<H: crate::handler::ServerErrorHandler> ErrorHandlerLayer<H> {
    /// A layer that sends every failure to `handler`.
    ///
    /// The first layer built in a process installs a panic hook, once, which chains the hook in
    /// force then (std's message, the application's own keep working) and notes where each panic
    /// inside a layer's scope happened, for [`Error::location`](crate::Error::location). Set the
    /// application's own hook before, or turn the notes off with
    /// [`set_panic_locations(false)`](crate::set_panic_locations) or `UNHANDLED_PANIC_LOCATIONS=0`.
    ///
    /// The handler also sees the failures of the tasks its requests spawn with
    /// [`TaskExt::reported`](crate::TaskExt::reported): a copy of it is kept for the process,
    /// since a task can outlive its request (one small allocation per layer built).
    pub fn new(handler: H) -> Self {
        let kept = Sink::keep(&handler);
        Self::with_sink(handler, kept)
    }

    pub(crate) fn with_sink(handler: H, kept: &'static Sink) -> Self {
        crate::panic_location::install();
        Self { handler, kept }
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
        ErrorHandlerService::with_sink(inner, self.handler.clone(), self.kept)
    }
}
