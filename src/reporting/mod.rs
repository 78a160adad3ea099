//! Count, export and periodically report the errors no logging layer reported.
//!
//! [`ReportingErrorHandler`] wraps any [`ServerErrorHandler`]: it lets the wrapped handler render
//! the response first, then counts the error unless it was marked logged, is an intentional
//! status, or only says the client went away. Each counted error goes into
//! - a bounded [`Breakdown`] by method, route and kind: a [`StripedCounter`](crate::StripedCounter)
//!   per group (their sum is [`unhandled_count`](ReportingErrorHandler::unhandled_count)), and a
//!   sample error per group and report interval; no lock once the group exists;
//! - the counter [`METRIC_NAME`](crate::METRIC_NAME) of the `metrics` facade, published from the
//!   group's count: by every error while its thread has counted at most 64 of the group, then by
//!   every 64th, the rest within a second and at shutdown.
//!
//! The first counted error starts one tokio task that, every interval in which the count grew,
//! logs one event: how many, the largest groups, one sample with its request and source chain,
//! and the fix. No error, no task; no growth, no event. The event goes where a person sees it
//! ([`ReportTo`]): through `tracing` when the subscriber records it, else on standard error.

mod builder;
mod event;
mod groups;
mod handler;
mod reporter;

pub use self::{
    builder::ReportingErrorHandlerBuilder,
    groups::{Breakdown, ErrorGroup},
    handler::{ReportingErrorHandler, ShutdownGuard},
};
