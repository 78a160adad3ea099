//! `tracing` macros take their level as a constant; these take it at run time. A level kept in
//! an atomic is its [`verbosity`].

/// `ERROR` as 0 … `TRACE` as 4: a level as one byte, for an atomic.
pub(crate) fn verbosity(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 0,
        tracing::Level::WARN => 1,
        tracing::Level::INFO => 2,
        tracing::Level::DEBUG => 3,
        _ => 4,
    }
}

/// The level of a [`verbosity`].
pub(crate) fn level_of(verbosity: u8) -> tracing::Level {
    [
        tracing::Level::ERROR,
        tracing::Level::WARN,
        tracing::Level::INFO,
        tracing::Level::DEBUG,
        tracing::Level::TRACE,
    ][usize::from(verbosity.min(4))]
}

/// `tracing::event!` at a run-time [`Level`](tracing::Level).
macro_rules! event_at {
    (target: $target:expr, $level:expr, $($rest:tt)+) => {
        match $level {
            ::tracing::Level::ERROR => ::tracing::event!(target: $target, ::tracing::Level::ERROR, $($rest)+),
            ::tracing::Level::WARN => ::tracing::event!(target: $target, ::tracing::Level::WARN, $($rest)+),
            ::tracing::Level::INFO => ::tracing::event!(target: $target, ::tracing::Level::INFO, $($rest)+),
            ::tracing::Level::DEBUG => ::tracing::event!(target: $target, ::tracing::Level::DEBUG, $($rest)+),
            _ => ::tracing::event!(target: $target, ::tracing::Level::TRACE, $($rest)+),
        }
    };
}

/// `tracing::span!` at a run-time [`Level`](tracing::Level).
macro_rules! span_at {
    (target: $target:expr, $level:expr, $($rest:tt)+) => {
        match $level {
            ::tracing::Level::ERROR => ::tracing::span!(target: $target, ::tracing::Level::ERROR, $($rest)+),
            ::tracing::Level::WARN => ::tracing::span!(target: $target, ::tracing::Level::WARN, $($rest)+),
            ::tracing::Level::INFO => ::tracing::span!(target: $target, ::tracing::Level::INFO, $($rest)+),
            ::tracing::Level::DEBUG => ::tracing::span!(target: $target, ::tracing::Level::DEBUG, $($rest)+),
            _ => ::tracing::span!(target: $target, ::tracing::Level::TRACE, $($rest)+),
        }
    };
}

/// `tracing::enabled!` at a run-time [`Level`](tracing::Level).
macro_rules! enabled_at {
    (target: $target:expr, $level:expr) => {
        match $level {
            ::tracing::Level::ERROR => ::tracing::enabled!(target: $target, ::tracing::Level::ERROR),
            ::tracing::Level::WARN => ::tracing::enabled!(target: $target, ::tracing::Level::WARN),
            ::tracing::Level::INFO => ::tracing::enabled!(target: $target, ::tracing::Level::INFO),
            ::tracing::Level::DEBUG => ::tracing::enabled!(target: $target, ::tracing::Level::DEBUG),
            _ => ::tracing::enabled!(target: $target, ::tracing::Level::TRACE),
        }
    };
}

pub(crate) use {enabled_at, event_at, span_at};
