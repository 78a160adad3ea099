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

mod event;
mod groups;
mod reporter;

use std::{fmt, sync::OnceLock, time::Duration};

use axum::response::Response;
use tracing::Level;

pub use self::groups::{Breakdown, ErrorGroup, MAX_GROUPS};
use self::reporter::Reporter;
use crate::{
    config::{self, ConfigError, DEFAULT_INTERVAL, ReportTo},
    context::{ErrorContext, ErrorKind},
    error::Error,
    expected::is_expected,
    handler::{DefaultErrorHandler, ServerErrorHandler},
    notice, unwind,
};

/// The longest interval kept; longer ones are cut to this (a year), which is as good as never.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The shortest interval kept, zero aside; shorter ones are raised to this, so that whatever the
/// setting at most two reports a second are written. A test that wants a report now calls
/// [`ReportingErrorHandler::shutdown`].
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// A [`ServerErrorHandler`] that counts and reports the errors nobody logged, around another
/// handler that renders them (Armeria's `ExceptionReportingServiceErrorHandler`).
///
/// Clones share one reporter: axum clones the handler for every request, so a clone is only a
/// reference plus a clone of the wrapped handler, and the reporter lives for the rest of the
/// process (a few kilobytes per [`build`](ReportingErrorHandlerBuilder::build)).
///
/// Pending counts are reported when the reporter shuts down: on [`shutdown`](Self::shutdown),
/// when a [`ShutdownGuard`] drops, and when the runtime that runs the periodic task shuts down
/// (the end of `#[tokio::main]`). A later error starts the task again.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use tower::ServiceExt;
/// use unhandled::{Error, ErrorHandlerLayer, ReportingErrorHandler};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let reporting = ReportingErrorHandler::builder()
///     .interval(Duration::from_secs(30))
///     .level(tracing::Level::ERROR)
///     .build();
/// let app = Router::new()
///     .route("/", get(|| async { Err::<(), _>(Error::msg("the database is down")) }))
///     .layer(ErrorHandlerLayer::new(reporting.clone()));
///
/// app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(reporting.unhandled_count(), 1);
/// assert_eq!(reporting.breakdown().groups[0].route, "/");
/// reporting.shutdown().await; // logs the pending error now
/// # }
/// ```
pub struct ReportingErrorHandler<H = DefaultErrorHandler> {
    reporter: &'static Reporter,
    delegate: H,
}

impl ReportingErrorHandler {
    /// A builder with the defaults: a 10 s interval and `WARN`. It reads no environment variable;
    /// [`ReportingErrorHandlerBuilder::from_env`] starts from the three that
    /// [`unhandled::layer()`](crate::layer()) reads.
    pub fn builder() -> ReportingErrorHandlerBuilder {
        ReportingErrorHandlerBuilder::new()
    }

    /// The process-wide reporter that [`unhandled::layer()`](crate::layer()) uses, built on first
    /// use by [`ReportingErrorHandlerBuilder::from_env`].
    pub fn global() -> Self {
        static GLOBAL: OnceLock<ReportingErrorHandler> = OnceLock::new();
        GLOBAL
            .get_or_init(|| ReportingErrorHandlerBuilder::from_env().build())
            .clone()
    }
}

impl<H> ReportingErrorHandler<H> {
    /// How many errors were counted so far.
    pub fn unhandled_count(&self) -> u64 {
        self.reporter.count()
    }

    /// The counted errors by method, route and kind.
    pub fn breakdown(&self) -> Breakdown {
        self.reporter.breakdown()
    }

    /// The report interval; zero when the periodic report is off.
    pub fn interval(&self) -> Duration {
        self.reporter.interval
    }

    /// The level of the periodic report.
    pub fn level(&self) -> Level {
        self.reporter.level
    }

    /// Where the periodic report goes.
    pub fn report_to(&self) -> ReportTo {
        self.reporter.report_to
    }

    /// Whether 5xx responses without a cause ([`ErrorKind::Status`]) are counted.
    pub fn counts_error_responses(&self) -> bool {
        self.reporter.count_error_responses
    }

    /// The handler that renders the responses.
    pub fn delegate(&self) -> &H {
        &self.delegate
    }

