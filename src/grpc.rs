//! gRPC (tonic): which request is one, which status its response carries, and how a failure is
//! answered so that a gRPC client can read it.
//!
//! A gRPC response is an HTTP `200` whatever happened; its outcome is the `grpc-status` it
//! carries, in its headers (Trailers-Only: a handler's `Err(Status)`) or in the trailers that end
//! its body (a stream's `Err`, and every success). A status is a failure when it is one of the six
//! codes OpenTelemetry's server conventions call errors: `UNKNOWN`, `DEADLINE_EXCEEDED`,
//! `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS` ([`is_server_error`]). One exception:
//! an `UNIMPLEMENTED` without a message is tonic's own answer to a method or service it does not
//! serve, before any handler ran; the client asked for something that is not there.
//!
//! The route of a gRPC request is its method, `/package.Service/Method` ([`method_route`]), only
//! when the server answered it as gRPC ([`is_answer`]) with a server-error status, and the router
//! routed it to a catch-all of a service's shape ([`routes_service`]: tonic registers
//! `/package.Service/{*rest}`) or to no route (the layer runs outside the router, where tonic
//! answers only the methods it serves with a status of their own). A client chose that path, so
//! the groups give such labels a budget of their own. Any other failure keeps its route template,
//! or `unmatched`.
//!
//! Reading a status needs no tonic: the code and message are headers. With the cargo feature
//! `tonic`, the `tonic::Status` a handler's error response carries in its extensions gives the
//! failure its source chain.

use std::{error::Error as StdError, fmt};

use axum::{
    body::Body,
    http::{
        Extensions, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode,
        header,
    },
};

use crate::error::Error;
#[cfg(feature = "tonic")]
use crate::error::text_of;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/grpc");

/// `UNIMPLEMENTED`.
const UNIMPLEMENTED: u32 = 12;

/// Whether `request` is a gRPC call: a `POST` whose `content-type` is `application/grpc` or
/// `application/grpc+…` (`+proto`, `+json`). Any other request pays one method comparison.
pub(crate) fn is_grpc<B>(request: &Request<B>) -> bool {
    request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| is_grpc_content_type(value.as_bytes()))
}

/// Whether a response with `headers` is a gRPC answer: its `content-type` is gRPC's.
pub(crate) fn is_answer(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| is_grpc_content_type(value.as_bytes()))
}

fn is_grpc_content_type(value: &[u8]) -> bool {
    matches!(
        value.strip_prefix(b"application/grpc"),
        Some([] | [b'+' | b';', ..])
    )
}

/// Whether `code` is a server error: the six codes OpenTelemetry's gRPC server conventions say
/// SHOULD be considered errors, and the six Armeria maps to a 5xx.
pub(crate) fn is_server_error(code: u32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// The canonical name of a gRPC status code (`INTERNAL`); `UNKNOWN_CODE` for a code outside 0-16.
pub(crate) fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|index| NAMES.get(index))
        .copied()
        .unwrap_or("UNKNOWN_CODE")
}

