//! The one event at the end of each request, and what it marks as logged.

use std::time::Instant;

use axum::{
    body::Body,
    extract::Request,
    http::{Response, StatusCode},
};
use tracing::{Span, field};

use super::{Levels, TARGET, span};
use crate::{
    context::ErrorKind,
    error::{BodyFailure, Chain, Error, panic_message, past_axum, status_text, text_of},
    grpc,
    handoff::{self, BodyFailed, Failure, RenderedStatus, needs_watching},
    head::RequestHead,
    level::{enabled_at, event_at},
    notice,
    text::Escaped,
};

/// What a request needs to be logged at its end: captured only when an event could be emitted.
pub(crate) struct Outcome {
    levels: Levels,
    /// Whether the filter enabled the success event when the request came: asked once, not
    /// again at a success's end. The failure event's filter is asked when one fails.
    success_on: bool,
    pub(super) started: Option<(Instant, RequestHead)>,
}

impl Outcome {
    pub(crate) fn start<B>(levels: Levels, request: &Request<B>) -> Self {
        let success_on = enabled_at!(target: TARGET, levels.success);
        let wanted = success_on || enabled_at!(target: TARGET, levels.failure);
        Self {
            levels,
            success_on,
            started: wanted.then(|| (Instant::now(), RequestHead::capture(request))),
        }
    }

    /// Logs a response: a failure when it carries an unhandled error or is a 5xx, else a success.
    /// Once the failure event was emitted, an error returned inside this layer is marked logged,
    /// and a 5xx without one is noted logged under the error handler's scope
    /// ([`Failure::Status`]).
    ///
    /// `true` when nothing is logged yet: a success whose body can still fail
    /// ([`needs_watching`]), to be logged when it ends ([`LoggedBody`](super::body::LoggedBody)).
    pub(crate) fn responded(&mut self, span: &Span, response: &mut Response<Body>) -> bool {
        // Only a gRPC answer's `grpc-status` is read: a REST route's response is not a gRPC status.
        if let Some((_, head)) = self.started.as_mut().filter(|(_, head)| head.is_grpc()) {
            head.set_grpc_answer(grpc::is_answer(response.headers()));
        }
        if self.grpc_answer() {
            grpc::attach_failure(response);
        }
        let status = response.status();
        let error = response.extensions().get::<Error>();
        // Rendered: an error handler inside this layer saw it first, and counted it.
        let rendered = error.and_then(Error::rendered).or_else(|| {
            let extensions = response.extensions();
            extensions
                .get::<RenderedStatus>()
                .map(|_| ErrorKind::Status)
        });
        if rendered.is_some() {
            misplaced();
        }
        let kind = rendered.or(error.map(Error::returned_kind));
        let unhandled = error.filter(|error| !error.is_intentional());
        let grpc_code = self.grpc_code(response.headers());
        if unhandled.is_none() && !status.is_server_error() {
            // Trailers-Only with `OK` or a client's code (a server error is attached above); with
            // none yet, the trailers that end the body carry it.
            if grpc_code.is_some() {
                self.close_rpc(span, !grpc::is_not_served(response.headers()), grpc_code);
                span::close(span, status);
                self.succeeded(span, status, "request completed", grpc_code);
                return false;
            }
            let streams = |(_, head): &(Instant, RequestHead)| needs_watching(response, head);
            if self.started.as_ref().is_some_and(streams) {
                return true;
            }
            self.body_ended(span, status);
            return false;
        }
        let text = match unhandled {
            Some(error) => error.chain_text().into(),
            None => status_text(status),
        };
        if self.is_grpc() {
            self.close_rpc(span, true, grpc_code);
        }
        let kind = kind.unwrap_or(ErrorKind::Status);
        let logged = self.failed(span, kind, Some(status), &text, grpc_code, unhandled);
        if rendered.is_none() {
            match error {
                Some(error) if logged => error.mark_logged(),
                Some(error) => error.mark_filtered(self.levels.failure),
                // The error handler outside makes the error of a 5xx without one: it reads the
                // note, and the response needs no extension (whose map would be allocated).
                None => self.hand_over(Failure::Status, logged),
            }
        }
        false
    }

    /// This outcome, leaving one that logs nothing in its place.
    pub(crate) fn take(&mut self) -> Self {
        Self {
            started: self.started.take(),
            ..*self
        }
    }

    /// Logs a successful response that ended: at its head, or at its body's end.
    pub(crate) fn body_ended(&self, span: &Span, status: StatusCode) {
        span::close(span, status);
        if self.is_grpc() {
            self.close_rpc(span, true, None);
        }
        self.succeeded(span, status, "request completed", None);
    }

    /// Logs a successful response whose body was dropped before its end: the client left.
    pub(crate) fn body_dropped(&self, span: &Span, status: StatusCode) {
        span::close(span, status);
        self.succeeded(span, status, "response body dropped before its end", None);
    }

    /// Logs the error a response body yielded after its head, and leaves a note for the error
    /// handler that it was logged; an error handler inside this layer handled it already.
    pub(crate) fn body_failed(&self, span: &Span, status: StatusCode, error: &axum::Error) {
        if let Some(failed) = BodyFailed::find(error) {
            misplaced();
            let text = failed.error().chain_text();
            self.failed(
                span,
                failed.kind(),
                Some(status),
                &text,
                None,
                Some(failed.error()),
            );
            return;
        }
        let text = text_of(&Chain(past_axum(error)));
        let logged = self.failed(span, ErrorKind::Body, Some(status), &text, None, None);
        self.hand_over(Failure::Body, logged);
    }

