use std::{
    fmt::Display,
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::Response,
};
use tower_service::Service;

use super::{
    Levels,
    future::ResponseFuture,
    outcome::Outcome,
    span::{self, Query},
};
use crate::error::BoxError;

/// Middleware that logs every request in a span and marks the errors it logged; see
/// [`LoggingLayer`](super::LoggingLayer).
#[derive(Debug, Clone, Copy)]
pub struct LoggingService<S> {
    inner: S,
    levels: Levels,
    query: Query,
}

impl<S> LoggingService<S> {
    /// Wraps `inner` with [`LoggingLayer::new`](super::LoggingLayer::new)'s settings; the layer
    /// sets others.
    pub fn new(inner: S) -> Self {
        super::LoggingLayer::new().service(inner)
    }

    pub(super) fn with(inner: S, levels: Levels, query: Query) -> Self {
        Self {
            inner,
            levels,
            query,
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
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LoggingService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Display + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let span = span::open(self.levels.request, self.query, &request);
        let outcome = Outcome::start(self.levels, &request);
        let called = {
            let _entered = span.enter();
            catch_unwind(AssertUnwindSafe(|| self.inner.call(request)))
        };
        match called {
            Ok(future) => ResponseFuture::new(future, span, outcome),
            Err(payload) => {
                outcome.panicked(&span, &*payload);
                resume_unwind(payload)
            }
        }
    }
}
