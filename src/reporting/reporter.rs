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
    groups::{Breakdown, Groups},
};
use crate::{context::ErrorContext, error::Error, metric};

pub(crate) struct Reporter {
    pub(crate) interval: Duration,
    pub(crate) level: Level,
    pub(crate) count_error_responses: bool,
    /// The count when the task last reported.
    reported: AtomicU64,
    groups: Groups,
    /// Whether a task runs or is being started; the compare-and-swap that sets it starts one.
    scheduled: AtomicBool,
    task: Mutex<TaskSlot>,
}

#[derive(Default)]
struct TaskSlot {
    /// Bumped whenever a task starts or is stopped, so that a stale task's exit touches nothing.
    generation: u64,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    pub(crate) fn new(interval: Duration, level: Level, count_error_responses: bool) -> Self {
        Self {
            interval,
            level,
            count_error_responses,
            reported: AtomicU64::new(0),
            groups: Groups::new(),
            scheduled: AtomicBool::new(false),
            task: Mutex::new(TaskSlot::default()),
        }
    }

    /// Counts one unlogged error in its group and the metric, without a lock once its group
    /// exists; then makes sure the periodic task runs.
    pub(crate) fn record(&'static self, error: &Error, context: &ErrorContext<'_>) {
        if self.groups.record(error, context) {
            metric::describe();
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

    /// One periodic tick: reports when the count grew since the last tick.
    fn tick(&self) {
        let sum = self.count();
        if sum != self.reported.swap(sum, Ordering::AcqRel) {
            let pending = self.groups.take();
            if let Some(pending) = pending {
                event::emit(self.level, self.interval, &pending);
            }
        }
    }

    /// Reports whatever is pending now, however long it has been since the last report.
    pub(crate) fn flush(&self) {
        self.reported.store(self.count(), Ordering::Release);
        let pending = self.groups.take();
        if let Some(pending) = pending {
            event::emit(self.level, pending.elapsed, &pending);
        }
    }
}

/// Owned by the periodic task; when the task ends (stopped, or dropped with its runtime) it
/// reports what is pending and, unless a newer task replaced it, lets the next error start one.
struct TaskGuard {
    reporter: &'static Reporter,
    generation: u64,
}

impl TaskGuard {
    async fn run(self) {
        let interval = self.reporter.interval;
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.reporter.tick();
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
