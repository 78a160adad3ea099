//! The part of a request the layers keep until the response: method, path and route.
//!
//! It is captured on every request but read only when something fails, so capturing must cost no
//! allocation and no write that the request does not make anyway:
//! - the method and the route template are cloned. Cloning `MatchedPath` writes its reference
//!   count, which every request to that route shares, but axum wrote it on this request already
//!   (the router clones it into the request's extensions). Cloning a method longer than 15 bytes
//!   allocates, but hyper allocated one for it already, as it parsed it; the usual nine cost
//!   nothing.
//! - the path is copied into a small buffer inside the response future: cloning the `Uri` can
//!   allocate (a `Bytes` made from a `Vec` allocates on its first clone). The buffer is small
//!   because the future is moved (and boxed by axum) on every request, and each of its bytes is
//!   copied then.

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
};

use crate::context::{ErrorContext, ErrorKind};

/// Bytes of path and query kept; a longer one is cut and marked `…`.
pub(crate) const INLINE: usize = 80;
/// The longest method recorded in the logging layer's span (`http.request.method_original`) and
/// end event (`method`); a longer one is cut, without a mark, so that it stays a method.
pub(crate) const MAX_METHOD: usize = 64;

const ELLIPSIS: &str = "…";

/// The request is a gRPC call ([`crate::grpc::is_grpc`]): its failures may be answered as gRPC.
const GRPC: u8 = 1;
/// The router routed the gRPC call to a catch-all of a service's shape
/// ([`crate::grpc::routes_service`]): where the answer is gRPC, its route is its method.
const BY_METHOD: u8 = 2;
/// The response was a gRPC answer (`content-type: application/grpc`), noted when the response of
/// a gRPC call is inspected.
const ANSWER: u8 = 4;

pub(crate) struct RequestHead {
    method: Method,
    /// The route template the router matched, if one did.
    route: Option<MatchedPath>,
    /// The path and the query (`/users/7?limit=-1`): its first `path_len` bytes.
    path: [u8; INLINE],
    path_len: u8,
    /// Where the query starts, its `?` (`path_len` without one): found as the head is made, so
    /// that a failure need not look for it.
    query_at: u8,
    /// Whether the application logged its own failure while the error handler served the
    /// request ([`unhandled::subscriber`](crate::subscriber)), in any call or poll so far: kept
    /// here, in padding, rather than in the response future, which each byte makes costlier to move.
    app_logged: bool,
    /// What the head knows of a gRPC call, in one byte ([`GRPC`], [`BY_METHOD`], [`ANSWER`]).
    grpc: u8,
    /// The trace id of the request's `traceparent` header; zeros when there is none (no valid
    /// trace id is all zeros, and the bytes keep the head smaller than an `Option` would).
    #[cfg(feature = "opentelemetry")]
    traceparent: [u8; 16],
}

impl RequestHead {
    /// Always inlined: out of line, the head is built in the callee's frame and then copied into
    /// the caller's (`benches/where.sh` shows the difference).
    #[inline(always)]
    pub(crate) fn capture<B>(request: &Request<B>) -> Self {
        let grpc = crate::grpc::is_grpc(request);
        // Path and query read once (`Uri::path` would look for them again); an authority-form
        // target (`CONNECT host:443`) has neither.
        let (path, target) = match request.uri().path_and_query() {
            Some(target) => (target.path(), target.as_str()),
            None => ("", ""),
        };
        let route = request.extensions().get::<MatchedPath>();
        // A gRPC call routed to a catch-all of a service's shape (`/package.Service/{*rest}`) may
        // be labelled by its method, when the answer says it is gRPC ([`Self::context`]).
        let by_method =
            grpc && route.is_some_and(|route| crate::grpc::routes_service(route.as_str(), path));
        let mut bytes = [0; INLINE];
        let path_len = copy_cut(target, &mut bytes);
        // A path cut before its query ends with the mark, and has no query.
        let query_at = path.len().min(path_len);
        Self {
            method: request.method().clone(),
            route: route.cloned(),
            path: bytes,
            // At most `INLINE`.
            path_len: u8::try_from(path_len).unwrap_or(0),
            query_at: u8::try_from(query_at).unwrap_or(0),
            app_logged: false,
            grpc: (u8::from(grpc) * GRPC) | (u8::from(by_method) * BY_METHOD),
            #[cfg(feature = "opentelemetry")]
            traceparent: request
                .headers()
                .get(crate::trace::TRACEPARENT)
                .and_then(|value| crate::trace::from_traceparent(value.as_bytes()))
                .map_or([0; 16], crate::TraceId::to_bytes),
        }
    }

