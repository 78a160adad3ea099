//! The breakdown of counted errors by (method, route, kind), bounded in size.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    context::{ErrorContext, ErrorKind},
    error::Error,
    metric,
};

/// Distinct (method, route, kind) groups kept; errors of any further group fold into "other".
pub const MAX_GROUPS: usize = 64;

/// How many groups the periodic report names.
const TOP: usize = 5;

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

impl Breakdown {
    /// Every counted error: the groups and "other" together.
    pub fn total(&self) -> u64 {
        self.groups.iter().map(|group| group.count).sum::<u64>() + self.other
    }
}

/// The errors of one (method, route, kind) group since the reporter was built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorGroup {
    /// The method label (`GET`, …, `_OTHER`).
    pub method: &'static str,
    /// The route template, or `unmatched`.
    pub route: String,
    /// Where the errors came from.
    pub kind: ErrorKind,
    /// How many were counted.
    pub count: u64,
}

/// One error kept to show in the report, with its request.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) error: Error,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) route: String,
    pub(crate) kind: ErrorKind,
}

impl Sample {
    fn new(error: &Error, context: &ErrorContext<'_>) -> Self {
        Self {
            error: error.clone(),
            method: context.method().to_string(),
            path: context.path().to_owned(),
            route: context.route_label().to_owned(),
            kind: context.kind(),
        }
    }
}

/// What accumulated since the last report.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) count: u64,
    pub(crate) elapsed: Duration,
    /// The largest groups, largest first, as `("GET /users/{id} error", count)`.
    pub(crate) top: Vec<(String, u64)>,
    /// Errors in groups not named in `top`.
    pub(crate) rest: u64,
    pub(crate) sample: Sample,
}

#[derive(Debug, Default)]
struct Tally {
    total: u64,
    pending: u64,
    /// The first error since the last report.
    sample: Option<Sample>,
}

impl Tally {
    fn add(&mut self, error: &Error, context: &ErrorContext<'_>) {
        self.total += 1;
        self.pending += 1;
        if self.sample.is_none() {
            self.sample = Some(Sample::new(error, context));
        }
    }
}

#[derive(Debug)]
struct Group {
    method: &'static str,
    route: Box<str>,
    kind: ErrorKind,
    /// The metric's label set for this group, built once.
    counter: metric::GroupCounter,
    tally: Tally,
}

impl Group {
    fn label(&self) -> String {
        format!("{} {} {}", self.method, self.route, self.kind)
    }
}

/// Groups with their totals, pending counts and samples.
#[derive(Debug)]
pub(crate) struct Groups {
    named: Vec<Group>,
    other: Tally,
    since: Instant,
}

impl Groups {
    pub(crate) fn new() -> Self {
        Self {
            named: Vec::new(),
            other: Tally::default(),
            since: Instant::now(),
        }
    }

    /// Counts `error`, in its group and in the metric; `true` when it opened a new group.
    pub(crate) fn record(&mut self, error: &Error, context: &ErrorContext<'_>) -> bool {
        let (method, route, kind) = (
            context.method_label(),
            context.route_label(),
            context.kind(),
        );
        let existing = self
            .named
            .iter_mut()
            .find(|group| group.kind == kind && group.method == method && *group.route == *route);
        if let Some(group) = existing {
            group.tally.add(error, context);
            group.counter.increment();
            return false;
        }
        if self.named.len() >= MAX_GROUPS {
            self.other.add(error, context);
            metric::increment_once(context);
            return false;
        }
        let mut group = Group {
            method,
            route: route.into(),
            kind,
            counter: metric::GroupCounter::new(context),
            tally: Tally::default(),
        };
        group.tally.add(error, context);
        group.counter.increment();
        self.named.push(group);
        true
    }

    /// Takes what accumulated since the last call: `None` when nothing did.
    pub(crate) fn take(&mut self) -> Option<Pending> {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(std::mem::replace(&mut self.since, now));
        let mut pending: Vec<(String, u64, Option<Sample>)> = self
            .named
            .iter_mut()
            .filter(|group| group.tally.pending > 0)
            .map(|group| {
                let count = std::mem::take(&mut group.tally.pending);
                (group.label(), count, group.tally.sample.take())
            })
            .collect();
        let other = std::mem::take(&mut self.other.pending);
        let other_sample = self.other.sample.take();
        let count = pending.iter().map(|(_, count, _)| count).sum::<u64>() + other;
        if count == 0 {
            return None;
        }
        pending.sort_by_key(|(_, count, _)| std::cmp::Reverse(*count));
        let sample = pending
            .iter_mut()
            .find_map(|(_, _, sample)| sample.take())
            .or(other_sample)?;
        let top: Vec<(String, u64)> = pending
            .into_iter()
            .take(TOP)
            .map(|(label, count, _)| (label, count))
            .collect();
        let rest = count - top.iter().map(|(_, count)| count).sum::<u64>();
        Some(Pending {
            count,
            elapsed,
            top,
            rest,
            sample,
        })
    }

    pub(crate) fn breakdown(&self) -> Breakdown {
        Breakdown {
            groups: self
                .named
                .iter()
                .map(|group| ErrorGroup {
                    method: group.method,
                    route: group.route.to_string(),
                    kind: group.kind,
                    count: group.tally.total,
                })
                .collect(),
            other: self.other.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    fn record(groups: &mut Groups, route: &str, kind: ErrorKind) {
        let context = ErrorContext::new(&Method::GET, route, Some(route), kind);
        groups.record(&Error::msg(route.to_owned()), &context);
    }

    #[test]
    fn groups_beyond_the_bound_fold_into_other() {
        let mut groups = Groups::new();
        for index in 0..MAX_GROUPS + 10 {
            record(&mut groups, &format!("/r{index}"), ErrorKind::Error);
        }
        let breakdown = groups.breakdown();
        assert_eq!(breakdown.groups.len(), MAX_GROUPS);
        assert_eq!(breakdown.other, 10);
        assert_eq!(breakdown.total(), (MAX_GROUPS + 10) as u64);
    }

    #[test]
    fn take_returns_largest_groups_first_and_resets_pending() {
        let mut groups = Groups::new();
        record(&mut groups, "/a", ErrorKind::Error);
        for _ in 0..3 {
            record(&mut groups, "/b", ErrorKind::Panic);
        }
        let pending = groups.take().unwrap();
        assert_eq!(pending.count, 4);
        assert_eq!(pending.top[0], ("GET /b panic".to_owned(), 3));
        assert_eq!(pending.sample.route, "/b");
        assert!(groups.take().is_none());
        assert_eq!(groups.breakdown().total(), 4);
    }

    #[test]
    fn the_first_error_since_the_last_report_is_the_sample() {
        let mut groups = Groups::new();
        record(&mut groups, "/a", ErrorKind::Error);
        let _ = groups.take();
        let context = ErrorContext::new(&Method::GET, "/a?x", Some("/a"), ErrorKind::Error);
        groups.record(&Error::msg("second"), &context);
        groups.record(&Error::msg("third"), &context);
        assert_eq!(groups.take().unwrap().sample.error.to_string(), "second");
    }
}
