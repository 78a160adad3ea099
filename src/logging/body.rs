//! The end of a request whose response streams: logged when its body ends, fails or is dropped.
//!
//! A response whose body can still fail after its head ([Failures after the head](crate::error_handler#failures-after-the-head)) keeps
//! the request's span and [`Outcome`] in a [`LoggedBody`], so that the request's one event comes
//! at its real end, with the latency of the whole response, and the span covers it:
//! - the body ends (its last frame, or `is_end_stream()` after a frame): the success event;
//! - it yields an error: the failure event, `kind = "body"`, with the error's source chain, and
//!   a note that it was logged for the error handler around this layer, which then does not
//!   count it (the same handoff as for a panic or a service error, [`handoff`]);
//! - it panics while polled: the failure event, `kind = "panic"`, and the same note; the panic
//!   goes on to the error handler;
//! - it is dropped before its end (the client left): the success event's level, "response body
//!   dropped before its end": a client that leaves is no failure of the service.
//!
//! Each poll of the body runs in the request's span, as tower-http's `TraceLayer` body does, so
//! that what the body's stream logs belongs to its request.

use std::{
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::{Response, StatusCode},
};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use super::outcome::Outcome;

pin_project! {
    /// A response body that logs its request's end: see the [module docs](self).
    pub(crate) struct LoggedBody {
        #[pin]
        inner: Body,
        // `None` once the end was logged.
        log: Option<Log>,
    }

    impl PinnedDrop for LoggedBody {
        fn drop(this: Pin<&mut Self>) {
            end(this.project().log, |log| log.outcome.body_dropped(&log.span, log.status));
        }
    }
}

/// What the end of the request needs to be logged.
struct Log {
    span: Span,
    outcome: Outcome,
    status: StatusCode,
}

impl LoggedBody {
    /// `response` with its body logged at its end, in `span`.
    pub(crate) fn wrap(response: Response<Body>, span: Span, outcome: Outcome) -> Response<Body> {
        let status = response.status();
        response.map(|inner| {
            Body::new(Self {
                inner,
                log: Some(Log {
                    span,
                    outcome,
                    status,
                }),
            })
        })
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut this = self.project();
        let Some(log) = this.log.as_ref() else {
            return this.inner.poll_frame(cx);
        };
        let polled = {
            let _entered = log.span.enter();
            catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll_frame(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(Ok(frame)))) => {
                // A gRPC call ends with trailers that carry its status.
                if let Some(trailers) = frame.trailers_ref().filter(|_| log.outcome.grpc_answer()) {
                    end(this.log, |log| {
                        log.outcome.grpc_trailers(&log.span, log.status, trailers);
                    });
                } else if this.inner.is_end_stream() {
                    end(this.log, |log| {
                        log.outcome.body_ended(&log.span, log.status)
                    });
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Ok(Poll::Ready(None)) => {
                end(this.log, |log| {
                    log.outcome.body_ended(&log.span, log.status)
                });
                Poll::Ready(None)
            }
            Ok(Poll::Ready(Some(Err(error)))) => {
                end(this.log, |log| {
                    log.outcome.body_failed(&log.span, log.status, &error);
                });
                Poll::Ready(Some(Err(error)))
            }
            Err(payload) => {
                end(this.log, |log| {
                    log.outcome.body_panicked(&log.span, log.status, &*payload);
                });
                resume_unwind(payload)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Logs the end of the request, in its span, once.
fn end(log: &mut Option<Log>, with: impl FnOnce(&Log)) {
    if let Some(log) = log.take() {
        let _entered = log.span.enter();
        with(&log);
    }
}
