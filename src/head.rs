//! The part of a request the layers keep until the response: method, path and route.
//!
//! It is captured on every request but read only when something fails. So capturing must cost
//! neither an allocation nor a write to memory other threads use, and cloning the request's parts
//! would cost one or the other:
//! - cloning the `Uri` can allocate (a `Bytes` made from a `Vec` allocates on its first clone);
//! - cloning `MatchedPath` bumps a reference count that every request to that route shares;
//! - cloning a method longer than 15 bytes allocates, and any client may send one.
//!
//! Instead, the route template and the path are copied into one small buffer inside the response
//! future. A template too long for it is kept once per process ([`long_routes`]). A long method
//! is kept as text at the buffer's end, and its `Method` is cut. The buffer is small because the
//! future is moved (and boxed by axum) on every request, and each of its bytes is copied then.

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
};

use crate::context::{ErrorContext, ErrorKind};

/// Bytes kept for a long method, the route template and the path together.
pub(crate) const INLINE: usize = 96;
/// Bytes of path always kept: a longer route template is kept in [`long_routes`] instead.
pub(crate) const PATH_MIN: usize = 32;
/// The longest method `http::Method` keeps inline: a longer one is kept as text in the buffer,
/// since cloning it would allocate.
const METHOD_INLINE: usize = 15;
/// The longest method recorded, in a head and in the logging layer's span
/// (`http.request.method_original`, the end event's `method`); a longer one is cut, without a
/// mark, so that it stays a method.
pub(crate) const MAX_METHOD: usize = 64;

const ELLIPSIS: &str = "…";

/// The request is a gRPC call ([`grpc::is_grpc`]): its failures may be answered as gRPC.
const GRPC: u8 = 1;
/// The router routed the gRPC call to a catch-all of a service's shape
/// ([`grpc::routes_service`]): where the answer is gRPC, its route is its method.
const BY_METHOD: u8 = 2;
/// The response was a gRPC answer (`content-type: application/grpc`), noted when the response of
/// a gRPC call is inspected.
const ANSWER: u8 = 4;

pub(crate) struct RequestHead {
    /// The method, when at most [`METHOD_INLINE`] bytes long; else its start marked `...`, and
    /// its text (up to [`MAX_METHOD`] bytes) is the last `method_len` bytes of `bytes`.
    method: Method,
    /// The route template (when inline), the path, and at the end a long method's text (when
    /// `method_len` is not 0).
    bytes: [u8; INLINE],
    method_len: u8,
    route_len: u8,
    path_len: u8,
    /// Whether a route matched: its template is the first `route_len` bytes of `bytes`, or
    /// the [`long_routes`] slot `long_route` when it is too long for them.
    matched: bool,
    /// The [`long_routes`] slot of a long template, plus one; 0 for none.
    long_route: u8,
    /// Whether the application logged its own failure while the error handler served the
    /// request ([`unhandled::subscriber`](crate::subscriber)), in any call or poll so far: kept
    /// here, in padding, rather than in the response future, which each byte makes costlier to move.
    app_logged: bool,
    /// What the head knows of a gRPC call, in one byte ([`GRPC`], [`BY_METHOD`], [`ANSWER`]):
    /// three `bool`s took the head past 128 bytes, which every request copies.
    grpc: u8,
    /// The trace id of the request's `traceparent` header; zeros when there is none (no valid
    /// trace id is all zeros, and the bytes keep the head at 144 bytes where an `Option` would not).
    #[cfg(feature = "opentelemetry")]
    traceparent: [u8; 16],
}

impl RequestHead {
    /// Always inlined: out of line, the head is built in the callee's frame and then copied into
    /// the caller's (`benches/where.sh` shows the difference).
    #[inline(always)]
    pub(crate) fn capture<B>(request: &Request<B>) -> Self {
        let method = request.method();
        if method.as_str().len() <= METHOD_INLINE {
            return Self::capture_with(request, method.clone(), &[]);
        }
        Self::capture_long_method(request)
    }

