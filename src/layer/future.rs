use std::{
    convert::Infallible,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::Response,
};
use pin_project_lite::pin_project;

use crate::head::RequestHead;
use crate::{
    context::ErrorKind,
    error::{BoxError, Error},
    handler::{ServerErrorHandler, render_default},
    handoff::{Failure, Rendered, Scope},
};

pin_project! {
    /// Response future of [`ErrorHandlerService`](super::ErrorHandlerService).
    pub struct ResponseFuture<F, H> {
        #[pin]
        kind: Kind<F>,
        head: RequestHead,
        handler: H,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Future {
            #[pin]
            future: F,
        },
        Failed {
            failure: Option<(Error, ErrorKind)>,
        },
    }
}

impl<F, H> ResponseFuture<F, H> {
    pub(super) fn new(future: F, head: RequestHead, handler: H) -> Self {
        Self {
            kind: Kind::Future { future },
            head,
            handler,
        }
    }

    pub(super) fn failed(error: Error, kind: ErrorKind, head: RequestHead, handler: H) -> Self {
        Self {
            kind: Kind::Failed {
                failure: Some((error, kind)),
            },
            head,
            handler,
        }
    }
}

impl<F, H, ResBody, E> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: Into<BoxError> + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    H: ServerErrorHandler,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The response the handler already rendered with the error, kept unless the error
        // handler renders another one.
        let mut rendered = None;
        let (error, kind) = match this.kind.project() {
            KindProj::Failed { failure } => failure.take().expect("future polled after completion"),
            KindProj::Future { future } => {
                let scope = Scope::enter();
                match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(mut response))) => match failure_in(&mut response) {
                        None => return Poll::Ready(Ok(response.map(Body::new))),
                        Some(failure) => {
                            rendered = Some(response.map(Body::new));
                            failure
                        }
                    },
                    Ok(Poll::Ready(Err(error))) => (
                        scope.claim(Failure::service::<E>(), Error::new(error)),
                        ErrorKind::Service,
                    ),
                    Err(payload) => (
                        scope.claim(Failure::panic(&*payload), Error::from_panic(&*payload)),
                        ErrorKind::Panic,
                    ),
                }
            }
        };
        let mut response = handle(this.handler, &error, this.head, kind)
            .or(rendered)
            .unwrap_or_else(|| render_default(&error));
        response.extensions_mut().insert(Rendered { error, kind });
        Poll::Ready(Ok(response))
    }
}

/// The failure a response carries: the [`Error`] a handler returned or attached (one without a
/// cause is a [`Status`](ErrorKind::Status) failure that a logging layer logged), else a 5xx
/// status alone. `None` for any other response, which is the success path (one extension lookup
/// and one status comparison), and for a 5xx that an error handler inside this one already
/// rendered: it was that handler's to count.
fn failure_in<B>(response: &mut Response<B>) -> Option<(Error, ErrorKind)> {
    let status = response.status();
    let extensions = response.extensions_mut();
    if let Some(error) = extensions.remove::<Error>() {
        let kind = if error.is_missing_cause() {
            ErrorKind::Status
        } else {
            ErrorKind::Error
        };
        return Some((error, kind));
    }
    if !status.is_server_error() || extensions.get::<Rendered>().is_some() {
        return None;
    }
    Some((Error::without_cause(status), ErrorKind::Status))
}

/// Asks `handler` for the response; `None` when it defers, or panics itself.
fn handle<H: ServerErrorHandler>(
    handler: &H,
    error: &Error,
    head: &RequestHead,
    kind: ErrorKind,
) -> Option<Response<Body>> {
    let context = head.context(kind).with_trace_id(head.trace_id());
    catch_unwind(AssertUnwindSafe(|| handler.on_error(error, &context)))
        .ok()
        .flatten()
}
