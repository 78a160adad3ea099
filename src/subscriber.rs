//! A `tracing_subscriber` layer that makes an application's own error logs count as logged.
//!
//! Many applications log their failures themselves: `#[tracing::instrument(err)]` on handlers,
//! `tracing::error!` in their own `IntoResponse`, a `from_fn` middleware that logs the error it
//! finds in the response. Without this layer each such failure is logged *and* counted, and the
//! periodic report says that nothing reported it. With it, a failure counts as logged when the
//! subscriber recorded an event at `ERROR` (the threshold is [`layer_at`]'s) while
//! the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) was serving that request: in the handler,
//! in a middleware inside the error handler's layer, in the application's `IntoResponse`, over
//! any number of polls. A [`ServerErrorHandler`](crate::ServerErrorHandler) still sees the
//! failure, and [`Error::is_logged`](crate::Error::is_logged) tells it.
//!
//! `ERROR` is the default because it is where applications log a failure
//! (`#[instrument(err)]`, axum's examples, an `IntoResponse` that logs its 500s) and where their
//! libraries do not log trouble they recover from: sqlx warns of a slow statement (target
//! `sqlx::query`) and of a slow pool acquire (`sqlx::pool::acquire`) at `WARN`, hyper and h2 log
//! at `DEBUG` and below. [`layer_at(Level::WARN)`](layer_at) widens it to an application that
//! logs its failures at `WARN`; then any library's warning during the request counts as well,
//! and a slow query followed by a 500 that nobody logs is not counted.
//!
//! Not logged:
//! - an event that the subscriber's filters drop (a global filter such as an `EnvFilter` added
//!   with `.with(filter)`): this layer never sees it. A filter attached to one layer only
//!   (`fmt::layer().with_filter(..)`) is that layer's: put this one under the same filter,
//!   `fmt::layer().and_then(unhandled::subscriber::layer()).with_filter(filter)`, so that it
//!   counts what the log shows;
//! - tower-http's `TraceLayer` failure line (target `tower_http::trace::on_failure`): it names
//!   the status, never the cause;
//! - the events of this crate itself (targets `unhandled` and `unhandled::…`);
//! - an event on a task the handler spawned, or of another request (even on the same thread):
//!   only the request's own calls and polls are watched, on the thread that runs them.
//!
//! | how the application logs (`tests/behaviour/app_logs.rs`, each as its example writes it) | with the layer | without |
//! |---|---|---|
//! | `#[tracing::instrument(err)]` on the handler | logged, not counted | counted |
//! | `tracing::error!` in its own `IntoResponse` (axum's `oauth` example) | logged | counted (`kind="status"`) |
//! | a `from_fn` middleware inside the error handler that logs the error in the response extensions (axum's `error-handling` example) | logged | counted |
//! | axum-extra's `InternalServerError` | logged | counted |
//! | an `error!` on an earlier poll than the one that fails | logged | counted |
//! | sqlx's `WARN` of a slow statement or acquire, then a silent 500 | counted | counted |
//! | an `error!` before a panic | logged | counted (`kind="panic"`) |
//! | tower-http's `TraceLayer` inside the error handler ("response failed", names no cause) | counted | counted |
//! | an event the subscriber's global filter drops | counted | counted |
//! | the crate's own events; a `warn!` or an `info!` (under the threshold) | counted | counted |
//! | an event on a task the handler spawned | counted | counted |
//! | two requests at once on one thread, one logging then failing, one failing silently | the silent one counted | both |
//!
//! ```
//! use axum::{Router, body::Body, http::Request, routing::get};
//! use tower::ServiceExt;
//! use tracing_subscriber::{fmt, prelude::*};
//!
//! #[tracing::instrument(err)]
//! async fn handler() -> unhandled::Result<()> {
//!     Err(unhandled::Error::msg("the database is down")) // logged at ERROR by `instrument(err)`
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let subscriber = tracing_subscriber::registry()
//!     .with(fmt::layer())
//!     .with(unhandled::subscriber::layer());
//! let _default = tracing::subscriber::set_default(subscriber);
//!
//! let reporting = unhandled::ReportingErrorHandler::builder().build();
//! let app = Router::new()
//!     .route("/", get(handler))
//!     .layer(unhandled::ErrorHandlerLayer::new(reporting.clone()));
//! app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(reporting.unhandled_count(), 0); // the application logged it
//! # }
//! ```
//!
//! # Cost
//!
//! The layer carries its own filter ([`Threshold`]), so installing it changes no one's interest:
//! an event that was disabled stays disabled, and one more severe than the threshold costs one
//! thread-local write. Per request the error handler reads one thread-local cell per poll; no
//! allocation, no write to memory another thread uses.

