use std::{
    convert::Infallible,
    panic::{AssertUnwindSafe, catch_unwind},
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{Response, StatusCode},
};
use tower_service::Service;

use super::future::ResponseFuture;
use crate::{
    context::ErrorKind,
    error::{BoxError, Error},
    handler::ServerErrorHandler,
    handoff::{Failure, Scope},
    head::RequestHead,
    unwind,
};

/// Middleware that sends every failure of `S` to the [`ServerErrorHandler`] `H` and returns the
/// response it renders. It never fails: its error type is [`Infallible`].
///
/// What counts as a failure ([`ErrorKind`](crate::ErrorKind)):
/// - a response that carries an [`Error`](crate::Error): a handler returned `Err(error)`, or an
///   application's error type attached its cause with [`ResponseExt`](crate::ResponseExt);
/// - any other 5xx response (`ErrorKind::Status`): the handler or the application's own error
///   type built it; the handler sees it, and unless it renders another, the response is kept;
/// - an `Err` from `S` (a service error);
/// - a panic in `S::call` or while polling its future, whatever the payload;
/// - after the head, an error a streamed response body yields (`ErrorKind::Body`) or a panic while
///   it is polled (see [Failures after the head](crate::error_handler#failures-after-the-head)).
///
/// Every other response (1xx to 4xx, extractor rejections included) passes through untouched.
///
/// The response of a failure keeps its [`Error`](crate::Error) in the extensions (for a panic or a
/// service error, the one made of it), so that layers outside can read what failed. An error
/// handler outside this one leaves such a response alone, and also a 5xx without an `Error` that
/// this one saw while the outer one was polling it: each failure is counted once.
#[derive(Debug)]
pub struct ErrorHandlerService<S, H> {
    inner: S,
    handler: H,
    /// The error `poll_ready` saw, failing the next request.
    not_ready: Option<BoxError>,
}

impl<S: Clone, H: Clone> Clone for ErrorHandlerService<S, H> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.handler.clone())
    }
}

impl<S, H> ErrorHandlerService<S, H> {
    /// Wraps `inner`, sending its failures to `handler`.
    pub fn new(inner: S, handler: H) -> Self {
        Self {
            inner,
            handler,
            not_ready: None,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The handler failures go to.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

impl<S, H, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorHandlerService<S, H>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError> + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    H: ServerErrorHandler,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A service that is not ready fails the request it would have served: report that
        // failure when the request arrives rather than dropping the connection now.
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => {
                self.not_ready = Some(error.into());
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let mut head = RequestHead::capture(&request);
        let handler = self.handler.clone();
        if let Some(error) = self.not_ready.take() {
            let error = Error::from_parts(StatusCode::SERVICE_UNAVAILABLE, Some(error));
            return ResponseFuture::failed(error, ErrorKind::Service, head, handler);
        }
        let scope = Scope::enter();
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => {
                head.set_app_logged(scope.leave());
                ResponseFuture::new(future, head, handler)
            }
            Err(payload) => {
                let error = Error::from_panic(&*payload);
                let error = scope.claim(Failure::panic(&*payload), error);
                unwind::discard(payload);
                head.set_app_logged(scope.leave());
                ResponseFuture::failed(error, ErrorKind::Panic, head, handler)
            }
        }
    }
}
