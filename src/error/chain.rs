//! Walking and printing a source chain, bounded: at most [`MAX_CHAIN`] links and [`MAX_TEXT`]
//! bytes, whatever an error's `source()` and `Display` do.

use std::{error::Error as StdError, fmt};

use super::BoxError;

/// Links of a source chain walked at most, by every walk (counting, the expected-error check,
/// printing, `Debug`, the lookups of this crate's own wrappers): a buggy `source()` that returns
/// its own error, or a chain thousands deep, costs no more than this many steps.
pub(crate) const MAX_CHAIN: usize = 32;

pub(crate) use crate::text::{CUT, MAX_TEXT, cut_at, text_of};

/// What a streamed body yielded, past the [`axum::Error`]s that `Body::from_stream` and
/// `Body::new` wrap it in (each displays what it wraps, and would repeat it in the chain); at
/// most [`MAX_CHAIN`] of them.
pub(crate) fn unwrap_axum(mut error: BoxError) -> BoxError {
    for _ in 0..MAX_CHAIN {
        match error.downcast::<axum::Error>() {
            Ok(wrapper) => error = wrapper.into_inner(),
            Err(error) => return error,
        }
    }
    error
}

/// [`unwrap_axum`], borrowed.
pub(crate) fn past_axum<'a>(
    mut error: &'a (dyn StdError + 'static),
) -> &'a (dyn StdError + 'static) {
    for _ in 0..MAX_CHAIN {
        match error
            .downcast_ref::<axum::Error>()
            .and_then(StdError::source)
        {
            Some(inner) => error = inner,
            None => break,
        }
    }
    error
}

/// A source chain from its first link, outermost first, at most [`MAX_CHAIN`] links: the walk of
/// the checks on every counted error, which only look for a link of a type and need not tell a
/// loop from a long chain (for that, [`Links`]).
pub(crate) fn sources<'a>(
    first: Option<&'a (dyn StdError + 'static)>,
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(first, |&error| error.source()).take(MAX_CHAIN)
}

/// A source chain from its first link, outermost first: at most [`MAX_CHAIN`] links, and none
/// twice (a link that is an earlier one again ends it). [`Links::end`] says why it ended.
pub(crate) struct Links<'a> {
    next: Option<&'a (dyn StdError + 'static)>,
    seen: [Option<&'a (dyn StdError + 'static)>; MAX_CHAIN],
    len: usize,
    end: End,
}

/// Why a walk of a chain ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum End {
    /// Not yet, or at its last link.
    Whole,
    /// At [`MAX_CHAIN`] links, with more to come.
    Cut,
    /// At a link that was an earlier one again.
    Loops,
}

impl<'a> From<Option<&'a (dyn StdError + 'static)>> for Links<'a> {
    fn from(first: Option<&'a (dyn StdError + 'static)>) -> Self {
        Self {
            next: first,
            seen: [None; MAX_CHAIN],
            len: 0,
            end: End::Whole,
        }
    }
}

impl Links<'_> {
    /// Why the walk ended, once it has.
    pub(crate) fn end(&self) -> End {
        self.end
    }
}

impl<'a> Iterator for Links<'a> {
    type Item = &'a (dyn StdError + 'static);

    fn next(&mut self) -> Option<Self::Item> {
        let link = self.next.take()?;
        // The same object is the same address and the same type: a struct and its first field
        // share an address, so the address alone is not enough. (Two values of one zero-sized
        // type are one error as far as any walk can tell.)
        let seen = &self.seen[..self.len];
        if seen.iter().flatten().any(|&earlier| same(earlier, link)) {
            self.end = End::Loops;
            return None;
        }
        if self.len == MAX_CHAIN {
            self.end = End::Cut;
            return None;
        }
        self.seen[self.len] = Some(link);
        self.len += 1;
        self.next = link.source();
        Some(link)
    }
}

/// Whether two links are one error: the same address and the same vtable. A vtable may be
/// duplicated across codegen units, which only lets a loop run to the bound.
fn same(a: &(dyn StdError + 'static), b: &(dyn StdError + 'static)) -> bool {
    std::ptr::eq(a, b)
}

