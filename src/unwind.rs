//! Catching a panic whatever its payload: the payload is dropped where its own panic is caught.
//!
//! `catch_unwind` hands back the payload, and dropping it runs the payload's `Drop`, which is the
//! application's code and may panic too (`std::panic::panic_any(Bomb)`). Dropped outside a
//! guard, that second panic would escape the very catch that was meant to stop the first: the
//! connection would be dropped without a response and the failure never counted. So every catch
//! site hands its payload to [`discard`], and formatting that calls foreign code goes through
//! [`catch`].

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
};

/// What a caught panic hands back.
pub(crate) type Payload = Box<dyn Any + Send>;

/// How many payloads in a row [`discard`] drops before it leaks the next: a payload whose `Drop`
/// panics with another such payload would otherwise never end.
const DROPS: usize = 8;

/// Runs `f`, catching a panic; the payload of a panic is discarded with [`discard`].
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            discard(payload);
            None
        }
    }
}

/// Drops `payload` where a panic in its `Drop` is caught; a payload that keeps panicking with
/// new payloads is leaked after [`DROPS`] of them.
pub(crate) fn discard(payload: Payload) {
    let mut payload = payload;
    for _ in 0..DROPS {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Panics when dropped, `self.0` more times.
    struct Bomb(u32);

    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 > 0 {
                std::panic::panic_any(Bomb(self.0 - 1));
            }
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_is_dropped_without_escaping() {
        let payload = catch_unwind(|| std::panic::panic_any(Bomb(3))).unwrap_err();
        discard(payload);
        // One that would panic forever is leaked, not looped on.
        let payload = catch_unwind(|| std::panic::panic_any(Bomb(u32::MAX))).unwrap_err();
        discard(payload);
        assert_eq!(catch(|| std::panic::panic_any(Bomb(2))), None::<()>);
        assert_eq!(catch(|| 7), Some(7));
    }
}
