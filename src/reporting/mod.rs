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
//! - `kind`: [`ErrorKind::as_str`](crate::ErrorKind::as_str): `error`, `panic`, `service`,
//!   `status`, `body`, and for the work a request hands to a task, `task` and `task_panic`
//!   ([`task`](crate::task)). A task spawned outside any request is counted by the process-wide
//!   reporter under the method `_OTHER` and the route its spawn named, else `_background`.
//!
//! A reporter keeps [`MAX_GROUPS`](crate::config::MAX_GROUPS) (64) groups: a group is a label
//! set and a location ([`Error::location`](crate::Error::location)), so two failure sites on one
//! route are two groups that add to one series. The metric has no location label: a build's paths
//! and a series per line would make its cardinality the code's size. Failures beyond the groups
//! are counted under one overflow series whose three labels are `_OTHER`. So a reporter exports
//! at most 65 series, whatever clients send.
//!
//! Each instance exports its own series; Prometheus scrapes every instance and does the sums, so
//! nothing in the crate coordinates instances:
//!
//! | question | PromQL |
//! |---|---|
//! | which route fails most, across all instances | `topk(5, sum by (route) (rate(http_server_unhandled_errors_total[5m])))` |
//! | error rate per instance | `sum by (instance) (rate(http_server_unhandled_errors_total[5m]))` |
//! | panics vs returned errors vs bare 5xx | `sum by (kind) (rate(http_server_unhandled_errors_total[5m]))` |
//! | errors in the last day, per route and method | `sum by (route, method) (increase(http_server_unhandled_errors_total[1d]))` |
//!
//! The repository's `examples/prometheus/` has a scrape config and the alerting rule
//! `UnhandledErrors` with its `promtool test rules` unit test. `tests/e2e_prometheus.sh` scrapes two
//! demo servers with a real Prometheus and checks that its sums equal what was sent.
//!
//! The metric is exact for a scrape a second after the failures. A thread publishes its group's
//! count with each of its first 64 failures of that group, then with every 64th. What a storm
//! leaves unpublished is published within a second, and at shutdown.
//!
//! # Where it failed
//!
//! Every report's sample, and `LoggingLayer`'s failure event, names the line that failed
//! (`sample.location=src/orders.rs:51:9`, file:line:column as the compiler gave it) and, where the
//! cause's type says something, that type (`sample.type=sqlx::error::Error`). The event's fields are
//! `location` and `exception.type`; the OpenTelemetry span gets `exception.type`.
//! [`Error::location`](crate::Error::location) and [`Error::type_name`](crate::Error::type_name) give
//! them to a [`ServerErrorHandler`](crate::ServerErrorHandler).
//!
//! - **An error** made by `?`, [`Error::new`](crate::Error::new), [`Error::msg`](crate::Error::msg)
//!   or [`with_cause`](crate::ResponseExt::with_cause) records its caller with `#[track_caller]`: a
//!   pointer to static data, no allocation. An application's own error type records the `?` with
//!   one field, [`At`](crate::At), and hands it over with
//!   [`with_cause_at`](crate::ResponseExt::with_cause_at). `.map_err(Error::from)` goes through an
//!   untracked shim in `core`: the location then falls back to the first frame of the backtrace
//!   outside the standard library when one was taken, and else the sample's `location_note` says
//!   to write `?` or `.map_err(|e| Error::new(e))`.
//! - **A panic** inside the error handler's scope (the handler, its future, a middleware inside the
//!   layer, a streamed body, a gRPC handler) carries its file, line and column. The first
//!   [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) built installs a panic hook, once per process.
//!   It chains the hook in force then, so the default hook's message, sentry's or the application's
//!   own still run. It notes only the location of a panic inside a scope, one small allocation per
//!   panic. [`set_panic_locations(false)`](crate::set_panic_locations) or
//!   `UNHANDLED_PANIC_LOCATIONS=0` before the first layer is built leaves the hook alone. A hook set
//!   later without chaining loses only the location, and the sample says why
//!   (`tests/child_process/panic_hook.rs`).
//! - **Groups are places.** A report's groups are keyed by method, route, kind and location, so two
//!   failure sites on one route are two groups, each with its count and sample, and `top` names each:
//!   `top="GET /orders/{id} panic at src/orders.rs:42:17 ×37, GET /orders/{id} error at
//!   src/orders.rs:51:9 ×2"`. The metric has no location label; both add to their one series.
//! - **Backtraces, where std's variables ask for them.** With `RUST_LIB_BACKTRACE=1` (else
//!   `RUST_BACKTRACE` set and not `0`: std's rules), the sample carries a backtrace taken where the
//!   failure happened: where the error was made, or in the panic hook. Prefer `RUST_LIB_BACKTRACE`:
//!   `RUST_BACKTRACE=1` also makes std's hook resolve a backtrace for every panic it prints, on the
//!   panicking thread. One failure per location per interval takes one, so a storm of 10,000
//!   failures at two sites takes two (`tests/child_process/report_output.rs`), and the group's sample
//!   keeps the one its interval took. The frames are resolved when the report is written, on the
//!   report's thread; the first resolution reads the binary's debug info, which stays in memory
//!   (a debug test binary went from 6.6 MB to 104 MB resident). The application's own frames are
//!   shown whole, runs of dependency and std frames are one line each (`… 11 frames in axum, tower,
//!   futures_util`), and registry and toolchain paths are shortened. On standard error the frames
//!   follow the report as indented lines; through `tracing` they are one field, `sample.backtrace`,
//!   one frame a line. [`set_backtraces`](crate::set_backtraces) decides for the process instead. A
//!   release build names files and lines only with `debug = "line-tables-only"` in its profile.
//!
//! # The report
//!
//! The first counted failure starts one tokio task (compare-and-swap: no failure, no task). Every
//! interval in which the count grew, one report is written, target [`REPORT_TARGET`](crate::REPORT_TARGET)
//! (`unhandled`), at the builder's level (`WARN` by default). No growth, no report. Its fields:
//! `count`, `interval`, `top` (the five largest groups, each a method, route, kind and location with
//! its count), `sample.method`, `sample.path` (with its query, secrets `REDACTED`), `sample.route`,
//! `sample.kind`, `sample.status`, `sample.error` (the source chain, `outer: inner`),
//! `sample.location`, `sample.location_note`, `sample.type`, `sample.backtrace`, `sample.fix` (for a
//! 5xx without a cause: how to attach it), `sample.trace_id` (feature `opentelemetry`), `note` and
//! `fix`. Through `tracing` every text is a string field, which `fmt` quotes, so a logfmt reader gets
//! each whole.
//!
//! The sample is the one to read: of the first failure of each group since the last report, a
//! panic or an error with a cause before a 5xx response without one, one with a location before one
//! without, then the one of the largest group. A source whose text its error already ends with
//! (sqlx's `error returned from database: {source}`) is printed once. Error text is cut at 2,048
//! bytes (`…[cut]`), a source chain at 32 links (`…[source chain cut after 32 links]`), and a chain
//! that loops back says so.
//!
//! The fix is what would log these failures in this process:
//! - nothing known: add [`LoggingLayer`](crate::LoggingLayer), or, where the application logs its
//!   own errors, [`subscriber::layer()`](crate::subscriber::layer);
//! - a `LoggingLayer` saw them while the filter disabled its events (axum's examples' filter does):
//!   the directive that enables them, for `RUST_LOG` or for a filter built in code;
//! - the subscriber layer is installed: logging the failure at `ERROR` during the request;
//! - a 5xx that a layer answered (a timeout's 504, a shed 503): what fits that layer.
//!
//! # Where the report goes
//!
//! A Rust library gets no logging default that shows its warnings: with no subscriber, with axum's
//! examples' filter (`"{crate}=debug,tower_http=debug"`) or with `fmt::init()` and `RUST_LOG` unset,
//! an event at `WARN` from target `unhandled` is written nowhere. So at each report the reporter
//! asks the subscriber in force whether it records the report, and with
//! [`ReportTo::Auto`](crate::ReportTo::Auto), the default:
//!
//! | the application's tracing setup | where the report is seen |
//! |---|---|
//! | no subscriber installed | standard error |
//! | axum's examples' `EnvFilter` (`RUST_LOG` unset) | standard error |
//! | `fmt::init()` with `RUST_LOG` unset | standard error |
//! | a subscriber that records `WARN` from every target, or `unhandled=warn` in its filter | the subscriber only, never both |
//! | a zero interval | nowhere: no report at all |
//!
//! A subscriber counts as recording the report when any of its layers enables it. Where the filter
//! is built in code, `RUST_LOG=unhandled=warn` would replace it whole: add the directive instead.
//!
//! ```
//! use tracing_subscriber::{EnvFilter, fmt, prelude::*};
//!
//! let filter = EnvFilter::try_from_default_env()
//!     .unwrap_or_else(|_| format!("{}=debug,tower_http=debug", env!("CARGO_CRATE_NAME")).into())
//!     .add_directive("unhandled=warn".parse().unwrap());
//! let _default = tracing_subscriber::registry().with(filter).with(fmt::layer()).set_default();
//! ```
//!
//! On standard error a report is one line with the same content. Everything after the time and
//! level is escaped, whatever a client or an error put there: C0 and C1 controls, DEL,
//! U+2028/U+2029 and the bidirectional controls are written `\n`, `\r`, `\t` or `\u{1b}`; a value
//! with a space, a quote, `=`, a backslash or an escape is quoted. A line is at most 8 KiB; a value
//! that would make it longer is cut and ends with `…[cut]`. Only the first line of a process says
//! why it is there. The crate's other warnings for a person (a misordered `LoggingLayer`, an invalid
//! configuration value) follow the same rule (`tests/child_process/report_output.rs` and
//! `tests/hostile.rs` read each case from a child process).
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
//! A sample is kept until the report that shows it, and not at all with the interval at zero.
//! Nothing pending is lost at the end: [`shutdown`](ReportingErrorHandler::shutdown), a dropped
//! [`ShutdownGuard`] and the runtime shutting down each report it at once.
//!
//! # Guarantees
//!
//! Each with the test that holds it:
//! - **Every unlogged failure is counted exactly once**, in the counter, the breakdown, the metric
//!   and the reports' totals alike, under concurrency and while the interval fires: 8 tasks × 10,000
//!   mixed requests with a 1 ms interval (`tests/reliability_exactness.rs`).
//! - **Faults lose nothing**: an error handler that panics (the request still gets a `500`, the
//!   failure is still counted), a panic payload that is not a string, an error whose `Display`
//!   panics (a placeholder stands in for its text), a shutdown with pending counts, a restart after
//!   shutdown, the first failure on a thread without a tokio runtime (counted; the task starts with
//!   the next one) (`tests/behaviour/faults.rs`).
//! - **Bounded memory and labels**: 100,000 distinct unmatched paths and 100,000 distinct messages
//!   leave two groups, two series and no growth of the live heap; 10,000 gRPC-looking calls with
//!   distinct method names take 8 groups, and a real failure after them still gets its own
//!   (`tests/reliability_cardinality.rs`).
//! - **Hostile input cannot forge, multiply, hang or leak**: control characters in paths and errors
//!   are escaped, a self-referencing source chain and a 20,000-deep one are cut, a 1 MiB error text is
//!   cut, a payload whose `Drop` panics is contained, and `Authorization`, `Cookie` and secrets in
//!   the query reach no span, event, report or metric (`tests/hostile.rs`).
//! - **Never in the way**: a `Display` that never returns, a standard error nobody reads and the first
//!   backtrace resolution leave a current-thread server answering (`tests/child_process/never_in_the_way.rs`).
//! - **Soak**: `bash tests/soak.sh` drives the release demo with `wrk`, half the requests failing:
//!   the server survives, its resident memory grows by less than 5 MB after warm-up, and the metric
//!   equals the failures sent.
//!
//! The metric reaches the recorder in force when the failure happens: failures before an exporter is
//! installed are counted and reported, not exported. std's own panic hook writes its line on the
//! panicking thread: a standard error that blocks holds that thread whatever this crate does.

mod builder;
mod event;
mod groups;
mod handler;
mod offload;
mod reporter;

pub(crate) use self::handler::kept_global;
pub use self::{
    builder::ReportingErrorHandlerBuilder,
    groups::{Breakdown, ErrorGroup},
    handler::{ReportingErrorHandler, ShutdownGuard},
};