/// An error and each of its sources, `outer: inner: innermost`, ended by a marker where the walk
/// was cut or looped ([`Links`]).
///
/// A source whose text the link printed before it already ends with is left out: many error types
/// embed their source in their own `Display` (sqlx's `error returned from database: {source}`,
/// a `thiserror` variant with `#[error("loading: {0}")]`), and the chain would say it twice.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut links = Links::from(Some(self.0));
        let mut printed = match links.next() {
            Some(first) => text_of(first),
            None => String::new(),
        };
        f.write_str(&printed)?;
        for source in links.by_ref() {
            let text = text_of(source);
            if ends_with_whole(&printed, text.trim_end_matches(CUT)) {
                continue;
            }
            write!(f, ": {text}")?;
            printed = text;
        }
        match links.end() {
            End::Whole => Ok(()),
            End::Cut => write!(f, ": …[source chain cut after {MAX_CHAIN} links]"),
            End::Loops => f.write_str(": …[the source chain loops back]"),
        }
    }
}

/// Whether `text` ends with `end`, and `end` is not the tail of a longer word there.
fn ends_with_whole(text: &str, end: &str) -> bool {
    let Some(before) = text.strip_suffix(end) else {
        return false;
    };
    !end.is_empty() && !before.ends_with(char::is_alphanumeric)
}

/// One link's own text, for `Debug`.
pub(super) struct OneLink<'a>(pub(super) &'a (dyn StdError + 'static));

impl fmt::Display for OneLink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, panic_message};

    /// An error whose `source()` returns itself: a one-line bug.
    #[derive(Debug)]
    struct Cyclic;

    impl fmt::Display for Cyclic {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cyclic")
        }
    }

    impl StdError for Cyclic {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(self)
        }
    }

    #[test]
    fn a_cyclic_chain_is_walked_once_and_says_so() {
        let error = Error::new(Cyclic);
        // Boxed, its first link may be seen through another vtable: the second ends it.
        assert!(error.chain().count() <= 2);
        let text = error.chain_text();
        assert!(text.starts_with("cyclic: "), "{text}");
        assert!(text.ends_with(": …[the source chain loops back]"), "{text}");
        assert!(format!("{error:?}").contains("cyclic"));
    }

    /// An error whose source is the same error, `depth` more times.
    #[derive(Debug)]
    struct Nested(usize, Option<Box<Nested>>);

    impl fmt::Display for Nested {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "level {}", self.0)
        }
    }

    impl StdError for Nested {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1
                .as_deref()
                .map(|inner| inner as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn every_walk_of_a_deep_chain_stops_at_its_bound() {
        let deep = (1..100).fold(Nested(0, None), |inner, n| Nested(n, Some(Box::new(inner))));
        let error = Error::new(deep);
        assert_eq!(error.chain().count(), MAX_CHAIN);
        assert_eq!(sources(error.cause()).count(), MAX_CHAIN);
        assert!(
            error
                .chain_text()
                .ends_with(": …[source chain cut after 32 links]")
        );
    }

    /// An error that prints its source in its own text, as sqlx's database error does.
    #[derive(Debug)]
    struct Embeds(std::io::Error);

    impl fmt::Display for Embeds {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "error returned from database: {}", self.0)
        }
    }

    impl StdError for Embeds {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_source_the_link_already_printed_is_printed_once() {
        let limit = std::io::Error::other("LIMIT must not be negative at line 398");
        let error = Error::new(Embeds(limit));
        let once = "error returned from database: LIMIT must not be negative at line 398";
        assert_eq!(error.chain_text(), once);
        assert_eq!(format!("{error:#}"), once);
        // A source whose text ends the link's only inside a word is still printed.
        assert!(ends_with_whole("loading: refused", "refused"));
        assert!(ends_with_whole("refused", "refused"));
        assert!(!ends_with_whole("connection unrefused", "refused"));
        assert!(!ends_with_whole("refused", ""));
    }

    #[test]
    fn a_huge_text_is_cut_at_its_bound_without_being_built() {
        let error = Error::msg("é".repeat(1 << 20));
        let text = error.chain_text();
        assert!(text.len() <= MAX_TEXT + CUT.len(), "{}", text.len());
        assert!(text.ends_with(CUT));
        assert!(text.trim_end_matches(CUT).chars().all(|c| c == 'é'));
        let payload: Box<dyn std::any::Any + Send> = Box::new("x".repeat(1 << 20));
        assert!(panic_message(&*payload).len() <= MAX_TEXT + CUT.len());
    }
}
