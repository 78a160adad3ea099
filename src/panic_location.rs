//! The file, line and column of a panic that an error handler catches.
//!
//! A caught payload carries no location; only the panic hook sees it. So the first
//! [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) built installs a hook, once per process, that
//! chains the hook in force then (the default hook's message, sentry's, the application's own keep
//! working) and, for a panic inside an error handler's scope ([`handoff::in_scope`]) alone, notes
//! its location on the panicking thread. The error handler that catches the panic takes the note
//! whose message has the same address as the caught payload's: the message is the one allocation
//! both sides share, so a nested catch, a logging layer that resumes the unwind and a panic inside
//! a `Drop` during unwinding each find their own panic's note. A panic elsewhere is untouched.
//!
//! A hook the application installs later without chaining ours leaves no note: the panic is still
//! caught and counted, without a location. A build with `panic = "abort"` ends the process at the
//! panic; no layer can catch it.

use std::{
    any::Any,
    cell::RefCell,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::{backtraces, error::Site, handoff, switch::Switch};

/// Notes kept per thread: panics noted but caught by someone else are dropped oldest first.
const KEPT: usize = 4;

struct Note {
    /// The address of the panic's message, 0 for a payload that is not a string.
    key: usize,
    /// Always a [`Site::Panic`].
    site: Site,
}

/// Whether the hook notes locations: set by [`set_panic_locations`], or else decided by
/// [`PANIC_LOCATIONS_VAR`](crate::config::PANIC_LOCATIONS_VAR) when the hook is installed.
static SWITCH: Switch = Switch::new();

/// Turns on or off, for the whole process, noting the file, line and column of each panic an
/// [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) catches; by default on, unless
/// [`UNHANDLED_PANIC_LOCATIONS`](crate::config::PANIC_LOCATIONS_VAR) says off. The notes come from
/// a panic hook, one per process, which the first `ErrorHandlerLayer` built installs: called off
/// before that, no hook is installed (unless [`count_stray_panics`] needs it); called off later,
/// the hook stays and notes nothing.
///
/// ```
/// // An application whose own panic hook must be the only one: before any layer is built.
/// unhandled::set_panic_locations(false);
/// let layer = unhandled::layer();
/// ```
pub fn set_panic_locations(on: bool) {
    SWITCH.set(on);
}

/// Whether the noting hook was installed: a caught string panic without a note then means that a
/// hook set later replaced it.
static HOOKED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static NOTES: RefCell<Vec<Note>> = const { RefCell::new(Vec::new()) };
}

/// Installs the hook, once per process, unless both of its jobs are off: the location notes
/// ([`set_panic_locations`], [`PANIC_LOCATIONS_VAR`]) and the count of stray panics
/// ([`count_stray_panics`]). Once installed, a call is one load: every reported task's spawn
/// makes one.
///
/// [`PANIC_LOCATIONS_VAR`]: crate::config::PANIC_LOCATIONS_VAR
#[inline]
pub(crate) fn install() {
    if !INSTALLED.is_completed() {
        install_now();
    }
}

static INSTALLED: std::sync::Once = std::sync::Once::new();

#[cold]
#[inline(never)]
fn install_now() {
    // `take_hook` panics on a panicking thread: a layer built in a `Drop` during unwinding waits
    // for the next one.
    if std::thread::panicking() {
        return;
    }
    if !SWITCH.is_on(enabled) && !STRAY.is_on(stray_enabled) {
        return;
    }
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            note(info);
            previous(info);
        }));
        HOOKED.store(true, Ordering::Relaxed);
    });
}

fn enabled() -> bool {
    switch_var(crate::config::PANIC_LOCATIONS_VAR, true)
}

/// The switch `variable` holds, else `default`; a bad value is written where a person sees it.
fn switch_var(variable: &'static str, default: bool) -> bool {
    let Ok(value) = std::env::var(variable) else {
        return default;
    };
    crate::config::parse_switch_of(variable, &value).unwrap_or_else(|error| {
        crate::notice::config_value_ignored(crate::ReportTo::from_env_or_default(), &error);
        default
    })
}

/// Notes of string panics outside any error handler's scope, process-wide, newest last: a
/// handler that resumes one (`std::panic::resume_unwind(join_error.into_panic())`) resumes it
/// without a hook call, and its error handler finds the panic's location here.
static ELSEWHERE: parking_lot::Mutex<Vec<Note>> = parking_lot::Mutex::new(Vec::new());

/// Notes kept in [`ELSEWHERE`].
const KEPT_ELSEWHERE: usize = 16;

/// The hook's part: never panics (a panic in a hook aborts the process).
fn note(info: &std::panic::PanicHookInfo<'_>) {
    let Some(location) = info.location() else {
        return;
    };
    let in_scope = handoff::in_scope();
    if !in_scope {
        stray(info, location);
    }
    if SWITCH.is_off() {
        return;
    }
    let key = key_of(info.payload());
    if !in_scope {
        if key != 0 {
            let site = Site::Panic {
                file: location.file().into(),
                line: location.line(),
                column: location.column(),
                backtrace: None,
            };
            let mut elsewhere = ELSEWHERE.lock();
            if elsewhere.len() >= KEPT_ELSEWHERE {
                elsewhere.remove(0);
            }
            elsewhere.push(Note { key, site });
        }
        return;
    }
    let site = located_at(location);
    let _ = NOTES.try_with(|notes| {
        if let Ok(mut notes) = notes.try_borrow_mut() {
            if notes.len() >= KEPT {
                notes.remove(0);
            }
            notes.push(Note { key, site });
        }
    });
}

