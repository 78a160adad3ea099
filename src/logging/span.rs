//! The request span: an OpenTelemetry HTTP server span, as Zipkin-based APMs need it.
//!
//! `otel.kind` and `otel.name` are set when the span is created (tracing-opentelemetry ignores them
//! later); every other field is declared then too, and filled in when known. Numbers are recorded
//! as `i64`: tracing-opentelemetry exports a `u64` as a string.

use std::{fmt, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{Method, StatusCode, Version, header},
};
use tracing::{Level, Span, field, level_filters::LevelFilter};

use super::TARGET;
use crate::level::span_at;

/// Opens the span for `request` at `level`.
pub(crate) fn open<B>(level: Level, request: &Request<B>) -> Span {
    // Above every subscriber's level: skip even the lookups the fields need.
    if LevelFilter::current() < level {
        return Span::none();
    }
    let method = request.method();
    let uri = request.uri();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    if crate::grpc::is_grpc(request) {
        return open_rpc(level, request, peer, user_agent);
    }
    let span = span_at!(
        target: TARGET,
        level,
        "request",
        otel.kind = "server",
        otel.name = %SpanName { method, route },
        http.request.method = method.as_str(),
        http.route = route,
        url.path = uri.path(),
        url.query = uri.query(),
        url.scheme = uri.scheme_str().unwrap_or("http"),
        network.protocol.version = protocol_version(request.version()),
        user_agent.original = user_agent,
        client.address = peer.map(|peer| field::display(peer.ip())),
        client.port = peer.map(|peer| i64::from(peer.port())),
        network.peer.address = peer.map(|peer| field::display(peer.ip())),
        network.peer.port = peer.map(|peer| i64::from(peer.port())),
        net.peer.ip = peer.map(|peer| field::display(peer.ip())),
        net.peer.port = peer.map(|peer| i64::from(peer.port())),
        http.response.status_code = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    );
    #[cfg(feature = "opentelemetry")]
    crate::trace::join_caller(&span, request.headers());
    span
}

/// The span of a gRPC call, after OpenTelemetry's RPC conventions: `otel.name` is
/// `package.Service/Method`, `rpc.system` `grpc`, `rpc.service` and `rpc.method` the two parts of
/// the path (`rpc.method` is recorded at the end: `_OTHER` when tonic did not serve the method),
/// the status code recorded at the end ([`close_rpc`]).
fn open_rpc<B>(
    level: Level,
    request: &Request<B>,
    peer: Option<SocketAddr>,
    user_agent: Option<&str>,
) -> Span {
    let path = request.uri().path();
    let (service, _) = crate::grpc::service_and_method(path).unzip();
    let span = span_at!(
        target: TARGET,
        level,
        "request",
        otel.kind = "server",
        otel.name = path.strip_prefix('/').unwrap_or(path),
        rpc.system = "grpc",
        rpc.system.name = "grpc",
        rpc.service = service,
        rpc.method = field::Empty,
        rpc.grpc.status_code = field::Empty,
        rpc.response.status_code = field::Empty,
        url.path = path,
        network.protocol.version = protocol_version(request.version()),
        user_agent.original = user_agent,
        client.address = peer.map(|peer| field::display(peer.ip())),
        client.port = peer.map(|peer| i64::from(peer.port())),
        network.peer.address = peer.map(|peer| field::display(peer.ip())),
        network.peer.port = peer.map(|peer| i64::from(peer.port())),
        http.response.status_code = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    );
    #[cfg(feature = "opentelemetry")]
    crate::trace::join_caller(&span, request.headers());
    span
}

/// Records the end of a gRPC call in its span: the method (`_OTHER` when `served` is false) and
/// the status `code` (none seen: the call ended without one). [`close`] records the rest.
pub(crate) fn close_rpc(span: &Span, path: &str, served: bool, code: Option<u32>) {
    let method = crate::grpc::service_and_method(path)
        .filter(|_| served)
        .map_or("_OTHER", |(_, method)| method);
    span.record("rpc.method", method);
    if let Some(code) = code {
        span.record("rpc.grpc.status_code", i64::from(code));
        span.record("rpc.response.status_code", crate::grpc::code_name(code));
    }
}

/// Records the response status, and the error status on a failure or a 5xx.
pub(crate) fn close(span: &Span, status: Option<StatusCode>, failure: Option<&str>) {
    if let Some(status) = status {
        span.record("http.response.status_code", i64::from(status.as_u16()));
    }
    let server_error = status.is_some_and(|status| status.is_server_error());
    if failure.is_some() || server_error {
        span.record("otel.status_code", "error");
        match (failure, status) {
            (Some(description), _) => span.record("otel.status_description", description),
            (None, Some(status)) => span.record("otel.status_description", field::display(status)),
            (None, None) => span.record("otel.status_description", "request failed"),
        };
    }
}

/// `GET /users/{id}`: the method and the route template, or the method alone when no route
/// matched (never the raw path, whose cardinality is unbounded).
struct SpanName<'a> {
    method: &'a Method,
    route: Option<&'a str>,
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.route {
            Some(route) => write!(f, "{} {route}", self.method),
            None => fmt::Display::fmt(self.method, f),
        }
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "unknown",
    }
}
