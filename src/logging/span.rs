//! The request span: an OpenTelemetry HTTP server span, as Zipkin-based APMs need it.
//!
//! `otel.kind` and `otel.name` are set when the span is created (tracing-opentelemetry ignores them
//! later); every other field is declared then too, and filled in when known. Numbers are recorded
//! as `i64`: tracing-opentelemetry exports a `u64` as a string.

use std::{fmt, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request},
    http::{StatusCode, Version, header},
};
use tracing::{Level, Span, field, level_filters::LevelFilter};

use super::TARGET;
use crate::{
    context::ErrorKind,
    error::Error,
    head::MAX_METHOD,
    level::span_at,
    text::{Escaped, Redacted, cut_at},
};

/// What the span records of the query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query {
    /// Whether `url.query` is recorded at all.
    pub(crate) recorded: bool,
    /// Keys whose values are `REDACTED`, beside [`REDACTED_KEYS`](crate::text::REDACTED_KEYS).
    pub(crate) redacted: &'static [Box<str>],
}

/// The longest gRPC method path a span is named after; a longer one gets an HTTP span.
const MAX_RPC_NAME: usize = 128;

/// Opens the span for `request` at `level`.
pub(crate) fn open<B>(level: Level, query: Query, request: &Request<B>) -> Span {
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
    if let Some(name) = rpc_name(request, route) {
        return open_rpc(level, request, name, peer, user_agent);
    }
    // The conventions: a method outside the standard ones is `_OTHER`, named `HTTP`, and kept
    // (cut) as `http.request.method_original`; a client cannot make up span names.
    let label = crate::context::method_label(method);
    let original = (label == "_OTHER").then(|| cut_at(method.as_str(), MAX_METHOD));
    let keys = query.redacted;
    let query = uri.query().filter(|_| query.recorded);
    let query = query.map(|query| field::display(Redacted { query, keys }));
    let span = span_at!(
        target: TARGET,
        level,
        "request",
        otel.kind = "server",
        otel.name = %SpanName { label, route },
        http.request.method = field::display(label),
        http.request.method_original = original.map(field::display),
        http.route = route.map(|route| field::display(Escaped(route))),
        url.path = field::display(Escaped(uri.path())),
        url.query = query,
        url.scheme = field::display(uri.scheme_str().unwrap_or("http")),
        network.protocol.version = field::display(protocol_version(request.version())),
        // A client's free text, spaces included: `fmt` quotes a `&str`.
        user_agent.original = user_agent,
        client.address = peer.map(|peer| field::display(peer.ip())),
        client.port = peer.map(|peer| i64::from(peer.port())),
        network.peer.address = peer.map(|peer| field::display(peer.ip())),
        network.peer.port = peer.map(|peer| i64::from(peer.port())),
        net.peer.ip = peer.map(|peer| field::display(peer.ip())),
        net.peer.port = peer.map(|peer| i64::from(peer.port())),
        http.response.status_code = field::Empty,
        error.type = field::Empty,
        exception.r#type = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    );
    #[cfg(feature = "opentelemetry")]
    crate::trace::join_caller(&span, request.headers());
    span
}

/// The name of the RPC span of `request`, `package.Service/Method`, when it is a gRPC call to a
/// method path of at most [`MAX_RPC_NAME`] bytes that the router routed to a service
/// ([`routes_service`](crate::grpc::routes_service)), or that no route of this router matched
/// (the layer runs outside the router: tonic's `Server::builder().layer(..)`). Any other
/// request that only says it is gRPC gets an HTTP span, named after its route.
fn rpc_name<'a, B>(request: &'a Request<B>, route: Option<&str>) -> Option<&'a str> {
    if !crate::grpc::is_grpc(request) {
        return None;
    }
    let path = request.uri().path();
    let routed = route.is_none_or(|route| crate::grpc::routes_service(route, path));
    let method = crate::grpc::method_route(path).filter(|path| path.len() <= MAX_RPC_NAME);
    method.filter(|_| routed).map(|path| &path[1..])
}

/// The span of a gRPC call, after OpenTelemetry's RPC conventions: `otel.name` is
/// `package.Service/Method` ([`rpc_name`]), `rpc.system` `grpc`, `rpc.service` and `rpc.method`
/// the two parts of the path (`rpc.method` is recorded at the end: `_OTHER` when tonic did not
/// serve the method), the status code recorded at the end ([`close_rpc`]).
fn open_rpc<B>(
    level: Level,
    request: &Request<B>,
    name: &str,
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
        otel.name = name,
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
        error.type = field::Empty,
        exception.r#type = field::Empty,
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

/// Records the response status of a request that did not fail.
pub(crate) fn close(span: &Span, status: StatusCode) {
    span.record("http.response.status_code", i64::from(status.as_u16()));
}

/// Records a failure of `kind`: the response status when there was one, the error status with
/// `description` (already cut to its bound), `error.type`, and `exception.type` where the error
/// `origin` names its cause's type.
pub(crate) fn failed(
    span: &Span,
    status: Option<StatusCode>,
    kind: ErrorKind,
    grpc_status: Option<u32>,
    description: &str,
    origin: Option<&Error>,
) {
    if let Some(type_name) = origin.and_then(Error::type_name) {
        span.record("exception.type", type_name);
    }
    if let Some(status) = status {
        span.record("http.response.status_code", i64::from(status.as_u16()));
    }
    span.record("otel.status_code", "error");
    span.record("otel.status_description", description);
    // The conventions' low-cardinality type: a gRPC server-error code's name, else `panic` (which
    // says more than the 500 that answers it), else a 5xx status code, else (no status, or a body
    // that failed after a success head) the failure's kind.
    match grpc_status.filter(|&code| crate::grpc::is_server_error(code)) {
        Some(code) => span.record("error.type", crate::grpc::code_name(code)),
        None if kind == ErrorKind::Panic => span.record("error.type", kind.as_str()),
        None => match status.filter(StatusCode::is_server_error) {
            Some(status) => span.record("error.type", status.as_str()),
            None => span.record("error.type", kind.as_str()),
        },
    };
}

/// `GET /users/{id}`: the method's label (`HTTP` for one outside the standard ones) and the route
/// template, or the label alone when no route matched (never the raw path, whose cardinality is
/// unbounded).
struct SpanName<'a> {
    label: &'a str,
    route: Option<&'a str>,
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = match self.label {
            "_OTHER" => "HTTP",
            label => label,
        };
        match self.route {
            Some(route) => write!(f, "{method} {route}"),
            None => f.write_str(method),
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
