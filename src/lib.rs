//! Every error and panic in an axum handler is either logged or counted, exported and reported.
//!
//! A new axum service that returns an error or panics inside a handler tells nobody: without a
//! logging layer there is no log line, no metric, at worst a dropped connection. `unhandled` ports
//! Armeria's answer to that:
//!
//! - [`ErrorHandlerLayer`] sends every handler error, service error, panic and 5xx response to a
//!   [`ServerErrorHandler`], which renders the response ([`DefaultErrorHandler`]: a safe `500`,
//!   or the response the application built);
//! - [`ResponseExt::with_cause`] hands the cause of a 5xx that an application's own error type
//!   rendered to the layer, in one line of its `IntoResponse`;
//! - [`ReportingErrorHandler`] counts the errors that no logging layer reported, exports them as
//!   the Prometheus counter [`METRIC_NAME`] through the `metrics` facade, and every interval logs
//!   one warning with the count, the failing routes and a sample error;
//! - [`LoggingLayer`] logs every request in an OpenTelemetry server span and marks the errors it
//!   logged, so that they are not counted: the fix the warning asks for;
//! - a gRPC (tonic) service behind the same layer has its server-error statuses counted (from its
//!   headers or a stream's trailers) with its method as the route, and its panics answered as a
//!   gRPC `INTERNAL`: see [`ErrorContext::is_grpc`];
//! - [`TaskExt::reported`] (and [`spawn`]) makes the failure of work a request hands to
//!   `tokio::spawn` a failure of that request, counted and reported with its route;
//! - [`subscriber::layer()`], for an application that logs its own errors, makes a failure count
//!   as logged when the application recorded an event at `ERROR` while serving it
//!   ([`subscriber::layer_at`] picks another threshold).
//!
//! The warning goes to the `tracing` subscriber where it records target `unhandled`, else to
//! standard error ([`ReportTo`]), so that a new service without a subscriber still shows it.
//!
//! Each module's page is its manual:
//! - [`error_handler`]: what counts as a failure, an application's own error type, gRPC calls,
//!   failures after the head, what is not guaranteed;
//! - [`reporting`]: what is counted, the metric and PromQL, where it failed (locations and
//!   backtraces), the report and where it goes, what runs where, the guarantees;
//! - [`logging`]: the request log, its OpenTelemetry server span, joining the caller's trace;
//! - [`subscriber`]: an application's own error logs, counted as logged;
//! - [`task`]: work a request hands to a spawned task, and the panics nobody reported;
//! - [`config`]: the environment variables, their bounds, and what a bad value gets.
//!
//! ```
//! use axum::{Router, extract::Path, routing::get};
//!
//! async fn get_user(Path(id): Path<u64>) -> unhandled::Result<String> {
//!     let name = std::fs::read_to_string(format!("/var/lib/users/{id}"))?;
//!     Ok(name)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(get_user))
//!     .layer(unhandled::layer()); // interval from UNHANDLED_ERRORS_REPORT_INTERVAL, else 10s
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod backtraces;
pub mod config;
mod context;
mod error;
pub mod error_handler;
mod expected;
mod grpc;
mod handler;
mod handoff;
mod head;
mod level;
pub mod logging;
mod metric;
mod notice;
mod panic_location;
pub mod reporting;
mod response_ext;
mod striped;
pub mod subscriber;
mod switch;
pub mod task;
mod text;
mod trace;
mod unwind;

pub use crate::{
    backtraces::set_backtraces,
    config::ReportTo,
    context::{ErrorContext, ErrorKind},
    error::{At, BoxError, Error, Location, Result},
    error_handler::ErrorHandlerLayer,
    handler::{DefaultErrorHandler, ServerErrorHandler},
    logging::LoggingLayer,
    metric::METRIC_NAME,
    notice::REPORT_TARGET,
    panic_location::{count_stray_panics, set_panic_locations},
    reporting::{
        Breakdown, ErrorGroup, ReportingErrorHandler, ReportingErrorHandlerBuilder, ShutdownGuard,
    },
    response_ext::ResponseExt,
    task::{TaskExt, spawn, spawn_blocking},
    trace::TraceId,
};

/// The layer to add on day one: [`ErrorHandlerLayer`] with the process-wide
/// [`ReportingErrorHandler::global`] around [`DefaultErrorHandler`].
///
/// It reads four environment variables (a fifth, [`UNHANDLED_COUNT_STRAY_PANICS`](config::STRAY_PANICS_VAR),
/// is read by the panic hook, at the latest at the first panic outside any request): the reporter's three, as
/// [`ReportingErrorHandlerBuilder::from_env`] does
/// ([`UNHANDLED_ERRORS_REPORT_INTERVAL`](config::INTERVAL_VAR), 10 s when unset;
/// [`UNHANDLED_ERRORS_REPORT_TO`](config::REPORT_TO_VAR);
/// [`UNHANDLED_COUNT_ERROR_RESPONSES`](config::COUNT_ERROR_RESPONSES_VAR)), and, where it installs
/// the panic hook that notes a panic's location ([`ErrorHandlerLayer::new`]), once per process,
/// [`UNHANDLED_PANIC_LOCATIONS`](config::PANIC_LOCATIONS_VAR). An invalid value is written where a
/// person sees it, and that setting keeps its default.
pub fn layer() -> ErrorHandlerLayer<ReportingErrorHandler> {
    // The process-wide reporter's sink is process-wide too: each call keeps nothing more.
    ErrorHandlerLayer::with_sink(ReportingErrorHandler::global(), reporting::kept_global())
}

/// README's snippets, compiled and run as doctests, so that each recipe works as copied.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;