    /// [`capture`](Self::capture) for a method longer than [`METHOD_INLINE`] (a client may send
    /// any token, and cloning a long one allocates): its text, up to [`MAX_METHOD`] bytes, is kept
    /// at the end of the buffer, and its `Method` is its start marked `...`.
    #[cold]
    #[inline(never)]
    fn capture_long_method<B>(request: &Request<B>) -> Self {
        const MARK: &[u8] = b"...";
        let method = request.method().as_str().as_bytes();
        let mut cut = [0; METHOD_INLINE];
        let keep = METHOD_INLINE - MARK.len();
        cut[..keep].copy_from_slice(&method[..keep]);
        cut[keep..].copy_from_slice(MARK);
        // A method's bytes are token characters, and so is `.`: the cut one is a method too.
        let cut = Method::from_bytes(&cut).unwrap_or_default();
        // A method is ASCII: any byte is a character boundary.
        Self::capture_with(request, cut, &method[..method.len().min(MAX_METHOD)])
    }

    /// The head of `request`, whose method is `method`, with `method_text` at the end of the
    /// buffer. Inlined into both callers, so that the usual one, with no text, computes no offset.
    #[inline(always)]
    fn capture_with<B>(request: &Request<B>, method: Method, method_text: &[u8]) -> Self {
        let mut bytes = [0; INLINE];
        let end = INLINE - method_text.len();
        bytes[end..].copy_from_slice(method_text);
        let grpc = crate::grpc::is_grpc(request);
        let path = request.uri().path();
        let matched = request.extensions().get::<MatchedPath>();
        // A gRPC call routed to a catch-all of a service's shape (`/package.Service/{*rest}`) may
        // be labelled by its method, when the answer says it is gRPC ([`Self::context`]).
        let by_method =
            grpc && matched.is_some_and(|route| crate::grpc::routes_service(route.as_str(), path));
        let (long_route, route_len) = match matched {
            None => (0, 0),
            Some(matched) if matched.as_str().len() <= end.saturating_sub(PATH_MIN) => {
                let template = matched.as_str().as_bytes();
                bytes[..template.len()].copy_from_slice(template);
                (0, template.len())
            }
            Some(matched) => match long_routes::slot(matched.as_str()) {
                Some(slot) => (slot, 0),
                // The table is full: the template is cut to the buffer's share, as paths are.
                None => (
                    0,
                    copy_cut(matched.as_str(), &mut bytes[..end.saturating_sub(PATH_MIN)]),
                ),
            },
        };
        let path_len = copy_cut(path, &mut bytes[route_len..end]);
        Self {
            method,
            bytes,
            // All fit in a byte: together they are at most `INLINE`.
            method_len: u8::try_from(method_text.len()).unwrap_or(0),
            route_len: u8::try_from(route_len).unwrap_or(0),
            path_len: u8::try_from(path_len).unwrap_or(0),
            matched: matched.is_some(),
            long_route,
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
        match self.method_len {
            0 => self.method.as_str(),
            // Always valid: a method is ASCII.
            len => {
                std::str::from_utf8(&self.bytes[INLINE - usize::from(len)..]).unwrap_or_default()
            }
        }
    }

    /// The request's path, as kept (cut and marked when long).
    pub(crate) fn path(&self) -> &str {
        let start = usize::from(self.route_len);
        let end = start + usize::from(self.path_len);
        // Always valid: copied from a whole `str` cut at a character boundary.
        std::str::from_utf8(&self.bytes[start..end]).unwrap_or_default()
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
            bytes: [0; INLINE],
            method_len: 0,
            route_len: 0,
            path_len: 0,
            matched: false,
            long_route: 0,
            app_logged: false,
            grpc: 0,
            #[cfg(feature = "opentelemetry")]
            traceparent: [0; 16],
        };
        let mut head = std::mem::replace(self, empty);
        head.app_logged = false;
        head
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
        self.is_grpc() && (self.grpc & BY_METHOD != 0 || !self.matched)
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
        let route_len = usize::from(self.route_len);
        let end = route_len + usize::from(self.path_len);
        // Always valid, and `route_len` a character boundary: copied from whole `str`s cut at
        // character boundaries. One check covers route and path.
        let text = std::str::from_utf8(&self.bytes[..end]).unwrap_or_default();
        let (inline_route, path) = text.split_at_checked(route_len).unwrap_or_default();
        let route = match long_routes::template(self.long_route) {
            Some(template) => Some(template),
            None => self.matched.then_some(inline_route),
        };
        let context =
            ErrorContext::new(&self.method, path, route, kind).with_grpc(self.answers_grpc());
        let by_path = answered && self.grpc_answer() && self.answers_grpc();
        match by_path.then(|| crate::grpc::method_route(path)).flatten() {
            Some(method) => context.with_route_from_path(method),
            None => context,
        }
    }
}

