//! [`TraceId`]: which trace a failing request belongs to, so that a report or a log line can be
//! joined to it.
//!
//! With the cargo feature `opentelemetry`, the trace id comes from the OpenTelemetry context of
//! the span the failure happened in (through `tracing-opentelemetry`: a [`LoggingLayer`] span
//! around the error handler, tower-http's `TraceLayer`, any other), else from the request's W3C
//! `traceparent` header; and the [`LoggingLayer`] joins its server span to the caller's trace
//! through the application's global text-map propagator. Without the feature there is none.
//!
//! [`LoggingLayer`]: crate::LoggingLayer

use std::fmt;

/// A W3C / OpenTelemetry trace id: 16 bytes, shown as 32 lowercase hex digits.
///
/// ```
/// let id = unhandled::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(unhandled::TraceId::from_hex("00000000000000000000000000000000").is_none());
/// assert!(unhandled::TraceId::from_hex("not hex").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

impl TraceId {
    /// The id with these bytes; `None` for all zeros, which W3C defines as invalid.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    /// The id written as 32 hex digits (either case); `None` for anything else or all zeros.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 32 {
            return None;
        }
        let mut bytes = [0; 16];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Self::from_bytes(bytes)
    }

    /// The 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

fn digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// The `traceparent` header's name, built once rather than parsed on every lookup.
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
pub(crate) const TRACEPARENT: axum::http::HeaderName =
    axum::http::HeaderName::from_static("traceparent");

/// The trace id of a W3C `traceparent` header value (`00-<trace id>-<parent id>-<flags>`), if it
/// is well formed. It runs on every request that carries the header, so it looks at fixed
/// positions and allocates nothing.
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
pub(crate) fn from_traceparent(value: &[u8]) -> Option<TraceId> {
    let value = value.trim_ascii();
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let (version, trace_id) = (&value[..2], &value[3..35]);
    let (parent_id, flags) = (&value[36..52], &value[53..55]);
    // Version ff is invalid; version 00 has exactly four fields, later versions may have more.
    let valid = lower_hex(version).is_some()
        && version != b"ff"
        && lower_hex(parent_id).is_some_and(|parent| parent != 0)
        && lower_hex(flags).is_some()
        && (value.len() == 55 || (version != b"00" && value[55] == b'-'));
    let trace_id = lower_hex(trace_id)?.to_be_bytes();
    if valid {
        TraceId::from_bytes(trace_id)
    } else {
        None
    }
}

/// The number written in `hex`, lowercase hex digits only (as W3C Trace Context requires), at
/// most 32 of them.
fn lower_hex(hex: &[u8]) -> Option<u128> {
    // The value of each byte as a lowercase hex digit; 0xff for every other byte.
    const DIGITS: [u8; 256] = {
        let mut digits = [0xff; 256];
        let mut byte = 0;
        while byte < 10 {
            digits[b'0' as usize + byte] = byte as u8;
            byte += 1;
        }
        let mut letter = 0;
        while letter < 6 {
            digits[b'a' as usize + letter] = 10 + letter as u8;
            letter += 1;
        }
        digits
    };
    let mut number = 0_u128;
    let mut invalid = 0;
    for &byte in hex {
        let digit = DIGITS[usize::from(byte)];
        invalid |= digit;
        number = (number << 4) | u128::from(digit & 0x0f);
    }
    // Any byte that is not a digit set all of `invalid`'s high bits.
    (invalid & 0xf0 == 0 && hex.len() <= 32).then_some(number)
}

#[cfg(feature = "opentelemetry")]
pub(crate) use self::otel::{current, join_caller, of};

#[cfg(feature = "opentelemetry")]
mod otel {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_headers_are_read_strictly() {
        let good = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            from_traceparent(good).map(|id| id.to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            &b""[..],
            b"garbage",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"\xff\xfe",
        ] {
            assert_eq!(
                from_traceparent(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A later version may carry more fields.
        let later = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(from_traceparent(later).is_some());
    }
}
