//! The W3C `traceparent` header, read eight hex digits at a time: it runs on every request that
//! carries the header (feature `opentelemetry`), and is held to a byte-by-byte oracle in its tests.

use super::TraceId;

/// The `traceparent` header's name, built once rather than parsed on every lookup.
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
pub(crate) const TRACEPARENT: axum::http::HeaderName =
    axum::http::HeaderName::from_static("traceparent");

/// The trace id of a W3C `traceparent` header value (`00-<trace id>-<parent id>-<flags>`), if it
/// is well formed. It runs on every request that carries the header, so it looks at fixed
/// positions, reads eight digits at a time ([`nibbles`]) and allocates nothing.
#[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
pub(crate) fn from_traceparent(value: &[u8]) -> Option<TraceId> {
    let value = value.trim_ascii();
    let (fields, rest) = value.split_first_chunk::<55>()?;
    let digits = |at: usize| nibbles(*fields[at..].first_chunk::<8>()?);
    let dashes = fields[2] == b'-' && fields[35] == b'-' && fields[52] == b'-';
    // Version and flags, two digits each, checked in one go; the version is the first two lanes.
    let version = nibbles([
        fields[0], fields[1], fields[53], fields[54], b'0', b'0', b'0', b'0',
    ])? & 0xffff;
    let parent = digits(36)? | digits(44)?;
    let mut trace_id = [0; 16];
    for (bytes, at) in trace_id.chunks_exact_mut(4).zip([3, 11, 19, 27]) {
        bytes.copy_from_slice(&four_bytes(digits(at)?));
    }
    // Version ff is invalid; version 00 has exactly four fields, later versions may have more.
    let valid = dashes
        && version != 0x0f0f
        && parent != 0
        && (rest.is_empty() || (version != 0 && rest[0] == b'-'));
    if valid {
        TraceId::from_bytes(trace_id)
    } else {
        None
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The values of eight lowercase hex digits (as W3C Trace Context requires them), one in each
/// byte lane of a `u64`, lane i (from the lowest) holding digit i; `None` if any byte is not
/// such a digit. All eight are checked and converted at once.
fn nibbles(digits: [u8; 8]) -> Option<u64> {
    const HIGH: u64 = ONES * 0x80;
    let x = u64::from_le_bytes(digits);
    // In a lane below 0x80, adding 0x80 - c sets the lane's high bit exactly when the byte is
    // at least c, and carries into no other lane. (A lane of 0x80 or more fails the check below
    // whatever the others hold.)
    let at_least = |c: u8| x.wrapping_add(ONES * u64::from(0x80 - c));
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if (x | !(digit | letter)) & HIGH != 0 {
        return None;
    }
    // '0'..'9' end in 0..9, 'a'..'f' in 1..6: letters add 9.
    Some((x & (ONES * 0x0f)) + ((letter & HIGH) >> 7) * 9)
}

/// The four bytes eight [`nibbles`] write, the first digit the high half of the first byte.
fn four_bytes(nibbles: u64) -> [u8; 4] {
    // Pair the digits into bytes in the even lanes, then close the gaps.
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let [b0, b1, b2, b3, ..] = (quads | (quads >> 16)).to_le_bytes();
    [b0, b1, b2, b3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_headers_are_read_strictly() {
        let good = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            from_traceparent(good).map(|id| id.to_string()).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            &b""[..],
            b"garbage",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"\xff\xfe",
        ] {
            assert_eq!(
                from_traceparent(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // A later version may carry more fields.
        let later = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(from_traceparent(later).is_some());
    }

    /// The specification read one byte at a time, to hold the eight-at-a-time reader to.
    fn one_byte_at_a_time(value: &[u8]) -> Option<TraceId> {
        let value = value.trim_ascii();
        let hex = |field: &[u8]| -> Option<Vec<u8>> {
            let digit = |byte: u8| match byte {
                b'0'..=b'9' => Some(byte - b'0'),
                b'a'..=b'f' => Some(byte - b'a' + 10),
                _ => None,
            };
            field
                .chunks_exact(2)
                .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
                .collect()
        };
        if value.len() < 55 || [2, 35, 52].iter().any(|&at| value[at] != b'-') {
            return None;
        }
        let version = hex(&value[..2])?;
        let trace_id = hex(&value[3..35])?;
        let parent = hex(&value[36..52])?;
        hex(&value[53..55])?;
        let more = &value[55..];
        let valid = version != [0xff]
            && parent.iter().any(|&byte| byte != 0)
            && (more.is_empty() || (version != [0] && more[0] == b'-'));
        valid.then(|| TraceId::from_bytes(trace_id.try_into().unwrap()))?
    }

    #[test]
    fn every_byte_value_in_every_position_is_read_as_the_specification_says() {
        let good = *b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let later = *b"01-abcdef0123456789abcdef0123456789-0123456789abcdef-ff-x";
        let mut checked = 0;
        for base in [&good[..], &later[..]] {
            for at in 0..base.len() {
                for byte in 0..=u8::MAX {
                    let mut value = base.to_vec();
                    value[at] = byte;
                    assert_eq!(
                        from_traceparent(&value),
                        one_byte_at_a_time(&value),
                        "{:?}",
                        String::from_utf8_lossy(&value)
                    );
                    checked += usize::from(one_byte_at_a_time(&value).is_some());
                }
            }
        }
        // Most substitutions are rejected; enough were read to make the comparison mean something.
        assert!(checked > 1500, "{checked}");
    }

    #[test]
    fn eight_digits_give_their_four_bytes() {
        let read = |digits: &[u8; 8]| nibbles(*digits).map(four_bytes);
        assert_eq!(read(b"0123abcd"), Some([0x01, 0x23, 0xab, 0xcd]));
        assert_eq!(read(b"ffffffff"), Some([0xff; 4]));
        assert_eq!(read(b"90af0000"), Some([0x90, 0xaf, 0, 0]));
        for bad in [
            b"0123abcD",
            b"g0000000",
            b"0000000/",
            b"0000:000",
            b"`0000000",
        ] {
            assert_eq!(read(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
