//! Backtraces where std's variables ask for them, never per failure.
//!
//! With `RUST_LIB_BACKTRACE`, or else `RUST_BACKTRACE`, set to anything but `0` (std's rules for
//! [`Backtrace::capture`]), or with the builder's switch on, a failure with a location (an
//! [`Error`](crate::Error) made by `?`, `Error::new` or `with_cause`, a panic the hook noted)
//! takes a backtrace where it happens: when the error is made, or in the panic hook, the only
//! places where the stack still holds the handler's frames. It takes one only if no failure made
//! at the same location took one since the last report, so a storm of failures captures one per
//! location per interval; the report advances the interval ([`next_interval`]). The frames are
//! resolved to names and lines when the report is written, on the reporter's task
//! ([`frames`]): capturing walks the stack and allocates once, resolving reads debug info.
//!
//! The switch is process-wide, as std's variables are: the capture happens before any error
//! handler sees the failure.

use std::{
    backtrace::Backtrace,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
};

use crate::switch::Switch;

/// On or off; where nothing set it, std's variables decide at the first failure.
static MODE: Switch = Switch::new();

/// How many locations are told apart: each takes a slot of its own, found by its hash and up to
/// [`PROBES`] slots after it, so that 64 failure sites (the groups' bound) get one each. A location
/// that finds no slot of its own shares the one its hash picks.
const SLOTS: usize = 256;
const PROBES: usize = 16;

/// The location each slot belongs to (0: free), and the interval it last captured in.
static KEYS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static TAKEN: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];

/// The report interval in force, from 1.
static INTERVAL: AtomicU32 = AtomicU32::new(1);

/// The most frames a report shows.
pub(crate) const MAX_FRAMES: usize = 32;

/// The most bytes of a frame's function name kept: a generic type's name can run to kilobytes.
const MAX_FUNCTION: usize = 384;

/// Turns on or off, for the whole process, the backtrace a failure takes for the report's
/// sample, whatever std's variables say; by default as `RUST_LIB_BACKTRACE`, or else
/// `RUST_BACKTRACE`, asks (std's rules: set and not `0`). A backtrace is taken where the failure is
/// made, before any handler sees it: at most one failure per location per report interval takes
/// one. Release builds need `debug = "line-tables-only"` in their profile for files and lines.
///
/// ```
/// // Never, even where the environment sets RUST_BACKTRACE=1 for std's panic hook.
/// unhandled::set_backtraces(false);
/// ```
pub fn set_backtraces(on: bool) {
    MODE.set(on);
}

/// std's rules for [`Backtrace::capture`]: `RUST_LIB_BACKTRACE` if set, else `RUST_BACKTRACE`;
/// `0` is off, any other value on.
fn std_asks() -> bool {
    let variable =
        std::env::var_os("RUST_LIB_BACKTRACE").or_else(|| std::env::var_os("RUST_BACKTRACE"));
    variable.is_some_and(|value| value != "0")
}

/// Starts a new interval: each location may capture once more.
pub(crate) fn next_interval() {
    INTERVAL.fetch_add(1, Ordering::Relaxed);
}

/// A backtrace of the failure being made at `file:line:column`, where backtraces are on and no
/// failure made there took one in this interval.
#[inline]
pub(crate) fn capture(file: &str, line: u32, column: u32) -> Option<Arc<Backtrace>> {
    if !MODE.is_on(std_asks) {
        return None;
    }
    capture_at(file, line, column)
}

#[cold]
#[inline(never)]
fn capture_at(file: &str, line: u32, column: u32) -> Option<Arc<Backtrace>> {
    // The file of a location is static data: one location, one address. Never 0: 0 marks a free
    // slot.
    let key = ((file.as_ptr() as u64)
        ^ (u64::from(line) << 40)
        ^ (u64::from(column) << 24)
        ^ file.len() as u64)
        | 1 << 63;
    let slot = &TAKEN[slot_of(key)];
    let interval = INTERVAL.load(Ordering::Relaxed);
    if slot.load(Ordering::Relaxed) == interval
        || slot.swap(interval, Ordering::Relaxed) == interval
    {
        return None;
    }
    Some(Arc::new(Backtrace::force_capture()))
}

/// The slot of the location `key`: its own (taken now if free), else the one its hash picks.
fn slot_of(key: u64) -> usize {
    let start = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % SLOTS;
    for probe in 0..PROBES {
        let index = (start + probe) % SLOTS;
        let owner = KEYS[index].load(Ordering::Relaxed);
        if owner == key {
            return index;
        }
        if owner == 0 {
            match KEYS[index].compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return index,
                Err(owner) if owner == key => return index,
                Err(_) => {}
            }
        }
    }
    start
}