    /// Stops the periodic task and reports what is pending now. Counting goes on; the next error
    /// starts the task again.
    pub async fn shutdown(&self) {
        if let Some(task) = self.reporter.stop_task() {
            // Cancelled on purpose; its guard has reported by the time this resolves.
            let _ = task.await;
        }
        self.reporter.flush();
    }

    /// A guard that does what [`shutdown`](Self::shutdown) does, synchronously, when it drops:
    /// keep it in `main` beside the server so that nothing pending is lost on the way out.
    pub fn shutdown_guard(&self) -> ShutdownGuard {
        ShutdownGuard {
            reporter: self.reporter,
        }
    }
}

impl<H: ServerErrorHandler> ServerErrorHandler for ReportingErrorHandler<H> {
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response> {
        // The delegate runs first, so that it can mark the error logged (Armeria #5587); if it
        // panics, the error is still counted and the layer renders the default response.
        let response = unwind::catch(|| self.delegate.on_error(error, context)).flatten();
        let counted_kind =
            context.kind() != ErrorKind::Status || self.reporter.count_error_responses;
        if counted_kind && !error.is_logged() && !error.is_intentional() && !is_expected(error) {
            self.reporter.record(error, context);
        }
        response
    }
}

impl<H: Clone> Clone for ReportingErrorHandler<H> {
    fn clone(&self) -> Self {
        Self {
            reporter: self.reporter,
            delegate: self.delegate.clone(),
        }
    }
}

impl<H: fmt::Debug> fmt::Debug for ReportingErrorHandler<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportingErrorHandler")
            .field("interval", &self.reporter.interval)
            .field("level", &self.reporter.level)
            .field("report_to", &self.reporter.report_to)
            .field(
                "count_error_responses",
                &self.reporter.count_error_responses,
            )
            .field("unhandled_count", &self.reporter.count())
            .field("delegate", &self.delegate)
            .finish()
    }
}

/// Reports pending counts and stops the periodic task when dropped; see
/// [`ReportingErrorHandler::shutdown_guard`].
#[must_use = "the guard reports pending counts when it drops; keep it alive"]
pub struct ShutdownGuard {
    reporter: &'static Reporter,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.reporter.stop_task();
        self.reporter.flush();
    }
}

impl fmt::Debug for ShutdownGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownGuard").finish_non_exhaustive()
    }
}

/// Configures a [`ReportingErrorHandler`].
///
/// ```
/// use std::time::Duration;
/// use unhandled::ReportingErrorHandler;
///
/// let quiet = ReportingErrorHandler::builder().interval(Duration::ZERO).build();
/// assert_eq!(quiet.interval(), Duration::ZERO); // counted and exported, never logged
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ReportingErrorHandlerBuilder {
    interval: Duration,
    level: Level,
    count_error_responses: bool,
    report_to: ReportTo,
}

