//! The error type handlers return: [`Error`] and its [`Result`] alias.
//!
//! Any `std::error::Error + Send + Sync + 'static` converts into an [`Error`], so `?` works in a
//! handler that returns [`Result`]. The error keeps its whole source chain; rendering it never
//! shows that chain to the client (see [`DefaultErrorHandler`](crate::DefaultErrorHandler)).
//!
//! ```
//! use axum::{Router, routing::get};
//!
//! async fn load() -> unhandled::Result<String> {
//!     let text = std::fs::read_to_string("/definitely/not/here")?;
//!     Ok(text)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(load))
//!     .layer(unhandled::layer());
//! ```

use std::{
    cell::Cell,
    error::Error as StdError,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::context::ErrorKind;

mod chain;
mod location;
mod panic;

use self::chain::OneLink;
pub use self::location::{At, Location};
pub(crate) use self::location::{Origin, Site};
pub(crate) use self::{
    chain::{Chain, Links, past_axum, sources, text_of, unwrap_axum},
    panic::{BodyFailure, Panicked, panic_message},
};

/// A type-erased error, as `tower` and `axum` spell it.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result type of a handler: `Ok` is any response, `Err` an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error a handler returns; rendered by the server error handler, counted if nobody logged it.
///
/// There are two kinds:
/// - an *unhandled* error, made from any `std::error::Error` (by `?`, [`Error::new`] or
///   [`Error::msg`]): rendered as `500 Internal Server Error` and counted;
/// - an *intentional* status, made by [`Error::status`]: rendered with that status and never
///   counted, like Armeria's `HttpStatusException` without a cause. Give it a cause with
///   [`Error::with_cause`] and it is counted again.
///
/// `Error` is cheap to clone (one reference count) so that it can travel in response extensions
/// from the handler to [`ErrorHandlerLayer`](crate::ErrorHandlerLayer), which leaves it there for
/// the layers outside to read. It deliberately does not implement `std::error::Error`, so that
/// `From<E: std::error::Error>` can exist (as in `anyhow`).
///
/// ```
/// use axum::http::StatusCode;
/// use unhandled::Error;
///
/// let io = std::io::Error::other("disk on fire");
/// let error = Error::new(io);
/// assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert!(!error.is_intentional());
///
/// let not_found = Error::status(StatusCode::NOT_FOUND);
/// assert!(not_found.is_intentional());
/// assert_eq!(not_found.to_string(), "404 Not Found");
/// ```
pub struct Error {
    inner: Arc<Inner>,
    /// Set on the one handle an error handler leaves in the response it rendered: what kind of
    /// failure it took this for. An error handler outside it then leaves the response alone, and
    /// a logging layer outside it knows it comes too late. A clone keeps it: it is the same error.
    rendered: Option<ErrorKind>,
}

impl Clone for Error {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            rendered: self.rendered,
        }
    }
}

struct Inner {
    status: StatusCode,
    cause: Cause,
    /// [`NOT_LOGGED`], [`LOGGED`], or [`FILTERED`] plus the level a logging layer would have
    /// logged it at.
    logged: AtomicU8,
    origin: Origin,
}

const NOT_LOGGED: u8 = 0;
const LOGGED: u8 = 1;
/// A logging layer saw the failure but the filter disabled its event: `FILTERED` + 0 for `ERROR`
/// … + 4 for `TRACE`.
const FILTERED: u8 = 2;

/// What an [`Error`] knows of why it happened.
enum Cause {
    /// None: an intentional status ([`Error::status`]).
    Intentional,
    /// The error it was made from.
    Known(BoxError),
    /// None was attached: a 5xx response that the application built itself.
    Missing,
    /// An error that says only the status the response carried (a gRPC server-error status
    /// without a source): a [`Status`](ErrorKind::Status) failure, as `Missing` is.
    StatusOnly(BoxError),
}

impl Error {
    /// An unhandled error (`500 Internal Server Error`) caused by `cause`.
    ///
    /// Anything that converts into a [`BoxError`] will do: any `std::error::Error`, an
    /// `anyhow::Error` or `eyre::Report` (with their context chains), an `Arc<E>`, a `&str`.
    ///
    /// It records the caller's [`location`](Self::location) and the type of `cause`.
    #[track_caller]
    pub fn new<C: Into<BoxError>>(cause: C) -> Self {
        let origin = Origin::here::<C>();
        Self::made(StatusCode::INTERNAL_SERVER_ERROR, cause.into(), origin)
    }