use tracing::{Event, Level, Metadata, Subscriber, subscriber::Interest};
use tracing_subscriber::{
    filter::{Filtered, LevelFilter},
    layer::{self, Context, Layer},
};

use crate::handoff;

/// The layer [`layer()`] and [`layer_at`] return: [`ErrorLogs`] behind its own [`Threshold`].
///
/// An alias of tracing-subscriber's own per-layer-filtered type rather than a wrapper of it.
/// tracing-subscriber tells a per-layer filter apart only by that type. A wrapper would be a plain
/// layer, which turns every callsite that the application's per-layer filters disable into one
/// they evaluate on every call.
pub type SubscriberLayer<S> = Filtered<ErrorLogs, Threshold, S>;

/// The layer that makes an application's own error logs (`ERROR` events) count as logged;
/// add it to the registry beside the layers that write the log. See the [module docs](self).
///
/// ```
/// use tracing_subscriber::{fmt, prelude::*};
///
/// let subscriber = tracing_subscriber::registry()
///     .with(fmt::layer())
///     .with(unhandled::subscriber::layer());
/// # drop(subscriber);
/// ```
pub fn layer<S>() -> SubscriberLayer<S>
where
    S: Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    layer_at(Level::ERROR)
}

/// [`layer()`] with another threshold: events at `level` or more severe count as logging the
/// request's failure. A threshold below `ERROR` lets the warnings of the libraries the request
/// uses count too (see the [module docs](self)).
///
/// ```
/// use tracing::Level;
/// use tracing_subscriber::{fmt, prelude::*};
///
/// // An application that logs its failures at WARN, and whose libraries warn of nothing else.
/// let subscriber = tracing_subscriber::registry()
///     .with(fmt::layer())
///     .with(unhandled::subscriber::layer_at(Level::WARN));
/// # drop(subscriber);
/// ```
pub fn layer_at<S>(level: Level) -> SubscriberLayer<S>
where
    S: Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    ErrorLogs { threshold: level }.with_filter(Threshold { level })
}

/// Notes each event it sees for the error handler serving the request on this thread; used
/// behind [`Threshold`] (see [`layer()`]).
#[derive(Debug, Clone, Copy)]
pub struct ErrorLogs {
    threshold: Level,
}

impl<S: Subscriber> Layer<S> for ErrorLogs {
    /// Added to a subscriber: the report no longer advises adding it.
    fn on_layer(&mut self, _subscriber: &mut S) {
        handoff::subscriber_layer_added(self.threshold);
    }

    fn on_event(&self, _event: &Event<'_>, _cx: Context<'_, S>) {
        handoff::app_logged();
    }
}

/// The filter of [`ErrorLogs`]: events at its level or more severe, except this crate's own
/// and tower-http's status-only failure line; never a span.
///
/// ```
/// use tracing::Level;
///
/// let layer = unhandled::subscriber::layer_at::<tracing_subscriber::Registry>(Level::ERROR);
/// assert_eq!(layer.filter().level(), Level::ERROR);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    level: Level,
}

impl Threshold {
    /// The least severe level that counts as logging a failure.
    pub fn level(&self) -> Level {
        self.level
    }

    fn admits(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && *metadata.level() <= self.level && !ignored(metadata.target())
    }
}

/// Targets whose events never count: this crate's own, and `TraceLayer`'s failure line.
fn ignored(target: &str) -> bool {
    let ours = target
        .strip_prefix("unhandled")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
    ours || target == "tower_http::trace::on_failure"
}

impl<S> layer::Filter<S> for Threshold {
    fn enabled(&self, metadata: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.admits(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.admits(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_crate_and_trace_layer_failures_are_ignored() {
        for target in [
            "unhandled",
            "unhandled::logging",
            "tower_http::trace::on_failure",
        ] {
            assert!(ignored(target), "{target}");
        }
        for target in [
            "unhandled_app",
            "my_app::handlers",
            "tower_http::trace::on_response",
            "unhandledx::y",
        ] {
            assert!(!ignored(target), "{target}");
        }
    }
}
