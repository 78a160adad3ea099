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
    // An error whose `Display` fails matches what it wrote before failing; one that panics is
    // not a disconnect.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut scan = PhraseScan::default();
        let _ = write!(scan, "{error}");
        scan.finish()
    }))
    .unwrap_or(false)
}

/// Longest phrase, in bytes: a chunk boundary keeps this many bytes minus one.
const LONGEST: usize = 24;

/// Scans formatted text for the phrases, case-insensitively, without allocating: the text goes
/// into a buffer as lowercase ASCII (other bytes as `?`, which no phrase contains), and each full
/// buffer is searched, keeping its last `LONGEST - 1` bytes for a phrase across the boundary.
struct PhraseScan {
    buffer: [u8; 64],
    len: usize,
    found: bool,
}

impl Default for PhraseScan {
    fn default() -> Self {
        Self {
            buffer: [0; 64],
            len: 0,
            found: false,
        }
    }
}

impl Write for PhraseScan {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if self.len == self.buffer.len() {
                self.search();
                self.buffer.copy_within(self.len - (LONGEST - 1).., 0);
                self.len = LONGEST - 1;
            }
            self.buffer[self.len] = if byte.is_ascii() {
                byte.to_ascii_lowercase()
            } else {
                b'?'
            };
            self.len += 1;
        }
        Ok(())
    }
}

impl PhraseScan {
    fn search(&mut self) {
        let text = &self.buffer[..self.len];
        // Short texts, short phrases: a first-byte test at each position beats building a
        // substring searcher per phrase.
        self.found |= (0..text.len()).any(|at| {
            DISCONNECT_PHRASES.iter().any(|phrase| {
                let phrase = phrase.as_bytes();
                phrase[0] == text[at] && text[at..].starts_with(phrase)
            })
        });
    }

    fn finish(mut self) -> bool {
        self.search();
        self.found
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
        let scan = |parts: &[&str]| {
            let mut scan = PhraseScan::default();
            parts.iter().for_each(|part| scan.write_str(part).unwrap());
            scan.finish()
        };
        assert!(scan(&["error: Connection Re", "SET by peer"]));
        assert!(scan(&["ünïcödé: BROKEN pipe"]));
        assert!(!scan(&["connection re-set; pipe broken"]));
        // Across every position of a buffer boundary.
        for offset in 0..140 {
            let before = "x".repeat(offset);
            let after = "y".repeat(300);
            assert!(scan(&[&before, " connection aborted ", &after]), "{offset}");
        }
    }

    #[test]
    fn a_chunk_boundary_keeps_enough_for_the_longest_phrase() {
        assert!(
            DISCONNECT_PHRASES
                .iter()
                .all(|phrase| phrase.len() <= LONGEST)
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
