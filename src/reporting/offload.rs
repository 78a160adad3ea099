//! The report's own thread: taking the groups, formatting the sample (the application's
//! `Display`), resolving its backtrace and handing the lines to standard error all happen there,
//! never on a worker of the application's runtime.
//!
//! The periodic task only asks for a report ([`Offload::request`]). A report that is still running
//! when the next one is due is not waited for: its thread is left to finish on its own, a new
//! thread takes the next report, and reports carry the counts alone (no sample, nothing of the
//! application's code) until the thread left behind ends. So a `Display` that never returns costs
//! one thread, and at most one: while a thread is left behind, no other is.

use std::{
    thread,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};
use tracing::Dispatch;

pub(crate) use super::event::Late;

/// What the report thread writes for: a reporter, which keeps its [`Offload`].
pub(crate) trait Report: Sync + 'static {
    /// The reporter's report thread.
    fn offload(&self) -> &Offload;
    /// Writes a report covering `window` (`None`: the time since the last report); `late` says
    /// why it carries the counts alone.
    fn write(&self, window: Option<Duration>, late: Late);
}

/// How long [`shutdown`](crate::ReportingErrorHandler::shutdown), a dropped
/// [`ShutdownGuard`](crate::ShutdownGuard) and the runtime's shutdown wait for the last report:
/// half of it for a report already running, then the rest for the last one on a new thread.
pub(crate) const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The longest the periodic task waits (on tokio's blocking pool, never on a worker) for a report
/// it asked for: the runtime's shutdown waits at most that long for the wait to end.
pub(crate) const TICK_WAIT: Duration = Duration::from_secs(1);

/// One report to write.
struct Job {
    /// The window the report covers; `None`: the time since the last report.
    window: Option<Duration>,
    /// The subscriber in force where the report was asked for: the report goes there.
    dispatch: Dispatch,
    /// Its number, for whoever waits for it.
    ticket: u64,
}

#[derive(Default)]
struct State {
    /// The next report to write; a newer request replaces it (one report covers both).
    job: Option<Job>,
    /// The number of the thread that takes jobs; one whose number is no longer this one was
    /// left behind and ends after its job.
    current: u64,
    /// Whether the current thread exists.
    running: bool,
    /// Whether the current thread is writing a report.
    busy: bool,
    /// The thread left behind with a report that had not finished when the next was due.
    behind: Option<u64>,
    /// Whether the next report says that the previous one had not finished.
    late: bool,
    /// The last ticket given, and the last one finished (or replaced by one that finished).
    asked: u64,
    finished: u64,
}

/// The report thread of one reporter, and what it is asked to do.
#[derive(Default)]
pub(crate) struct Offload {
    state: Mutex<State>,
    /// Wakes the thread for a job, and whoever waits for a job to finish.
    changed: Condvar,
}

impl Offload {
    /// Asks for a report of `reporter` covering `window`; never blocks on a report. When `leave`
    /// and a report is still running, that report's thread is left behind (unless one already
    /// is). The ticket to wait for ([`wait`](Self::wait)).
    pub(crate) fn request(
        &self,
        reporter: &'static dyn Report,
        window: Option<Duration>,
        leave: bool,
    ) -> u64 {
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let mut state = self.state.lock();
        if leave {
            leave_behind(&mut state);
        }
        state.asked += 1;
        let ticket = state.asked;
        state.job = Some(Job {
            window,
            dispatch,
            ticket,
        });
        if !state.running {
            state.running = true;
            let number = state.current;
            let spawned = thread::Builder::new()
                .name("unhandled-report".into())
                .spawn(move || reporter.offload().run(reporter, number));
            // No thread to be had: the job waits for the next request to try again.
            if spawned.is_err() {
                state.running = false;
            }
        }
        self.changed.notify_all();
        ticket
    }

    /// Waits until the report `ticket` (or a later one) is written, or `deadline`; when `leave`,
    /// half the time is gone and a report is still running, leaves it behind and asks again.
    /// Whether it was written.
    pub(crate) fn wait(
        &self,
        reporter: &'static dyn Report,
        ticket: u64,
        deadline: Instant,
        leave: bool,
    ) -> bool {
        let now = Instant::now();
        let half = now + deadline.saturating_duration_since(now) / 2;
        let mut ticket = ticket;
        let mut state = self.state.lock();
        while state.finished < ticket {
            if leave && Instant::now() >= half && state.busy && state.behind.is_none() {
                drop(state);
                ticket = self.request(reporter, None, true);
                state = self.state.lock();
                continue;
            }
            let until = match Instant::now() < half {
                true => half,
                false => deadline,
            };
            if self.changed.wait_until(&mut state, until).timed_out() && Instant::now() >= deadline
            {
                return false;
            }
        }
        true
    }

    /// The thread numbered `number`: writes the reports it is asked for until it is left behind.
    fn run(&self, reporter: &'static dyn Report, number: u64) {
        loop {
            let (job, late) = {
                let mut state = self.state.lock();
                let job = loop {
                    if state.current != number {
                        return;
                    }
                    if let Some(job) = state.job.take() {
                        break job;
                    }
                    self.changed.wait(&mut state);
                };
                state.busy = true;
                let late = match (state.behind.is_some(), std::mem::take(&mut state.late)) {
                    (_, true) => Late::Previous,
                    (true, false) => Late::Still,
                    (false, false) => Late::No,
                };
                (job, late)
            };
            tracing::dispatcher::with_default(&job.dispatch, || {
                reporter.write(job.window, late);
            });
            let mut state = self.state.lock();
            if state.current == number {
                state.busy = false;
                state.finished = state.finished.max(job.ticket);
            } else if state.behind == Some(number) {
                state.behind = None;
            }
            self.changed.notify_all();
            if state.current != number {
                return;
            }
        }
    }
}

/// Leaves the running report's thread behind, unless one already is: the next report goes to a
/// new thread and says that the previous one had not finished.
fn leave_behind(state: &mut State) {
    if !state.busy || state.behind.is_some() {
        return;
    }
    state.behind = Some(state.current);
    state.current += 1;
    state.running = false;
    state.busy = false;
    state.late = true;
}
