//! The periodic report: one `tracing` event at the configured level.

use std::{borrow::Cow, fmt::Write, time::Duration};

use axum::http::StatusCode;
use tracing::{Level, field};

use super::groups::Pending;
use crate::{
    backtraces,
    config::ReportTo,
    context::ErrorKind,
    error::Error,
    grpc::GrpcStatus,
    handoff,
    level::{enabled_at, event_at},
    notice::{Line, REPORT_TARGET as TARGET},
};

/// The advice a report ends with where nothing is known of the setup: the two ways a failure
/// counts as logged.
pub(crate) const FIX: &str = "add unhandled::LoggingLayer to log each one, or, where the \
     application logs its own errors, add unhandled::subscriber::layer() to its tracing subscriber";

/// The advice a report ends with: what would log these failures in this process. A logging
/// layer that saw them while the filter disabled its events needs a filter directive, not
/// another layer; an installed subscriber layer is not advised again.
fn fix(pending: &Pending) -> Cow<'static, str> {
    if pending.task_count > 0 && pending.task_count >= pending.count {
        return Cow::Borrowed(TASK_FIX);
    }
    let fix = request_fix(pending);
    match pending.task_count {
        0 => fix,
        tasks => Cow::Owned(format!(
            "{fix}; for the {tasks} in spawned tasks, {TASK_FIX}"
        )),
    }
}

/// The advice for failures of spawned tasks ([`TaskExt`](crate::TaskExt)): no logging layer
/// sees a task, so the task logs them itself, or hands them to whoever awaits it.
pub(crate) const TASK_FIX: &str = "log them in the task (e.g. #[tracing::instrument(err)] on its \
     function, at ERROR with unhandled::subscriber::layer() in the tracing subscriber), or await \
     its JoinHandle and handle the error there";

/// The advice for the failures of requests: what would log them in this process.
fn request_fix(pending: &Pending) -> Cow<'static, str> {
    let layers = match handoff::subscriber_layer() {
        Some(threshold) => Cow::Owned(format!(
            "add unhandled::LoggingLayer to log each one, or log them from the application at \
             {threshold} or more severe while it serves the request (unhandled::subscriber::layer() \
             is installed and saw no such event)"
        )),
        None => Cow::Borrowed(FIX),
    };
    let Some(level) = pending.filtered else {
        return layers;
    };
    // The report's own level too, so that one directive serves both.
    let directive = level.max(Level::WARN).as_str().to_ascii_lowercase();
    let all = pending.filtered_count >= pending.count;
    let which = if all { "them" } else { "some of them" };
    let mut fix = format!(
        "unhandled::LoggingLayer saw {which}, but the tracing filter disables its events \
         (target unhandled::logging at {level}); enable them, e.g. \
         RUST_LOG=unhandled={directive},<your filter>, or where the filter is built in code, \
         .add_directive(\"unhandled={directive}\".parse().unwrap()) on its EnvFilter"
    );
    if !all {
        let others = pending.count - pending.filtered_count;
        let _ = write!(fix, "; for the other {others}, {layers}");
    }
    Cow::Owned(fix)
}

/// What the report adds when its sample is a 5xx response without a cause.
pub(crate) const ATTACH_FIX: &str = "no cause was attached to this response; where it is built \
     (the application's IntoResponse), attach it: \
     `response.with_cause(error)` with `use unhandled::ResponseExt`";

/// What the report adds when its sample is a `504` or a `408` without a cause: what a timeout
/// layer between the error handler and the handler (tower-http's `TimeoutLayer`) answers, which no
/// `IntoResponse` of the application built.
pub(crate) const TIMEOUT_FIX: &str = "no cause was attached to this response; a 504 or 408 \
     without one is what a timeout layer answers (tower-http's TimeoutLayer): the request took \
     longer than its timeout, so look at what the handler waited on; to count such answers no \
     more, mark them intentional where they pass, e.g. a map_response layer outside the timeout \
     layer that inserts unhandled::Error::status(response.status()) into the response's \
     extensions; where the application's own IntoResponse built it, attach the cause there: \
     `response.with_cause(error)`";

