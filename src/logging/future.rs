use std::{
    fmt::Display,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use axum::http::Response;
use pin_project_lite::pin_project;
use tracing::Span;

use super::outcome::Outcome;
use crate::handoff;

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
    E: Display + 'static,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let watch = handoff::Watch::enter();
        let polled = catch_unwind(AssertUnwindSafe(|| this.future.poll(cx)));
        drop(watch);
        let mut result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => {
                this.outcome.panicked(this.span, &*payload);
                resume_unwind(payload)
            }
        };
        match &mut result {
            Ok(response) => this.outcome.responded(this.span, response),
            Err(error) => this.outcome.service_failed(this.span, error),
        }
        Poll::Ready(result)
    }
}