    /// Logs a panic while the response body was polled, and leaves a note for the error handler.
    pub(crate) fn body_panicked(
        &self,
        span: &Span,
        status: StatusCode,
        payload: &(dyn std::any::Any + Send),
    ) {
        let failure =
            BodyFailure::Panicked(panic_message(payload), crate::panic_location::peek(payload));
        let error = Error::from_body(status, failure);
        let text = text_of(&error);
        let logged = self.failed(
            span,
            ErrorKind::Panic,
            Some(status),
            &text,
            None,
            Some(&error),
        );
        self.hand_over(Failure::panic(payload), logged);
    }

    pub(super) fn succeeded(
        &self,
        span: &Span,
        status: StatusCode,
        message: &'static str,
        grpc_status: Option<u32>,
    ) {
        let Some((started, head)) = &self.started else {
            return;
        };
        // The head is kept for a failure's event: a success whose event is disabled (a production
        // filter at INFO) builds nothing of it.
        if !self.success_on {
            return;
        }
        let context = head.context(ErrorKind::Error, grpc_status.is_some());
        event_at!(
            target: TARGET,
            self.levels.success,
            method = field::display(head.method_text()),
            path = field::display(Escaped(context.path())),
            route = field::display(Escaped(context.route_label())),
            status = status.as_u16(),
            grpc_status,
            latency_us = micros(started),
            trace_id = trace_id(span).map(field::display),
            "{message}"
        );
    }

    /// Logs a service error, and leaves a note for the error handler that it was logged.
    pub(crate) fn service_failed<E: std::fmt::Display + 'static>(&self, span: &Span, error: &E) {
        let text = text_of(error);
        let logged = self.failed(span, ErrorKind::Service, None, &text, None, None);
        self.hand_over(Failure::service::<E>(), logged);
    }

    /// Logs a panic, and leaves a note for the error handler that it was logged.
    pub(crate) fn panicked(&self, span: &Span, payload: &(dyn std::any::Any + Send)) {
        let error = Error::from_panic(payload, crate::panic_location::peek(payload));
        let text = text_of(&error);
        // The answer the error handler outside gives a panic by default, for HTTP: a 500. (A gRPC
        // call's is INTERNAL in a 200, from the error handler rather than the service, so it
        // names no status here, as its route does not.)
        let answers_grpc = self
            .started
            .as_ref()
            .is_some_and(|(_, head)| head.answers_grpc());
        let status = (!answers_grpc).then_some(StatusCode::INTERNAL_SERVER_ERROR);
        let logged = self.failed(span, ErrorKind::Panic, status, &text, None, Some(&error));
        self.hand_over(Failure::panic(payload), logged);
    }

    /// Tells the error handler outside what became of `failure`: logged, or seen while the
    /// filter disabled the failure event (the report then names the directive that enables it).
    pub(super) fn hand_over(&self, failure: Failure, logged: bool) {
        match logged {
            true => handoff::note_logged(failure),
            false => handoff::note_filtered(failure, self.levels.failure),
        }
    }

    /// Records the failure in the span and emits the failure event; whether the event was enabled
    /// (and so whether anything was logged).
    pub(super) fn failed(
        &self,
        span: &Span,
        kind: ErrorKind,
        status: Option<StatusCode>,
        error: &str,
        grpc_status: Option<u32>,
        origin: Option<&Error>,
    ) -> bool {
        span::failed(span, status, kind, grpc_status, error, origin);
        let Some((started, head)) = &self.started else {
            return false;
        };
        if !enabled_at!(target: TARGET, self.levels.failure) {
            return false;
        }
        let context = head.context(kind, grpc_status.is_some());
        event_at!(
            target: TARGET,
            self.levels.failure,
            method = field::display(head.method_text()),
            path = field::display(Escaped(context.path())),
            route = field::display(Escaped(context.route_label())),
            status = status.map(|status| status.as_u16()),
            grpc_status,
            latency_us = micros(started),
            kind = field::display(kind.as_str()),
            // Free text, which may hold spaces and `key=value`: `fmt` quotes a `&str`.
            error,
            // A line of `core` (`.map_err(Error::from)`) is no place to look: left out.
            location = origin
                .and_then(Error::location)
                .filter(|location| !crate::backtraces::is_std_file(location.file()))
                .map(field::display),
            exception.r#type = origin.and_then(Error::type_name),
            trace_id = trace_id(span).map(field::display),
            "request failed"
        );
        true
    }
}

/// The trace id of the request span, for the end event (feature `opentelemetry`).
fn trace_id(span: &Span) -> Option<crate::TraceId> {
    #[cfg(feature = "opentelemetry")]
    return crate::trace::of(span);
    #[cfg(not(feature = "opentelemetry"))]
    {
        let _ = span;
        None
    }
}

/// The time since `started` in whole microseconds: an integer, which `fmt` writes for a fraction
/// of a float's cost (BENCHMARKS.md §13), and an `i64`, which OpenTelemetry exports as a number (a
/// `u64` it exports as a string).
fn micros(started: &Instant) -> i64 {
    i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// Says once per process that a logging layer sits outside the error handler.
fn misplaced() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tracing::Level;
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    const FIX: &str = "add the LoggingLayer before the ErrorHandlerLayer: \
                       router.layer(unhandled::LoggingLayer::new()).layer(unhandled::layer())";
    const MESSAGE: &str = "unhandled::LoggingLayer is outside the ErrorHandlerLayer, so the errors \
                           it logs are still counted as unhandled; move it inside";
    let report_to = crate::config::ReportTo::from_env_or_default();
    if report_to.to_tracing(|| tracing::enabled!(target: TARGET, Level::WARN)) {
        tracing::warn!(target: TARGET, fix = FIX, "{MESSAGE}");
    } else {
        notice::Line::new(Level::WARN, TARGET, &MESSAGE)
            .field("fix", Some(FIX))
            .write(report_to);
    }
}
