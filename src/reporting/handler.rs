//! The handler: counts what nobody logged, around the handler that renders it; and its guard.

use std::{fmt, time::Duration};

use axum::response::Response;
use tracing::Level;

use super::{Breakdown, reporter::Reporter};
use crate::{
    config::ReportTo,
    context::{ErrorContext, ErrorKind},
    error::Error,
    expected::is_expected,
    handler::{DefaultErrorHandler, ServerErrorHandler},
    handoff::Sink,
    unwind,
};

/// A [`ServerErrorHandler`] that counts and reports the errors nobody logged, around another
/// handler that renders them (Armeria's `ExceptionReportingServiceErrorHandler`).
///
/// Clones share one reporter: axum clones the handler for every request, so a clone is only a
/// reference plus a clone of the wrapped handler, and the reporter lives for the rest of the
/// process. Each [`build`](crate::ReportingErrorHandlerBuilder::build) keeps one: its counters
/// take `min(2 × cores, 32)` cache lines of 128 bytes for each of up to 65 tallies, so on a
/// 16-core machine about 4 KiB empty and up to about 270 KiB with all 64 groups open; build it
/// once, not per request.
///
/// Pending counts are reported when the reporter shuts down: on [`shutdown`](Self::shutdown),
/// when a [`ShutdownGuard`] drops, and when the runtime that runs the periodic task shuts down
/// (the end of `#[tokio::main]`). A later error starts the task again.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body, http::Request, routing::get};
/// use tower::ServiceExt;
/// use unhandled::{Error, ErrorHandlerLayer, ReportingErrorHandler};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let reporting = ReportingErrorHandler::builder()
///     .interval(Duration::from_secs(30))
///     .level(tracing::Level::ERROR)
///     .build();
/// let app = Router::new()
///     .route("/", get(|| async { Err::<(), _>(Error::msg("the database is down")) }))
///     .layer(ErrorHandlerLayer::new(reporting.clone()));
///
/// app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(reporting.unhandled_count(), 1);
/// assert_eq!(reporting.breakdown().groups[0].route, "/");
/// reporting.shutdown().await; // logs the pending error now
/// # }
/// ```
pub struct ReportingErrorHandler<H = DefaultErrorHandler> {
    pub(super) reporter: &'static Reporter,
    pub(super) delegate: H,
}

impl<H> ReportingErrorHandler<H> {
    /// How many errors were counted so far.
    pub fn unhandled_count(&self) -> u64 {
        self.reporter.count()
    }

    /// The counted errors by method, route and kind.
    pub fn breakdown(&self) -> Breakdown {
        self.reporter.breakdown()
    }

    /// The report interval; zero when the periodic report is off.
    pub fn interval(&self) -> Duration {
        self.reporter.interval
    }

    /// The level of the periodic report.
    pub fn level(&self) -> Level {
        self.reporter.level
    }

    /// Where the periodic report goes.
    pub fn report_to(&self) -> ReportTo {
        self.reporter.report_to
    }

    /// Whether 5xx responses without a cause ([`ErrorKind::Status`]) are counted.
    pub fn counts_error_responses(&self) -> bool {
        self.reporter.count_error_responses
    }

    /// The handler that renders the responses.
    pub fn delegate(&self) -> &H {
        &self.delegate
    }

    /// Stops the periodic task and reports what is pending now. Counting goes on; the next error
    /// starts the task again.
    ///
    /// Returns within 2 seconds whatever the report does: the report is written on its own
    /// thread, and waited for on tokio's blocking pool, never on a worker. A report that takes
    /// longer (a sample whose `Display` never returns, a standard error nobody reads) is left to
    /// its thread.
    pub async fn shutdown(&self) {
        if let Some(task) = self.reporter.stop_task() {
            // Cancelled on purpose: its guard leaves the last report to this call.
            let _ = task.await;
        }
        let reporter = self.reporter;
        if let Some(ticket) = reporter.flush() {
            let _ = tokio::task::spawn_blocking(move || reporter.wait(ticket)).await;
        }
    }

    /// A guard that does what [`shutdown`](Self::shutdown) does, synchronously, when it drops:
    /// keep it in `main` beside the server so that nothing pending is lost on the way out. Its
    /// drop blocks the thread it runs on for at most 2 seconds.
    pub fn shutdown_guard(&self) -> ShutdownGuard {
        ShutdownGuard {
            reporter: self.reporter,
        }
    }
}

impl<H: ServerErrorHandler> ServerErrorHandler for ReportingErrorHandler<H> {
    /// Counting reads no text: a report formats its sample, which it keeps.
    fn reads_errors(&self) -> bool {
        self.delegate.reads_errors()
    }

    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response> {
        // The delegate runs first, so that it can mark the error logged (Armeria #5587); if it
        // panics, the error is still counted and the layer renders the default response.
        let response = unwind::catch(|| self.delegate.on_error(error, context)).flatten();
        let counted_kind =
            context.kind() != ErrorKind::Status || self.reporter.count_error_responses;
        // A body that fails while it streams is never the client leaving ([`is_expected`]).
        // Nor is a task's: no client reads its result.
        let kind = context.kind();
        let expected = kind != ErrorKind::Body && !kind.is_task() && is_expected(error);
        if counted_kind
            && !error.is_logged()
            && !error.is_intentional()
            && !is_client_answer(error, context)
            && !expected
        {
            self.reporter.record(error, context);
        }
        response
    }
}

/// The process-wide reporter ([`ReportingErrorHandler::global`]), kept as a layer keeps its
/// handler: `unhandled::layer()`'s, and where a failure outside any request goes (a background
/// task's, a stray panic).
pub(crate) fn kept_global() -> &'static Sink {
    static KEPT: std::sync::LazyLock<Sink> =
        std::sync::LazyLock::new(|| Sink::new(ReportingErrorHandler::global()));
    &KEPT
}

/// Whether `error` is an error a handler returned with a 1xx, 3xx or 4xx status
/// (`Error::status(StatusCode::NOT_FOUND).with_cause(e)`): the answer the client gets is no
/// server failure, whatever caused it. (A 2xx is a gRPC call's answer, whose status is its
/// `grpc-status`; a body that fails after any head is a failure.)
fn is_client_answer(error: &Error, context: &ErrorContext<'_>) -> bool {
    let status = error.status_code();
    context.kind() == ErrorKind::Error && !status.is_server_error() && !status.is_success()
}

impl<H: Clone> Clone for ReportingErrorHandler<H> {
    fn clone(&self) -> Self {
        Self {
            reporter: self.reporter,
            delegate: self.delegate.clone(),
        }
    }
}

impl<H: fmt::Debug> fmt::Debug for ReportingErrorHandler<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportingErrorHandler")
            .field("interval", &self.reporter.interval)
            .field("level", &self.reporter.level)
            .field("report_to", &self.reporter.report_to)
            .field(
                "count_error_responses",
                &self.reporter.count_error_responses,
            )
            .field("unhandled_count", &self.reporter.count())
            .field("delegate", &self.delegate)
            .finish()
    }
}

/// Reports pending counts and stops the periodic task when dropped; see
/// [`ReportingErrorHandler::shutdown_guard`].
#[must_use = "the guard reports pending counts when it drops; keep it alive"]
pub struct ShutdownGuard {
    reporter: &'static Reporter,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        self.reporter.stop_task();
        self.reporter.flush_and_wait();
    }
}

impl fmt::Debug for ShutdownGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownGuard").finish_non_exhaustive()
    }
}
