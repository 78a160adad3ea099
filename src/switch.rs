//! A process-wide switch: set by code (`set_backtraces`, `set_panic_locations`), or else decided
//! once, at its first use, from the environment.

use std::sync::atomic::{AtomicU8, Ordering};

/// The panic hook's switch and the backtraces': on, off, or undecided until its first use.
pub(crate) struct Switch(AtomicU8);

const UNDECIDED: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

impl Switch {
    pub(crate) const fn new() -> Self {
        Self(AtomicU8::new(UNDECIDED))
    }

    /// Turns it on or off, whatever the environment says.
    pub(crate) fn set(&self, on: bool) {
        self.0.store(if on { ON } else { OFF }, Ordering::Relaxed);
    }

    /// Whether it is on; `decide` says, the first time, where nothing set it.
    #[inline]
    pub(crate) fn is_on(&self, decide: fn() -> bool) -> bool {
        match self.0.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => self.decide(decide),
        }
    }

    #[cold]
    fn decide(&self, decide: fn() -> bool) -> bool {
        let decided = if decide() { ON } else { OFF };
        let _ = self
            .0
            .compare_exchange(UNDECIDED, decided, Ordering::Relaxed, Ordering::Relaxed);
        self.0.load(Ordering::Relaxed) == ON
    }

    /// Whether it was turned off, by code or by its first use.
    pub(crate) fn is_off(&self) -> bool {
        self.0.load(Ordering::Relaxed) == OFF
    }
}
