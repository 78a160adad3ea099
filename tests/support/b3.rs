//! A B3 propagator (openzipkin/b3-propagation), reading and writing the single `b3` header and the
//! multiple `X-B3-*` headers, for the tests of the feature `opentelemetry`: what an application
//! installs when its callers are Zipkin clients.

use std::sync::OnceLock;

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};

#[derive(Debug, Default)]
pub struct B3;

const FIELDS: [&str; 5] = [
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// 16 or 32 lowercase hex digits, a 64-bit id left-padded to 128 bits.
fn trace_id(hex: &str) -> Option<TraceId> {
    let valid = matches!(hex.len(), 16 | 32) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let id = TraceId::from_hex(hex).ok().filter(|_| valid)?;
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(hex: &str) -> Option<SpanId> {
    let valid = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let id = SpanId::from_hex(hex).ok().filter(|_| valid)?;
    (id != SpanId::INVALID).then_some(id)
}

fn flags(sampled: Option<&str>) -> Option<TraceFlags> {
    match sampled {
        None | Some("1" | "d" | "true") => Some(TraceFlags::SAMPLED),
        Some("0" | "false") => Some(TraceFlags::NOT_SAMPLED),
        Some(_) => None,
    }
}

fn remote(trace: TraceId, span: SpanId, flags: TraceFlags) -> SpanContext {
    SpanContext::new(trace, span, flags, true, TraceState::default())
}

fn single(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let flags = flags(parts.next())?;
    Some(remote(trace, span, flags))
}

fn multiple(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = trace_id(extractor.get("x-b3-traceid")?.trim())?;
    let span = span_id(extractor.get("x-b3-spanid")?.trim())?;
    let debug = extractor.get("x-b3-flags").map(str::trim) == Some("1");
    let sampled = if debug {
        Some("1")
    } else {
        extractor.get("x-b3-sampled").map(str::trim)
    };
    Some(remote(trace, span, flags(sampled)?))
}

impl TextMapPropagator for B3 {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if context.is_valid() {
            let sampled = if context.is_sampled() { "1" } else { "0" };
            injector.set(
                "b3",
                format!("{}-{}-{sampled}", context.trace_id(), context.span_id()),
            );
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = match extractor.get("b3") {
            Some(value) => single(value),
            None => multiple(extractor),
        };
        match found {
            Some(context) => cx.with_remote_span_context(context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        static OWNED: OnceLock<Vec<String>> = OnceLock::new();
        FieldIter::new(OWNED.get_or_init(|| FIELDS.iter().map(|f| (*f).to_owned()).collect()))
    }
}
