//! Errors nobody can act on: the client of the served connection went away while its request
//! body was being read. Armeria calls them "expected" (#4861) and never reports them; neither
//! do we.
//!
//! In axum, the only way a handler meets its own connection's failure is by reading the request
//! body: axum's [`Body`](axum::body::Body) yields an [`axum::Error`] around the `hyper::Error` of
//! the connection (an incomplete message, a reset, a cancelled stream). A client that goes away
//! while the handler does anything else drops the handler's future: there is no error at all.
//! So an error a handler returns (or its service) is expected exactly when its chain holds an
//! `axum::Error` wrapping a `hyper::Error`. A response body that fails while it streams is never
//! expected, whatever it yields: what it streams is the application's or an upstream's (a proxy
//! that forwards an upstream's body through `axum::body::Body` yields the same `axum::Error`
//! around a `hyper::Error` when the upstream breaks), and a client that leaves drops it without
//! an error. Everything else is counted, whatever it says: an I/O error of a database or another
//! service, even one that reads "connection reset" or "connection closed", is a failing
//! dependency that somebody should hear about. Nothing is formatted to decide.
//!
//! One case stays ambiguous: a handler that reads an upstream's body through `axum::body::Body`
//! itself and returns that error gets the same chain as a client that left, and is not counted.
//! Read it through the upstream client's own body type (hyper's `Incoming`, reqwest's), whose
//! error no `axum::Error` wraps, or stream it to the client, and it is.

use std::error::Error as StdError;

use crate::error::Error;

/// Whether `error` says only that the served connection failed while its body was read.
pub(crate) fn is_expected(error: &Error) -> bool {
    crate::error::sources(error.cause()).any(is_request_body_failure)
}

fn is_request_body_failure(error: &(dyn StdError + 'static)) -> bool {
    error
        .downcast_ref::<axum::Error>()
        .and_then(StdError::source)
        .is_some_and(|inner| inner.is::<hyper::Error>())
}

#[cfg(test)]
mod tests {
    use std::{fmt, io};

    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn StdError + Send + Sync>);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading the upload")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn dependency_io_errors_are_counted_whatever_their_kind_or_text() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::NotConnected,
            io::ErrorKind::UnexpectedEof,
        ] {
            assert!(!is_expected(&Error::new(io::Error::from(kind))), "{kind:?}");
        }
        for text in [
            "connection closed",
            "Connection reset by peer (os error 104)",
            "error communicating with database: connection closed before message completed",
            "upstream closed the pool",
        ] {
            assert!(!is_expected(&Error::msg(text)), "{text}");
            assert!(!is_expected(&Error::new(Wrapper(text.into()))), "{text}");
        }
    }

    #[test]
    fn a_body_error_that_is_not_the_connections_is_counted() {
        // A length limit, or any other error inside axum's body error, is not hyper's.
        let limit = axum::Error::new(io::Error::other("length limit exceeded"));
        assert!(!is_expected(&Error::new(limit)));
        let nested = axum::Error::new(Wrapper(Box::new(io::Error::from(
            io::ErrorKind::ConnectionReset,
        ))));
        assert!(!is_expected(&Error::new(Wrapper(Box::new(nested)))));
    }
}
