//! Configuration: the environment variables, their bounds, and what a bad value gets.
//!
//! [`ReportingErrorHandlerBuilder::from_env`](crate::ReportingErrorHandlerBuilder::from_env) reads
//! the reporter's three variables, and [`unhandled::layer()`](crate::layer()) uses it.
//! [`ReportingErrorHandler::builder()`](crate::ReportingErrorHandler::builder) reads none of them:
//! its settings come from code alone. Two more are the process's, since the panic hook is:
//! [`UNHANDLED_PANIC_LOCATIONS`](PANIC_LOCATIONS_VAR) is read by the first error-handler layer
//! built, whichever builder is used, as it installs the hook, and
//! [`UNHANDLED_COUNT_STRAY_PANICS`](STRAY_PANICS_VAR) at the first panic outside any scope.
//! (Backtraces follow std's own variables, `RUST_LIB_BACKTRACE` and `RUST_BACKTRACE`, unless
//! [`set_backtraces`](crate::set_backtraces) decides for the process.
//! The first backtrace resolved loads the binary's debug info, which stays in memory: tens of
//! megabytes for a debug build, the report's thread resolves it.)
//!
//! | variable | accepts | default |
//! |---|---|---|
//! | [`UNHANDLED_ERRORS_REPORT_INTERVAL`](INTERVAL_VAR) | a humantime duration of at least one second (`10s`, `1m 30s`, `1500ms`), or `0` to turn the report off | `10s` |
//! | [`UNHANDLED_ERRORS_REPORT_TO`](REPORT_TO_VAR) | `auto`, `tracing` or `stderr` ([`ReportTo`]), in any case | `auto` |
//! | [`UNHANDLED_COUNT_ERROR_RESPONSES`](COUNT_ERROR_RESPONSES_VAR) | `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` | `true` |
//! | [`UNHANDLED_PANIC_LOCATIONS`](PANIC_LOCATIONS_VAR) | the same switches; off installs no panic hook (read when the first error-handler layer is built, unless [`set_panic_locations`](crate::set_panic_locations) decided) | on |
//! | [`UNHANDLED_COUNT_STRAY_PANICS`](STRAY_PANICS_VAR) | the same switches: count each panic outside a request and a reported task (read at the first such panic, unless [`count_stray_panics`](crate::count_stray_panics) decided) | off |
//!
//! A value that cannot be used is a [`ConfigError`]. It names the variable, the value and what
//! would be accepted. [`from_env`](crate::ReportingErrorHandlerBuilder::from_env) writes it where a
//! person sees it and keeps that setting's default.
//! [`try_from_env`](crate::ReportingErrorHandlerBuilder::try_from_env) returns it instead. Nothing
//! a variable holds makes the crate panic.
//!
//! The environment refuses an interval under one second, so that a typo such as `1ns` cannot
//! flood the log. The builder raises an interval under [`MIN_INTERVAL`] to it: at most two
//! reports a second, whatever the setting. An interval over [`MAX_INTERVAL`] is cut to it.
//!
//! In code, on [`ReportingErrorHandler::builder()`](crate::ReportingErrorHandler::builder) or after
//! [`from_env`](crate::ReportingErrorHandlerBuilder::from_env):
//!
//! | setting | builder | default |
//! |---|---|---|
//! | report interval | `.interval(Duration)` (`Duration::ZERO` turns the report off; counting and the metric go on) | `10s` |
//! | report level | `.level(tracing::Level)` | `WARN` |
//! | where the report goes | `.report_to(ReportTo)` | `Auto` |
//! | count 5xx responses without a cause | `.count_error_responses(bool)` | `true` |
//! | the rendering handler | `.wrap(handler)` | [`DefaultErrorHandler`](crate::DefaultErrorHandler) |
//! | panic locations, for the process | [`unhandled::set_panic_locations(bool)`](crate::set_panic_locations) | on |
//! | backtraces, for the process | [`unhandled::set_backtraces(bool)`](crate::set_backtraces) | std's variables |
//!
//! Errors name what they refuse: `invalid UNHANDLED_ERRORS_REPORT_INTERVAL="ten": expected number at
//! 0; expected a duration with a unit such as "10s", …`, `invalid UNHANDLED_COUNT_ERROR_RESPONSES="maybe":
//! not a switch; expected "true" or "false" (also 1/0, yes/no, on/off)`.
//!
//! ```
//! use std::time::Duration;
//! use unhandled::config::{self, ConfigError};
//!
//! assert_eq!(config::parse_interval("1m 30s"), Ok(Duration::from_secs(90)));
//! let error: ConfigError = config::parse_interval("ten").unwrap_err();
//! assert_eq!(error.variable(), config::INTERVAL_VAR);
//! assert!(error.to_string().contains("invalid UNHANDLED_ERRORS_REPORT_INTERVAL=\"ten\""));
//! ```

