//! The shared state behind every clone of a [`ReportingErrorHandler`](super::ReportingErrorHandler):
//! counts, the breakdown, and the one periodic task.

use std::{
    sync::atomic::{AtomicBool, Ordering},
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
};
use crate::{config::ReportTo, context::ErrorContext, error::Error, metric, unwind};

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

    /// One periodic tick: reports when errors were counted since the last report.
    fn tick(&self) {
        if let Some(pending) = self.groups.take() {
            report(self.level, self.report_to, self.interval, pending);
        }
    }

    /// Publishes the counts that errors left unpublished.
    fn publish_planned_now(&self) {
        // Cleared first: an error that sees it clear plans another publication, and one that
        // saw it set counted before this publication reads the counts.
        self.publish_planned.store(false, Ordering::SeqCst);
        self.groups.publish();
    }

    /// Reports whatever is pending now, however long it has been since the last report, and
    /// publishes every count. With the interval at zero the report is off, and only publishes.
    pub(crate) fn flush(&self) {
        self.groups.publish();
        if self.interval.is_zero() {
            return;
        }
        if let Some(pending) = self.groups.take() {
            let elapsed = pending.elapsed;
            report(self.level, self.report_to, elapsed, pending);
        }
    }
}

/// Emits the report of `pending` and drops it, each under [`unwind::catch`]: a subscriber that
/// panics, or a sample error whose `Drop` does, costs this one report and never the task (nor, in
/// a `Drop` of the task's guard, the process).
fn report(level: Level, report_to: ReportTo, window: Duration, pending: Pending) {
    unwind::catch(|| event::emit(level, report_to, window, &pending));
    unwind::catch(move || drop(pending));
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
            reporter.tick();
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        {
            let mut slot = self.reporter.task.lock();
            if slot.generation == self.generation {
                slot.generation += 1;
                slot.handle = None;
                self.reporter.scheduled.store(false, Ordering::Release);
            }
        }
        self.reporter.flush();
    }
}
