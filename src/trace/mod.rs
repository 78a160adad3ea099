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

#[cfg(feature = "opentelemetry")]
mod otel;
mod traceparent;

#[cfg(feature = "opentelemetry")]
pub(crate) use self::otel::{current, join_caller, of};
#[cfg_attr(not(feature = "opentelemetry"), allow(unused_imports))]
pub(crate) use self::traceparent::{TRACEPARENT, from_traceparent};

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

pub(super) fn digit(byte: u8) -> Option<u8> {
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