/// Frames the failure itself did not write: the error's making and the panic's machinery, which
/// are the standard library's (`core::option::unwrap_failed`, the panic hook's call, …) and this
/// crate's capture.
const MACHINERY: [&str; 11] = [
    "core::",
    "<core::",
    "std::",
    "<std::",
    "alloc::",
    "<alloc::",
    "__rustc::",
    "rust_begin_unwind",
    "<T as core::",
    "unhandled::",
    "<unhandled::",
];

/// The backtrace's frames, one line each (`function at file:line:column`), from the failure's own
/// frame down to the thread's start, at most [`MAX_FRAMES`] of them and then how many were left.
pub(crate) fn frames(backtrace: &Backtrace) -> Vec<String> {
    frames_of(&backtrace.to_string())
}

/// The frames of a backtrace as std prints it: `N: function` lines, each followed by its
/// `at file:line:column` where the debug info has one.
fn frames_of(text: &str) -> Vec<String> {
    let mut frames: Vec<String> = Vec::new();
    let mut skipping = true;
    let mut left = 0usize;
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(at) = line.strip_prefix("at ") {
            if !skipping && left == 0 {
                if let Some(frame) = frames.last_mut().filter(|frame| !frame.contains(" at ")) {
                    frame.push_str(" at ");
                    frame.push_str(crate::text::cut_at(at, MAX_FUNCTION));
                }
            }
            continue;
        }
        let Some((index, function)) = line.split_once(": ") else {
            continue;
        };
        if index.is_empty() || !index.bytes().all(|byte| byte.is_ascii_digit()) {
            continue;
        }
        // std's short backtraces end here too: below is the thread's start.
        if function.starts_with("std::sys::backtrace::__rust_begin_short_backtrace") {
            break;
        }
        if skipping && MACHINERY.iter().any(|prefix| function.starts_with(prefix)) {
            continue;
        }
        skipping = false;
        if frames.len() == MAX_FRAMES {
            left += 1;
            continue;
        }
        frames.push(crate::text::cut_at(function, MAX_FUNCTION).to_owned());
    }
    if left > 0 {
        frames.push(format!("… {left} more frames"));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn fails_here() -> Option<Arc<Backtrace>> {
        capture(file!(), line!(), column!())
    }

    /// The interval is process-wide: the tests that advance it run one at a time.
    static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    #[test]
    fn one_capture_per_location_per_interval_however_many_fail() {
        let _serial = SERIAL.lock();
        set_backtraces(true);
        let captured = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..10_000).filter(|_| fails_here().is_some()).count()))
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .sum::<usize>()
        });
        assert_eq!(captured, 1);
        next_interval();
        assert!(fails_here().is_some(), "a new interval captures again");
        assert!(fails_here().is_none());
    }

    #[test]
    fn sixty_four_sites_each_capture_once_an_interval() {
        let _serial = SERIAL.lock();
        set_backtraces(true);
        next_interval();
        let file = "src/sites.rs";
        let interval = INTERVAL.load(Ordering::Relaxed);
        let captured = (0..64u32)
            .filter(|&line| capture(file, line + 1, 5).is_some())
            .count();
        assert_eq!(captured, 64, "sites that shared a slot lost their capture");
        let again = (0..64u32)
            .filter(|&line| capture(file, line + 1, 5).is_some())
            .count();
        // Another test's report may have started a new interval meanwhile.
        if INTERVAL.load(Ordering::Relaxed) == interval {
            assert_eq!(again, 0);
        }
    }

    #[test]
    fn frames_start_at_the_failure_and_end_at_the_thread_s_start_or_the_bound() {
        let mut text = String::from(
            "   0: <alloc::boxed::Box<dyn Fn(&PanicHookInfo)> as core::ops::function::Fn>::call
             at /rustc/x/library/alloc/src/boxed.rs:2254:9
   1: core::option::unwrap_failed
   2: app::orders::load::{{closure}}
             at ./src/orders.rs:42:17
   3: <axum::handler::future::IntoServiceFuture<F> as core::future::future::Future>::poll
",
        );
        for index in 4..60 {
            text.push_str(&format!("  {index}: tokio::runtime::task::poll\n"));
        }
        let frames = frames_of(&text);
        assert_eq!(
            frames[0],
            "app::orders::load::{{closure}} at ./src/orders.rs:42:17"
        );
        assert!(frames[1].starts_with("<axum::handler::future::IntoServiceFuture<F> as"));
        assert_eq!(frames.len(), MAX_FRAMES + 1);
        assert_eq!(frames[MAX_FRAMES], "… 26 more frames");
        let short =
            "   0: app::main\n   1: std::sys::backtrace::__rust_begin_short_backtrace\n   2: x\n";
        assert_eq!(frames_of(short), ["app::main"]);
    }
}
