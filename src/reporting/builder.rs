//! The builder: the reporter's settings, from code or from the environment.

use std::{sync::OnceLock, time::Duration};

use tracing::Level;

use super::{ReportingErrorHandler, reporter::Reporter};
use crate::{
    config::{self, ConfigError, DEFAULT_INTERVAL, MAX_INTERVAL, MIN_INTERVAL, ReportTo},
    handler::{DefaultErrorHandler, ServerErrorHandler},
    notice,
};

impl ReportingErrorHandler {
    /// A builder with the defaults: a 10 s interval and `WARN`. It reads no environment variable;
    /// [`ReportingErrorHandlerBuilder::from_env`] starts from the four that
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

    /// The defaults, with the reporter's three variables where they are set: the interval from
    /// [`UNHANDLED_ERRORS_REPORT_INTERVAL`](crate::config::INTERVAL_VAR), the switch from
    /// [`UNHANDLED_COUNT_ERROR_RESPONSES`](crate::config::COUNT_ERROR_RESPONSES_VAR), and where
    /// reports go from [`UNHANDLED_ERRORS_REPORT_TO`](crate::config::REPORT_TO_VAR). An invalid
    /// value is reported at `WARN` (where the report would go) and that setting keeps its default;
    /// use [`try_from_env`](Self::try_from_env) to refuse it instead. The fourth variable,
    /// [`UNHANDLED_PANIC_LOCATIONS`](crate::config::PANIC_LOCATIONS_VAR), is the process's, not a
    /// reporter's: it is read where the panic hook is installed (the first
    /// [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) built).
    pub fn from_env() -> Self {
        let read = config::from_env(false);
        let builder = Self::new().with(&read);
        for error in &read.invalid {
            notice::config_value_ignored(builder.report_to, error);
        }
        builder
    }

    /// The defaults, with the three variables of [`from_env`](Self::from_env) where they are set;
    /// an error naming the variable, the value and what is accepted when one of them, or
    /// [`UNHANDLED_PANIC_LOCATIONS`](crate::config::PANIC_LOCATIONS_VAR), cannot be parsed.
    pub fn try_from_env() -> Result<Self, ConfigError> {
        let mut read = config::from_env(true);
        match read.invalid.is_empty() {
            true => Ok(Self::new().with(&read)),
            false => Err(read.invalid.swap_remove(0)),
        }
    }

    /// This builder, with what the environment set.
    fn with(mut self, read: &config::FromEnv) -> Self {
        if let Some(report_to) = read.report_to {
            self = self.report_to(report_to);
        }
        if let Some(interval) = read.interval {
            self = self.interval(interval);
        }
        if let Some(count) = read.count_error_responses {
            self = self.count_error_responses(count);
        }
        self
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

    /// Whether a 5xx response that carries no cause ([`ErrorKind::Status`](crate::ErrorKind::Status): the handler or the
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
    /// use unhandled::{ReportingErrorHandler, config::MIN_INTERVAL};
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
