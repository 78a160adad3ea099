//! The exported metric, recorded through the `metrics` facade.
//!
//! Each group's counter is published from the group's striped count with `Counter::absolute`
//! (which only ever raises it), not incremented per error: an error storm on one route would
//! otherwise have every thread write the recorder's one atomic for that label set. When and how
//! often is the reporter's to decide ([`PUBLISH_BATCH`]).
//!
//! A handle registered before the application installs its recorder stays a no-op forever, so a
//! handle is only reused while the recorder in force (the thread's local recorder, else the global
//! one) is the one it came from, told by the recorder's address and size; otherwise the counter is
//! registered with the recorder in force, which from then on receives the errors counted after it
//! arrived. Registration allocates (the Prometheus recorder copies the key), so a handle is
//! registered once per recorder, and described to it then, so that a recorder installed after the
//! first errors gets the description (`# HELP`) too. Nothing happens on success.
//!
//! The series are bounded by the reporter's groups ([`MAX_GROUPS`](crate::config::MAX_GROUPS) label sets
//! of registered routes, methods and kinds); errors beyond them are exported under one overflow
//! series whose labels are all [`OVERFLOW`], never under a new one.

use std::sync::OnceLock;

use metrics::{Counter, Key, Label, Level, Metadata, Recorder, Unit};

use crate::context::ErrorContext;

/// The counter's name: `http_server_unhandled_errors_total`, labelled `method`, `route`, `kind`.
pub const METRIC_NAME: &str = "http_server_unhandled_errors_total";

const DESCRIPTION: &str =
    "Handler errors, service errors, panics and 5xx responses that no logging layer reported";

/// The label value of every label of the one series that errors beyond the groups are exported
/// under (the OpenTelemetry spelling of "none of the known values").
const OVERFLOW: &str = "_OTHER";

/// Registers the counter of `key` with `recorder`, describing it first: done with each
/// registration, so that a recorder installed after the first errors gets the description
/// (`# HELP`) too.
fn register(recorder: &dyn Recorder, key: &Key) -> Counter {
    recorder.describe_counter(
        metrics::KeyName::from_const_str(METRIC_NAME),
        Some(Unit::Count),
        metrics::SharedString::const_str(DESCRIPTION),
    );
    recorder.register_counter(key, &METADATA)
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The counter's key for an error of `context`, with bounded labels: method, route template (or
/// `unmatched`), kind.
fn key(context: &ErrorContext<'_>) -> Key {
    let labels = vec![
        Label::new("method", context.method_label()),
        Label::new("route", context.route_label().to_owned()),
        Label::new("kind", context.kind().as_str()),
    ];
    Key::from_parts(METRIC_NAME, labels)
}

/// The key of the overflow series: `method`, `route` and `kind` all [`OVERFLOW`].
fn overflow_key() -> Key {
    let labels = ["method", "route", "kind"].map(|name| Label::new(name, OVERFLOW));
    Key::from_parts(METRIC_NAME, labels.to_vec())
}

/// Recorders whose handles a group keeps; publishing through yet another recorder registers the
/// counter every time (tests switch recorders; applications install one).
const HANDLES: usize = 4;

/// After this many errors of one group on one thread's cell, the thread publishes the group's
/// count only every this many errors; the rest is published at most [`PUBLISH_DELAY`] later.
/// Up to here every error is published at once, so a metric read right after a few errors is
/// exact.
pub(crate) const PUBLISH_BATCH: u64 = 64;

/// How long after an error that did not publish the group counts are published.
pub(crate) const PUBLISH_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// One label set of the counter, with the handles registered for it, one per recorder seen, each
/// with the group's count when it was registered (what that recorder never saw). Reading and
/// filling a handle slot takes no lock.
#[derive(Debug)]
pub(crate) struct GroupCounter {
    key: Key,
    handles: [OnceLock<Handle>; HANDLES],
}

#[derive(Debug)]
struct Handle {
    recorder: RecorderId,
    counter: Counter,
    /// The group's count before this recorder's first error.
    base: u64,
}

/// Which recorder a handle came from: its address and size (two zero-sized recorders may share
/// an address).
type RecorderId = (usize, usize);

fn recorder_id(recorder: &dyn Recorder) -> RecorderId {
    let address = std::ptr::from_ref(recorder).cast::<()>() as usize;
    (address, std::mem::size_of_val(recorder))
}

impl GroupCounter {
    /// The counter of a group being opened, registered with the recorder in force: it receives
    /// all of the group's errors, whichever thread counts them first. (Registering it at the
    /// group's first publication instead would take the count at that moment, which may already
    /// hold another thread's error, for what the recorder never saw.)
    pub(crate) fn new(context: &ErrorContext<'_>) -> Self {
        Self::with_key(key(context))
    }

    /// The counter of the errors beyond the groups: one series, whatever their labels.
    pub(crate) fn overflow() -> Self {
        Self {
            key: overflow_key(),
            handles: Default::default(),
        }
    }

    fn with_key(key: Key) -> Self {
        let handles: [OnceLock<Handle>; HANDLES] = Default::default();
        metrics::with_recorder(|recorder| {
            let _ = handles[0].set(Handle {
                recorder: recorder_id(recorder),
                counter: register(recorder, &key),
                base: 0,
            });
        });
        Self { key, handles }
    }

    /// Publishes the group's count `total` to the recorder in force now. `new` of them were
    /// counted since this call last ran for an error: a recorder seen for the first time after
    /// the group opened is given those, not the errors before it arrived (nor those other
    /// threads were counting at that moment).
    pub(crate) fn publish(&self, total: u64, new: u64) {
        metrics::with_recorder(|recorder| {
            let id = recorder_id(recorder);
            for slot in &self.handles {
                let handle = slot.get_or_init(|| Handle {
                    recorder: id,
                    counter: register(recorder, &self.key),
                    base: total.saturating_sub(new),
                });
                if handle.recorder == id {
                    return handle.counter.absolute(total.saturating_sub(handle.base));
                }
            }
            register(recorder, &self.key).increment(new);
        });
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::context::ErrorKind;

    #[test]
    fn a_group_opened_under_a_recorder_exports_all_its_errors_whoever_publishes_first() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let context = ErrorContext::new(&Method::GET, "/x/7", Some("/x/{id}"), ErrorKind::Error);
        metrics::with_local_recorder(&recorder, || {
            let counter = GroupCounter::new(&context);
            // Another thread counted the group's first error and has not published yet when
            // this one publishes its own: the group holds 2, both after the recorder arrived.
            counter.publish(2, 1);
        });
        let line = format!(r#"{METRIC_NAME}{{method="GET",route="/x/{{id}}",kind="error"}} 2"#);
        let text = metrics.render();
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}