/// Whether the hook counts the panics outside every scope ([`count_stray_panics`]).
static STRAY: Switch = Switch::new();

/// Turns on or off, for the whole process, counting every panic outside a request and a reported
/// task (a plain `tokio::spawn`, a `std::thread`) as `task_panic` under the route `_unscoped`,
/// with its location, in the process-wide reporter
/// ([`ReportingErrorHandler::global`](crate::ReportingErrorHandler::global)). Off by default,
/// unless [`UNHANDLED_COUNT_STRAY_PANICS`](crate::config::STRAY_PANICS_VAR) says on: a library may
/// catch its own panics, which are then no failure. Turn it on where every panic of the process
/// is a bug. Turned on, it installs the panic hook that counts them, if no error-handler layer or
/// reported task did: set the application's own hook before, as for [`set_panic_locations`].
///
/// ```
/// unhandled::count_stray_panics(true); // installs the hook
/// std::thread::spawn(|| panic!("the cache warmer fell over")).join().unwrap_err();
/// let group = &unhandled::ReportingErrorHandler::global().breakdown().groups[0];
/// assert_eq!((group.route.as_str(), group.kind), ("_unscoped", unhandled::ErrorKind::TaskPanic));
/// ```
pub fn count_stray_panics(on: bool) {
    STRAY.set(on);
    if on {
        install();
    }
}

/// Counts a panic outside every scope, when [`STRAY`] is on. Never panics: a panic in a hook
/// aborts the process.
fn stray(info: &std::panic::PanicHookInfo<'_>, location: &std::panic::Location<'_>) {
    thread_local! {
        /// Whether this thread is counting a stray panic: a panic inside the count (the
        /// application's `Display`) would come back here.
        static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if !STRAY.is_on(stray_enabled)
        || COUNTING.try_with(|counting| counting.replace(true)) != Ok(false)
    {
        return;
    }
    let error = crate::error::Error::from_panic(info.payload(), Some(located_at(location)));
    let _ = crate::unwind::catch(|| {
        let unscoped = handoff::Spawner::background(UNSCOPED, crate::reporting::kept_global());
        unscoped.failed(&error, crate::ErrorKind::TaskPanic, None);
    });
    let _ = COUNTING.try_with(|counting| counting.set(false));
}

/// A panic's site at `location`, with the backtrace its location takes this interval, if any.
fn located_at(location: &std::panic::Location<'_>) -> Site {
    Site::Panic {
        file: location.file().into(),
        line: location.line(),
        column: location.column(),
        backtrace: backtraces::capture(location.file(), location.line(), location.column()),
    }
}

/// The route of a panic outside any request and reported task ([`count_stray_panics`]).
pub(crate) const UNSCOPED: &str = "_unscoped";

fn stray_enabled() -> bool {
    switch_var(crate::config::STRAY_PANICS_VAR, false)
}

fn key_of(payload: &(dyn Any + Send)) -> usize {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text.as_ptr() as usize
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.as_ptr() as usize
    } else {
        0
    }
}

/// What the hook noted of the panic whose caught payload is `payload`, taken: for the error
/// handler that catches it for good. [`Site::Lost`] where the hook is installed and noted nothing
/// of a string panic, which a hook set later replacing it explains; `None` where there is nothing
/// to know (the hook is off, or the payload is not a string).
pub(crate) fn take(payload: &(dyn Any + Send)) -> Option<Site> {
    noted(payload, true)
}

/// The same, left in place: for a logging layer, which resumes the unwind.
pub(crate) fn peek(payload: &(dyn Any + Send)) -> Option<Site> {
    noted(payload, false)
}

fn noted(payload: &(dyn Any + Send), take: bool) -> Option<Site> {
    let key = key_of(payload);
    let found = NOTES
        .try_with(|notes| {
            let mut notes = notes.try_borrow_mut().ok()?;
            let index = notes.iter().rposition(|note| note.key == key)?;
            Some(match take {
                true => notes.remove(index).site,
                false => notes[index].site.clone(),
            })
        })
        .ok()
        .flatten()
        .or_else(|| {
            // A panic made elsewhere and resumed here: the hook saw it, outside any scope.
            let mut elsewhere = ELSEWHERE.lock();
            let index = elsewhere.iter().rposition(|note| note.key == key)?;
            Some(match take {
                true => elsewhere.remove(index).site,
                false => elsewhere[index].site.clone(),
            })
        });
    let lost = key != 0 && HOOKED.load(Ordering::Relaxed) && !SWITCH.is_off();
    found.or(lost.then_some(Site::Lost))
}
