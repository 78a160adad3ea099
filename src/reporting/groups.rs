//! The breakdown of counted errors by (method, route, kind, location), bounded in size, recorded
//! without a lock.
//!
//! Counting an error of a group that exists reads the group table and writes only memory of this
//! thread's own: the group's and its series' [`StripedCounter`] cells (the striped counter is what
//! Armeria's `LongAdder` is), and, once per report interval and group, the sample slot. Opening a
//! group (its first error) takes a lock; so does reading for the report. The groups are never
//! removed, so a slot, once set, stays; the table holds at most [`MAX_GROUPS`].
//!
//! A group is a place in the report; a series is a set of metric labels. Two failure sites on one
//! route are two groups of one series: the metric has no location label, because a build's paths
//! and a label per line would make its cardinality the code's size. The groups of one series share
//! its counter, and publish the sum of their counts once a second one has opened; counting stays
//! one cell increment per error.

use std::{
    backtrace::Backtrace,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::{
    config::MAX_GROUPS,
    context::{ErrorContext, ErrorKind},
    error::{Error, Location},
    metric::{self, PUBLISH_BATCH},
    striped::StripedCounter,
    text::Redacted,
    trace::TraceId,
};

/// How many groups the periodic report names.
const TOP: usize = 5;

/// How many of the [`MAX_GROUPS`] groups may have a route label taken from the path a client
/// sent (a gRPC method, [`ErrorContext::route_is_from_path`]): the rest are kept for the routes the
/// application declared, so that no client can take them. Beyond it, such a failure is counted
/// under its declared route (its template, or `unmatched`).
pub(crate) const PATH_GROUPS: usize = 8;

/// The errors counted so far, by group. See [`ReportingErrorHandler::breakdown`].
///
/// [`ReportingErrorHandler::breakdown`]: crate::ReportingErrorHandler::breakdown
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Breakdown {
    /// One entry per group, in the order they first failed.
    pub groups: Vec<ErrorGroup>,
    /// Errors of groups beyond the first [`MAX_GROUPS`].
    pub other: u64,
}

impl Pending {
    /// A report of nothing but `carried` failures, which a report left behind took.
    pub(crate) fn carried(carried: u64) -> Self {
        Self {
            count: carried,
            carried,
            elapsed: Duration::ZERO,
            top: Vec::new(),
            spawned_at: Vec::new(),
            task_count: 0,
            rest: 0,
            sample: None,
            filtered: None,
            filtered_count: 0,
        }
    }

    /// This report, carrying `carried` more failures.
    pub(crate) fn carrying(mut self, carried: u64) -> Self {
        self.count += carried;
        self.carried += carried;
        self
    }
}

impl Breakdown {
    /// Every counted error: the groups and "other" together.
    pub fn total(&self) -> u64 {
        self.groups.iter().map(|group| group.count).sum::<u64>() + self.other
    }
}

/// The errors of one (method, route, kind, location) group since the reporter was built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorGroup {
    /// The method label (`GET`, …, `_OTHER`).
    pub method: &'static str,
    /// The route template, or `unmatched`.
    pub route: String,
    /// Where the errors came from.
    pub kind: ErrorKind,
    /// Where in the code they were made, as `file:line:column` ([`Error::location`]); `None`
    /// where that is not known.
    pub location: Option<String>,
    /// For a spawned task's failures ([`ErrorKind::Task`], [`ErrorKind::TaskPanic`]): where the
    /// group's first task was spawned, as `file:line:column`.
    pub spawned_at: Option<String>,
    /// How many were counted.
    pub count: u64,
}

/// One error kept to show in the report, with its request.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) error: Error,
    /// The backtrace the sample's group captured in the interval: the sample's own, or that of
    /// another failure of the group, which took the one capture of its location meanwhile.
    pub(crate) backtrace: Option<Arc<Backtrace>>,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) route: String,
    pub(crate) kind: ErrorKind,
    pub(crate) trace_id: Option<TraceId>,
}

impl Sample {
    fn new(error: &Error, context: &ErrorContext<'_>) -> Self {
        Self {
            error: error.clone(),
            backtrace: error.captured_backtrace().cloned(),
            method: context.method().to_string(),
            path: match context.query() {
                // Redacted as the logging layer's `url.query` is by default.
                Some(query) => format!("{}?{}", context.path(), Redacted { query, keys: &[] }),
                None => context.path().to_owned(),
            },
            route: context.route_label().to_owned(),
            kind: context.kind(),
            trace_id: context.trace_id(),
        }
    }

