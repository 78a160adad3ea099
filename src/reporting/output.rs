//! Where a report (and the crate's other warnings for a person) is written: through `tracing`
//! when the subscriber in force records it, else one line on standard error.
//!
//! A Rust library gets no logging default that shows its warnings: with no subscriber installed,
//! or a filter that enables only the application's own crate, a `tracing` event goes nowhere.
//! [`ReportTo::Auto`] asks the subscriber in force at each report (`tracing::enabled!` for the
//! report's target and level), so a subscriber installed after the layer was built counts.

use std::{
    fmt::{self, Display, Write as _},
    io::Write as _,
    sync::atomic::{AtomicBool, Ordering},
    time::SystemTime,
};

use tracing::Level;

use crate::config::{self, REPORT_TO_VAR};

/// Where [`ReportingErrorHandler`](crate::ReportingErrorHandler) writes its periodic report, set
/// with [`report_to`](crate::ReportingErrorHandlerBuilder::report_to) or
/// [`UNHANDLED_ERRORS_REPORT_TO`](crate::REPORT_TO_VAR) (`auto`, `tracing` or `stderr`).
///
/// ```
/// use unhandled::{ReportTo, ReportingErrorHandler};
///
/// let reporting = ReportingErrorHandler::builder().report_to(ReportTo::Tracing).build();
/// assert_eq!(reporting.report_to(), ReportTo::Tracing);
/// assert_eq!("stderr".parse::<ReportTo>(), Ok(ReportTo::Stderr));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportTo {
    /// Through `tracing` when the subscriber in force records the report's target and level,
    /// else on standard error; decided at each report.
    #[default]
    Auto,
    /// Always through `tracing`, recorded or not.
    Tracing,
    /// Always on standard error, one line per report, whatever the subscriber.
    Stderr,
}

impl ReportTo {
    /// The word [`UNHANDLED_ERRORS_REPORT_TO`](crate::REPORT_TO_VAR) takes for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Tracing => "tracing",
            Self::Stderr => "stderr",
        }
    }

    /// Whether to write through `tracing`; `recorded` asks the subscriber (only for `Auto`).
    pub(crate) fn to_tracing(self, recorded: impl FnOnce() -> bool) -> bool {
        match self {
            Self::Auto => recorded(),
            Self::Tracing => true,
            Self::Stderr => false,
        }
    }

    /// The choice of [`UNHANDLED_ERRORS_REPORT_TO`](crate::REPORT_TO_VAR), `Auto` when it is unset
    /// or invalid: for the warnings that have no reporter's setting to follow.
    pub(crate) fn from_env_or_default() -> Self {
        config::report_to_from_env()
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl Display for ReportTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReportTo {
    type Err = crate::ConfigError;

    /// Parses a value as [`UNHANDLED_ERRORS_REPORT_TO`](crate::REPORT_TO_VAR) is read; see
    /// [`parse_report_to`](crate::parse_report_to).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        config::parse_report_to(value)
    }
}

/// One line for standard error: the time, level and target, the message, then `name=value`
/// fields, the way `tracing_subscriber::fmt` writes them.
pub(crate) struct Line {
    level: Level,
    target: &'static str,
    text: String,
}

impl Line {
    pub(crate) fn new(level: Level, target: &'static str, message: &dyn Display) -> Self {
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        let mut text = String::new();
        let _ = write!(text, "{now} {level:>5} {target}: {message}");
        Self {
            level,
            target,
            text,
        }
    }

    /// Adds `name=value`, quoted when the value holds a space or a quote; `None` adds nothing.
    pub(crate) fn field(mut self, name: &str, value: Option<impl Display>) -> Self {
        if let Some(value) = value {
            let value = value.to_string();
            if value.contains([' ', '"', '=']) || value.is_empty() {
                let _ = write!(self.text, " {name}={value:?}");
            } else {
                let _ = write!(self.text, " {name}={value}");
            }
        }
        self
    }

    /// Writes the line, in one write; the first line of the process also says why it is on
    /// standard error (`report_to`: chosen, or nothing records it) and how to move it.
    pub(crate) fn write(mut self, report_to: ReportTo) {
        static EXPLAINED: AtomicBool = AtomicBool::new(false);
        if !EXPLAINED.swap(true, Ordering::Relaxed) {
            let (level, target) = (self.level, self.target);
            self.text.push_str(" (");
            if report_to == ReportTo::Stderr {
                let _ = write!(
                    self.text,
                    "on standard error because {REPORT_TO_VAR}=stderr or report_to(ReportTo::Stderr) \
                     chose it; {REPORT_TO_VAR}=auto sends it to the tracing subscriber when that \
                     records it"
                );
            } else {
                let filter = level.as_str().to_ascii_lowercase();
                let _ = write!(
                    self.text,
                    "on standard error because no tracing subscriber records target \
                     \"{target}\" at {level}; to have it logged there, enable that target in the \
                     filter, e.g. RUST_LOG=unhandled={filter},<your filter>; to keep it here, \
                     {REPORT_TO_VAR}=stderr; to turn the report off, {}=0",
                    config::INTERVAL_VAR
                );
            }
            self.text.push(')');
        }
        self.text.push('\n');
        let _ = std::io::stderr().lock().write_all(self.text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_need_it() {
        let line = Line::new(Level::WARN, "unhandled", &"Observed")
            .field("count", Some(&3))
            .field("top", Some(&"GET /x error ×3"))
            .field("absent", None::<u8>);
        assert!(
            line.text
                .ends_with(" WARN unhandled: Observed count=3 top=\"GET /x error ×3\"")
        );
    }
}
