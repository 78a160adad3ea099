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

/// The backtrace's frames, one line each, from the failure's own frame down to the thread's start:
/// the application's frames whole (`function at file:line:column`), each run of the standard
/// library's and dependencies' frames in one line (`… 11 frames in axum, tower, futures_util`),
/// at most [`MAX_FRAMES`] lines and then how many were left.
pub(crate) fn frames(backtrace: &Backtrace) -> Vec<String> {
    frames_of(&backtrace.to_string())
}

/// One frame as std prints it: `N: function`, then `at file:line:column` where the debug info
/// has one.
struct Frame<'a> {
    function: &'a str,
    at: Option<&'a str>,
}

/// Whose a frame is: the application's, or the named crate's (a dependency, the standard
/// library, the runtime).
#[derive(PartialEq)]
enum Owner<'a> {
    Application,
    Crate(&'a str),
}

/// Crates whose frames are the plumbing between the runtime and the handler, when the debug info
/// names no file (a release build without line tables): by their function's first path segment.
const PLUMBING: [&str; 16] = [
    "core",
    "std",
    "alloc",
    "tokio",
    "hyper",
    "hyper_util",
    "axum",
    "axum_core",
    "tower",
    "tower_http",
    "futures_util",
    "futures_core",
    "tonic",
    "h2",
    "tracing",
    "unhandled",
];

impl<'a> Frame<'a> {
    fn owner(&self) -> Owner<'a> {
        if let Some(at) = self.at {
            // `…/library/core/src/…` of a toolchain (`/rustc/<hash>/` or a rustup path).
            if let Some((_, rest)) = at.split_once("/library/") {
                if at.starts_with("/rustc/") || at.contains("/toolchains/") {
                    return Owner::Crate(rest.split('/').next().unwrap_or("std"));
                }
            }
            // `…/.cargo/registry/src/<index>/axum-0.8.9/…` and git checkouts.
            for marker in ["/registry/src/", "/git/checkouts/"] {
                if let Some((_, rest)) = at.split_once(marker) {
                    let package = rest.split('/').nth(1).unwrap_or(rest);
                    return Owner::Crate(crate_of(package));
                }
            }
            return Owner::Application;
        }
        // No file: the function's path says whose it is, where it is plumbing.
        let path = self.function.trim_start_matches('<');
        let first = path.split("::").next().unwrap_or(path);
        match first {
            "__rust_try" => Owner::Crate("std"),
            first if PLUMBING.contains(&first) => Owner::Crate(first),
            _ => Owner::Application,
        }
    }

    /// `function at file:line:column`, the file's registry or toolchain prefix shortened.
    fn line(&self) -> String {
        let function = crate::text::cut_at(self.function, MAX_FUNCTION);
        match self.at {
            Some(at) => format!(
                "{function} at {}",
                crate::text::cut_at(shortened(at), MAX_FUNCTION)
            ),
            None => function.to_owned(),
        }
    }
}

/// `axum` of `axum-0.8.9`: a package directory without its version.
fn crate_of(package: &str) -> &str {
    package
        .rmatch_indices('-')
        .find(|(at, _)| package[at + 1..].starts_with(|c: char| c.is_ascii_digit()))
        .map_or(package, |(at, _)| &package[..at])
}

/// A frame's file without the prefix every reader knows: `axum-0.8.9/src/…` for a registry path,
/// `library/core/src/…` for a toolchain's.
fn shortened(at: &str) -> &str {
    if let Some((_, rest)) = at.split_once("/registry/src/") {
        return rest.split_once('/').map_or(rest, |(_, rest)| rest);
    }
    match at.find("/library/") {
        Some(index) if at.starts_with("/rustc/") => &at[index + 1..],
        _ => at,
    }
}

/// Whether `file` is the standard library's, as a location or a frame names it.
pub(crate) fn is_std_file(file: &str) -> bool {
    file.starts_with("/rustc/")
        || ["core", "alloc", "std"]
            .iter()
            .any(|name| file.contains(&format!("/library/{name}/src/")))
}

/// The file, line and column of the first of the application's frames among `frames` (as
/// [`frames`] gives them), if one names its file.
pub(crate) fn first_application_location(frames: &[String]) -> Option<&str> {
    frames
        .iter()
        .filter(|frame| !frame.starts_with('…'))
        .find_map(|frame| frame.rsplit_once(" at ").map(|(_, at)| at))
        .filter(|at| !is_std_file(at))
}