use std::{ffi::OsString, fmt, time::Duration};

/// The environment variable that sets the report interval, as a humantime duration such as `10s`
/// or `1m 30s`; `0` turns the periodic report off.
pub const INTERVAL_VAR: &str = "UNHANDLED_ERRORS_REPORT_INTERVAL";

/// The environment variable that says whether 5xx responses without a cause are counted
/// ([`ErrorKind::Status`](crate::ErrorKind::Status)): `true`/`false`, `1`/`0`, `yes`/`no` or
/// `on`/`off`, in any case. Unset, they are.
pub const COUNT_ERROR_RESPONSES_VAR: &str = "UNHANDLED_COUNT_ERROR_RESPONSES";

/// The environment variable that turns off noting the file, line and column of panics caught by
/// an [`ErrorHandlerLayer`](crate::ErrorHandlerLayer): `0`, `false`, `no` or `off`. It is read
/// once, when the first error-handler layer is built, which is when the panic hook that notes
/// them is installed (see [`Error::location`](crate::Error::location)), unless
/// [`set_panic_locations`](crate::set_panic_locations) decided first. A bad value is written where
/// a person sees it, and locations stay on.
pub const PANIC_LOCATIONS_VAR: &str = "UNHANDLED_PANIC_LOCATIONS";

/// The environment variable that turns on counting every panic outside a request and a reported
/// task as `task_panic` under the route `_unscoped` ([`count_stray_panics`](crate::count_stray_panics)):
/// `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case. Unset, they are not counted.
/// Read at the first such panic, unless `count_stray_panics` decided first; a bad value is
/// written where a person sees it, and they are not counted.
pub const STRAY_PANICS_VAR: &str = "UNHANDLED_COUNT_STRAY_PANICS";

/// The environment variable that says where the periodic report goes ([`ReportTo`]): `auto`
/// (through `tracing` when the subscriber in force records it, else standard error; the
/// default), `tracing` or `stderr`, in any case.
pub const REPORT_TO_VAR: &str = "UNHANDLED_ERRORS_REPORT_TO";

/// The interval used when neither the builder nor the environment sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// The longest interval kept; longer ones are cut to this (a year), which is as good as never.
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The shortest interval kept, zero aside; shorter ones are raised to this, so that whatever the
/// setting at most two reports a second are written. A test that wants a report now calls
/// [`ReportingErrorHandler::shutdown`](crate::ReportingErrorHandler::shutdown).
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Distinct (method, route, kind) groups a reporter keeps, and so metric series it exports
/// besides the one overflow series (`{method="_OTHER",route="_OTHER",kind="_OTHER"}`) that
/// counts every failure beyond them.
pub const MAX_GROUPS: usize = 64;

/// A configuration value that could not be used; says which variable, what value, and what
/// would have been accepted.
///
/// ```
/// let error = unhandled::config::parse_interval("ten").unwrap_err();
/// let message = error.to_string();
/// assert!(message.contains("\"ten\""));
/// assert!(message.contains("10s"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    reason: String,
}

/// The shortest interval [`INTERVAL_VAR`] accepts (zero aside): a report a second at most, so
/// that a typo such as `1ns` cannot flood the log.
const ENV_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A variable: what it accepts, as its error says it, and the default a bad value leaves.
struct Variable {
    name: &'static str,
    expected: &'static str,
    default: &'static str,
}

const SWITCH_EXPECTED: &str = "\"true\" or \"false\" (also 1/0, yes/no, on/off)";

