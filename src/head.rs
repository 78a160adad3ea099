//! The part of a request the layers keep until the response: method, path and route.
//!
//! It is captured on every request but read only when something fails, so capturing must cost
//! neither an allocation nor a write to memory other threads use. Cloning the `Uri` can allocate
//! (a `Bytes` made from a `Vec` allocates on its first clone) and cloning `MatchedPath` bumps a
//! reference count that every request to that route shares, so both are copied by value into one
//! small buffer inside the response future instead. The buffer is small because the future is
//! moved (and boxed by axum) on every request: each byte of it is copied on the success path.

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
};

use crate::context::{ErrorContext, ErrorKind};

/// Bytes kept for the route template and the path together.
pub(crate) const INLINE: usize = 96;
/// Bytes of path always kept: a longer route template is shared instead of copied.
pub(crate) const PATH_MIN: usize = 32;

const ELLIPSIS: &str = "…";

pub(crate) struct RequestHead {
    method: Method,
    /// The route template (when inline) followed by the path.
    bytes: [u8; INLINE],
    route_len: u8,
    path_len: u8,
    /// Whether a route matched: its template is the first `route_len` bytes of `bytes`, or
    /// `shared` when it is too long for them. (A flag and an `Option` rather than a three-way
    /// enum: the flag fits in padding, the enum would not.)
    matched: bool,
    /// Whether the application logged its own failure while the error handler served the
    /// request ([`unhandled::subscriber`](crate::subscriber)), in any call or poll so far: kept
    /// here, in padding, rather than in the response future, which each byte makes costlier to move.
    app_logged: bool,
    /// Whether the request is a gRPC call ([`grpc::is_grpc`]): its failures are answered as gRPC.
    grpc: bool,
    /// Whether the router routed the gRPC call to a service ([`grpc::routes_service`]): its route
    /// is its method, taken from the path, whose service part the application registered.
    by_method: bool,
    shared: Option<MatchedPath>,
    /// The trace id of the request's `traceparent` header; zeros when there is none (no valid
    /// trace id is all zeros, and the bytes keep the head at 160 bytes where an `Option` would not).
    #[cfg(feature = "opentelemetry")]
    traceparent: [u8; 16],
}

impl RequestHead {
    #[inline]
    pub(crate) fn capture<B>(request: &Request<B>) -> Self {
        let mut bytes = [0; INLINE];
        let grpc = crate::grpc::is_grpc(request);
        let path = request.uri().path();
        let mut matched = request.extensions().get::<MatchedPath>();
        // A gRPC call routed to a service's catch-all (`/package.Service/{*rest}`) is labelled by
        // its method instead, and its path gets the whole buffer. A request that only says it is
        // gRPC keeps its template: the client chose its path, not the application.
        let by_method = grpc
            && path.len() <= INLINE
            && matched.is_some_and(|route| crate::grpc::routes_service(route.as_str(), path));
        if by_method {
            matched = None;
        }
        let (shared, route_len) = match matched {
            None => (None, 0),
            Some(matched) if matched.as_str().len() <= INLINE - PATH_MIN => {
                let template = matched.as_str().as_bytes();
                bytes[..template.len()].copy_from_slice(template);
                (None, template.len())
            }
            Some(matched) => (Some(matched.clone()), 0),
        };
        let path_len = copy_cut(path, &mut bytes[route_len..]);
        Self {
            method: request.method().clone(),
            bytes,
            // Both fit in a byte: together they are at most `INLINE`.
            route_len: u8::try_from(route_len).unwrap_or(0),
            path_len: u8::try_from(path_len).unwrap_or(0),
            matched: matched.is_some(),
            app_logged: false,
            grpc,
            by_method,
            shared,
            #[cfg(feature = "opentelemetry")]
            traceparent: request
                .headers()
                .get(crate::trace::TRACEPARENT)
                .and_then(|value| crate::trace::from_traceparent(value.as_bytes()))
                .map_or([0; 16], crate::TraceId::to_bytes),
        }
    }

    /// The request method.
    pub(crate) fn method(&self) -> &Method {
        &self.method
    }