/// The frames of a backtrace as std prints it, as [`frames`] gives them.
fn frames_of(text: &str) -> Vec<String> {
    let mut parsed: Vec<Frame<'_>> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(at) = line.strip_prefix("at ") {
            if let Some(frame) = parsed.last_mut().filter(|frame| frame.at.is_none()) {
                frame.at = Some(at);
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
        // The failure's making and the panic's machinery, above its own frame.
        if parsed.is_empty() && MACHINERY.iter().any(|prefix| function.starts_with(prefix)) {
            continue;
        }
        parsed.push(Frame { function, at: None });
    }
    let mut lines: Vec<String> = Vec::new();
    let mut left = 0usize;
    let mut index = 0;
    while index < parsed.len() {
        let line = match parsed[index].owner() {
            Owner::Application => {
                index += 1;
                parsed[index - 1].line()
            }
            Owner::Crate(_) => {
                let start = index;
                let mut crates: Vec<&str> = Vec::new();
                while let Some(Owner::Crate(name)) = parsed.get(index).map(Frame::owner) {
                    if !crates.contains(&name) {
                        crates.push(name);
                    }
                    index += 1;
                }
                let count = index - start;
                let s = if count == 1 { "" } else { "s" };
                let shown = crates.len().min(6);
                let more = if crates.len() > shown { ", …" } else { "" };
                format!("… {count} frame{s} in {}{more}", crates[..shown].join(", "))
            }
        };
        if lines.len() == MAX_FRAMES {
            left += 1;
            continue;
        }
        lines.push(line);
    }
    if left > 0 {
        lines.push(format!("… {left} more lines"));
    }
    lines
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
    fn the_application_s_frames_are_whole_and_the_plumbing_between_them_is_one_line() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        let text = format!(
            "   0: <alloc::boxed::Box<dyn Fn(&PanicHookInfo)> as core::ops::function::Fn>::call
             at /rustc/x/library/alloc/src/boxed.rs:2254:9
   1: core::option::unwrap_failed
   2: app::orders::load::{{{{closure}}}}
             at ./src/orders.rs:42:17
   3: <F as axum::handler::Handler<((),),S>>::call::{{{{closure}}}}
             at {registry}/axum-0.8.9/src/handler/mod.rs:217:38
   4: <core::pin::Pin<P> as core::future::future::Future>::poll
             at /rustc/x/library/core/src/future/future.rs:133:9
   5: <tower::util::oneshot::Oneshot<S,Req> as core::future::future::Future>::poll
             at {registry}/tower-0.5.3/src/util/oneshot.rs:96:42
   6: app::middleware::auth::{{{{closure}}}}
             at /home/me/app/src/middleware.rs:12:5
   7: tokio::runtime::task::raw::poll
   8: std::sys::backtrace::__rust_begin_short_backtrace
   9: never::shown
"
        );
        assert_eq!(
            frames_of(&text),
            [
                "app::orders::load::{{closure}} at ./src/orders.rs:42:17",
                "… 3 frames in axum, core, tower",
                "app::middleware::auth::{{closure}} at /home/me/app/src/middleware.rs:12:5",
                "… 1 frame in tokio",
            ]
        );
        let mut long = String::new();
        for index in 0..60 {
            long.push_str(&format!("  {}: app::step{index}\n", 2 * index));
            long.push_str(&format!(
                "  {}: tokio::runtime::task::poll\n",
                2 * index + 1
            ));
        }
        let lines = frames_of(&long);
        assert_eq!(lines.len(), MAX_FRAMES + 1);
        assert_eq!(lines[0], "app::step0");
        assert_eq!(lines[1], "… 1 frame in tokio");
        assert_eq!(lines[MAX_FRAMES], "… 88 more lines");
        assert_eq!(
            shortened(&format!("{registry}/axum-0.8.9/src/lib.rs:1:1")),
            "axum-0.8.9/src/lib.rs:1:1"
        );
        assert_eq!(
            shortened("/rustc/abc/library/core/src/ops.rs:1:1"),
            "library/core/src/ops.rs:1:1"
        );
        assert_eq!(crate_of("hyper-util-0.1.21"), "hyper-util");
    }
}