    /// An unhandled error with a message and no further source.
    ///
    /// ```
    /// let error = unhandled::Error::msg("the cache is empty");
    /// assert_eq!(error.to_string(), "the cache is empty");
    /// ```
    #[track_caller]
    pub fn msg(message: impl fmt::Display) -> Self {
        let origin = Origin {
            type_name: None,
            ..Origin::here::<Message>()
        };
        Self::made(
            StatusCode::INTERNAL_SERVER_ERROR,
            Box::new(Message(message.to_string())),
            origin,
        )
    }

    /// An intentional status without a cause: rendered with `status`, never counted.
    pub fn status(status: StatusCode) -> Self {
        Self::from_parts(status, None)
    }

    /// Attaches a cause to this error. An intentional 5xx status with a cause is counted, since
    /// the cause is something nobody has seen yet; a 1xx to 4xx status never is, with or without
    /// a cause: the client's request was answered as the application meant.
    ///
    /// ```
    /// use axum::http::StatusCode;
    ///
    /// let error = unhandled::Error::status(StatusCode::BAD_GATEWAY)
    ///     .with_cause(std::io::Error::other("upstream refused"));
    /// assert!(!error.is_intentional());
    /// assert_eq!(error.status_code(), StatusCode::BAD_GATEWAY);
    /// ```
    ///
    /// The error then records the caller's [`location`](Self::location) and the type of `cause`.
    #[must_use]
    #[track_caller]
    pub fn with_cause<C: Into<BoxError>>(self, cause: C) -> Self {
        let origin = Origin::here::<C>();
        Self::made(self.status_code(), cause.into(), origin)
    }

    /// An error with `status` caused by `cause`, made where `origin` says.
    pub(crate) fn made(status: StatusCode, cause: BoxError, origin: Origin) -> Self {
        Self::with(status, Cause::Known(cause), origin)
    }

    pub(crate) fn from_parts(status: StatusCode, cause: Option<BoxError>) -> Self {
        let cause = cause.map_or(Cause::Intentional, Cause::Known);
        Self::with(status, cause, Origin::default())
    }

    /// An error of a response with `status` whose `cause` says only that status: a
    /// [`Status`](ErrorKind::Status) failure, with that cause's text.
    pub(crate) fn status_only(status: StatusCode, cause: BoxError) -> Self {
        Self::with(status, Cause::StatusOnly(cause), Origin::default())
    }

    /// A failure with no cause attached: a 5xx response the application built itself.
    ///
    /// The error handler makes one for every such response, most of which nobody keeps; so each
    /// thread keeps its last one and reuses it once nothing else holds it (it cannot be told
    /// apart from a new one then), and counting these failures allocates nothing. One that is
    /// still held (a report's sample, a response, a custom handler's copy) is left alone.
    pub(crate) fn without_cause(status: StatusCode) -> Self {
        thread_local! {
            static SPARE: Cell<Option<Arc<Inner>>> = const { Cell::new(None) };
        }
        SPARE.with(|spare| {
            let mut kept = spare.take();
            let reused = kept.as_mut().and_then(Arc::get_mut).map(|inner| {
                inner.status = status;
                *inner.logged.get_mut() = NOT_LOGGED;
            });
            let inner = match kept {
                Some(inner) if reused.is_some() => inner,
                _ => Arc::new(Inner {
                    status,
                    cause: Cause::Missing,
                    logged: AtomicU8::new(NOT_LOGGED),
                    origin: Origin::default(),
                }),
            };
            spare.set(Some(Arc::clone(&inner)));
            Self {
                inner,
                rendered: None,
            }
        })
    }

    fn with(status: StatusCode, cause: Cause, origin: Origin) -> Self {
        Self {
            inner: Arc::new(Inner {
                status,
                cause,
                logged: AtomicU8::new(NOT_LOGGED),
                origin,
            }),
            rendered: None,
        }
    }

    /// What kind of failure the error handler that rendered the response holding this handle
    /// took it for; `None` when no error handler has.
    pub(crate) fn rendered(&self) -> Option<ErrorKind> {
        self.rendered
    }

    /// Marks this handle as left by an error handler in the response it rendered.
    pub(crate) fn set_rendered(&mut self, kind: ErrorKind) {
        self.rendered = Some(kind);
    }

    /// The kind of failure this error is when a handler returned or attached it.
    pub(crate) fn returned_kind(&self) -> ErrorKind {
        if matches!(self.inner.cause, Cause::Missing | Cause::StatusOnly(_)) {
            ErrorKind::Status
        } else {
            ErrorKind::Error
        }
    }