/// The five variables.
const VARIABLES: [Variable; 5] = [
    Variable {
        name: INTERVAL_VAR,
        expected: "a duration of at least one second with a unit, such as \"10s\", \"1m 30s\" \
                   or \"1500ms\", or \"0\" to turn the periodic report off",
        default: "10s",
    },
    Variable {
        name: REPORT_TO_VAR,
        expected: "\"auto\" (tracing when the subscriber records the report, else standard \
                   error), \"tracing\" or \"stderr\"",
        default: "auto",
    },
    Variable {
        name: COUNT_ERROR_RESPONSES_VAR,
        expected: SWITCH_EXPECTED,
        default: "true",
    },
    Variable {
        name: PANIC_LOCATIONS_VAR,
        expected: SWITCH_EXPECTED,
        default: "on",
    },
    Variable {
        name: STRAY_PANICS_VAR,
        expected: SWITCH_EXPECTED,
        default: "off",
    },
];

/// The row of `name` in [`VARIABLES`].
fn variable(name: &str) -> &'static Variable {
    VARIABLES
        .iter()
        .find(|variable| variable.name == name)
        .unwrap_or(&VARIABLES[2])
}

impl ConfigError {
    /// The variable that held the value: [`INTERVAL_VAR`], [`COUNT_ERROR_RESPONSES_VAR`],
    /// [`REPORT_TO_VAR`] or [`PANIC_LOCATIONS_VAR`].
    pub fn variable(&self) -> &str {
        self.variable
    }

    /// The value as it was given (lossily decoded when it was not UTF-8).
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = variable(self.variable).expected;
        write!(
            f,
            "invalid {}={:?}: {}; expected {expected}",
            self.variable, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// The value the setting keeps when `from_env` ignores this one: its default.
    pub(crate) fn default_kept(&self) -> &'static str {
        variable(self.variable).default
    }
}

/// Parses an interval exactly as [`INTERVAL_VAR`] is read: a humantime duration of at least one
/// second, or `0`; the error names [`INTERVAL_VAR`]. Use it to accept the same syntax from your
/// own configuration.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(unhandled::config::parse_interval("1m 30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(unhandled::config::parse_interval("0"), Ok(Duration::ZERO));
/// assert!(unhandled::config::parse_interval("10").is_err()); // a unit is required
/// assert!(unhandled::config::parse_interval("1ns").is_err()); // under one second
/// ```
pub fn parse_interval(value: &str) -> Result<Duration, ConfigError> {
    let error = |reason: String| ConfigError {
        variable: INTERVAL_VAR,
        value: value.to_owned(),
        reason,
    };
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    if value.trim().is_empty() {
        return Err(error("the value is empty".to_owned()));
    }
    let interval = humantime::parse_duration(value).map_err(|cause| error(cause.to_string()))?;
    if !interval.is_zero() && interval < ENV_MIN_INTERVAL {
        return Err(error(
            "shorter than one second, which would flood the log with reports".to_owned(),
        ));
    }
    Ok(interval)
}

/// Parses a switch exactly as [`COUNT_ERROR_RESPONSES_VAR`] is read: `true`/`false`, `1`/`0`,
/// `yes`/`no`, `on`/`off`, in any case and with surrounding spaces; the error names
/// [`COUNT_ERROR_RESPONSES_VAR`].
pub(crate) fn parse_switch(value: &str) -> Result<bool, ConfigError> {
    parse_switch_of(COUNT_ERROR_RESPONSES_VAR, value)
}

/// Parses a switch as [`parse_switch`] does; the error names `variable`.
pub(crate) fn parse_switch_of(variable: &'static str, value: &str) -> Result<bool, ConfigError> {
    const TRUE: [&str; 4] = ["true", "1", "yes", "on"];
    const FALSE: [&str; 4] = ["false", "0", "no", "off"];
    let word = value.trim();
    if TRUE.iter().any(|yes| word.eq_ignore_ascii_case(yes)) {
        Ok(true)
    } else if FALSE.iter().any(|no| word.eq_ignore_ascii_case(no)) {
        Ok(false)
    } else {
        Err(unknown_word(variable, value, "not a switch"))
    }
}

/// The error for a `value` of `variable` that is none of its words: empty, or `unknown`.
fn unknown_word(variable: &'static str, value: &str, unknown: &str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_owned(),
        reason: if value.trim().is_empty() {
            "the value is empty"
        } else {
            unknown
        }
        .to_owned(),
    }
}

