//! Failures after the head: the body of a response that streams, watched while hyper polls it.
//!
//! The response future is done once the head is ready, but a streamed body (`Body::from_stream`,
//! `Sse`, a file, a proxied upstream body) can fail later, when nothing else would see it: hyper
//! drops the connection (HTTP/1) or resets the stream (HTTP/2) and logs at most at `TRACE`. So
//! the error handler wraps such a body in a [`WatchedBody`], which sends its failure to the same
//! [`ServerErrorHandler`] as every other failure of the request, with the same method, route and
//! path:
//! - an `Err` frame is an [`ErrorKind::Body`] failure whose cause is the error the body yielded;
//! - a panic while the body is polled is caught, and is an [`ErrorKind::Panic`] failure.
//!
//! Either way the body then yields a [`BodyFailed`] error, which hyper treats as any body error
//! (HTTP/1 closes that connection, HTTP/2 resets that stream only), and ends. A body that ends,
//! or is dropped before its end (the client left, a `HEAD` request), is no failure.
//!
//! Only a body without an exact size is wrapped. `Full`, `String`, `Bytes`, `Json` and empty
//! bodies (nearly every response) have one and cannot fail, so they pass untouched: the success
//! path allocates nothing more. A body with an exact size that can still fail (a proxied hyper
//! `Incoming` with a `Content-Length`) is wrapped only when its response asks for it with
//! [`ResponseExt::watch_body`](crate::ResponseExt::watch_body). Wrapping boxes the body once
//! (axum's [`Body`] is a boxed body); per frame it costs a scope (two thread-local writes) and a
//! `catch_unwind`, no clock and no allocation.
//!
//! Every frame passes through [`WatchedBody::poll_frame`]: data and trailers alike. The trailers
//! frame of a gRPC call, which carries its `grpc-status`, is read there: a server-error status
//! ([`grpc`](crate::grpc)) is a failure of the call (`kind="status"`), and the trailers still go
//! on to the client.

use std::{
    marker::PhantomData,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::{Response, StatusCode},
};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;

use super::handle::handle;
use crate::{
    context::ErrorKind,
    error::{BodyFailure, Error, panic_message, unwrap_axum},
    grpc,
    handler::ServerErrorHandler,
    handoff::{BodyFailed, Failure, Scope, Sink},
    head::RequestHead,
    unwind,
};

pin_project! {
    /// A response body that sends its failure to the error handler's handler: see the
    /// [module docs](self).
    pub(crate) struct WatchedBody<H> {
        #[pin]
        inner: Body,
        // `None` once the body ended or failed: it yields nothing more.
        watch: Option<Watch>,
        // Generic, so that it is compiled with the application's code as the rest of the layer
        // is (`ONLY=frames bash benches/instructions.sh`: 12 instructions a frame).
        handler: PhantomData<fn() -> H>,
    }
}

/// What a failure of the body needs to be handled as one of its request.
struct Watch {
    head: RequestHead,
    handler: &'static Sink,
    status: StatusCode,
}

impl<H: ServerErrorHandler> WatchedBody<H> {
    /// `response` with its body watched for the request `head`, for `handler`.
    pub(crate) fn wrap(
        response: Response<Body>,
        head: RequestHead,
        handler: &'static Sink,
    ) -> Response<Body> {
        let status = response.status();
        response.map(|inner| {
            Body::new(Self {
                inner,
                watch: Some(Watch {
                    head,
                    handler,
                    status,
                }),
                handler: PhantomData,
            })
        })
    }
}

impl<H: ServerErrorHandler> HttpBody for WatchedBody<H> {
    type Data = Bytes;
    type Error = BodyFailed;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFailed>>> {
        let this = self.project();
        let Some(watch) = this.watch else {
            return Poll::Ready(None);
        };
        // A scope, as around every poll of the error handler's inner service: a logging layer
        // inside notes the failure it logged, the subscriber layer what the application logged.
        let scope = Scope::enter();
        let (error, kind) = match catch_unwind(AssertUnwindSafe(|| this.inner.poll_frame(cx))) {
            Ok(Poll::Pending) => {
                watch.head.set_app_logged(scope.leave());
                return Poll::Pending;
            }
            // Data and trailers frames alike pass through; a gRPC call's trailers say how it
            // ended.
            Ok(Poll::Ready(Some(Ok(frame)))) => {
                if watch.head.grpc_answer() && frame.is_trailers() {
                    grpc_ended(scope, this.watch, &frame);
                } else {
                    watch.head.set_app_logged(scope.leave());
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Ok(Poll::Ready(None)) => {
                drop(scope);
                *this.watch = None;
                return Poll::Ready(None);
            }
            Ok(Poll::Ready(Some(Err(error)))) => {
                // Unwrapped, the chain starts at the error the application's body yielded.
                let cause = unwrap_axum(error.into_inner());
                // An error handler inside this one saw it first, and handled it.
                if let Some(failed) = BodyFailed::find(&*cause) {
                    let failed = BodyFailed::new(failed.error().clone(), failed.kind());
                    drop(scope);
                    *this.watch = None;
                    return Poll::Ready(Some(Err(failed)));
                }
                let error = Error::from_body(watch.status, BodyFailure::Yielded(cause));
                (scope.claim(Failure::Body, error), ErrorKind::Body)
            }
            Err(payload) => {
                let failure = BodyFailure::Panicked(
                    panic_message(&*payload),
                    crate::panic_location::take(&*payload),
                );
                let error = Error::from_body(watch.status, failure);
                let error = scope.claim(Failure::panic(&*payload), error);
                unwind::discard(payload);
                (error, ErrorKind::Panic)
            }
        };
        watch.head.set_app_logged(scope.leave());
        // The head is gone: a response the handler renders cannot be sent.
        drop(handle(watch.handler, &error, &watch.head, kind));
        *this.watch = None;
        Poll::Ready(Some(Err(BodyFailed::new(error, kind))))
    }

    fn is_end_stream(&self) -> bool {
        self.watch.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.watch.is_none() {
            return SizeHint::with_exact(0);
        }
        self.inner.size_hint()
    }
}

/// The end of a gRPC call, by the trailers `frame` that `poll_frame` polled in `scope`: a
/// server-error status in them is a failure of the call (the trailers still go on to the client).
/// Out of line, so that the data frames' path stays short.
#[cold]
#[inline(never)]
fn grpc_ended(scope: Scope, watch: &mut Option<Watch>, frame: &Frame<Bytes>) {
    let Some(ended) = watch.take() else {
        return;
    };
    let failed = frame
        .trailers_ref()
        .and_then(|trailers| grpc::failure_in(ended.status, trailers, None));
    let Some(error) = failed else {
        drop(scope);
        return;
    };
    let kind = error.returned_kind();
    let error = scope.claim(Failure::Body, error);
    let mut head = ended.head;
    head.set_app_logged(scope.leave());
    drop(handle(ended.handler, &error, &head, kind));
}