    /// The request method's text, up to [`MAX_METHOD`] bytes.
    pub(crate) fn method_text(&self) -> &str {
        crate::text::cut_at(self.method.as_str(), MAX_METHOD)
    }

    /// The request's path and query, as kept (cut and marked when long).
    fn target(&self) -> &str {
        // Always valid: copied from a whole `str` cut at a character boundary.
        std::str::from_utf8(&self.path[..usize::from(self.path_len)]).unwrap_or_default()
    }

    /// The request's path, as kept (cut and marked when long), without the query.
    pub(crate) fn path(&self) -> &str {
        self.split().0
    }

    /// The path and the query, as kept.
    fn split(&self) -> (&str, Option<&str>) {
        let target = self.target();
        let (path, query) = target
            .split_at_checked(usize::from(self.query_at))
            .unwrap_or((target, ""));
        (path, query.strip_prefix('?'))
    }

    /// Whether the request is a `HEAD`, whose response body is never polled.
    #[inline]
    pub(crate) fn is_head(&self) -> bool {
        self.method == Method::HEAD
    }

    /// This head, for the response body that takes it; an empty one stays in its place. What the
    /// application logged so far is forgotten: nothing logged before a successful head was about
    /// the body's failure.
    pub(crate) fn take(&mut self) -> Self {
        let empty = Self {
            method: Method::GET,
            route: None,
            path: [0; INLINE],
            path_len: 0,
            query_at: 0,
            app_logged: false,
            grpc: 0,
            #[cfg(feature = "opentelemetry")]
            traceparent: [0; 16],
        };
        let mut head = std::mem::replace(self, empty);
        head.app_logged = false;
        head
    }

    /// The request's method.
    pub(crate) fn method(&self) -> &Method {
        &self.method
    }

    /// The route template the router matched, if one did.
    pub(crate) fn route(&self) -> Option<&MatchedPath> {
        self.route.as_ref()
    }

    /// Whether the request is a gRPC call.
    pub(crate) fn is_grpc(&self) -> bool {
        self.grpc & GRPC != 0
    }

    /// Whether a failure without a response of its own (a panic, a service error) is answered as
    /// gRPC: a gRPC call to a route of a service's shape, or to no route of this router (the
    /// layer runs outside it, as with tonic's `Server::builder().layer(..)`). A client that says
    /// it is gRPC to any other route gets the HTTP answer, a 5xx that monitoring sees.
    pub(crate) fn answers_grpc(&self) -> bool {
        self.is_grpc() && (self.grpc & BY_METHOD != 0 || self.route.is_none())
    }

    /// Notes whether the response of this gRPC call is a gRPC answer (`content-type:
    /// application/grpc`): only then is a `grpc-status` in it or its trailers read.
    pub(crate) fn set_grpc_answer(&mut self, answer: bool) {
        self.grpc = (self.grpc & !ANSWER) | (u8::from(answer) * ANSWER);
    }

