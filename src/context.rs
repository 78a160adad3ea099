//! What a [`ServerErrorHandler`](crate::ServerErrorHandler) knows about the failed request:
//! [`ErrorContext`] and [`ErrorKind`].

use std::fmt;

use axum::http::Method;

use crate::trace::TraceId;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The handler returned an [`Error`](crate::Error).
    Error,
    /// The handler (or the service, in `call` or in its future) panicked.
    Panic,
    /// The inner service returned `Err` (a service error, as opposed to an error response).
    Service,
    /// The response was a 5xx that carried no cause: the handler, or the application's own error
    /// type, built it. Attach the cause with
    /// [`ResponseExt::with_cause`](crate::ResponseExt::with_cause) to make it an [`Error`](Self::Error).
    /// For a gRPC call: a server-error `grpc-status` without a source.
    Status,
    /// The response body failed while it streamed, after the head was sent: it yielded an error
    /// (a panic while it is polled is a [`Panic`](Self::Panic)). The client got a truncated
    /// response: HTTP/1 closes the connection, HTTP/2 resets the stream.
    Body,
    /// A task the request handed to `tokio::spawn` (or `spawn_blocking`) with
    /// [`TaskExt::reported`](crate::TaskExt::reported) returned `Err`, after its response may have
    /// been sent: there is no response to render.
    Task,
    /// Such a task panicked; or, with [`count_stray_panics`](crate::count_stray_panics), any
    /// panic outside a request and a reported task.
    TaskPanic,
}

impl ErrorKind {
    /// The label value used in logs and metrics: `error`, `panic`, `service`, `status`, `body`,
    /// `task` or `task_panic`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Panic => "panic",
            Self::Service => "service",
            Self::Status => "status",
            Self::Body => "body",
            Self::Task => "task",
            Self::TaskPanic => "task_panic",
        }
    }

    /// Whether the failure is a spawned task's ([`Task`](Self::Task), [`TaskPanic`](Self::TaskPanic)):
    /// it has no response of its own, and no status.
    pub const fn is_task(self) -> bool {
        matches!(self, Self::Task | Self::TaskPanic)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request an error belongs to, as the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) saw it.
///
/// ```
/// use axum::http::Method;
/// use unhandled::{ErrorContext, ErrorKind};
///
/// let context = ErrorContext::new(&Method::GET, "/users/7", Some("/users/{id}"), ErrorKind::Error);
/// assert_eq!(context.route_label(), "/users/{id}");
/// assert_eq!(context.method_label(), "GET");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    method: &'a Method,
    path: &'a str,
    route: Option<&'a str>,
    kind: ErrorKind,
    grpc: bool,
    /// The query, as the layer kept it (cut with the path).
    query: Option<&'a str>,
    /// Where the route label was taken from the path the client sent (a gRPC method): the label
    /// the application declared, used once such labels' budget is spent.
    declared: Option<Option<&'a str>>,
    spawned_at: Option<&'static std::panic::Location<'static>>,
    #[cfg(feature = "opentelemetry")]
    trace_id: Option<TraceId>,
}

impl<'a> ErrorContext<'a> {
    /// A context for a request; the layer makes these, tests and custom layers may too.
    pub fn new(method: &'a Method, path: &'a str, route: Option<&'a str>, kind: ErrorKind) -> Self {
        Self {
            method,
            path,
            route,
            kind,
            grpc: false,
            query: None,
            declared: None,
            spawned_at: None,
            #[cfg(feature = "opentelemetry")]
            trace_id: None,
        }
    }

    /// This context, with the request's query.
    pub(crate) fn with_query(self, query: Option<&'a str>) -> Self {
        Self { query, ..self }
    }

    /// The request's query, as the client sent it (secrets included: a report redacts it), cut
    /// with the path; `None` without one.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// This context labelled by `route`, taken from the path the client sent, the route it had
    /// being the one the application declared.
    pub(crate) fn with_route_from_path(self, route: &'a str) -> Self {
        Self {
            route: Some(route),
            declared: Some(self.route),
            ..self
        }
    }

    /// Whether the route label was taken from the path the client sent.
    pub(crate) fn route_is_from_path(&self) -> bool {
        self.declared.is_some()
    }

    /// This context with the route the application declared (its template, or none).
    pub(crate) fn declared(self) -> Self {
        Self {
            route: self.declared.unwrap_or(self.route),
            declared: None,
            ..self
        }
    }

    /// This context, marked as a gRPC call's when `grpc` is true.
    ///
    /// ```
    /// use axum::http::Method;
    /// use unhandled::{ErrorContext, ErrorKind};
    ///
    /// let path = "/grpc.health.v1.Health/Check";
    /// let context = ErrorContext::new(&Method::POST, path, Some(path), ErrorKind::Panic).with_grpc(true);
    /// assert!(context.is_grpc());
    /// ```
    #[must_use]
    pub fn with_grpc(self, grpc: bool) -> Self {
        Self { grpc, ..self }
    }

