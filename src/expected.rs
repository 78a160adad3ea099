//! Errors nobody can act on: the client went away. Armeria calls them "expected" (#4861) and
//! never reports them; neither do we.

use std::{error::Error as StdError, io};

use crate::error::Error;

/// Phrases that, in any error of the chain, mean the peer closed or reset the connection.
const DISCONNECT_PHRASES: [&str; 7] = [
    "connection reset",
    "connection closed",
    "connection aborted",
    "broken pipe",
    "stream closed",
    "closed already",
    "operation was canceled",
];

/// Whether `error`'s source chain says the client disconnected.
pub(crate) fn is_expected(error: &Error) -> bool {
    error.chain().any(is_disconnect)
}

fn is_disconnect(error: &(dyn StdError + 'static)) -> bool {
    if let Some(io) = error.downcast_ref::<io::Error>() {
        if matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::NotConnected
        ) {
            return true;
        }
    }
    let message = error.to_string().to_ascii_lowercase();
    DISCONNECT_PHRASES
        .iter()
        .any(|phrase| message.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading the request body")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn disconnects_anywhere_in_the_chain_are_expected() {
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::BrokenPipe] {
            assert!(is_expected(&Error::new(Wrapper(io::Error::from(kind)))));
        }
        let hyper_like = io::Error::other("Connection reset by peer (os error 104)");
        assert!(is_expected(&Error::new(Wrapper(hyper_like))));
        assert!(is_expected(&Error::msg(
            "error reading a body from connection: connection closed before message completed"
        )));
    }

    #[test]
    fn ordinary_errors_are_not_expected() {
        assert!(!is_expected(&Error::new(Wrapper(io::Error::other(
            "disk full"
        )))));
        assert!(!is_expected(&Error::msg("user 7 not in the database")));
    }
}