    /// An unhandled error made from a caught panic's payload.
    /// `site` is what the panic hook noted of it ([`crate::panic_location`]).
    pub(crate) fn from_panic(payload: &(dyn std::any::Any + Send), site: Option<Site>) -> Self {
        Self::made(
            StatusCode::INTERNAL_SERVER_ERROR,
            Box::new(Panicked::from_payload(payload)),
            Origin::of_panic(site),
        )
    }

    /// An unhandled error made from the error a service returned, of type `E`.
    pub(crate) fn from_service<E: Into<BoxError>>(error: E) -> Self {
        Self::made(
            StatusCode::INTERNAL_SERVER_ERROR,
            error.into(),
            Origin::of_type::<E>(),
        )
    }

    /// An error of a response body that failed after its head, which had `status`: made from the
    /// error it yielded, or from the payload of a panic while it was polled. It keeps `status`,
    /// the one the client received, and is never intentional.
    pub(crate) fn from_body(status: StatusCode, failure: BodyFailure) -> Self {
        match failure {
            BodyFailure::Yielded(cause) => Self::made(status, cause, Origin::default()),
            BodyFailure::Panicked(message, site) => Self::made(
                status,
                Box::new(Panicked::in_body(message)),
                Origin::of_panic(site),
            ),
        }
    }