    /// Whether the request is a gRPC call to be answered as one: a `POST` with `content-type:
    /// application/grpc` or `application/grpc+…`, to a route of a service's shape
    /// (`/package.Service/{*rest}`, as tonic registers) or to no route of the router (the layer
    /// outside it). Its response must then be a gRPC status, not an HTTP error page. A client
    /// that says it is gRPC to any other route is answered in HTTP, with a 5xx that monitoring
    /// sees. Where the answer carried a server-error `grpc-status`, [`route`](Self::route) is the
    /// call's method, `/package.Service/Method`.
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// This context, naming the trace the request belongs to (kept with the cargo feature
    /// `opentelemetry` only; without it a context names no trace).
    #[must_use]
    pub fn with_trace_id(self, trace_id: Option<TraceId>) -> Self {
        #[cfg(feature = "opentelemetry")]
        return Self { trace_id, ..self };
        #[cfg(not(feature = "opentelemetry"))]
        {
            let _ = trace_id;
            self
        }
    }

    /// The trace the failing request belongs to, when the cargo feature `opentelemetry` is on:
    /// from the OpenTelemetry context of the span it ran in (a `LoggingLayer` outside the error
    /// handler, tower-http's `TraceLayer` with tracing-opentelemetry, any other), else from its
    /// W3C `traceparent` header. `None` without the feature, or when neither exists.
    pub fn trace_id(&self) -> Option<TraceId> {
        #[cfg(feature = "opentelemetry")]
        return self.trace_id;
        #[cfg(not(feature = "opentelemetry"))]
        None
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request path, without the query. A path longer than 80 bytes is cut and ends in `…`:
    /// the layer keeps it in the response future, which every request moves. For a spawned
    /// task's failure ([`is_task`](Self::is_task)), the route: a task keeps no path.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The matched route template (axum's `MatchedPath`, such as `/users/{id}`), if a route matched.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// Where the error came from.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the failure is a spawned task's ([`ErrorKind::Task`], [`ErrorKind::TaskPanic`]):
    /// its response, if it had one, was sent without it, and what a handler returns is dropped.
    pub fn is_task(&self) -> bool {
        self.kind.is_task()
    }

    /// Where the failing task was spawned ([`TaskExt::reported`](crate::TaskExt::reported)'s
    /// caller); `None` for a request's own failure.
    pub fn spawned_at(&self) -> Option<&'static std::panic::Location<'static>> {
        self.spawned_at
    }

    /// This context, for a task spawned at `site`.
    pub(crate) fn with_spawned_at(self, site: &'static std::panic::Location<'static>) -> Self {
        Self {
            spawned_at: Some(site),
            ..self
        }
    }

    /// The route as a bounded label: the template, or `unmatched`. Never the raw path.
    pub fn route_label(&self) -> &'a str {
        self.route.unwrap_or("unmatched")
    }

    /// The method as a bounded label: the standard methods by name, any other as `_OTHER`
    /// (the OpenTelemetry convention).
    pub fn method_label(&self) -> &'static str {
        method_label(self.method)
    }
}

/// `method` in a byte, as a task keeps it: the index of the standard method, one past them for
/// any other ([`method_at`] gives it back).
///
/// A `match`, which compiles to one jump on the method's variant, where a search of [`LABELS`]
/// compares each in turn. Its order is `LABELS`' (a test checks it).
#[inline]
pub(crate) fn method_index(method: &Method) -> u8 {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => OTHER_INDEX,
    }
}

/// The index [`method_index`] gives a method outside the standard ones.
const OTHER_INDEX: u8 = LABELS.len() as u8;

/// The method a task kept ([`method_index`]): the standard one, else `_OTHER`.
pub(crate) fn method_at(index: u8) -> &'static Method {
    LABELS
        .get(usize::from(index))
        .map_or(&OTHER_METHOD, |(method, _)| method)
}

/// The method of a failure outside any request: none of the standard ones, so its label is
/// `_OTHER`.
pub(crate) static OTHER_METHOD: std::sync::LazyLock<Method> =
    std::sync::LazyLock::new(|| Method::from_bytes(b"_OTHER").expect("a token"));

/// The bounded label of `method`: the nine standard methods by name, any other `_OTHER`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    LABELS
        .get(usize::from(method_index(method)))
        .map_or("_OTHER", |(_, label)| label)
}

/// The nine standard methods and their labels.
static LABELS: [(Method, &str); 9] = [
    (Method::GET, "GET"),
    (Method::POST, "POST"),
    (Method::PUT, "PUT"),
    (Method::DELETE, "DELETE"),
    (Method::PATCH, "PATCH"),
    (Method::HEAD, "HEAD"),
    (Method::OPTIONS, "OPTIONS"),
    (Method::CONNECT, "CONNECT"),
    (Method::TRACE, "TRACE"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_index_is_its_place_in_the_labels_and_gives_it_back() {
        for (index, (method, label)) in (0u8..).zip(&LABELS) {
            assert_eq!(method_index(method), index, "{label}");
            assert_eq!(method_at(index), method);
            assert_eq!(method_label(method), *label);
        }
        let other = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_index(&other), OTHER_INDEX);
        assert_eq!(method_label(&other), "_OTHER");
        assert_eq!(method_at(OTHER_INDEX), &*OTHER_METHOD);
    }
}