    /// Whether the response was a gRPC answer ([`set_grpc_answer`](Self::set_grpc_answer)).
    pub(crate) fn grpc_answer(&self) -> bool {
        self.grpc & ANSWER != 0
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

    /// The context of a failure of `kind`. `answered` says that the failure is the `grpc-status`
    /// of a gRPC answer ([`set_grpc_answer`](Self::set_grpc_answer)). Only then is a gRPC call
    /// labelled by its method, `/package.Service/Method`: routed to a catch-all of a service's
    /// shape, or to no route of this router (the layer outside the router, as with tonic's
    /// `Server::builder().layer(..)`, where tonic answers only the methods it serves with a status
    /// of their own). The client chose that path, so such labels get a budget of their own in the
    /// groups ([`ErrorContext::declared`]); any other failure keeps the route template, or
    /// `unmatched`.
    pub(crate) fn context(&self, kind: ErrorKind, answered: bool) -> ErrorContext<'_> {
        let (path, query) = self.split();
        let route = self.route.as_ref().map(MatchedPath::as_str);
        let context = ErrorContext::new(&self.method, path, route, kind)
            .with_grpc(self.answers_grpc())
            .with_query(query);
        let by_path = answered && self.grpc_answer() && self.answers_grpc();
        match by_path.then(|| crate::grpc::method_route(path)).flatten() {
            Some(method) => context.with_route_from_path(method),
            None => context,
        }
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
    cut(text, into)
}

/// [`copy_cut`] for a `text` longer than `into`: out of line, since few requests need it.
#[cold]
#[inline(never)]
fn cut(text: &str, into: &mut [u8]) -> usize {
    // A share too small for the mark (a long method leaves a long template none) keeps nothing.
    let Some(mut end) = into.len().checked_sub(ELLIPSIS.len()) else {
        return 0;
    };
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
    fn the_query_is_kept_beside_the_path_and_not_in_it() {
        let head = head("/users/7?limit=-1&sig=x");
        let context = head.context(ErrorKind::Error, false);
        assert_eq!(context.path(), "/users/7");
        assert_eq!(context.query(), Some("limit=-1&sig=x"));
        assert_eq!(head.path(), "/users/7");
    }

    #[test]
    fn short_paths_are_kept_whole_and_unmatched_has_no_route() {
        let head = head("/ok");
        let context = head.context(ErrorKind::Error, false);
        assert_eq!((context.path(), context.route()), ("/ok", None));
    }

    #[test]
    fn a_share_too_small_for_the_mark_keeps_nothing() {
        for room in 0..ELLIPSIS.len() {
            let mut into = vec![0; room];
            assert_eq!(copy_cut("/a/long/route/{id}", &mut into), 0, "{room} bytes");
        }
        let mut into = [0; 6];
        assert_eq!(copy_cut("/a/long/route/{id}", &mut into), 6);
        assert_eq!(std::str::from_utf8(&into).unwrap(), "/a/…");
    }

    #[test]
    fn a_long_method_is_kept_whole_and_recorded_cut() {
        let long = "A".repeat(100);
        let request = Request::builder()
            .method(long.as_str())
            .uri("/users/7")
            .body(())
            .unwrap();
        let head = RequestHead::capture(&request);
        assert_eq!(head.method_text(), &long[..MAX_METHOD]);
        assert!(!head.is_head());
        let context = head.context(ErrorKind::Error, false);
        assert_eq!(context.method().as_str(), long);
        assert_eq!(context.method_label(), "_OTHER");
        assert_eq!((context.path(), context.route()), ("/users/7", None));
        let request = Request::head("/ok").body(()).unwrap();
        assert!(RequestHead::capture(&request).is_head());
    }

    #[test]
    fn the_head_stays_small() {
        // It is copied with the response future on every request: 128 bytes, 144 with the trace
        // id of the feature `opentelemetry`.
        let bound = if cfg!(feature = "opentelemetry") {
            144
        } else {
            128
        };
        assert!(
            std::mem::size_of::<RequestHead>() <= bound,
            "{}",
            std::mem::size_of::<RequestHead>()
        );
    }
}
