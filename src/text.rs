//! Text the crate writes that it did not write itself (an error's `Display`, a client's path or
//! query), bounded and escaped: the leaf every room that writes for a person shares.

use std::{fmt, io::Write as _};

/// Bytes of error text kept, in the report, the logging layer's event and the span's status: a
/// longer text is cut there (at a character boundary) and ends with [`CUT`].
pub(crate) const MAX_TEXT: usize = 2048;

/// What ends a text cut at [`MAX_TEXT`].
pub(crate) const CUT: &str = "…[cut]";

/// `value` formatted, at most [`MAX_TEXT`] bytes of it (then [`CUT`]), or a placeholder when its
/// `Display` panics: the reporter and the logging layer format errors they did not write, and
/// must survive any of them. Formatting stops at the bound, so a huge text is never built.
pub(crate) fn text_of(value: &dyn fmt::Display) -> String {
    text_at_most(value, MAX_TEXT)
}

/// [`text_of`], with at most `limit` bytes before the [`CUT`].
pub(crate) fn text_at_most(value: &dyn fmt::Display, limit: usize) -> String {
    let mut text = Bounded::new(limit);
    match crate::unwind::catch(|| fmt::write(&mut text, format_args!("{value}"))) {
        None => String::from("<the error's Display implementation panicked>"),
        Some(_) => text.finish(),
    }
}

/// A `fmt::Write` that keeps at most `limit` bytes and then fails, so that the `Display` writing
/// into it stops.
struct Bounded {
    text: String,
    limit: usize,
    cut: bool,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Self {
            text: String::new(),
            limit,
            cut: false,
        }
    }

    fn finish(mut self) -> String {
        if self.cut {
            self.text.push_str(CUT);
        }
        self.text
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.limit - self.text.len();
        if text.len() <= room {
            self.text.push_str(text);
            return Ok(());
        }
        self.text.push_str(cut_at(text, room));
        self.cut = true;
        Err(fmt::Error)
    }
}

