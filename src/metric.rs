//! The exported metric, recorded through the `metrics` facade.
//!
//! No handle is cached: a handle registered before the application installs its recorder stays a
//! no-op forever, so every count goes through the recorder installed at that moment. That costs a
//! lookup per counted error, and nothing on success.

use metrics::{Unit, counter, describe_counter};

use crate::context::ErrorContext;

/// The counter's name: `http_server_unhandled_errors_total`, labelled `method`, `route`, `kind`.
pub const METRIC_NAME: &str = "http_server_unhandled_errors_total";

const DESCRIPTION: &str =
    "Handler errors, service errors and panics that no logging layer reported";

/// Describes the counter to the recorder installed now.
pub(crate) fn describe() {
    describe_counter!(METRIC_NAME, Unit::Count, DESCRIPTION);
}

/// Adds one error to the counter with bounded labels: method, route template (or `unmatched`),
/// kind.
pub(crate) fn increment(context: &ErrorContext<'_>) {
    counter!(
        METRIC_NAME,
        "method" => context.method_label(),
        "route" => context.route_label().to_owned(),
        "kind" => context.kind().as_str(),
    )
    .increment(1);
}