    /// How much the sample tells whoever reads the report: a panic, or an error with a cause, says
    /// what went wrong; a location, where. A 5xx response without a cause says neither.
    fn informs(&self) -> u8 {
        let what = match self.kind {
            ErrorKind::Status => false,
            ErrorKind::Panic | ErrorKind::TaskPanic => true,
            _ => self.error.cause().is_some(),
        };
        u8::from(what) * 2 + u8::from(self.error.location().is_some())
    }
}

/// What accumulated since the last report.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Every failure the report covers, `carried` included.
    pub(crate) count: u64,
    /// Failures a report left behind had taken and never wrote, which this one carries.
    pub(crate) carried: u64,
    pub(crate) elapsed: Duration,
    /// The largest groups, largest first, as `("GET /users/{id} error", count)`.
    pub(crate) top: Vec<(String, u64)>,
    /// Where the task of each of `top`'s groups was spawned, for a spawned task's failure.
    pub(crate) spawned_at: Vec<Option<&'static std::panic::Location<'static>>>,
    /// Failures of spawned tasks among `count`: their advice is not a logging layer's.
    pub(crate) task_count: u64,
    /// Errors in groups not named in `top`.
    pub(crate) rest: u64,
    /// Of the first errors since the last report of each group, the one that tells most
    /// ([`Sample::informs`]), of the largest such group. `None` only when every thread that took
    /// a sample was still storing it as the report was read.
    pub(crate) sample: Option<Sample>,
    /// The most verbose level at which a logging layer saw one of these errors but the filter
    /// disabled its event.
    pub(crate) filtered: Option<tracing::Level>,
    /// How many of these errors a logging layer saw that way.
    pub(crate) filtered_count: u64,
}

/// The count and the sample of a group (or of "other").
#[derive(Debug)]
struct Tally {
    count: StripedCounter,
    /// Whether the next error should leave its sample: set by the report, cleared by the one
    /// thread that wins it, so that the common path only reads it.
    sample_wanted: AtomicBool,
    sample: Mutex<Option<Sample>>,
    /// The backtrace a failure of this interval captured, when it was not the sample's.
    captured: Mutex<Option<Arc<Backtrace>>>,
}

/// Whether a count whose thread's cell is now `cell` is published: the first [`PUBLISH_BATCH`]
/// errors of each cell, then every [`PUBLISH_BATCH`]-th.
#[inline]
fn publishes(cell: u64) -> bool {
    cell <= PUBLISH_BATCH || cell % PUBLISH_BATCH == 0
}

impl Tally {
    fn new() -> Self {
        // Two cells per core, at most 32: there is a counter per group, up to `MAX_GROUPS`.
        let cores = thread::available_parallelism().map_or(1, usize::from);
        Self {
            count: StripedCounter::with_cells(cores.saturating_mul(2).min(32)),
            sample_wanted: AtomicBool::new(true),
            sample: Mutex::new(None),
            captured: Mutex::new(None),
        }
    }

    /// Counts `error`, keeping it as the sample when one is wanted and `keep` (some report will
    /// show it); the new count of this thread's cell.
    #[inline]
    fn add(&self, error: &Error, context: &ErrorContext<'_>, keep: bool) -> u64 {
        if keep
            && self.sample_wanted.load(Ordering::Relaxed)
            && self.sample_wanted.swap(false, Ordering::Acquire)
        {
            let mut slot = self.sample.lock();
            if slot.is_none() {
                *slot = Some(Sample::new(error, context));
            }
        } else if let Some(backtrace) = error.captured_backtrace().filter(|_| keep) {
            self.keep_backtrace(backtrace);
        }
        self.count.increment_cell()
    }

    /// Keeps `backtrace`, the one capture of this interval at the group's location, for the
    /// sample, whichever failure took the sample. Out of line: once per interval and location.
    #[cold]
    #[inline(never)]
    fn keep_backtrace(&self, backtrace: &Arc<Backtrace>) {
        self.captured
            .lock()
            .get_or_insert_with(|| Arc::clone(backtrace));
    }

    /// The sample, with its interval's backtrace, asking the next error for a new one.
    fn take_sample(&self) -> Option<Sample> {
        let mut sample = self.sample.lock().take();
        let captured = self.captured.lock().take();
        if let Some(sample) = sample.as_mut().filter(|sample| sample.backtrace.is_none()) {
            sample.backtrace = captured;
        }
        self.sample_wanted.store(true, Ordering::Release);
        sample
    }
}

