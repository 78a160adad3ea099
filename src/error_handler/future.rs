use std::{
    convert::Infallible,
    future::Future,
    marker::PhantomData,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::Response,
};
use pin_project_lite::pin_project;

use super::{
    body::WatchedBody,
    handle::{caught, handle, service_failed, with_rendered},
};
use crate::{
    context::ErrorKind,
    error::{BoxError, Error},
    grpc,
    handler::ServerErrorHandler,
    handoff::{self, Failure, RenderedStatus, Scope, Serving, Sink, needs_watching},
    head::RequestHead,
};

pin_project! {
    /// Response future of [`ErrorHandlerService`](super::ErrorHandlerService).
    pub struct ResponseFuture<F, H> {
        #[pin]
        kind: Kind<F>,
        // The request, and the handler kept for the process: no copy of `H` per request.
        serving: Serving,
        handler: PhantomData<fn() -> H>,
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
    #[inline]
    pub(super) fn new(future: F, serving: Serving) -> Self {
        Self {
            kind: Kind::Future { future },
            serving,
            handler: PhantomData,
        }
    }

    pub(super) fn failed(error: Error, kind: ErrorKind, serving: Serving) -> Self {
        Self {
            kind: Kind::Failed {
                failure: Some((error, kind)),
            },
            serving,
            handler: PhantomData,
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

    /// Always inlined into axum's poll of it: out of line, the response is moved out of this
    /// call and the request in force is set through one more frame (`benches/where.sh`).
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let serving = &*this.serving;
        let (error, kind) = match this.kind.project() {
            KindProj::Failed { failure } => failure.take().expect("future polled after completion"),
            KindProj::Future { future } => {
                let scope = Scope::enter();
                // The request is in force while its handler runs, for the tasks it spawns.
                let polled = handoff::serve(serving, || {
                    catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
                });
                let head = &mut this.serving.head;
                let (error, kind) = match polled {
                    Ok(Poll::Pending) => {
                        head.set_app_logged(scope.leave());
                        return Poll::Pending;
                    }
                    Ok(Poll::Ready(Ok(response))) => {
                        let response = response.map(Body::new);
                        let (enclosed, id) = (scope.is_enclosed(), scope.id());
                        head.set_app_logged(scope.leave());
                        let response =
                            responded::<H>(this.serving.handler, head, response, enclosed, id);
                        return Poll::Ready(Ok(response));
                    }
                    Ok(Poll::Ready(Err(error))) => {
                        (service_failed(&scope, error), ErrorKind::Service)
                    }
                    Err(payload) => (caught(&scope, payload), ErrorKind::Panic),
                };
                head.set_app_logged(scope.leave());
                (error, kind)
            }
        };
        let head = &mut this.serving.head;
        let response = handle(this.serving.handler, &error, head, kind)
            .unwrap_or_else(|| render_default(&error, head.answers_grpc()));
        Poll::Ready(Ok(with_rendered(response, error, kind)))
    }
}

/// The response of the inner service, after the error handler saw the failure it carries.
///
/// A failure is the [`Error`] a handler returned or attached, else a 5xx status alone (which a
/// logging layer inside may have noted as logged in the poll that made it, the scope `scope`).
/// Any other response is the success path: one extension lookup (nothing to look up when the
/// response has no extensions), one status comparison and the body's size hint; a body that can
/// still fail ([`needs_watching`]) leaves in a [`WatchedBody`] with the request's head. A
/// response an error handler inside this one rendered already is left alone: its failure was
/// that handler's to count.
///
/// The response the handler returned is kept unless the error handler renders another; either
/// way it leaves with the error in its extensions, marked rendered, or for a 5xx without one and
/// when `enclosed` by another error handler or a logging layer, with the [`RenderedStatus`] marker.
///
/// Always inlined: out of line, the response is moved into the call and back out of it
/// (`benches/where.sh` shows the difference).
#[inline(always)]
fn responded<H: ServerErrorHandler>(
    handler: &'static Sink,
    head: &mut RequestHead,
    response: Response<Body>,
    enclosed: bool,
    scope: u64,
) -> Response<Body> {
    let carries_error = || response.extensions().get::<Error>().is_some();
    if head.is_grpc() || response.status().is_server_error() || carries_error() {
        return inspected::<H>(handler, head, response, enclosed, scope);
    }
    if needs_watching(&response, head) {
        return WatchedBody::<H>::wrap(response, head.take(), handler);
    }
    response
}

/// [`responded`] for a response that may be a failure: a gRPC call's, a 5xx, or one that
/// carries an [`Error`]. Out of line, so that the success path stays short.
#[cold]
#[inline(never)]
fn inspected<H: ServerErrorHandler>(
    handler: &'static Sink,
    head: &mut RequestHead,
    mut response: Response<Body>,
    enclosed: bool,
    scope: u64,
) -> Response<Body> {
    let status = response.status();
    // Only a gRPC answer's `grpc-status` is read: a REST route's response is not a gRPC status.
    if head.is_grpc() && grpc::is_answer(response.headers()) {
        head.set_grpc_answer(true);
        grpc::attach_failure(&mut response);
    }
    if let Some(error) = response.extensions_mut().get_mut::<Error>() {
        if error.rendered().is_some() {
            return response;
        }
        let kind = error.returned_kind();
        error.set_rendered(kind);
        return match handle(handler, error, head, kind) {
            None => response,
            Some(replaced) => {
                let error = error.clone();
                with_rendered(replaced, error, kind)
            }
        };
    }
    if !status.is_server_error() {
        if needs_watching(&response, head) {
            return WatchedBody::<H>::wrap(response, head.take(), handler);
        }
        return response;
    }
    if response.extensions().get::<RenderedStatus>().is_some() {
        return response;
    }
    // A logging layer inside noted it, logged or filtered, in the poll that made it (`scope`).
    let error = handoff::claim(scope, Failure::Status, Error::without_cause(status));
    let mut response = handle(handler, &error, head, ErrorKind::Status).unwrap_or(response);
    if enclosed {
        // A zero-sized marker rather than the error, which would say no more than the status.
        response.extensions_mut().insert(RenderedStatus);
    }
    response
}

/// The response to a failure the handler did not render: a gRPC status for a gRPC call (`grpc`),
/// else the status with its reason as plain text. Neither says anything of the error.
fn render_default(error: &Error, grpc: bool) -> Response<Body> {
    match grpc {
        true => grpc::render(error.status_code()),
        false => crate::error::render(error.status_code()),
    }
}