/// The `grpc-status` in `headers` (a response's headers, or its trailers), if any.
pub(crate) fn code_in(headers: &HeaderMap) -> Option<u32> {
    let value = headers.get(GRPC_STATUS)?;
    std::str::from_utf8(value.as_bytes())
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `headers` carry tonic's answer to a method or service it does not serve:
/// `UNIMPLEMENTED` without a message, before any handler ran.
pub(crate) fn is_not_served(headers: &HeaderMap) -> bool {
    code_in(headers) == Some(UNIMPLEMENTED) && message_in(headers).is_empty()
}

/// The `grpc-message` in `headers`, percent-decoded (gRPC's encoding of it); empty when there is
/// none.
fn message_in(headers: &HeaderMap) -> String {
    let Some(value) = headers.get(GRPC_MESSAGE) else {
        return String::new();
    };
    percent_encoding::percent_decode(value.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

/// The failure a gRPC response's status is, read from `headers` (its headers or its trailers),
/// for a response that had the HTTP status `status`: `None` for `OK`, a client error, no status
/// at all, or [`is_not_served`]. Its [`returned_kind`](Error::returned_kind) is `Error` when
/// `extensions` hold a `tonic::Status` with a source (feature `tonic`), else `Status`.
pub(crate) fn failure_in(
    status: StatusCode,
    headers: &HeaderMap,
    extensions: Option<&Extensions>,
) -> Option<Error> {
    let code = code_in(headers)?;
    if !is_server_error(code) || is_not_served(headers) {
        return None;
    }
    let failed = GrpcStatus::new(code, message_in(headers), extensions);
    Some(match failed.has_source() {
        true => Error::from_parts(status, Some(Box::new(failed))),
        false => Error::status_only(status, Box::new(failed)),
    })
}

/// Puts the failure that a gRPC call's response says in its headers (Trailers-Only: a handler's
/// `Err(Status)`) into its extensions as an [`Error`], unless one is there: from then on it is a
/// failure as a handler's returned error is, for the error handler and the logging layer alike.
pub(crate) fn attach_failure<B>(response: &mut Response<B>) {
    if response.extensions().get::<Error>().is_some() {
        return;
    }
    let extensions = Some(response.extensions());
    if let Some(error) = failure_in(response.status(), response.headers(), extensions) {
        response.extensions_mut().insert(error);
    }
}

/// The answer to a failure of a gRPC call that has no response of its own (a panic, a service
/// error): HTTP `200`, `content-type: application/grpc`, and in the headers (Trailers-Only)
/// `grpc-status: 13` (`INTERNAL`; `14`, `UNAVAILABLE`, for a service that was not ready) and a
/// `grpc-message` that says nothing of the error.
pub(crate) fn render(status: StatusCode) -> Response<Body> {
    let (code, message) = if status == StatusCode::SERVICE_UNAVAILABLE {
        ("14", "Service Unavailable")
    } else {
        ("13", "Internal Server Error")
    };
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, GRPC_CONTENT_TYPE);
    headers.insert(GRPC_STATUS, HeaderValue::from_static(code));
    headers.insert(GRPC_MESSAGE, HeaderValue::from_static(message));
    response
}

/// `/package.Service/Method` when `path` has that shape (what a gRPC method's path is), else
/// `None`: the route label of a gRPC request.
pub(crate) fn method_route(path: &str) -> Option<&str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let word = |text: &str, dots: bool| {
        !text.is_empty()
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || (dots && byte == b'.'))
    };
    (word(service, true) && word(method, false)).then_some(path)
}

/// Whether `template`, the route the router matched for `path`, is the catch-all tonic registers
/// for a service (`/package.Service/{*rest}`) and names the service of `path`: the router routed
/// the call to a service the application serves.
pub(crate) fn routes_service(template: &str, path: &str) -> bool {
    let Some((service, rest)) = template.strip_prefix('/').and_then(|t| t.split_once('/')) else {
        return false;
    };
    let catch_all = rest.starts_with("{*") && rest.ends_with('}');
    let literal = !service.is_empty() && !service.contains(['{', '}']);
    let names = path
        .strip_prefix('/')
        .and_then(|path| path.strip_prefix(service))
        .is_some_and(|method| method.starts_with('/'));
    catch_all && literal && names
}

/// The service and the method of a gRPC method's path: `("package.Service", "Method")`.
pub(crate) fn service_and_method(path: &str) -> Option<(&str, &str)> {
    method_route(path)?.strip_prefix('/')?.split_once('/')
}

/// The cause of a gRPC server-error status: its code and message, and with the feature `tonic`
/// the `tonic::Status` a handler returned, whose source it hands on.
pub(crate) struct GrpcStatus {
    code: u32,
    message: String,
    /// Whether the message only repeats the source (`Status::from_error`): left out then.
    repeats_source: bool,
    #[cfg(feature = "tonic")]
    status: Option<tonic::Status>,
}