/// What the report adds when its sample is a `503` without a cause: what a load-shedding or
/// concurrency-limit layer answers through axum's `HandleErrorLayer`.
pub(crate) const SHED_FIX: &str = "no cause was attached to this response; a 503 without one is \
     what a load-shedding or rate-limit layer answers through axum's HandleErrorLayer: where that \
     closure builds it, mark an intentional shed with \
     `response.extensions_mut().insert(unhandled::Error::status(StatusCode::SERVICE_UNAVAILABLE))`, \
     or attach the layer's error with `response.with_cause(error)`; where the application's own \
     IntoResponse built it, attach the cause there";

/// What the report adds when its sample is a gRPC server-error status without a source.
pub(crate) const GRPC_FIX: &str = "this gRPC status has no source; where the handler returns it, \
     give it its cause (`status.set_source(Arc::new(error))`) and enable unhandled's cargo feature \
     `tonic`, so that the report shows the cause's chain";

/// What the report adds to a location where `ResponseExt::with_cause` attached the cause.
pub(crate) const ATTACHED_NOTE: &str = "where ResponseExt::with_cause attached the cause; the ? \
     that made the error is elsewhere (in the handler): record it with unhandled::At in the \
     error type's From and attach with with_cause_at";

/// What the report adds to a location inside the standard library.
pub(crate) const STD_NOTE: &str = "inside the standard library: the error went through a \
     function path without #[track_caller], such as .map_err(Error::from); write ? or \
     .map_err(|e| Error::new(e)) to name the line";

/// What the report adds to a spawned task's error that carries no location: a standard error,
/// `anyhow` or `eyre` returned as the task's output was never converted by a `?`.
pub(crate) const TASK_LOCATION_NOTE: &str = "the task returned an error that records no line; \
     make the task return unhandled::Result, so that its ? names the line";

/// What the report's `sample.location` says of a panic whose location was lost.
pub(crate) const LOCATION_LOST: &str = "unknown: a panic hook set after the first \
     ErrorHandlerLayer was built replaced unhandled's; set it before building the layer, or have \
     it call the hook it replaces (std::panic::take_hook)";

/// Whether a report carries its sample, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Late {
    /// The report is whole.
    No,
    /// The previous report had not finished when this one was due.
    Previous,
    /// A report left behind is still running on its own thread.
    Still,
}

/// What a report that carries the counts alone says of its sample.
pub(crate) const LATE_PREVIOUS: &str = "no sample: the previous report had not finished when this \
     one was due (formatting its sample, an error's Display or Debug, may block), so it was left \
     to its own thread and this report carries the counts alone";
/// The same, while the report left behind still runs.
pub(crate) const LATE_STILL: &str = "no sample: an earlier report is still formatting its sample \
     on a thread of its own (an error's Display or Debug that blocks?); reports carry the counts \
     alone until it ends";