    /// Where the error was made: the line of the `?`, [`Error::new`], [`Error::msg`],
    /// [`Error::with_cause`] or [`ResponseExt::with_cause`](crate::ResponseExt::with_cause) that
    /// made it, or of the panic it was made from (as the panic hook noted it). `None` for the
    /// other errors the crate makes itself (a service error, a 5xx response without a cause, a
    /// body's error) and for a panic whose location was not noted. See [`Location`] for what
    /// loses it.
    ///
    /// ```
    /// let error = unhandled::Error::msg("the cache is cold");
    /// assert_eq!(error.location().unwrap().line(), line!() - 1);
    /// ```
    pub fn location(&self) -> Option<Location<'_>> {
        self.inner.origin.site.as_ref().and_then(Site::location)
    }

    /// The type name of the cause the error was made from (`std::io::error::Error`,
    /// `anyhow::Error`), as [`std::any::type_name`] gives it: best effort, for reading only.
    /// `None` where the type says nothing of the cause (`&str`, `String`, a boxed
    /// `dyn Error`, [`Error::msg`]) and for errors the crate made itself.
    ///
    /// ```
    /// let error = unhandled::Error::new(std::io::Error::other("refused"));
    /// assert_eq!(error.type_name(), Some("std::io::error::Error"));
    /// ```
    pub fn type_name(&self) -> Option<&'static str> {
        self.inner.origin.type_name
    }

    /// The backtrace taken where the error was made (or where it panicked), if one was: only
    /// where `RUST_LIB_BACKTRACE` or `RUST_BACKTRACE` ask for them (std's rules) or
    /// [`set_backtraces`](crate::set_backtraces) turns them on, and then for one failure per
    /// location per report interval. Its frames are resolved when it is first printed.
    ///
    /// ```
    /// // On for the process, whatever RUST_BACKTRACE says.
    /// unhandled::set_backtraces(true);
    /// let error = unhandled::Error::msg("the cache is empty");
    /// assert!(error.backtrace().is_some());
    /// ```
    pub fn backtrace(&self) -> Option<&std::backtrace::Backtrace> {
        self.captured_backtrace().map(|backtrace| &**backtrace)
    }

    /// [`backtrace`](Self::backtrace), shared: a group keeps the one its interval captured.
    #[inline]
    pub(crate) fn captured_backtrace(&self) -> Option<&std::sync::Arc<std::backtrace::Backtrace>> {
        self.inner.origin.site.as_ref().and_then(Site::backtrace)
    }

    /// Whether the location is where [`ResponseExt::with_cause`](crate::ResponseExt::with_cause)
    /// attached the cause, which is most often an `IntoResponse`, not where the error was made.
    pub(crate) fn location_attached(&self) -> bool {
        self.inner.origin.attached
    }

    /// Whether this is a panic's error whose location a panic hook set later kept from being
    /// noted ([`crate::panic_location`]).
    pub(crate) fn location_lost(&self) -> bool {
        matches!(self.inner.origin.site, Some(Site::Lost))
    }

    /// The status the response carries.
    pub fn status_code(&self) -> StatusCode {
        self.inner.status
    }

    /// Whether this is an intentional status without a cause (never counted).
    pub fn is_intentional(&self) -> bool {
        matches!(self.inner.cause, Cause::Intentional)
    }

    /// The cause, if any: the error this one was made from. `None` for an intentional status and
    /// for a 5xx response that the application built without attaching one
    /// ([`ErrorKind::Status`](crate::ErrorKind::Status)).
    pub fn cause(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.inner.cause {
            Cause::Known(cause) | Cause::StatusOnly(cause) => Some(&**cause),
            Cause::Intentional | Cause::Missing => None,
        }
    }

    /// Whether this stands for a 5xx response built without a cause attached, which says only
    /// its status.
    pub(crate) fn is_missing_cause(&self) -> bool {
        matches!(self.inner.cause, Cause::Missing)
    }

    /// The cause and each of its sources, outermost first, at most 32 of them. A `source()` that
    /// returns an earlier link of the chain ends the walk there, so a buggy error type cannot
    /// make it run forever.
    ///
    /// ```
    /// let error = unhandled::Error::new(std::io::Error::other("refused"));
    /// let messages: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    /// assert_eq!(messages, ["refused"]);
    /// ```
    pub fn chain(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        Links::from(self.cause())
    }

    /// Marks this error as logged, so that no [`ReportingErrorHandler`](crate::ReportingErrorHandler)
    /// counts it. A logging layer or a custom [`ServerErrorHandler`](crate::ServerErrorHandler)
    /// calls this once it has written the error somewhere a person will read it.
    pub fn mark_logged(&self) {
        self.inner.logged.store(LOGGED, Ordering::Release);
    }

    /// Marks that a logging layer saw this error but the filter disabled its event at `level`:
    /// still not logged, and the report says which filter directive would log it.
    pub(crate) fn mark_filtered(&self, level: tracing::Level) {
        let filtered = FILTERED + crate::level::verbosity(level);
        let _ = self.inner.logged.compare_exchange(
            NOT_LOGGED,
            filtered,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The level at which a logging layer would have logged this error, had the filter let it:
    /// as [`verbosity`](crate::level::verbosity) gives it.
    pub(crate) fn filtered_at(&self) -> Option<u8> {
        let state = self.inner.logged.load(Ordering::Relaxed);
        state.checked_sub(FILTERED)
    }

    /// Whether [`mark_logged`](Self::mark_logged) was called on this error or a clone of it: by
    /// [`LoggingLayer`](crate::LoggingLayer), by the error handler layer when the application
    /// logged the failure itself ([`unhandled::subscriber`](crate::subscriber)), or by hand.
    pub fn is_logged(&self) -> bool {
        self.inner.logged.load(Ordering::Acquire) == LOGGED
    }

    /// Whether another holder keeps this error (a report's sample, a handler's copy).
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.inner) > 1
    }

    /// The whole chain on one line, `outer: inner: innermost`; the status when there is no cause.
    /// At most [`MAX_TEXT`](chain::MAX_TEXT) bytes, then [`CUT`](crate::text::CUT). Never panics, even when a `Display` in the
    /// chain does.
    pub(crate) fn chain_text(&self) -> String {
        text_of(&Alternate(self))
    }
}

/// Anything that converts into a [`BoxError`] converts, so `?` works in handlers on results of
/// any standard error, `anyhow::Error`, `eyre::Report`, `Box<dyn Error + Send + Sync>`, `&str`
/// and `String`; the source chain (anyhow's and eyre's context chain) is kept.
///
/// ```
/// fn load() -> unhandled::Result<()> {
///     Err("the cache is cold")?
/// }
/// assert_eq!(load().unwrap_err().to_string(), "the cache is cold");
/// ```
impl<E> From<E> for Error
where
    E: Into<BoxError>,
{
    #[track_caller]
    fn from(cause: E) -> Self {
        Self::new(cause)
    }
}

/// `{}` prints the outermost message; `{:#}` prints the whole source chain joined by `: `.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause() {
            None if self.is_missing_cause() => {
                write!(f, "{} with no cause attached", self.inner.status)
            }
            None => fmt::Display::fmt(&self.inner.status, f),
            Some(cause) if f.alternate() => fmt::Display::fmt(&Chain(cause), f),
            Some(cause) => fmt::Display::fmt(cause, f),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain: Vec<String> = self.chain().map(|link| text_of(&OneLink(link))).collect();
        f.debug_struct("Error")
            .field("status", &self.inner.status)
            .field("chain", &chain)
            .field("logged", &self.is_logged())
            .field("location", &self.location())
            .field("type_name", &self.type_name())
            .finish()
    }
}

