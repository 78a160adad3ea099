//! Errors nobody can act on: the client went away. Armeria calls them "expected" (#4861) and
//! never reports them; neither do we.

use std::{
    error::Error as StdError,
    fmt::{self, Write},
    io,
};

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
    let mut scan = PhraseScan::default();
    // An error whose `Display` fails simply matches nothing.
    let _ = write!(scan, "{error}");
    scan.found
}

/// Longest phrase, in bytes.
const WINDOW: usize = 24;

/// Scans formatted text for the phrases, case-insensitively, without allocating: it keeps the
/// last [`WINDOW`] bytes and checks the phrases that end in each byte as it arrives.
#[derive(Default)]
struct PhraseScan {
    window: [u8; WINDOW],
    /// Bytes seen so far (the window holds the last `WINDOW` of them, circularly).
    seen: usize,
    found: bool,
}

impl Write for PhraseScan {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if self.found {
                break;
            }
            let byte = byte.to_ascii_lowercase();
            self.window[self.seen % WINDOW] = byte;
            self.seen += 1;
            self.found = DISCONNECT_PHRASES.iter().any(|phrase| {
                phrase.as_bytes().last() == Some(&byte) && self.ends_with(phrase.as_bytes())
            });
        }
        Ok(())
    }
}

impl PhraseScan {
    fn ends_with(&self, phrase: &[u8]) -> bool {
        phrase.len() <= self.seen
            && phrase
                .iter()
                .rev()
                .enumerate()
                .all(|(back, expected)| self.window[(self.seen - 1 - back) % WINDOW] == *expected)
    }
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
    fn phrases_are_found_across_writes_and_in_any_case() {
        let mut scan = PhraseScan::default();
        write!(scan, "{}{}", "error: Connection Re", "SET by peer").unwrap();
        assert!(scan.found);
        let mut scan = PhraseScan::default();
        write!(scan, "{}", "x".repeat(100) + " broken pipe").unwrap();
        assert!(scan.found);
        let mut scan = PhraseScan::default();
        write!(scan, "connection re-set; pipe broken").unwrap();
        assert!(!scan.found);
    }

    #[test]
    fn the_window_holds_the_longest_phrase() {
        assert!(
            DISCONNECT_PHRASES
                .iter()
                .all(|phrase| phrase.len() <= WINDOW)
        );
    }

    #[test]
    fn ordinary_errors_are_not_expected() {
        assert!(!is_expected(&Error::new(Wrapper(io::Error::other(
            "disk full"
        )))));
        assert!(!is_expected(&Error::msg("user 7 not in the database")));
    }
}
