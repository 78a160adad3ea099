//! The shared state behind every clone of a [`ReportingErrorHandler`](super::ReportingErrorHandler):
//! counts, the breakdown, and the one periodic task.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use parking_lot::Mutex;
use tokio::{
    runtime::Handle,
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};
use tracing::Level;

use super::{
    event,
    groups::{Breakdown, Groups, Pending},
    offload::{Late, Offload, Report, SHUTDOWN_WAIT, TICK_WAIT},
};
use crate::{config::ReportTo, context::ErrorContext, error::Error, metric, notice, unwind};

pub(crate) struct Reporter {
    pub(crate) interval: Duration,
    pub(crate) level: Level,
    pub(crate) count_error_responses: bool,
    pub(crate) report_to: ReportTo,
    groups: Groups,
    /// Whether a task runs or is being started; the compare-and-swap that sets it starts one.
    scheduled: AtomicBool,
    /// Whether a task will publish the counts that errors left unpublished.
    publish_planned: AtomicBool,
    task: Mutex<TaskSlot>,
    /// The thread that writes the reports.
    pub(super) offload: Offload,
    /// The failures the report being written took, until it writes them (0 then): a report that
    /// is left behind leaves them to the next report, which takes them here.
    in_flight: AtomicU64,
}

#[derive(Default)]
struct TaskSlot {
    /// Bumped whenever a task starts or is stopped, so that a stale task's exit touches nothing.
    generation: u64,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    pub(crate) fn new(
        interval: Duration,
        level: Level,
        count_error_responses: bool,
        report_to: ReportTo,
    ) -> Self {
        Self {
            interval,
            level,
            count_error_responses,
            report_to,
            groups: Groups::new(!interval.is_zero()),
            scheduled: AtomicBool::new(false),
            publish_planned: AtomicBool::new(false),
            task: Mutex::new(TaskSlot::default()),
            offload: Offload::default(),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Counts one unlogged error in its group and the metric, without a lock once its group
    /// exists; then makes sure the periodic task runs.
    pub(crate) fn record(&'static self, error: &Error, context: &ErrorContext<'_>) {
        if !self.groups.record(error, context) {
            self.publish_later();
        }
        if !self.interval.is_zero() && !self.scheduled.load(Ordering::Acquire) {
            self.start_task();
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.groups.total()
    }

    pub(crate) fn breakdown(&self) -> Breakdown {
        self.groups.breakdown()
    }

    /// Has the counts published within [`metric::PUBLISH_DELAY`], unless that is planned already:
    /// during a storm, one flag read per error. The periodic task publishes them at its next
    /// step; with the report off there is no such task, and a task that sleeps for the delay does
    /// it. Without a tokio runtime on this thread, the next error that does not publish tries
    /// again.
    fn publish_later(&'static self) {
        if self.publish_planned.load(Ordering::SeqCst)
            || self.publish_planned.swap(true, Ordering::SeqCst)
            || !self.interval.is_zero()
        {
            return;
        }
        let Ok(runtime) = Handle::try_current() else {
            self.publish_planned.store(false, Ordering::SeqCst);
            return;
        };
        // The guard publishes when the task ends, or when it is dropped with its runtime.
        let planned = PlannedPublish(self);
        runtime.spawn(async move {
            tokio::time::sleep(metric::PUBLISH_DELAY).await;
            drop(planned);
        });
    }

    /// Starts the periodic task unless another thread won the race to. Without a tokio runtime
    /// on this thread nothing starts: the count is kept and the next error tries again.
    fn start_task(&'static self) {
        if self
            .scheduled
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let Ok(runtime) = Handle::try_current() else {
            self.scheduled.store(false, Ordering::Release);
            return;
        };
        let generation = {
            let mut slot = self.task.lock();
            slot.generation += 1;
            slot.generation
        };
        // The guard exists before the task first runs, so that a task dropped unpolled (its
        // runtime shutting down) still reports and lets the next error start another.
        let guard = TaskGuard {
            reporter: self,
            generation,
        };
        let handle = runtime.spawn(guard.run());
        let mut slot = self.task.lock();
        if slot.generation == generation {
            slot.handle = Some(handle);
        }
    }

    /// Stops the task (if any) so that the next error starts a new one; returns it to await.
    pub(crate) fn stop_task(&self) -> Option<JoinHandle<()>> {
        let mut slot = self.task.lock();
        slot.generation += 1;
        self.scheduled.store(false, Ordering::Release);
        let handle = slot.handle.take()?;
        handle.abort();
        Some(handle)
    }

    /// Publishes the counts that errors left unpublished.
    fn publish_planned_now(&self) {
        // Cleared first: an error that sees it clear plans another publication, and one that
        // saw it set counted before this publication reads the counts.
        self.publish_planned.store(false, Ordering::SeqCst);
        self.groups.publish();
    }

    /// Publishes every count and asks the report thread for a report of whatever is pending now,
    /// however long it has been since the last report; the ticket to wait for, `None` when there
    /// is nothing to report. With the interval at zero the report is off, and only publishes.
    pub(crate) fn flush(&'static self) -> Option<u64> {
        self.groups.publish();
        if self.interval.is_zero() || self.groups.total() == 0 {
            return None;
        }
        Some(self.offload.request(self, None, false))
    }

    /// Waits, blocking, at most [`SHUTDOWN_WAIT`] for the report `ticket` and for standard error
    /// to take its lines.
    pub(crate) fn wait(&'static self, ticket: u64) {
        let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
        if self.offload.wait(self, ticket, deadline, true) {
            notice::wait_written(deadline);
        }
    }

    /// [`flush`](Self::flush), then [`wait`](Self::wait): blocks at most [`SHUTDOWN_WAIT`].
    pub(crate) fn flush_and_wait(&'static self) {
        if let Some(ticket) = self.flush() {
            self.wait(ticket);
        }
    }
}

impl Report for Reporter {
    fn offload(&self) -> &Offload {
        &self.offload
    }

    /// Writes the report of what accumulated since the last one, covering `window` (`None`: the
    /// time since the last report): on the report thread ([`Offload`]), never on a worker of the
    /// application's runtime. Unless `late` says that a report did not finish in time, the
    /// report shows a sample, which runs the application's `Display` and resolves its backtrace.
    fn write(&self, window: Option<Duration>, late: Late) {
        // A report that follows one left behind carries that one's failures.
        let carried = match late {
            Late::Previous => self.in_flight.swap(0, Ordering::AcqRel),
            Late::No | Late::Still => 0,
        };
        let pending = match (self.groups.take(late == Late::No), carried) {
            (Some(pending), carried) => pending.carrying(carried),
            (None, 0) => return,
            (None, carried) => Pending::carried(carried),
        };
        let window = window.unwrap_or(pending.elapsed);
        if late == Late::No {
            self.in_flight.store(pending.count, Ordering::Release);
        }
        // Unless a later report took them meanwhile, this one writes its failures. (One that
        // carries the counts alone runs none of the application's code, and always writes.)
        let still_mine = || late != Late::No || self.in_flight.swap(0, Ordering::AcqRel) != 0;
        // Each under a guard: a subscriber that panics, or a sample error whose `Drop` does,
        // costs this one report and never the thread.
        unwind::catch(|| {
            event::emit(
                self.level,
                self.report_to,
                window,
                &pending,
                late,
                &still_mine,
            );
        });
        unwind::catch(move || drop(pending));
    }
}

/// Owned by the task [`Reporter::publish_later`] starts: publishes the counts when it drops.
struct PlannedPublish(&'static Reporter);

impl Drop for PlannedPublish {
    fn drop(&mut self) {
        self.0.publish_planned_now();
    }
}

/// Owned by the periodic task; when the task ends (stopped, or dropped with its runtime) it
/// reports what is pending and, unless a newer task replaced it, lets the next error start one.
struct TaskGuard {
    reporter: &'static Reporter,
    generation: u64,
}

impl TaskGuard {
    /// Every interval, reports; in steps of at most [`metric::PUBLISH_DELAY`] in between,
    /// publishes what errors left unpublished, if anything.
    async fn run(self) {
        let reporter = self.reporter;
        let interval = reporter.interval;
        let steps = interval
            .as_nanos()
            .div_ceil(metric::PUBLISH_DELAY.as_nanos())
            .clamp(1, u128::from(u32::MAX));
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        let step = interval / steps;
        let mut ticks = tokio::time::interval_at(Instant::now() + step, step);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            for _ in 0..steps {
                ticks.tick().await;
                if reporter.publish_planned.load(Ordering::SeqCst) {
                    reporter.publish_planned_now();
                }
            }
            // Asked of the report thread, and waited for on tokio's blocking pool, never on a
            // worker, at most until the next report is due: a report still running then is left
            // behind. (Waiting lets tokio's paused test clock wait for the report too.)
            let ticket = reporter.offload.request(reporter, Some(interval), true);
            let deadline = std::time::Instant::now() + interval.min(TICK_WAIT);
            let wait = move || reporter.offload.wait(reporter, ticket, deadline, false);
            let _ = tokio::task::spawn_blocking(wait).await;
        }
    }
}

impl Drop for TaskGuard {
    /// Stopped by [`Reporter::stop_task`], the task leaves the last report to whoever stopped it;
    /// dropped with its runtime, it reports what is pending, waiting at most [`SHUTDOWN_WAIT`].
    fn drop(&mut self) {
        {
            let mut slot = self.reporter.task.lock();
            if slot.generation != self.generation {
                return;
            }
            slot.generation += 1;
            slot.handle = None;
            self.reporter.scheduled.store(false, Ordering::Release);
        }
        self.reporter.flush_and_wait();
    }
}