/// Renders as [`DefaultErrorHandler`](crate::DefaultErrorHandler) would and carries the error in
/// the response extensions, where [`ErrorHandlerLayer`](crate::ErrorHandlerLayer) picks it up.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = render(self.status_code());
        response.extensions_mut().insert(self);
        response
    }
}

/// The default rendering of a failure with `status`: its canonical reason as a plain-text body,
/// and nothing of the error.
pub(crate) fn render(status: StatusCode) -> Response {
    const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
    let reason = status.canonical_reason().unwrap_or("Error");
    (status, [(header::CONTENT_TYPE, TEXT_PLAIN)], reason).into_response()
}

/// `status` as `http` displays it (`500 Internal Server Error`), the text of a 5xx failure with
/// no cause. The server errors `http` names are constants: logging one allocates nothing.
pub(crate) fn status_text(status: StatusCode) -> std::borrow::Cow<'static, str> {
    let text = match status.as_u16() {
        500 => "500 Internal Server Error",
        501 => "501 Not Implemented",
        502 => "502 Bad Gateway",
        503 => "503 Service Unavailable",
        504 => "504 Gateway Timeout",
        505 => "505 HTTP Version Not Supported",
        506 => "506 Variant Also Negotiates",
        507 => "507 Insufficient Storage",
        508 => "508 Loop Detected",
        510 => "510 Not Extended",
        511 => "511 Network Authentication Required",
        _ => return status.to_string().into(),
    };
    text.into()
}

/// Displays an [`Error`] with `{:#}`: its whole chain.
struct Alternate<'a>(&'a Error);

impl fmt::Display for Alternate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

/// A plain message used as a cause.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_text_of_a_server_error_is_what_http_displays() {
        for code in 100..=999 {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(status_text(status), status.to_string(), "{code}");
        }
    }

    #[test]
    fn a_cause_less_error_is_reused_only_once_nothing_holds_it() {
        let first = Error::without_cause(StatusCode::INTERNAL_SERVER_ERROR);
        first.mark_logged();
        let kept = first.clone();
        drop(first);
        // Still held: a new one, and the held one unchanged.
        let second = Error::without_cause(StatusCode::BAD_GATEWAY);
        assert!(!Arc::ptr_eq(&second.inner, &kept.inner));
        assert_eq!(kept.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(kept.is_logged());
        assert_eq!(second.status_code(), StatusCode::BAD_GATEWAY);
        assert!(!second.is_logged());
        // Held by nothing but the thread: the same allocation, as good as new.
        second.mark_logged();
        let address = Arc::as_ptr(&second.inner);
        drop(second);
        let third = Error::without_cause(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Arc::as_ptr(&third.inner), address);
        assert_eq!(third.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!third.is_logged());
        assert!(third.cause().is_none());
        assert_eq!(
            third.to_string(),
            "503 Service Unavailable with no cause attached"
        );
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loading user 7")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn question_mark_keeps_the_source_chain() {
        fn failing() -> Result<()> {
            Err(Outer(std::io::Error::other("connection refused")))?;
            Ok(())
        }
        let error = failing().unwrap_err();
        assert_eq!(error.to_string(), "loading user 7");
        assert_eq!(error.chain_text(), "loading user 7: connection refused");
        assert_eq!(error.chain().count(), 2);
        assert!(!error.is_intentional());
    }

    #[test]
    fn status_without_cause_is_intentional_and_with_cause_is_not() {
        let status = Error::status(StatusCode::NOT_FOUND);
        assert!(status.is_intentional());
        assert_eq!(status.chain_text(), "404 Not Found");
        let caused = status.with_cause(Message("gone".into()));
        assert!(!caused.is_intentional());
        assert_eq!(caused.status_code(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn mark_logged_is_shared_by_clones() {
        let error = Error::msg("x");
        let clone = error.clone();
        assert!(!clone.is_logged());
        error.mark_logged();
        assert!(clone.is_logged());
    }

    #[test]
    fn a_struct_and_its_first_field_are_two_links() {
        // They share an address: only the type tells them apart.
        let error = Error::new(Outer(std::io::Error::other("x")));
        assert_eq!(error.chain().count(), 2);
        assert_eq!(error.chain_text(), "loading user 7: x");
    }
}
