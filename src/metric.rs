//! The exported metric, recorded through the `metrics` facade.
//!
//! No handle is cached: a handle registered before the application installs its recorder stays a
//! no-op forever, so every count goes through the recorder installed at that moment (the
//! thread's local recorder, else the global one). What is cached is the [`Key`] of each group, so
//! that a count costs the recorder's lookup and no allocation; and nothing on success.

use metrics::{Key, Label, Level, Metadata, Unit, describe_counter};

use crate::context::ErrorContext;

/// The counter's name: `http_server_unhandled_errors_total`, labelled `method`, `route`, `kind`.
pub const METRIC_NAME: &str = "http_server_unhandled_errors_total";

const DESCRIPTION: &str =
    "Handler errors, service errors and panics that no logging layer reported";

/// Describes the counter to the recorder installed now.
pub(crate) fn describe() {
    describe_counter!(METRIC_NAME, Unit::Count, DESCRIPTION);
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The counter's key for an error of `context`, with bounded labels: method, route template (or
/// `unmatched`), kind.
pub(crate) fn key(context: &ErrorContext<'_>) -> Key {
    let labels = vec![
        Label::new("method", context.method_label()),
        Label::new("route", context.route_label().to_owned()),
        Label::new("kind", context.kind().as_str()),
    ];
    Key::from_parts(METRIC_NAME, labels)
}

/// Adds one to the counter `key` in the recorder installed now.
pub(crate) fn increment(key: &Key) {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(1));
}
