//! The layer's one call into the application's handler, shared by the response future (failures
//! at the head) and the watched body (failures after it).

use axum::{body::Body, http::Response};

use crate::{
    context::ErrorKind,
    error::Error,
    grpc,
    handoff::{Failure, Scope, Sink},
    head::RequestHead,
    panic_location, unwind,
};

/// Asks `handler` for the response; `None` when it defers, or panics itself. The error is marked
/// logged first when the application logged the failure itself ([`RequestHead::app_logged`]).
pub(super) fn handle(
    handler: &Sink,
    error: &Error,
    head: &RequestHead,
    kind: ErrorKind,
) -> Option<Response<Body>> {
    if head.app_logged() {
        error.mark_logged();
    }
    let answered = head.grpc_answer() && grpc::GrpcStatus::is_in(error);
    let context = head.context(kind, answered).with_trace_id(head.trace_id());
    handler.on_error(error, &context)
}

/// `response` with `error` in its extensions, marked as rendered by this error handler.
pub(super) fn with_rendered(
    mut response: Response<Body>,
    mut error: Error,
    kind: ErrorKind,
) -> Response<Body> {
    error.set_rendered(kind);
    response.extensions_mut().insert(error);
    response
}

/// The error of a service error returned in `scope`, marked logged when a logging layer inside
/// noted it. Out of line, as [`caught`] is.
#[cold]
#[inline(never)]
pub(super) fn service_failed<E: Into<crate::error::BoxError> + 'static>(
    scope: &Scope,
    error: E,
) -> Error {
    scope.claim(Failure::service::<E>(), Error::from_service(error))
}

/// The error of a panic caught in `scope`, with its location, marked logged when a logging layer
/// inside noted it; the payload is discarded. Out of line, so that the success path stays short.
#[cold]
#[inline(never)]
pub(super) fn caught(scope: &Scope, payload: unwind::Payload) -> Error {
    let error = Error::from_panic(&*payload, panic_location::take(&*payload));
    let error = scope.claim(Failure::panic(&*payload), error);
    unwind::discard(payload);
    error
}
