use std::{
    convert::Infallible,
    fmt,
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
    handoff::{Scope, Serving, Sink},
    head::RequestHead,
};

/// Middleware that sends every failure of `S` to the [`ServerErrorHandler`] `H` and returns the
/// response it renders. It never fails: its error type is [`Infallible`].
///
/// See the [module docs](crate::error_handler) for what counts as a failure.
pub struct ErrorHandlerService<S, H> {
    inner: S,
    handler: H,
    /// The handler, kept for the process: where the response futures and the tasks the requests
    /// spawn send failures.
    kept: &'static Sink,
    /// The error `poll_ready` saw, failing the next request.
    not_ready: Option<BoxError>,
}

impl<S: fmt::Debug, H: fmt::Debug> fmt::Debug for ErrorHandlerService<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorHandlerService")
            .field("inner", &self.inner)
            .field("handler", &self.handler)
            .field("not_ready", &self.not_ready)
            .finish_non_exhaustive()
    }
}

impl<S: Clone, H: Clone> Clone for ErrorHandlerService<S, H> {
    fn clone(&self) -> Self {
        Self::with_sink(self.inner.clone(), self.handler.clone(), self.kept)
    }
}

impl<S, H: ServerErrorHandler> ErrorHandlerService<S, H> {
    /// Wraps `inner`, sending its failures, and those of the tasks its requests spawn with
    /// [`TaskExt::reported`](crate::TaskExt::reported), to `handler` (a copy of which is kept for
    /// the process: a task can outlive its request).
    pub fn new(inner: S, handler: H) -> Self {
        let kept = Sink::keep(&handler);
        Self::with_sink(inner, handler, kept)
    }
}

impl<S, H> ErrorHandlerService<S, H> {
    pub(crate) fn with_sink(inner: S, handler: H, kept: &'static Sink) -> Self {
        Self {
            inner,
            handler,
            kept,
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

    /// Never inlined: inlined into axum's `MapIntoResponse::call`, the response future is built
    /// there and copied once more (`benches/where.sh`: 50 instructions a request).
    #[inline(never)]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let mut serving = Serving {
            head: RequestHead::capture(&request),
            handler: self.kept,
        };
        if let Some(error) = self.not_ready.take() {
            let error = Error::from_parts(StatusCode::SERVICE_UNAVAILABLE, Some(error));
            return ResponseFuture::failed(error, ErrorKind::Service, serving);
        }
        let scope = Scope::enter();
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => {
                serving.head.set_app_logged(scope.leave());
                ResponseFuture::new(future, serving)
            }
            Err(payload) => {
                let error = super::handle::caught(&scope, payload);
                serving.head.set_app_logged(scope.leave());
                ResponseFuture::failed(error, ErrorKind::Panic, serving)
            }
        }
    }
}