impl GrpcStatus {
    fn new(code: u32, message: String, extensions: Option<&Extensions>) -> Self {
        #[cfg(feature = "tonic")]
        {
            let status = extensions
                .and_then(|extensions| extensions.get::<tonic::Status>())
                .filter(|status| StdError::source(*status).is_some())
                .cloned();
            let repeats_source = status
                .as_ref()
                .and_then(|status| StdError::source(status))
                .is_some_and(|source| text_of(source) == message);
            Self {
                code,
                message,
                repeats_source,
                status,
            }
        }
        #[cfg(not(feature = "tonic"))]
        {
            let _ = extensions;
            Self {
                code,
                message,
                repeats_source: false,
            }
        }
    }

    fn has_source(&self) -> bool {
        StdError::source(self).is_some()
    }

    /// Whether `error`'s cause is a gRPC status.
    pub(crate) fn is_in(error: &Error) -> bool {
        error.cause().is_some_and(<dyn StdError>::is::<Self>)
    }
}

impl fmt::Display for GrpcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gRPC status {} ({})", code_name(self.code), self.code)?;
        if !self.message.is_empty() && !self.repeats_source {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl fmt::Debug for GrpcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStatus")
            .field("code", &self.code)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl StdError for GrpcStatus {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        #[cfg(feature = "tonic")]
        return self.status.as_ref().and_then(|status| status.source());
        #[cfg(not(feature = "tonic"))]
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_message_is_percent_decoded_and_a_stray_percent_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(
            GRPC_MESSAGE,
            HeaderValue::from_static("caf%C3%A9 at 100%25 %zz%"),
        );
        assert_eq!(message_in(&headers), "café at 100% %zz%");
        headers.insert(GRPC_MESSAGE, HeaderValue::from_static("%FF"));
        assert_eq!(message_in(&headers), "\u{fffd}");
    }
    use crate::context::ErrorKind;

    #[test]
    fn grpc_content_types_and_only_those() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc;charset=x",
        ] {
            assert!(is_grpc_content_type(yes.as_bytes()), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/json",
            "application/grpcx",
            "",
        ] {
            assert!(!is_grpc_content_type(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn method_routes_have_the_shape_of_a_method_and_nothing_else() {
        assert_eq!(
            method_route("/grpc.health.v1.Health/Check"),
            Some("/grpc.health.v1.Health/Check")
        );
        for no in [
            "/", "/a", "/a/", "//b", "/a/b/c", "/a/b.c", "/a b/c", "/é/x", "/a/b…",
        ] {
            assert_eq!(method_route(no), None, "{no}");
        }
    }

    #[test]
    fn a_failure_is_answered_as_internal_or_unavailable_and_says_nothing_of_itself() {
        let panic = render(StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(panic.status(), StatusCode::OK);
        assert_eq!(panic.headers()[header::CONTENT_TYPE], "application/grpc");
        assert_eq!(panic.headers()[GRPC_STATUS], "13");
        assert_eq!(panic.headers()[GRPC_MESSAGE], "Internal Server Error");
        // A service that was not ready (the error handler's 503).
        assert_eq!(
            render(StatusCode::SERVICE_UNAVAILABLE).headers()[GRPC_STATUS],
            "14"
        );
    }

    #[test]
    fn the_status_and_its_percent_encoded_message_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static("13"));
        headers.insert(GRPC_MESSAGE, HeaderValue::from_static("caf%C3%A9 down%2"));
        let error = failure_in(StatusCode::OK, &headers, None).unwrap();
        assert_eq!(error.returned_kind(), ErrorKind::Status);
        assert_eq!(error.to_string(), "gRPC status INTERNAL (13): café down%2");
        headers.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        assert!(failure_in(StatusCode::OK, &headers, None).is_none());
        // tonic's answer to an unknown method: no message.
        let mut unknown = HeaderMap::new();
        unknown.insert(GRPC_STATUS, HeaderValue::from_static("12"));
        assert!(is_not_served(&unknown));
        assert!(failure_in(StatusCode::OK, &unknown, None).is_none());
        unknown.insert(GRPC_MESSAGE, HeaderValue::from_static("not yet"));
        assert!(failure_in(StatusCode::OK, &unknown, None).is_some());
    }
}