/// The longest start of `text` of at most `max` bytes that ends at a character boundary.
pub(crate) fn cut_at(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// How `c` is written when it may not appear raw: C0 and C1 controls, DEL, the line and
/// paragraph separators, the bidirectional controls and marks (which reorder what a terminal
/// shows: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), and the characters that show
/// nothing (zero-width spaces and joiners, U+2060-U+2064 and U+FEFF, the tag characters
/// U+E0000-U+E007F, U+180E, the interlinear annotation marks U+FFF9-U+FFFB), which can hide text
/// from a reader. `\n`, `\r` and `\t` as in Rust, the rest as `\u{..}`; `None` for a character
/// written as is.
pub(crate) fn escape(c: char) -> Option<Escape> {
    match c {
        '\n' => Some(Escape::Short('n')),
        '\r' => Some(Escape::Short('r')),
        '\t' => Some(Escape::Short('t')),
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{e0000}'..='\u{e007f}' => Some(Escape::Unicode(c)),
        _ => None,
    }
}

/// How a character [`escape`] names is written.
pub(crate) enum Escape {
    Short(char),
    Unicode(char),
}

/// Appends `value` to `text` escaped: what [`escape`] names, and `\` and `"` with a backslash. At
/// most `budget` bytes are added; a longer value is cut before a whole character or escape and
/// ended with [`CUT`] (within the budget).
pub(crate) fn push_escaped(text: &mut String, value: &str, budget: usize) {
    let mut buffer = [0; 12];
    let whole: usize = value.chars().map(|c| escaped(c, &mut buffer).len()).sum();
    let limit = match whole <= budget {
        true => usize::MAX,
        false => text.len() + budget.saturating_sub(CUT.len()),
    };
    for c in value.chars() {
        let piece = escaped(c, &mut buffer);
        if text.len() + piece.len() > limit {
            text.push_str(CUT);
            return;
        }
        text.push_str(piece);
    }
}

/// `c` as [`push_escaped`] writes it (`\u{10ffff}` at the longest), in `buffer`.
fn escaped(c: char, buffer: &mut [u8; 12]) -> &str {
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    let _ = match escape(c) {
        Some(Escape::Short(letter)) => write!(cursor, "\\{letter}"),
        Some(Escape::Unicode(c)) => write!(cursor, "\\u{{{:x}}}", u32::from(c)),
        None if matches!(c, '\\' | '"') => write!(cursor, "\\{c}"),
        None => write!(cursor, "{c}"),
    };
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    std::str::from_utf8(&buffer[..len]).unwrap_or_default()
}

/// `text` written escaped as [`push_escaped`] does, unbounded (the caller bounded it): for a
/// client's text recorded as a `Display` field, which a subscriber writes as it is.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Printable ASCII without `\` and `"` (a path, a status line, most errors): one write.
        let plain = |b: &u8| matches!(b, b' '..=b'~') && !matches!(b, b'\\' | b'"');
        if self.0.as_bytes().iter().all(plain) {
            return f.write_str(self.0);
        }
        let mut buffer = [0; 12];
        let mut rest = self.0;
        // Runs of characters written as they are go in one write.
        while let Some(at) = rest.find(|c: char| escape(c).is_some() || matches!(c, '\\' | '"')) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            f.write_str(escaped(c, &mut buffer))?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Keys of `url.query` whose values are recorded as `REDACTED`, compared without regard to case:
/// the four the OpenTelemetry HTTP conventions name, and the usual names of tokens, keys and
/// passwords sent in a query. Any key that ends like a secret is redacted too ([`SECRET_ENDINGS`]).
pub(crate) const REDACTED_KEYS: [&str; 14] = [
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "api_key",
    "apikey",
    "password",
];

/// A query key whose letters and digits (lowercase, percent-decoded, without `-`, `_`, `.` or
/// any other mark) end with one of these is a secret: `token`, `X-API-Key`, `code` (OAuth's
/// authorization code), `%73ig`. A key such as `monkey` is redacted too: a value lost from a
/// trace costs less than a secret kept in one.
pub(crate) const SECRET_ENDINGS: [&str; 16] = [
    "token",
    "key",
    "keyid",
    "secret",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "signature",
    "sig",
    "credential",
    "credentials",
    "code",
    "auth",
    "authorization",
    "session",
];

/// The longest key compared with [`SECRET_ENDINGS`]: a longer one is a secret.
const MAX_KEY: usize = 128;

/// A query with the values of the redacted keys replaced by `REDACTED`, escaped: the logging
/// layer's `url.query` (formatted only by a subscriber that records it) and the report's
/// `sample.path`.
pub(crate) struct Redacted<'a> {
    pub(crate) query: &'a str,
    /// Keys redacted beside [`REDACTED_KEYS`] and the keys that end like a secret.
    pub(crate) keys: &'a [Box<str>],
}

impl Redacted<'_> {
    fn is_secret(&self, key: &str) -> bool {
        let is = |secret: &str| key.eq_ignore_ascii_case(secret);
        REDACTED_KEYS.into_iter().any(is)
            || self.keys.iter().any(|secret| is(secret))
            || ends_like_a_secret(key, self.keys)
    }
}

/// Whether `key`, percent-decoded and reduced to its letters and digits in lowercase, ends with
/// one of [`SECRET_ENDINGS`] or is one of `extra` (reduced the same way).
fn ends_like_a_secret(key: &str, extra: &[Box<str>]) -> bool {
    if key.len() > MAX_KEY {
        return true;
    }
    let mut reduced = [0u8; MAX_KEY];
    let mut len = 0;
    for byte in reduce(percent_encoding::percent_decode(key.as_bytes())) {
        reduced[len] = byte;
        len += 1;
    }
    let reduced = &reduced[..len];
    SECRET_ENDINGS
        .iter()
        .any(|ending| reduced.ends_with(ending.as_bytes()))
        || extra
            .iter()
            .any(|secret| !secret.is_empty() && reduce(secret.bytes()).eq(reduced.iter().copied()))
}

/// The letters and digits of `bytes`, in lowercase.
fn reduce(bytes: impl Iterator<Item = u8>) -> impl Iterator<Item = u8> {
    bytes
        .filter(u8::is_ascii_alphanumeric)
        .map(|byte| byte.to_ascii_lowercase())
}

impl fmt::Display for Redacted<'_> {
    /// Escaped ([`Escaped`]): a client's query reaches a subscriber's output as a `Display`
    /// field, which it writes as it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, pair) in self.query.split('&').enumerate() {
            if index > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((key, _)) if self.is_secret(key) => write!(f, "{}=REDACTED", Escaped(key))?,
                _ => write!(f, "{}", Escaped(pair))?,
            }
        }
        Ok(())
    }
}
