//! The part of a request the layers keep until the response: method, path and route.
//!
//! It is captured on every request but read only when something fails, so capturing must cost
//! neither an allocation nor a write to memory other threads use. Cloning the `Uri` can allocate
//! (a `Bytes` made from a `Vec` allocates on its first clone) and cloning `MatchedPath` bumps a
//! reference count that every request to that route shares, so both are copied by value into
//! fixed buffers that live inside the response future instead.

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
};

use crate::context::{ErrorContext, ErrorKind};

/// Bytes of the path kept for the report; longer paths are cut and end in `…`.
pub(crate) const PATH_CAPACITY: usize = 128;
/// Bytes of the route template kept inline; a longer template falls back to sharing the `Arc`.
const ROUTE_CAPACITY: usize = 96;

pub(crate) struct RequestHead {
    method: Method,
    path: InlineStr<PATH_CAPACITY>,
    route: Route,
}

enum Route {
    Unmatched,
    Inline(InlineStr<ROUTE_CAPACITY>),
    Shared(MatchedPath),
}

impl RequestHead {
    pub(crate) fn capture<B>(request: &Request<B>) -> Self {
        let route = match request.extensions().get::<MatchedPath>() {
            None => Route::Unmatched,
            Some(matched) => match InlineStr::exact(matched.as_str()) {
                Some(inline) => Route::Inline(inline),
                None => Route::Shared(matched.clone()),
            },
        };
        Self {
            method: request.method().clone(),
            path: InlineStr::truncated(request.uri().path()),
            route,
        }
    }

    pub(crate) fn context(&self, kind: ErrorKind) -> ErrorContext<'_> {
        let route = match &self.route {
            Route::Unmatched => None,
            Route::Inline(inline) => Some(inline.as_str()),
            Route::Shared(matched) => Some(matched.as_str()),
        };
        ErrorContext::new(&self.method, self.path.as_str(), route, kind)
    }
}

/// A string of at most `N` bytes stored by value.
struct InlineStr<const N: usize> {
    len: usize,
    bytes: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    const ELLIPSIS: &'static str = "…";

    /// `text` whole, or `None` when it does not fit.
    fn exact(text: &str) -> Option<Self> {
        (text.len() <= N).then(|| Self::copy(text, ""))
    }

    /// `text`, cut at a character boundary and marked with `…` when it does not fit.
    fn truncated(text: &str) -> Self {
        if text.len() <= N {
            return Self::copy(text, "");
        }
        let mut end = N - Self::ELLIPSIS.len();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self::copy(&text[..end], Self::ELLIPSIS)
    }

    fn copy(head: &str, tail: &str) -> Self {
        let mut bytes = [0; N];
        let len = head.len() + tail.len();
        bytes[..head.len()].copy_from_slice(head.as_bytes());
        bytes[head.len()..len].copy_from_slice(tail.as_bytes());
        Self { len, bytes }
    }

    fn as_str(&self) -> &str {
        // Always valid: built from whole `str`s cut at character boundaries.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_at_a_character_boundary_and_marked() {
        let long = format!("/{}", "é".repeat(200));
        let cut = InlineStr::<PATH_CAPACITY>::truncated(&long);
        assert!(cut.as_str().len() <= PATH_CAPACITY);
        assert!(cut.as_str().ends_with('…'));
        assert!(long.starts_with(cut.as_str().trim_end_matches('…')));
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(InlineStr::<8>::truncated("/ok").as_str(), "/ok");
        assert_eq!(InlineStr::<3>::exact("/ok").unwrap().as_str(), "/ok");
        assert!(InlineStr::<2>::exact("/ok").is_none());
    }
}