/// A group's location, its file copied when the group opened.
#[derive(Debug)]
struct At {
    file: Box<str>,
    /// The address of the file's name the first error had: the same for every error made at
    /// this place by `?` or a panic's static location, so comparing the text is rarely needed.
    address: usize,
    line: u32,
    column: u32,
}

impl At {
    fn of(location: Option<Location<'_>>) -> Option<Self> {
        location.map(|location| Self {
            file: location.file().into(),
            address: location.file().as_ptr() as usize,
            line: location.line(),
            column: location.column(),
        })
    }

    #[inline]
    fn is(at: &Option<Self>, location: Option<Location<'_>>) -> bool {
        match (at, location) {
            (None, None) => true,
            (Some(at), Some(location)) => {
                at.line == location.line()
                    && at.column == location.column()
                    && (at.address == location.file().as_ptr() as usize
                        || *at.file == *location.file())
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What a group is told apart by: its labels and its location.
#[derive(Clone, Copy)]
struct Key<'a> {
    method: &'static str,
    route: &'a str,
    kind: ErrorKind,
    location: Option<Location<'a>>,
}

impl<'a> Key<'a> {
    #[inline]
    fn of(error: &'a Error, context: &'a ErrorContext<'_>) -> Self {
        Self {
            method: context.method_label(),
            route: context.route_label(),
            kind: context.kind(),
            location: error.location(),
        }
    }
}

#[derive(Debug)]
struct Group {
    method: &'static str,
    route: Box<str>,
    kind: ErrorKind,
    at: Option<At>,
    /// Where the group's first task was spawned, for a spawned task's failure.
    spawned_at: Option<&'static std::panic::Location<'static>>,
    /// The counter of the group's labels, shared by the groups that have them.
    counter: Arc<metric::GroupCounter>,
    /// Whether another group shares `counter`, which then gets the sum of their counts.
    siblings: AtomicBool,
    tally: Tally,
}

impl Group {
    /// Whether the group has `key`'s labels. Method labels come from one static table, so the
    /// same label is mostly the same pointer.
    #[inline]
    fn labels_are(&self, key: Key<'_>) -> bool {
        self.kind == key.kind
            && (std::ptr::eq(self.method, key.method) || self.method == key.method)
            && *self.route == *key.route
    }

    /// `GET /users/{id} error at src/users.rs:40:9`; a location inside the standard library is
    /// not shown as the place (the sample says how to keep the line).
    fn label(&self) -> String {
        match &self.at {
            Some(at) if crate::backtraces::is_std_file(&at.file) => format!(
                "{} {} {} at a line the standard library hid",
                self.method, self.route, self.kind
            ),
            Some(at) => format!("{} {} {} at {at}", self.method, self.route, self.kind),
            None => format!("{} {} {}", self.method, self.route, self.kind),
        }
    }
}

/// Groups with their counts and samples.
#[derive(Debug)]
pub(crate) struct Groups {
    /// The groups opened so far, in order: `slots[..len]` are set.
    slots: Box<[OnceLock<Group>]>,
    len: AtomicUsize,
    /// How many groups have a route label taken from the path ([`PATH_GROUPS`] at most).
    from_path: AtomicUsize,
    /// Taken to open a group.
    opening: Mutex<()>,
    /// The errors of groups beyond [`MAX_GROUPS`], exported as one fixed series
    /// ([`metric::GroupCounter::overflow`]) whatever their labels would have been.
    other: Tally,
    other_counter: metric::GroupCounter,
    /// Whether errors leave samples: only when a report will show them (the interval is not zero).
    keep_samples: bool,
    /// The most verbose level, plus one, at which a logging layer would have logged an error
    /// counted since the last report, had the filter let it (0: none was filtered).
    filtered: AtomicU8,
    /// How many errors counted since the last report a logging layer saw that way.
    filtered_count: AtomicU64,
    report: Mutex<Reported>,
}

/// What the last report took: each group's count then (same order as the slots), and when it was.
#[derive(Debug)]
struct Reported {
    groups: Vec<u64>,
    other: u64,
    since: Instant,
}

impl Groups {
    /// No groups yet; errors leave samples for the report only when `keep_samples`.
    pub(crate) fn new(keep_samples: bool) -> Self {
        Self {
            slots: (0..MAX_GROUPS).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            from_path: AtomicUsize::new(0),
            opening: Mutex::new(()),
            other: Tally::new(),
            other_counter: metric::GroupCounter::overflow(),
            keep_samples,
            filtered: AtomicU8::new(0),
            filtered_count: AtomicU64::new(0),
            report: Mutex::new(Reported {
                groups: Vec::new(),
                other: 0,
                since: Instant::now(),
            }),
        }
    }

    fn opened(&self) -> impl Iterator<Item = &Group> {
        let len = self.len.load(Ordering::Acquire);
        self.slots[..len].iter().filter_map(OnceLock::get)
    }

    /// Counts `error`, in its group and in the metric; `false` when publishing to the metric was
    /// left for later.
    #[inline]
    pub(crate) fn record(&self, error: &Error, context: &ErrorContext<'_>) -> bool {
        if let Some(verbosity) = error.filtered_at() {
            self.filtered.fetch_max(verbosity + 1, Ordering::Relaxed);
            self.filtered_count.fetch_add(1, Ordering::Relaxed);
        }
        let key = Key::of(error, context);
        match self.find(key) {
            Some(group) => self.count(group, error, context),
            None if context.route_is_from_path() && self.path_budget_spent() => {
                self.record(error, &context.declared())
            }
            None => self.open(error, context),
        }
    }

    fn path_budget_spent(&self) -> bool {
        self.from_path.load(Ordering::Relaxed) >= PATH_GROUPS
    }

    /// Counts `error` in `group`, publishing the count of its labels unless this thread's cell is
    /// past [`PUBLISH_BATCH`] errors and not at a multiple of it; `false` when it did not.
    #[inline]
    fn count(&self, group: &Group, error: &Error, context: &ErrorContext<'_>) -> bool {
        let cell = group.tally.add(error, context, self.keep_samples);
        if !publishes(cell) {
            return false;
        }
        group.counter.publish(self.series_total(group), 1);
        true
    }

    /// Opens the group of `error`'s first error, under the lock, and counts it there; or, beyond
    /// [`MAX_GROUPS`], in "other".
    #[cold]
    #[inline(never)]
    fn open(&self, error: &Error, context: &ErrorContext<'_>) -> bool {
        // Made again rather than passed: passing it cost every counted error 12 instructions.
        let key = Key::of(error, context);
        let _opening = self.opening.lock();
        if let Some(group) = self.find(key) {
            return self.count(group, error, context);
        }
        if context.route_is_from_path() && self.path_budget_spent() {
            drop(_opening);
            return self.record(error, &context.declared());
        }
        let len = self.len.load(Ordering::Acquire);
        let Some(slot) = self.slots.get(len) else {
            drop(_opening);
            let cell = self.other.add(error, context, self.keep_samples);
            if !publishes(cell) {
                return false;
            }
            self.other_counter.publish(self.other.count.sum(), 1);
            return true;
        };
        if context.route_is_from_path() {
            self.from_path.fetch_add(1, Ordering::Relaxed);
        }
        let series = self.opened().find(|group| group.labels_are(key));
        if let Some(sibling) = series {
            for group in self
                .opened()
                .filter(|group| Arc::ptr_eq(&group.counter, &sibling.counter))
            {
                group.siblings.store(true, Ordering::Relaxed);
            }
        }
        let group = slot.get_or_init(|| Group {
            method: key.method,
            route: key.route.into(),
            kind: key.kind,
            at: At::of(key.location),
            spawned_at: context.spawned_at(),
            counter: series.map_or_else(
                || Arc::new(metric::GroupCounter::new(context)),
                |sibling| Arc::clone(&sibling.counter),
            ),
            siblings: AtomicBool::new(series.is_some()),
            tally: Tally::new(),
        });
        self.len.store(len + 1, Ordering::Release);
        self.count(group, error, context)
    }

    #[inline]
    fn find(&self, key: Key<'_>) -> Option<&Group> {
        self.opened()
            .find(|group| group.labels_are(key) && At::is(&group.at, key.location))
    }

    /// The count of `group`'s labels: its own, or with those of the groups that share its counter.
    fn series_total(&self, group: &Group) -> u64 {
        if !group.siblings.load(Ordering::Relaxed) {
            return group.tally.count.sum();
        }
        self.opened()
            .filter(|other| Arc::ptr_eq(&other.counter, &group.counter))
            .map(|other| other.tally.count.sum())
            .sum()
    }

    /// Publishes every series' count to the metric of the recorder in force.
    pub(crate) fn publish(&self) {
        // Pairs with the counting threads' increments: what they counted before they saw no
        // publication pending is in these sums.
        std::sync::atomic::fence(Ordering::SeqCst);
        // A series of several groups is published once per group: the same absolute count.
        for group in self.opened() {
            group.counter.publish(self.series_total(group), 0);
        }
        let other = self.other.count.sum();
        if other > 0 {
            self.other_counter.publish(other, 0);
        }
    }

    /// Every error counted so far.
    pub(crate) fn total(&self) -> u64 {
        self.opened()
            .map(|group| group.tally.count.sum())
            .sum::<u64>()
            + self.other.count.sum()
    }

    /// Takes what accumulated since the last report: `None` when nothing did. With `samples`, the
    /// groups give their samples back (and the report shows the most telling); without, they keep
    /// them, and nothing of the application's code runs.
    pub(crate) fn take(&self, samples: bool) -> Option<Pending> {
        let mut reported = self.report.lock();
        let mut pending: Vec<(&Group, u64)> = Vec::new();
        for (index, group) in self.opened().enumerate() {
            let total = group.tally.count.sum();
            if reported.groups.len() <= index {
                reported.groups.push(0);
            }
            let before = std::mem::replace(&mut reported.groups[index], total);
            if total > before {
                pending.push((group, total - before));
            }
        }
        let other_total = self.other.count.sum();
        let other = other_total - std::mem::replace(&mut reported.other, other_total);
        let count = pending.iter().map(|(_, count)| count).sum::<u64>() + other;
        if count == 0 {
            return None;
        }
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(std::mem::replace(&mut reported.since, now));
        // Released before any sample is dropped: an error's `Drop` is the application's code.
        drop(reported);
        // Stable: groups of one size stay in the order they first failed.
        pending.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        // Every group with new errors gives its sample back, so that the next one is fresh, and
        // may take a backtrace again.
        crate::backtraces::next_interval();
        let mut samples: Vec<Sample> = match samples {
            true => pending
                .iter()
                .filter_map(|(group, _)| group.tally.take_sample())
                .chain((other > 0).then(|| self.other.take_sample()).flatten())
                .collect(),
            false => Vec::new(),
        };
        // The first of the most telling, so of the largest group among those.
        let best = samples
            .iter()
            .enumerate()
            .max_by_key(|(index, sample)| (sample.informs(), std::cmp::Reverse(*index)))
            .map(|(index, _)| index);
        let sample = best.map(|index| samples.swap_remove(index));
        // Under a guard: an error's `Drop` is the application's code.
        for other in samples {
            crate::unwind::catch(move || drop(other));
        }
        let top: Vec<(String, u64)> = pending
            .iter()
            .take(TOP)
            .map(|(group, count)| (group.label(), *count))
            .collect();
        let spawned_at = pending
            .iter()
            .take(TOP)
            .map(|(group, _)| group.spawned_at)
            .collect();
        let task_count = pending
            .iter()
            .filter(|(group, _)| group.kind.is_task())
            .map(|(_, count)| count)
            .sum();
        let rest = count - top.iter().map(|(_, count)| count).sum::<u64>();
        let filtered = self.filtered.swap(0, Ordering::Relaxed).checked_sub(1);
        // At most the count: an error counted after the groups were read may already be in it.
        let filtered_count = self.filtered_count.swap(0, Ordering::Relaxed).min(count);
        Some(Pending {
            count,
            carried: 0,
            elapsed,
            top,
            spawned_at,
            task_count,
            rest,
            sample,
            filtered: filtered.map(crate::level::level_of),
            filtered_count,
        })
    }

    pub(crate) fn breakdown(&self) -> Breakdown {
        Breakdown {
            groups: self
                .opened()
                .map(|group| ErrorGroup {
                    method: group.method,
                    route: group.route.to_string(),
                    kind: group.kind,
                    location: group.at.as_ref().map(At::to_string),
                    spawned_at: group.spawned_at.map(ToString::to_string),
                    count: group.tally.count.sum(),
                })
                .collect(),
            other: self.other.count.sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    fn record(groups: &Groups, route: &str, kind: ErrorKind) {
        let context = ErrorContext::new(&Method::GET, route, Some(route), kind);
        groups.record(&Error::msg(route.to_owned()), &context);
    }

    #[test]
    fn groups_beyond_the_bound_fold_into_other() {
        let groups = Groups::new(true);
        for index in 0..MAX_GROUPS + 10 {
            record(&groups, &format!("/r{index}"), ErrorKind::Error);
        }
        let breakdown = groups.breakdown();
        assert_eq!(breakdown.groups.len(), MAX_GROUPS);
        assert_eq!(breakdown.other, 10);
        assert_eq!(breakdown.total(), (MAX_GROUPS + 10) as u64);
        assert_eq!(groups.total(), (MAX_GROUPS + 10) as u64);
    }

    #[test]
    fn take_returns_largest_groups_first_and_resets_pending() {
        let groups = Groups::new(true);
        record(&groups, "/a", ErrorKind::Error);
        for _ in 0..3 {
            record(&groups, "/b", ErrorKind::Panic);
        }
        let pending = groups.take(true).unwrap();
        assert_eq!(pending.count, 4);
        assert!(
            pending.top[0]
                .0
                .starts_with("GET /b panic at src/reporting/groups.rs:")
        );
        assert_eq!(pending.top[0].1, 3);
        assert_eq!(pending.sample.unwrap().route, "/b");
        assert!(groups.take(true).is_none());
        assert_eq!(groups.breakdown().total(), 4);
    }

    #[test]
    fn the_first_error_since_the_last_report_is_the_sample() {
        let groups = Groups::new(true);
        record(&groups, "/a", ErrorKind::Error);
        let _ = groups.take(true);
        let context = ErrorContext::new(&Method::GET, "/a?x", Some("/a"), ErrorKind::Error);
        groups.record(&Error::msg("second"), &context);
        groups.record(&Error::msg("third"), &context);
        let sample = groups.take(true).unwrap().sample.unwrap();
        assert_eq!(sample.error.to_string(), "second");
    }

    #[test]
    fn two_sites_on_one_route_are_two_groups_of_one_series() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let groups = Groups::new(true);
        let context = ErrorContext::new(&Method::GET, "/o/1", Some("/o/{id}"), ErrorKind::Error);
        metrics::with_local_recorder(&recorder, || {
            groups.record(&Error::msg("first site"), &context);
            for _ in 0..2 {
                groups.record(&Error::msg("second site"), &context);
            }
        });
        let breakdown = groups.breakdown();
        assert_eq!(breakdown.groups.len(), 2);
        let counts: Vec<u64> = breakdown.groups.iter().map(|group| group.count).collect();
        assert_eq!(counts, [1, 2]);
        let at = |group: &ErrorGroup| group.location.clone().unwrap();
        assert_ne!(at(&breakdown.groups[0]), at(&breakdown.groups[1]));
        assert!(at(&breakdown.groups[0]).starts_with("src/reporting/groups.rs:"));
        let pending = groups.take(true).unwrap();
        assert_eq!(pending.top.len(), 2);
        assert!(
            pending.top[0]
                .0
                .starts_with("GET /o/{id} error at src/reporting/groups.rs:")
        );
        // One series, with both sites' errors: the metric has no location label.
        let series = format!(
            r#"{}{{method="GET",route="/o/{{id}}",kind="error"}} 3"#,
            crate::METRIC_NAME
        );
        let text = metrics.render();
        assert!(
            text.lines().any(|line| line == series),
            "{series} not in\n{text}"
        );
        assert_eq!(text.matches(crate::METRIC_NAME).count() - 2, 1, "{text}");
    }

    #[test]
    fn the_sample_is_the_most_telling_failure_not_the_largest_group() {
        let groups = Groups::new(true);
        let status = ErrorContext::new(&Method::GET, "/s", Some("/s"), ErrorKind::Status);
        for _ in 0..2 {
            let error = Error::without_cause(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            groups.record(&error, &status);
        }
        let panic = ErrorContext::new(&Method::GET, "/p", Some("/p"), ErrorKind::Panic);
        groups.record(&Error::msg("handler panicked: boom"), &panic);
        let pending = groups.take(true).unwrap();
        assert_eq!(pending.top[0], ("GET /s status".to_owned(), 2));
        assert_eq!(pending.sample.unwrap().route, "/p");
    }

    #[test]
    fn threads_opening_the_same_groups_at_once_make_each_group_once() {
        let groups = Groups::new(true);
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for index in 0..1000 {
                        record(&groups, &format!("/r{}", index % 80), ErrorKind::Error);
                    }
                });
            }
        });
        let breakdown = groups.breakdown();
        assert_eq!(breakdown.groups.len(), MAX_GROUPS);
        let mut routes: Vec<_> = breakdown.groups.iter().map(|g| g.route.clone()).collect();
        routes.sort();
        routes.dedup();
        assert_eq!(routes.len(), MAX_GROUPS, "a group was opened twice");
        assert_eq!(breakdown.total(), 4000);
        assert_eq!(groups.take(true).unwrap().count, 4000);
    }
}
