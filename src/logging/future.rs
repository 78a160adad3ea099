use std::{
    fmt::Display,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::Response,
};
use pin_project_lite::pin_project;
use tracing::Span;

use super::{body::LoggedBody, outcome::Outcome};
use crate::{error::BoxError, handoff};

pin_project! {
    /// Response future of [`LoggingService`](super::LoggingService).
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        span: Span,
        outcome: Outcome,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(future: F, span: Span, outcome: Outcome) -> Self {
        Self {
            future,
            span,
            outcome,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    E: Display + 'static,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = this.span.enter();
        let watch = handoff::Watch::enter();
        let polled = catch_unwind(AssertUnwindSafe(|| this.future.poll(cx)));
        drop(watch);
        let result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => {
                this.outcome.panicked(this.span, &*payload);
                resume_unwind(payload)
            }
        };
        match result {
            Ok(response) => {
                let mut response = response.map(Body::new);
                if this.outcome.responded(this.span, &mut response) {
                    drop(entered);
                    // Logged when the body ends, in the span, which lives as long as the body.
                    let span = std::mem::replace(this.span, Span::none());
                    response = LoggedBody::wrap(response, span, this.outcome.take());
                }
                Poll::Ready(Ok(response))
            }
            Err(error) => {
                this.outcome.service_failed(this.span, &error);
                Poll::Ready(Err(error))
            }
        }
    }
}