impl ReportingErrorHandlerBuilder {
    /// The defaults: a 10 s interval, `WARN`, [`ReportTo::Auto`], 5xx responses without a cause
    /// counted.
    pub fn new() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            level: Level::WARN,
            count_error_responses: true,
            report_to: ReportTo::Auto,
        }
    }

    /// The defaults, with the interval from
    /// [`UNHANDLED_ERRORS_REPORT_INTERVAL`](crate::INTERVAL_VAR), the switch from
    /// [`UNHANDLED_COUNT_ERROR_RESPONSES`](crate::COUNT_ERROR_RESPONSES_VAR) and where reports go
    /// from [`UNHANDLED_ERRORS_REPORT_TO`](crate::REPORT_TO_VAR) where they are set. An invalid
    /// value is reported at `WARN` (where the report would go) and that setting keeps its
    /// default; use [`try_from_env`](Self::try_from_env) to refuse it instead.
    pub fn from_env() -> Self {
        let mut builder = Self::new();
        let mut invalid = Vec::new();
        match config::report_to_from_env() {
            Ok(Some(report_to)) => builder = builder.report_to(report_to),
            Ok(None) => {}
            Err(error) => invalid.push(error),
        }
        match config::interval_from_env() {
            Ok(Some(interval)) => builder = builder.interval(interval),
            Ok(None) => {}
            Err(error) => invalid.push(error),
        }
        match config::count_error_responses_from_env() {
            Ok(Some(count)) => builder = builder.count_error_responses(count),
            Ok(None) => {}
            Err(error) => invalid.push(error),
        }
        for error in &invalid {
            notice::config_value_ignored(builder.report_to, error);
        }
        builder
    }

    /// The defaults, with the interval from
    /// [`UNHANDLED_ERRORS_REPORT_INTERVAL`](crate::INTERVAL_VAR), the switch from
    /// [`UNHANDLED_COUNT_ERROR_RESPONSES`](crate::COUNT_ERROR_RESPONSES_VAR) and where reports go
    /// from [`UNHANDLED_ERRORS_REPORT_TO`](crate::REPORT_TO_VAR) where they are set; an error
    /// naming the variable, the value and what is accepted when one cannot be parsed.
    pub fn try_from_env() -> Result<Self, ConfigError> {
        let mut builder = Self::new();
        if let Some(report_to) = config::report_to_from_env()? {
            builder = builder.report_to(report_to);
        }
        if let Some(interval) = config::interval_from_env()? {
            builder = builder.interval(interval);
        }
        if let Some(count) = config::count_error_responses_from_env()? {
            builder = builder.count_error_responses(count);
        }
        Ok(builder)
    }

    /// Where the periodic report goes (default [`ReportTo::Auto`]: through `tracing` when the
    /// subscriber in force records target `unhandled` at the report's level, else on standard
    /// error).
    ///
    /// ```
    /// use unhandled::{ReportTo, ReportingErrorHandler};
    ///
    /// // A service whose log pipeline reads standard error only.
    /// let reporting = ReportingErrorHandler::builder().report_to(ReportTo::Stderr).build();
    /// assert_eq!(reporting.report_to(), ReportTo::Stderr);
    /// ```
    pub fn report_to(mut self, report_to: ReportTo) -> Self {
        self.report_to = report_to;
        self
    }

    /// Whether a 5xx response that carries no cause ([`ErrorKind::Status`]: the handler or the
    /// application's own error type built it) is counted, exported and reported; `true` by
    /// default. Turned off, only such responses are left alone: a cause attached with
    /// [`ResponseExt::with_cause`](crate::ResponseExt::with_cause) is still counted.
    ///
    /// ```
    /// use unhandled::ReportingErrorHandler;
    ///
    /// let reporting = ReportingErrorHandler::builder().count_error_responses(false).build();
    /// assert!(!reporting.counts_error_responses());
    /// ```
    pub fn count_error_responses(mut self, count: bool) -> Self {
        self.count_error_responses = count;
        self
    }

    /// How often the periodic report may log; [`Duration::ZERO`] turns it off (errors are still
    /// counted and exported). Shorter than [`MIN_INTERVAL`] is raised to it, longer than
    /// [`MAX_INTERVAL`] cut to it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use unhandled::{MIN_INTERVAL, ReportingErrorHandler};
    ///
    /// let builder = ReportingErrorHandler::builder();
    /// assert_eq!(builder.clone().interval(Duration::from_nanos(1)).build().interval(), MIN_INTERVAL);
    /// assert_eq!(builder.interval(Duration::ZERO).build().interval(), Duration::ZERO);
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = match interval.is_zero() {
            true => Duration::ZERO,
            false => interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
        };
        self
    }

    /// The level of the periodic report (default `WARN`).
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// A reporting handler around `delegate`, which renders the responses.
    pub fn wrap<H: ServerErrorHandler>(self, delegate: H) -> ReportingErrorHandler<H> {
        let reporter = Reporter::new(
            self.interval,
            self.level,
            self.count_error_responses,
            self.report_to,
        );
        let reporter = Box::leak(Box::new(reporter));
        ReportingErrorHandler { reporter, delegate }
    }

    /// A reporting handler around [`DefaultErrorHandler`].
    pub fn build(self) -> ReportingErrorHandler {
        self.wrap(DefaultErrorHandler)
    }
}

impl Default for ReportingErrorHandlerBuilder {
    fn default() -> Self {
        Self::new()
    }
}