/// Emits the report for `pending`, saying it covers the last `window`: through `tracing`, or on
/// standard error where `report_to` says so. `late` says why a report carries no sample.
pub(crate) fn emit(
    level: Level,
    report_to: ReportTo,
    window: Duration,
    pending: &Pending,
    late: Late,
    still_mine: &dyn Fn() -> bool,
) {
    let note = match late {
        Late::No => None,
        Late::Previous => Some(Cow::Owned(format!(
            "{LATE_PREVIOUS}; the count includes the {} failure{} that report had taken",
            pending.carried,
            if pending.carried == 1 { "" } else { "s" }
        ))),
        Late::Still => Some(Cow::Borrowed(LATE_STILL)),
    };
    let whole_millis = Duration::from_millis(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let window = humantime::format_duration(whole_millis).to_string();
    let top = top_text(pending);
    let sample = pending.sample.as_ref();
    let chain = sample.map(|sample| sample.error.chain_text());
    let s = if pending.count == 1 { "" } else { "s" };
    let attach_fix = sample
        .filter(|sample| sample.kind == ErrorKind::Status)
        .map(|sample| {
            let status = sample.error.status_code();
            match GrpcStatus::is_in(&sample.error) {
                true => GRPC_FIX,
                false if status == StatusCode::GATEWAY_TIMEOUT => TIMEOUT_FIX,
                false if status == StatusCode::REQUEST_TIMEOUT => TIMEOUT_FIX,
                false if status == StatusCode::SERVICE_UNAVAILABLE => SHED_FIX,
                false => ATTACH_FIX,
            }
        });
    let method = sample.map(|sample| sample.method.as_str());
    let path = sample.map(|sample| sample.path.as_str());
    let route = sample.map(|sample| sample.route.as_str());
    let kind = sample.map(|sample| sample.kind.as_str());
    // A spawned task's failure has no response, so no status.
    let status = sample
        .filter(|sample| !sample.kind.is_task())
        .map(|sample| sample.error.status_code().as_u16());
    let trace_id = sample.and_then(|sample| sample.trace_id);
    let type_name = sample.and_then(|sample| sample.error.type_name());
    // Resolved here, on the report thread: names and lines come from the debug info.
    let frames = sample
        .and_then(|sample| sample.backtrace.as_deref())
        .map(backtraces::frames);
    let (location, location_note) = match sample {
        Some(sample) if sample.kind == ErrorKind::Task && sample.error.location().is_none() => {
            (None, Some(TASK_LOCATION_NOTE))
        }
        Some(sample) => place(&sample.error, frames.as_deref()),
        None => (None, None),
    };
    // Formatted: from here on nothing of the application's code runs. A report that took too long
    // to get here was left behind, and a later one wrote its failures.
    if !still_mine() {
        return;
    }
    let fix = fix(pending);
    let message = format!(
        "Observed {} unhandled error{s} in the last {window} that no logging layer reported",
        pending.count
    );
    if !report_to.to_tracing(|| enabled_at!(target: TARGET, level)) {
        Line::new(level, TARGET, &format_args!("{message}; {fix}"))
            .field("count", Some(&pending.count))
            .field("interval", Some(&window))
            .field("top", Some(&top))
            .field("note", note.as_deref())
            .field("sample.method", method)
            .field("sample.path", path)
            .field("sample.route", route)
            .field("sample.kind", kind)
            .field("sample.status", status)
            .field("sample.error", chain.as_deref())
            .field("sample.location", location.as_deref())
            .field("sample.location_note", location_note)
            .field("sample.type", type_name)
            .field("sample.fix", attach_fix)
            .field("sample.trace_id", trace_id)
            .frames(frames.as_deref().unwrap_or_default())
            .write(report_to);
        return;
    }
    event_at!(
        target: TARGET,
        level,
        count = pending.count,
        interval = window.as_str(),
        top = top.as_str(),
        note = note.as_deref(),
        sample.method = method,
        sample.path = path,
        sample.route = route,
        sample.kind = kind,
        sample.status = status,
        sample.error = chain.as_deref(),
        sample.location = location.as_deref(),
        sample.location_note = location_note,
        sample.type = type_name,
        sample.fix = attach_fix,
        sample.trace_id = trace_id.map(field::display),
        sample.backtrace = frames.map(|frames| frames.join("\n")).as_deref(),
        fix = &*fix,
        "{message}",
    );
}

/// Where the sample failed, as the report says it, and what the report adds to it: where the
/// cause was attached rather than made ([`ATTACHED_NOTE`]); for a location inside the standard
/// library, the first of the application's frames when a backtrace is at hand, else no location
/// and how to keep the line ([`STD_NOTE`]): a line of `core` is never the place to look.
fn place(error: &Error, frames: Option<&[String]>) -> (Option<String>, Option<&'static str>) {
    let Some(location) = error.location() else {
        let lost = error.location_lost().then(|| LOCATION_LOST.to_owned());
        return (lost, None);
    };
    if backtraces::is_std_file(location.file()) {
        return match frames.and_then(backtraces::first_application_location) {
            Some(frame) => (Some(frame.to_owned()), None),
            None => (None, Some(STD_NOTE)),
        };
    }
    let note = error.location_attached().then_some(ATTACHED_NOTE);
    (Some(location.to_string()), note)
}

/// `GET /users/{id} error ×12, POST /users task at src/mail.rs:40:9 ×3, spawned at
/// src/users.rs:88:5, 2 more in other groups`.
fn top_text(pending: &Pending) -> String {
    let mut text = String::new();
    for (index, (label, count)) in pending.top.iter().enumerate() {
        let separator = if text.is_empty() { "" } else { ", " };
        let _ = write!(text, "{separator}{label} ×{count}");
        if let Some(site) = pending.spawned_at.get(index).copied().flatten() {
            let _ = write!(text, ", spawned at {site}");
        }
    }
    if pending.rest > 0 {
        let separator = if text.is_empty() { "" } else { ", " };
        let _ = write!(text, "{separator}{} more in other groups", pending.rest);
    }
    text
}
