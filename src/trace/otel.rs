//! The OpenTelemetry bridge (feature `opentelemetry`): the trace id of a span, and joining the
//! server span to the caller's trace through the global text-map propagator.

use axum::http::HeaderMap;
use opentelemetry::{propagation::Extractor, trace::TraceContextExt};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::TraceId;

/// The trace id of `span`'s OpenTelemetry context, if it has a valid one (a subscriber with
/// tracing-opentelemetry's layer records it).
pub(crate) fn of(span: &Span) -> Option<TraceId> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if !span_context.is_valid() {
        return None;
    }
    TraceId::from_bytes(span_context.trace_id().to_bytes())
}

/// The trace id of the span in force on this thread.
pub(crate) fn current() -> Option<TraceId> {
    of(&Span::current())
}

/// Makes `span` (not yet entered) a child of the caller's span, as the application's global
/// text-map propagator reads it from `headers`: W3C `traceparent`, B3, whatever it was set
/// to. No header, or one the propagator cannot read, leaves `span` a root.
pub(crate) fn join_caller(span: &Span, headers: &HeaderMap) {
    if span.is_disabled() {
        return;
    }
    // From an empty context: without a header, no span the thread happens to have attached.
    let caller = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&opentelemetry::Context::new(), &Headers(headers))
    });
    if caller.span().span_context().is_valid() {
        // Fails only when no subscriber records OpenTelemetry data: nothing to join then.
        let _ = span.set_parent(caller);
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
