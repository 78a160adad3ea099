//! Configuration from the environment: [`INTERVAL_VAR`] and [`ConfigError`].

use std::{ffi::OsString, fmt, time::Duration};

/// The environment variable that sets the report interval, as a humantime duration such as `10s`
/// or `1m 30s`; `0` turns the periodic report off.
pub const INTERVAL_VAR: &str = "UNHANDLED_ERRORS_REPORT_INTERVAL";

/// The interval used when neither the builder nor the environment sets one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// A configuration value that could not be used; says which variable, what value, and what
/// would have been accepted.
///
/// ```
/// let error = unhandled::parse_interval("ten").unwrap_err();
/// let message = error.to_string();
/// assert!(message.contains("\"ten\""));
/// assert!(message.contains("10s"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    value: String,
    reason: String,
}

impl ConfigError {
    /// The variable that held the value: [`INTERVAL_VAR`].
    pub fn variable(&self) -> &str {
        INTERVAL_VAR
    }

    /// The value as it was given (lossily decoded when it was not UTF-8).
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}; expected a duration with a unit such as \"10s\", \"1m 30s\" or \
             \"500ms\", or \"0\" to turn the periodic report off",
            INTERVAL_VAR, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// Parses an interval exactly as [`INTERVAL_VAR`] is read: a humantime duration, or `0`; the
/// error names [`INTERVAL_VAR`]. Use it to accept the same syntax from your own configuration.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(unhandled::parse_interval("1m 30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(unhandled::parse_interval("0"), Ok(Duration::ZERO));
/// assert!(unhandled::parse_interval("10").is_err()); // a unit is required
/// ```
pub fn parse_interval(value: &str) -> Result<Duration, ConfigError> {
    let error = |reason: String| ConfigError {
        value: value.to_owned(),
        reason,
    };
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    if value.trim().is_empty() {
        return Err(error("the value is empty".to_owned()));
    }
    humantime::parse_duration(value).map_err(|cause| error(cause.to_string()))
}

/// The interval from [`INTERVAL_VAR`]: `Ok(None)` when it is unset.
pub(crate) fn interval_from_env() -> Result<Option<Duration>, ConfigError> {
    interval_from(std::env::var_os(INTERVAL_VAR))
}

fn interval_from(value: Option<OsString>) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    match value.into_string() {
        Ok(text) => parse_interval(&text).map(Some),
        Err(raw) => Err(ConfigError {
            value: raw.to_string_lossy().into_owned(),
            reason: "the value is not valid UTF-8".to_owned(),
        }),
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
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
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
        assert_eq!(interval_from(None), Ok(None));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let error = interval_from(Some(OsString::from_vec(vec![0x66, 0xff]))).unwrap_err();
            assert!(error.to_string().contains("not valid UTF-8"));
        }
    }
}
