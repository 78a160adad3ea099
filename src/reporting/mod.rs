//! Counting, exporting and reporting the failures no logging layer reported:
//! [`ReportingErrorHandler`].
//!
//! # What is counted
//!
//! [`ReportingErrorHandler`] wraps any [`ServerErrorHandler`](crate::ServerErrorHandler). The
//! wrapped handler renders the response first, so that it can mark the error logged. Then the
//! failure is counted, unless
//! - it was marked logged ([`Error::mark_logged`](crate::Error::mark_logged)): by a
//!   [`LoggingLayer`](crate::LoggingLayer) inside the error handler, by the application's own log
//!   line ([`subscriber`](crate::subscriber)), or by a custom handler;
//! - it is an intentional status ([`Error::status`](crate::Error::status)) or a 1xx to 4xx
//!   response;
//! - it only says that the client went away while its request body was read;
//! - it is a 5xx without a cause and [`count_error_responses(false)`](ReportingErrorHandlerBuilder::count_error_responses)
//!   is set.
//!
//! # The metric
//!
//! Each counted failure is a step of the counter [`METRIC_NAME`](crate::METRIC_NAME),
//! `http_server_unhandled_errors_total`, labelled `method`, `route` and `kind`, through the
//! [`metrics`](https://docs.rs/metrics) facade: the application installs the exporter, before or
//! after the layer is built. A recorder installed late gets the failures from then on, and the
//! counter's description.
//!
//! - `method`: one of the nine standard methods, else `_OTHER`.
//! - `route`: the matched route template, else `unmatched`; for a gRPC call the server answered
//!   with a server-error status, its method ([gRPC](crate::error_handler#grpc)). A client chose
//!   that method's path, so at most 8 groups (of the 64) take such a label; beyond them such a
//!   failure is counted under its route template, or `unmatched`, and never takes a group of a
//!   route the application declared.
//! - `kind`: [`ErrorKind::as_str`](crate::ErrorKind::as_str).
//!
//! A reporter keeps [`MAX_GROUPS`](crate::config::MAX_GROUPS) (64) groups: a group is a label
//! set and a location ([`Error::location`](crate::Error::location)), so two failure sites on one
//! route are two groups that add to one series. The metric has no location label: a build's paths
//! and a series per line would make its cardinality the code's size. Failures beyond the groups
//! are counted under one overflow series whose three labels are `_OTHER`. So a reporter exports
//! at most 65 series, whatever clients send.
//!
//! The metric is exact for a scrape a second after the failures. A thread publishes its group's
//! count with each of its first 64 failures of that group, then with every 64th. What a storm
//! leaves unpublished is published within a second, and at shutdown.
//!
//! # The report
//!
//! The first counted failure starts one tokio task. Every interval in which the count grew, one
//! report is written: how many, the largest groups (each named by its location), one sample with
//! its request, its source chain, its location and backtrace, and the fix. No failure, no task. No
//! growth, no report.
//!
//! # What runs where
//!
//! The report is never in the way of a request:
//! - a request counts, and does nothing else;
//! - the tokio task only asks for a report when it is due, and publishes counts to the metric;
//! - the report's own thread (`unhandled-report`, one per reporter, started with the first report)
//!   takes the groups, formats the sample (the application's `Display`) and resolves its
//!   backtrace;
//! - standard error's own thread (`unhandled-stderr`) writes the lines.
//!
//! The task waits for the report it asked for on tokio's blocking pool, never on a worker, at
//! most a second. A report still running when the next one is due is not waited for: its thread
//! is left to finish on its own, and the next report, on a new thread, carries the counts alone
//! (its own and those the late report had taken, which that report then never writes) with a
//! `note` that says so. While the thread left behind runs, reports carry the counts alone and run
//! none of the application's code: a `Display` that never returns costs one thread, and never a
//! second. At most 8 lines wait for standard error; a line beyond those is dropped and counted,
//! and the next line written says how many. [`shutdown`](ReportingErrorHandler::shutdown), a
//! dropped [`ShutdownGuard`] and the runtime's shutdown wait at most 2 seconds for the last report
//! and its lines.
//!
//! The sample is the one to read: of the first failure of each group since the last report, a
//! panic or an error with a cause before a 5xx response without one, one with a location before
//! one without, then the one of the largest group. The fix is what would log these failures in
//! this process: where a [`LoggingLayer`](crate::LoggingLayer) saw them while the filter disabled
//! its events, the filter directive that enables them; where the
//! [subscriber layer](crate::subscriber) is installed, logging at its threshold, not the layer
//! again.
//!
//! The report goes where a person sees it ([`ReportTo`](crate::ReportTo)). It goes through
//! `tracing` (target [`REPORT_TARGET`](crate::REPORT_TARGET), `unhandled`) when the subscriber in
//! force records it, and else on standard error, as one line. That line is escaped: no control
//! character, line separator or bidirectional control that a client or an error put in a value
//! reaches the terminal raw. It is at most 8 KiB long. Error text is cut at 2,048 bytes and a source
//! chain at 32 links, with a marker.
//!
//! A sample is kept until the report that shows it, and not at all with the interval at zero.
//! Nothing pending is lost at the end: [`shutdown`](ReportingErrorHandler::shutdown), a dropped
//! [`ShutdownGuard`] and the runtime shutting down each report it at once.
//!
//! ```
//! use axum::{Router, body::Body, http::Request, routing::get};
//! use tower::ServiceExt;
//! use unhandled::{Error, ErrorHandlerLayer, ReportingErrorHandler};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let reporting = ReportingErrorHandler::builder().build();
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { Err::<(), _>(Error::msg("the database is down")) }))
//!     .layer(ErrorHandlerLayer::new(reporting.clone()));
//! app.oneshot(Request::get("/users/7").body(Body::empty()).unwrap()).await.unwrap();
//!
//! let group = &reporting.breakdown().groups[0];
//! assert_eq!((group.method, group.route.as_str(), group.count), ("GET", "/users/{id}", 1));
//! reporting.shutdown().await; // reports the pending failure now
//! # }
//! ```

mod builder;
mod event;
mod groups;
mod handler;
mod offload;
mod reporter;

pub use self::{
    builder::ReportingErrorHandlerBuilder,
    groups::{Breakdown, ErrorGroup},
    handler::{ReportingErrorHandler, ShutdownGuard},
};
