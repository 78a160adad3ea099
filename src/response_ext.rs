//! [`ResponseExt`]: one call in an application's own `IntoResponse` hands the cause of a 5xx to
//! the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer).
//!
//! axum turns a handler's `Err(e)` into a response before any middleware sees it, and the error
//! value is gone. An application whose error type renders its own `500` (axum's
//! `anyhow-error-response` example, the `internal_error` helper of its database examples, an
//! error enum) is still seen by the layer, as a failure with only a status
//! ([`ErrorKind::Status`](crate::ErrorKind::Status)). Attaching the cause makes it a counted
//! error with its whole source chain in the periodic report, and keeps the response as built.
//!
//! ```
//! use axum::{http::StatusCode, response::{IntoResponse, Response}};
//! use unhandled::ResponseExt;
//!
//! // axum's anyhow-error-response example, plus one call.
//! struct AppError(anyhow::Error);
//!
//! impl IntoResponse for AppError {
//!     fn into_response(self) -> Response {
//!         let body = format!("Something went wrong: {}", self.0);
//!         (StatusCode::INTERNAL_SERVER_ERROR, body).into_response().with_cause(self.0)
//!     }
//! }
//!
//! impl<E: Into<anyhow::Error>> From<E> for AppError {
//!     fn from(error: E) -> Self {
//!         Self(error.into())
//!     }
//! }
//!
//! let error = AppError(anyhow::anyhow!("connection refused").context("loading user 7"));
//! let response = error.into_response();
//! assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! let attached = response.extensions().get::<unhandled::Error>().unwrap();
//! assert_eq!(format!("{attached:#}"), "loading user 7: connection refused");
//! ```

use axum::http::Response;

use crate::{
    error::{BoxError, Error, Origin},
    handoff::WatchBody,
};

/// Attaches the cause of a 5xx to the response an application built, for the
/// [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) around it. Implemented for every
/// `http::Response`.
///
/// The trait is sealed: only `http::Response` implements it.
///
/// The status, headers and body stay as they are. The cause is anything that converts into a
/// [`BoxError`]: any `std::error::Error`, `anyhow::Error` and `eyre::Report` (their context
/// chains kept), `Arc<E>`, a `String`. A response that is not a 5xx is returned unchanged:
/// 1xx to 4xx responses are never failures, whatever caused them.
pub trait ResponseExt: sealed::Sealed + Sized {
    /// Attaches `cause`: the failure is counted as `kind="error"` (unless a logging layer logs
    /// it), and the periodic report shows the cause's whole source chain.
    ///
    /// ```
    /// use axum::{http::StatusCode, response::IntoResponse};
    /// use unhandled::ResponseExt;
    ///
    /// // The `internal_error` helper of axum's database examples, keeping its cause.
    /// fn internal_error<E: std::error::Error + Send + Sync + 'static>(err: E) -> axum::response::Response {
    ///     (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response().with_cause(err)
    /// }
    ///
    /// let response = internal_error(std::io::Error::other("pool timed out"));
    /// assert!(response.extensions().get::<unhandled::Error>().is_some());
    ///
    /// // Not a 5xx: nothing is attached.
    /// let not_found = StatusCode::NOT_FOUND.into_response().with_cause(std::io::Error::other("no row"));
    /// assert!(not_found.extensions().get::<unhandled::Error>().is_none());
    /// ```
    #[must_use]
    #[track_caller]
    fn with_cause(self, cause: impl Into<BoxError>) -> Self;

    /// Attaches `cause` and says that the application logged it already (as axum's `oauth`
    /// example and axum-extra's `InternalServerError` do inside `into_response`): a
    /// [`ServerErrorHandler`](crate::ServerErrorHandler) still sees it, no reporter counts it.
    ///
    /// ```
    /// use axum::{http::StatusCode, response::IntoResponse};
    /// use unhandled::ResponseExt;
    ///
    /// let cause = std::io::Error::other("token endpoint refused");
    /// tracing::error!(%cause, "oauth exchange failed");
    /// let response = StatusCode::INTERNAL_SERVER_ERROR.into_response().with_logged_cause(cause);
    /// assert!(response.extensions().get::<unhandled::Error>().unwrap().is_logged());
    /// ```
    #[must_use]
    #[track_caller]
    fn with_logged_cause(self, cause: impl Into<BoxError>) -> Self;

