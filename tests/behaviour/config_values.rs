//! Any value of `UNHANDLED_ERRORS_REPORT_INTERVAL` either parses to the duration humantime gives
//! (or zero for `0`) when that is zero or at least one second, or yields an error naming the
//! variable, the value and an accepted example; never a panic.

use std::time::Duration;

use proptest::prelude::*;
use unhandled::config::{INTERVAL_VAR, parse_interval};

/// Strings shaped like durations, good and bad: digits, units, signs, dots, spaces.
fn duration_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "0",
        "1",
        "9",
        "10",
        "99999999999999",
        "-",
        "+",
        ".",
        " ",
        "  ",
        "s",
        "ms",
        "us",
        "ns",
        "m",
        "min",
        "h",
        "d",
        "w",
        "M",
        "y",
        "sec",
        "seconds",
        "ten",
        "é",
        "\t",
        "5",
        "30",
        "1.5",
    ]);
    prop::collection::vec(pieces, 0..6).prop_map(|pieces| pieces.concat())
}

fn check(value: &str) -> Result<(), TestCaseError> {
    match parse_interval(value) {
        Ok(interval) => {
            let expected = if value == "0" {
                Duration::ZERO
            } else {
                humantime::parse_duration(value).expect("accepted what humantime refuses")
            };
            prop_assert_eq!(interval, expected, "{:?}", value);
            prop_assert!(interval.is_zero() || interval >= Duration::from_secs(1));
        }
        Err(error) => {
            let too_short = |parsed: Duration| !parsed.is_zero() && parsed < Duration::from_secs(1);
            prop_assert!(
                humantime::parse_duration(value).map_or(true, too_short) || value.trim().is_empty()
            );
            let message = error.to_string();
            prop_assert!(message.contains(INTERVAL_VAR), "{}", message);
            prop_assert!(message.contains(&format!("{value:?}")), "{}", message);
            prop_assert!(message.contains("\"10s\""), "{}", message);
            prop_assert_eq!(error.value(), value);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn duration_like_strings_parse_as_humantime_or_are_refused_clearly(value in duration_like()) {
        check(&value)?;
    }

    #[test]
    fn arbitrary_strings_parse_as_humantime_or_are_refused_clearly(value in any::<String>()) {
        check(&value)?;
    }
}
