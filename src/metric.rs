//! The exported metric, recorded through the `metrics` facade.
//!
//! A handle registered before the application installs its recorder stays a no-op forever, so a
//! handle is only reused while the recorder in force (the thread's local recorder, else the global
//! one) is the one it came from, told by the recorder's address and size; otherwise the counter is
//! registered again with the recorder in force. Registration allocates (the Prometheus recorder
//! copies the key), so reuse keeps a counted error from paying it every time. Nothing happens on
//! success.

use std::sync::OnceLock;

use metrics::{Counter, Key, Label, Level, Metadata, Recorder, Unit, describe_counter};

use crate::context::ErrorContext;

/// The counter's name: `http_server_unhandled_errors_total`, labelled `method`, `route`, `kind`.
pub const METRIC_NAME: &str = "http_server_unhandled_errors_total";

const DESCRIPTION: &str =
    "Handler errors, service errors, panics and 5xx responses that no logging layer reported";

/// Describes the counter to the recorder installed now.
pub(crate) fn describe() {
    describe_counter!(METRIC_NAME, Unit::Count, DESCRIPTION);
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

/// Recorders whose handles a group keeps; errors counted through yet another recorder register
/// the counter every time (tests switch recorders; applications install one).
const HANDLES: usize = 4;

/// One label set of the counter, with the handles registered for it, one per recorder seen.
/// Reading and filling a handle slot takes no lock.
#[derive(Debug)]
pub(crate) struct GroupCounter {
    key: Key,
    handles: [OnceLock<(RecorderId, Counter)>; HANDLES],
}

/// Which recorder a handle came from: its address and size (two zero-sized recorders may share
/// an address).
type RecorderId = (usize, usize);

fn recorder_id(recorder: &dyn Recorder) -> RecorderId {
    let address = std::ptr::from_ref(recorder).cast::<()>() as usize;
    (address, std::mem::size_of_val(recorder))
}

impl GroupCounter {
    pub(crate) fn new(context: &ErrorContext<'_>) -> Self {
        Self {
            key: key(context),
            handles: Default::default(),
        }
    }

    /// Adds one, through the recorder in force now.
    pub(crate) fn increment(&self) {
        metrics::with_recorder(|recorder| {
            let id = recorder_id(recorder);
            for slot in &self.handles {
                let register = || (id, recorder.register_counter(&self.key, &METADATA));
                let (registered_with, counter) = slot.get_or_init(register);
                if *registered_with == id {
                    return counter.increment(1);
                }
            }
            recorder.register_counter(&self.key, &METADATA).increment(1);
        });
    }
}

/// Adds one to the counter of `context` without keeping anything (for errors beyond the groups).
pub(crate) fn increment_once(context: &ErrorContext<'_>) {
    let key = key(context);
    metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA).increment(1));
}