/// Parses where reports go exactly as [`REPORT_TO_VAR`] is read: `auto`, `tracing` or `stderr`,
/// in any case and with surrounding spaces; the error names [`REPORT_TO_VAR`].
pub(crate) fn parse_report_to(value: &str) -> Result<ReportTo, ConfigError> {
    let word = value.trim();
    [ReportTo::Auto, ReportTo::Tracing, ReportTo::Stderr]
        .into_iter()
        .find(|to| word.eq_ignore_ascii_case(to.as_str()))
        .ok_or_else(|| unknown_word(REPORT_TO_VAR, value, "not a place reports go"))
}

/// What the environment sets of a reporter, read once for
/// [`from_env`](crate::ReportingErrorHandlerBuilder::from_env) and
/// [`try_from_env`](crate::ReportingErrorHandlerBuilder::try_from_env): each variable's value
/// where it is set and valid, and the errors of those that are not, in the order of
/// [`VARIABLES`].
#[derive(Debug)]
pub(crate) struct FromEnv {
    pub(crate) interval: Option<Duration>,
    pub(crate) report_to: Option<ReportTo>,
    pub(crate) count_error_responses: Option<bool>,
    /// The errors of the variables set to what they do not accept. [`PANIC_LOCATIONS_VAR`] is
    /// only checked, for `try_from_env` to refuse: the hook reads it where it is installed.
    pub(crate) invalid: Vec<ConfigError>,
}

/// Reads the reporter's variables, and checks [`PANIC_LOCATIONS_VAR`] when `all`.
pub(crate) fn from_env(all: bool) -> FromEnv {
    let mut invalid = Vec::new();
    let interval = valid(value_of(INTERVAL_VAR, parse_interval), &mut invalid);
    let report_to = valid(value_of(REPORT_TO_VAR, parse_report_to), &mut invalid);
    let count = valid(
        value_of(COUNT_ERROR_RESPONSES_VAR, parse_switch),
        &mut invalid,
    );
    if all {
        valid(panic_locations_from_env(), &mut invalid);
    }
    FromEnv {
        interval,
        report_to,
        count_error_responses: count,
        invalid,
    }
}

/// The value `read` holds, its error kept in `invalid`.
fn valid<T>(read: Result<Option<T>, ConfigError>, invalid: &mut Vec<ConfigError>) -> Option<T> {
    read.unwrap_or_else(|error| {
        invalid.push(error);
        None
    })
}

/// The switch from [`PANIC_LOCATIONS_VAR`]: `Ok(None)` when it is unset.
pub(crate) fn panic_locations_from_env() -> Result<Option<bool>, ConfigError> {
    value_of(PANIC_LOCATIONS_VAR, |value| {
        parse_switch_of(PANIC_LOCATIONS_VAR, value)
    })
}