/// Route templates longer than a head's share of its buffer, kept once per process so that a
/// head names one by its slot. Cloning the request's `MatchedPath` instead would write its
/// reference count, which every request to that route shares; cutting it could merge two routes
/// into one label. The table holds an application's long templates (its routes bound them);
/// reading it writes nothing, and only a template's first sight allocates.
mod long_routes {
    use std::sync::OnceLock;

    /// Slots in the table; when they are all taken, a new long template is cut instead.
    const SLOTS: usize = 64;
    /// Slots a lookup tries, from the one the template's hash picks.
    const PROBES: usize = 8;

    static TABLE: [OnceLock<Box<str>>; SLOTS] = [const { OnceLock::new() }; SLOTS];

    /// The slot of `template`, plus one, taking a free slot on its first sight; `None` when the
    /// slots it may use are taken by other templates.
    pub(super) fn slot(template: &str) -> Option<u8> {
        let start = hash(template.as_bytes());
        for probe in 0..PROBES {
            let index = (start + probe) % SLOTS;
            let kept = match TABLE[index].get() {
                Some(kept) => kept,
                None => keep(index, template),
            };
            if kept == template {
                return u8::try_from(index + 1).ok();
            }
        }
        None
    }

    /// The template in `slot` (plus one, as [`slot`] gives it); `None` for 0.
    pub(super) fn template(slot: u8) -> Option<&'static str> {
        let index = usize::from(slot).checked_sub(1)?;
        TABLE.get(index)?.get().map(|kept| &**kept)
    }

    /// Keeps `template` in the slot at `index`, unless another thread filled it meanwhile; what
    /// the slot holds then.
    #[cold]
    #[inline(never)]
    fn keep(index: usize, template: &str) -> &'static str {
        TABLE[index].get_or_init(|| template.into())
    }

    /// FNV-1a over the template's bytes, eight at a time: a long route's every request hashes it.
    fn hash(bytes: &[u8]) -> usize {
        let words = bytes.chunks(8).map(|chunk| {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(word)
        });
        let hash = words.fold(0xcbf2_9ce4_8422_2325_u64, |hash, word| {
            (hash ^ word).wrapping_mul(0x0100_0000_01b3)
        });
        // The remainder by `SLOTS` fits any `usize`.
        usize::try_from(hash % SLOTS as u64).unwrap_or(0)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_template_keeps_its_slot_and_a_full_table_says_so() {
            let first = format!("/{}/{{id}}", "kept".repeat(20));
            let kept = slot(&first).unwrap();
            assert_eq!(slot(&first.clone()), Some(kept));
            assert_eq!(template(kept), Some(first.as_str()));
            assert_eq!(template(0), None);
            // Filling every slot: the templates after that find none free.
            let refused = (0..SLOTS * 2)
                .map(|n| format!("/{}/{n}", "many".repeat(20)))
                .filter(|template| slot(template).is_none())
                .count();
            assert!(refused >= SLOTS, "{refused}");
            assert_eq!(slot(&first), Some(kept), "a kept template stays");
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
    fn a_long_method_is_kept_as_text_before_route_and_path() {
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
        assert_eq!(context.method().as_str(), "AAAAAAAAAAAA...");
        assert_eq!((context.path(), context.route()), ("/users/7", None));
        let request = Request::head("/ok").body(()).unwrap();
        assert!(RequestHead::capture(&request).is_head());
        let request = Request::builder()
            .method("PURGE")
            .uri("/ok")
            .body(())
            .unwrap();
        let head = RequestHead::capture(&request);
        let method = head.context(ErrorKind::Error, false).method().clone();
        assert_eq!((method.as_str(), head.method_text()), ("PURGE", "PURGE"));
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