    /// This head, leaving an empty one in its place (of a request that is done with it), and
    /// forgetting what the application logged so far: the response body that takes it starts
    /// anew, since nothing logged before a successful head was about the body's failure.
    pub(crate) fn take(&mut self) -> Self {
        let empty = Self {
            method: Method::GET,
            bytes: [0; INLINE],
            route_len: 0,
            path_len: 0,
            matched: false,
            app_logged: false,
            grpc: false,
            by_method: false,
            shared: None,
            #[cfg(feature = "opentelemetry")]
            traceparent: [0; 16],
        };
        let mut head = std::mem::replace(self, empty);
        head.app_logged = false;
        head
    }

    /// Whether the request is a gRPC call.
    pub(crate) fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// Whether the application logged its own failure during the request so far.
    pub(crate) fn app_logged(&self) -> bool {
        self.app_logged
    }

    /// Records that the application logged during one of the request's calls or polls.
    pub(crate) fn set_app_logged(&mut self, logged: bool) {
        self.app_logged |= logged;
    }

    /// The trace the failing request belongs to: the OpenTelemetry context of the span in force
    /// (with the feature `opentelemetry`), else its `traceparent` header. Read on failure only.
    pub(crate) fn trace_id(&self) -> Option<crate::TraceId> {
        #[cfg(feature = "opentelemetry")]
        return crate::trace::current().or_else(|| crate::TraceId::from_bytes(self.traceparent));
        #[cfg(not(feature = "opentelemetry"))]
        None
    }

    /// The context of a failure of `kind`. `answered` says that the response carried a
    /// `grpc-status`: a gRPC call that no route of this router matched (the layer runs outside
    /// the router, as with tonic's `Server::builder().layer(..)`) is then labelled by its method,
    /// since tonic answers only the methods it serves with a status of their own (it answers the
    /// others `UNIMPLEMENTED` without a message, [`grpc::is_not_served`], which is never a failure).
    /// Any other failure of such a call (a panic, a service error) is `unmatched`.
    pub(crate) fn context(&self, kind: ErrorKind, answered: bool) -> ErrorContext<'_> {
        let route_len = usize::from(self.route_len);
        let end = route_len + usize::from(self.path_len);
        // Always valid, and `route_len` a character boundary: copied from whole `str`s cut at
        // character boundaries. One check covers route and path.
        let text = std::str::from_utf8(&self.bytes[..end]).unwrap_or_default();
        let (inline_route, path) = text.split_at_checked(route_len).unwrap_or_default();
        let unrouted_answer = self.grpc && answered && !self.matched;
        let route = match &self.shared {
            _ if self.by_method || unrouted_answer => crate::grpc::method_route(path),
            Some(shared) => Some(shared.as_str()),
            None => self.matched.then_some(inline_route),
        };
        ErrorContext::new(&self.method, path, route, kind).with_grpc(self.grpc)
    }
}

/// Copies `text` into `into`, cut at a character boundary and ended with `…` when it does not
/// fit; the number of bytes written.
#[inline]
fn copy_cut(text: &str, into: &mut [u8]) -> usize {
    if text.len() <= into.len() {
        into[..text.len()].copy_from_slice(text.as_bytes());
        return text.len();
    }
    let mut end = into.len() - ELLIPSIS.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    into[..end].copy_from_slice(&text.as_bytes()[..end]);
    into[end..end + ELLIPSIS.len()].copy_from_slice(ELLIPSIS.as_bytes());
    end + ELLIPSIS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(path: &str) -> RequestHead {
        RequestHead::capture(&Request::get(path).body(()).unwrap())
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary_and_marked() {
        let long = format!("/{}", "é".repeat(200));
        let head = head(&long);
        let cut = head.context(ErrorKind::Error, false).path();
        assert!(cut.len() <= INLINE);
        assert!(cut.ends_with('…'));
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }

    #[test]
    fn short_paths_are_kept_whole_and_unmatched_has_no_route() {
        let head = head("/ok");
        let context = head.context(ErrorKind::Error, false);
        assert_eq!((context.path(), context.route()), ("/ok", None));
    }

    #[test]
    fn the_head_stays_small() {
        // It is copied with the response future on every request.
        assert!(
            std::mem::size_of::<RequestHead>() <= 160,
            "{}",
            std::mem::size_of::<RequestHead>()
        );
    }
}