/// The value of `variable`, parsed: `Ok(None)` when it is unset.
fn value_of<T>(
    variable: &'static str,
    parse: impl Fn(&str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    read(variable, std::env::var_os(variable), parse)
}

fn read<T>(
    variable: &'static str,
    value: Option<OsString>,
    parse: impl Fn(&str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    match value.into_string() {
        Ok(text) => parse(&text).map(Some),
        Err(raw) => Err(ConfigError {
            variable,
            value: raw.to_string_lossy().into_owned(),
            reason: "the value is not valid UTF-8".to_owned(),
        }),
    }
}

/// Where [`ReportingErrorHandler`](crate::ReportingErrorHandler) writes its periodic report, set
/// with [`report_to`](crate::ReportingErrorHandlerBuilder::report_to) or
/// [`UNHANDLED_ERRORS_REPORT_TO`](crate::config::REPORT_TO_VAR) (`auto`, `tracing` or `stderr`).
///
/// ```
/// use unhandled::{ReportTo, ReportingErrorHandler};
///
/// let reporting = ReportingErrorHandler::builder().report_to(ReportTo::Tracing).build();
/// assert_eq!(reporting.report_to(), ReportTo::Tracing);
/// assert_eq!("stderr".parse::<ReportTo>(), Ok(ReportTo::Stderr));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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
    /// The word [`UNHANDLED_ERRORS_REPORT_TO`](crate::config::REPORT_TO_VAR) takes for it.
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

    /// The choice of [`UNHANDLED_ERRORS_REPORT_TO`](crate::config::REPORT_TO_VAR), `Auto` when it is unset
    /// or invalid: for the warnings that have no reporter's setting to follow.
    pub(crate) fn from_env_or_default() -> Self {
        value_of(REPORT_TO_VAR, parse_report_to)
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

impl fmt::Display for ReportTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReportTo {
    type Err = ConfigError;

    /// Parses a value as [`UNHANDLED_ERRORS_REPORT_TO`](REPORT_TO_VAR) is read: `auto`, `tracing`
    /// or `stderr`, in any case and with surrounding spaces. The error names the variable, the
    /// value and the three words.
    ///
    /// ```
    /// use unhandled::ReportTo;
    ///
    /// assert_eq!(" Stderr ".parse::<ReportTo>(), Ok(ReportTo::Stderr));
    /// let error = "stdout".parse::<ReportTo>().unwrap_err();
    /// assert!(error.to_string().contains("UNHANDLED_ERRORS_REPORT_TO=\"stdout\""));
    /// ```
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        parse_report_to(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_durations_and_zero_are_accepted() {
        let parse = parse_interval;
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn intervals_under_one_second_are_refused_with_what_is_accepted() {
        for short in ["1ns", "999ms", "250ms", "1us"] {
            let message = parse_interval(short).unwrap_err().to_string();
            assert!(
                message.contains(&format!("{INTERVAL_VAR}={short:?}")),
                "{message}"
            );
            assert!(message.contains("shorter than one second"), "{message}");
            assert!(message.contains("at least one second"), "{message}");
        }
    }

    #[test]
    fn invalid_values_name_the_variable_the_value_and_an_example() {
        for bad in ["", "  ", "10", "ten", "-1s", "1.5.3s", "99999999999999y"] {
            let error = parse_interval(bad).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(INTERVAL_VAR), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.contains("\"10s\""), "{message}");
            assert_eq!(error.value(), bad);
        }
    }

    #[test]
    fn unset_is_not_an_error_and_non_utf8_is() {
        assert_eq!(read(INTERVAL_VAR, None, parse_interval), Ok(None));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let interval: fn(&str) -> Result<(), ConfigError> =
                |text| parse_interval(text).map(drop);
            let switch: fn(&str) -> Result<(), ConfigError> = |text| parse_switch(text).map(drop);
            for (variable, parse) in [
                (INTERVAL_VAR, interval),
                (COUNT_ERROR_RESPONSES_VAR, switch),
            ] {
                let raw = OsString::from_vec(vec![0x66, 0xff]);
                let error = read(variable, Some(raw), parse).unwrap_err();
                assert!(error.to_string().contains("not valid UTF-8"), "{error}");
                assert_eq!(error.variable(), variable);
            }
        }
    }

    #[test]
    fn report_to_accepts_its_three_words_and_names_the_variable_otherwise() {
        assert_eq!(parse_report_to("auto"), Ok(ReportTo::Auto));
        assert_eq!(parse_report_to("TRACING"), Ok(ReportTo::Tracing));
        assert_eq!(parse_report_to(" stderr\n"), Ok(ReportTo::Stderr));
        for bad in ["", "stdout", "log", "1", "std err"] {
            let message = parse_report_to(bad).unwrap_err().to_string();
            assert!(message.contains(REPORT_TO_VAR), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.contains("\"auto\""), "{message}");
            assert!(message.contains("\"tracing\" or \"stderr\""), "{message}");
        }
    }

    #[test]
    fn switches_accept_the_usual_words_and_name_the_variable_otherwise() {
        for yes in ["true", "1", "yes", "on", "TRUE", " On "] {
            assert_eq!(parse_switch(yes), Ok(true), "{yes}");
        }
        for no in ["false", "0", "no", "off", "False", "OFF\n"] {
            assert_eq!(parse_switch(no), Ok(false), "{no}");
        }
        for bad in ["", " ", "2", "enabled", "tru", "0s"] {
            let message = parse_switch(bad).unwrap_err().to_string();
            assert!(message.contains(COUNT_ERROR_RESPONSES_VAR), "{message}");
            assert!(message.contains(&format!("{bad:?}")), "{message}");
            assert!(message.contains("\"true\" or \"false\""), "{message}");
        }
    }
}