    /// [`with_cause`](Self::with_cause), made where `at` says: the line of the `?` that made the
    /// application's own error and the type it was made from, which [`At::here`](crate::At::here)
    /// recorded in the error's `From`. The report then names them, not this call's line.
    ///
    /// See [`At`](crate::At) for the whole recipe.
    #[must_use]
    fn with_cause_at(self, cause: impl Into<BoxError>, at: crate::At) -> Self;

    /// Asks the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) (and a
    /// [`LoggingLayer`](crate::LoggingLayer)) to watch this response's body although it has an
    /// exact size: a proxied upstream body with a `Content-Length` does, yet it streams and can
    /// fail. A body without an exact size is always watched; one with an exact size is otherwise
    /// passed on untouched, and its failure only closes the connection. The mark costs one
    /// extension (two allocations in a response without extensions).
    ///
    /// ```
    /// use std::{pin::Pin, task::{Context, Poll}};
    /// use axum::{Router, body::{Body, Bytes}, http::Request, response::{IntoResponse, Response}, routing::get};
    /// use http_body::{Frame, SizeHint};
    /// use tower::ServiceExt;
    /// use unhandled::{ReportingErrorHandler, ResponseExt};
    ///
    /// /// An upstream body that announced 10 bytes and broke off: as a proxied `Incoming` does.
    /// struct Upstream;
    ///
    /// impl http_body::Body for Upstream {
    ///     type Data = Bytes;
    ///     type Error = std::io::Error;
    ///     fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
    ///         Poll::Ready(Some(Err(std::io::Error::other("upstream reset the connection"))))
    ///     }
    ///     fn size_hint(&self) -> SizeHint {
    ///         SizeHint::with_exact(10)
    ///     }
    /// }
    ///
    /// async fn proxy() -> Response {
    ///     Body::new(Upstream).into_response().watch_body()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let reporting = ReportingErrorHandler::builder().build();
    /// let app = Router::new()
    ///     .route("/proxy", get(proxy))
    ///     .layer(unhandled::ErrorHandlerLayer::new(reporting.clone()));
    /// let response = app.oneshot(Request::get("/proxy").body(Body::empty()).unwrap()).await.unwrap();
    /// assert!(axum::body::to_bytes(response.into_body(), 1024).await.is_err());
    /// assert_eq!(reporting.unhandled_count(), 1); // without watch_body: 0
    /// # }
    /// ```
    #[must_use]
    fn watch_body(self) -> Self;
}

mod sealed {
    /// Implemented for `http::Response` alone, so that methods can be added to
    /// [`ResponseExt`](super::ResponseExt) without breaking anyone.
    pub trait Sealed {}

    impl<B> Sealed for axum::http::Response<B> {}
}

impl<B> ResponseExt for Response<B> {
    #[track_caller]
    fn with_cause(self, cause: impl Into<BoxError>) -> Self {
        let origin = caused_by(&cause);
        attach(self, cause.into(), false, origin)
    }

    #[track_caller]
    fn with_logged_cause(self, cause: impl Into<BoxError>) -> Self {
        let origin = caused_by(&cause);
        attach(self, cause.into(), true, origin)
    }

    fn with_cause_at(self, cause: impl Into<BoxError>, at: crate::At) -> Self {
        attach(self, cause.into(), false, at.0)
    }

    fn watch_body(mut self) -> Self {
        self.extensions_mut().insert(WatchBody);
        self
    }
}

/// Where the caller attaches `cause`, and its type (an `impl Trait` argument has no name to
/// give `type_name`, so the type is taken from the value).
#[track_caller]
fn caused_by<C>(_cause: &C) -> Origin {
    Origin {
        attached: true,
        ..Origin::here::<C>()
    }
}

fn attach<B>(
    mut response: Response<B>,
    cause: BoxError,
    logged: bool,
    origin: Origin,
) -> Response<B> {
    let status = response.status();
    if status.is_server_error() {
        let error = Error::made(status, cause, origin);
        if logged {
            error.mark_logged();
        }
        response.extensions_mut().insert(error);
    }
    response
}
