//! The periodic report: one `tracing` event at the configured level.

use std::{fmt::Write, time::Duration};

use tracing::{Level, field};

use super::groups::Pending;
use crate::context::ErrorKind;

/// The advice every report ends with.
pub(crate) const FIX: &str = "add unhandled::LoggingLayer to log each one";

/// What the report adds when its sample is a 5xx response without a cause.
pub(crate) const ATTACH_FIX: &str = "no cause was attached to this response; where it is built \
     (the application's IntoResponse), attach it: \
     `response.with_cause(error)` with `use unhandled::ResponseExt`";

/// Emits the report for `pending`, saying it covers the last `window`.
pub(crate) fn emit(level: Level, window: Duration, pending: &Pending) {
    let whole_millis = Duration::from_millis(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let window = humantime::format_duration(whole_millis).to_string();
    let top = top_text(pending);
    let sample = pending.sample.as_ref();
    let chain = sample.map(|sample| sample.error.chain_text());
    let s = if pending.count == 1 { "" } else { "s" };
    let attach_fix = sample
        .is_some_and(|sample| sample.kind == ErrorKind::Status)
        .then_some(ATTACH_FIX);
    macro_rules! report {
        ($level:expr) => {
            tracing::event!(
                target: "unhandled",
                $level,
                count = pending.count,
                interval = %window,
                top = %top,
                sample.method = sample.map(|sample| sample.method.as_str()),
                sample.path = sample.map(|sample| sample.path.as_str()),
                sample.route = sample.map(|sample| sample.route.as_str()),
                sample.kind = sample.map(|sample| sample.kind.as_str()),
                sample.status = sample.map(|sample| sample.error.status_code().as_u16()),
                sample.error = chain.as_deref(),
                sample.fix = attach_fix,
                sample.trace_id = sample.and_then(|sample| sample.trace_id).map(field::display),
                fix = FIX,
                "Observed {} unhandled error{s} in the last {window} that no logging layer \
                 reported; {FIX}",
                pending.count,
            )
        };
    }
    match level {
        Level::ERROR => report!(Level::ERROR),
        Level::WARN => report!(Level::WARN),
        Level::INFO => report!(Level::INFO),
        Level::DEBUG => report!(Level::DEBUG),
        _ => report!(Level::TRACE),
    }
}

/// `GET /users/{id} error ×12, POST /orders panic ×3, 2 more in other groups`.
fn top_text(pending: &Pending) -> String {
    let mut text = String::new();
    for (label, count) in &pending.top {
        let separator = if text.is_empty() { "" } else { ", " };
        let _ = write!(text, "{separator}{label} ×{count}");
    }
    if pending.rest > 0 {
        let separator = if text.is_empty() { "" } else { ", " };
        let _ = write!(text, "{separator}{} more in other groups", pending.rest);
    }
    text
}
