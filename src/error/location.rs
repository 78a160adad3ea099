//! Where an error was made: the line of the `?`, `Error::new` or `with_cause` that made it.

use std::{backtrace::Backtrace, fmt, sync::Arc};

use crate::backtraces;

/// The place in the application's source where an [`Error`](crate::Error) was made: the `?`
/// expression, or the call of [`Error::new`](crate::Error::new), [`Error::msg`](crate::Error::msg),
/// [`Error::with_cause`](crate::Error::with_cause) or
/// [`ResponseExt::with_cause`](crate::ResponseExt::with_cause).
///
/// It is recorded with `#[track_caller]`: a pointer to static data, no allocation. The file is
/// as the compiler gave it (relative to the package for the application's own code). A call that
/// goes through a function without `#[track_caller]` records that function's line instead:
/// `.map_err(Error::from)` names a line inside `core`, and a helper that builds the error names
/// its own body unless it is `#[track_caller]` too. Write `?` or `.map_err(|e| Error::new(e))`.
///
/// ```
/// fn load() -> unhandled::Result<()> {
///     Err(std::io::Error::other("disk on fire"))?; // this line
///     Ok(())
/// }
/// let error = load().unwrap_err();
/// let location = error.location().unwrap();
/// assert_eq!(location.line(), line!() - 5);
/// assert!(location.to_string().ends_with(&format!(":{}:{}", location.line(), location.column())));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location<'a> {
    file: &'a str,
    line: u32,
    column: u32,
}

impl<'a> Location<'a> {
    /// The file, as the compiler gave it.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// The line, from 1.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl From<&'static std::panic::Location<'static>> for Location<'static> {
    fn from(location: &'static std::panic::Location<'static>) -> Self {
        Self {
            file: location.file(),
            line: location.line(),
            column: location.column(),
        }
    }
}

/// `file:line:column`, as the compiler and the default panic hook print it.
impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What an error records of where it was made and of what type its cause is.
#[derive(Clone, Debug, Default)]
pub(crate) struct Origin {
    pub(crate) site: Option<Site>,
    pub(crate) type_name: Option<&'static str>,
    /// Whether the site is where [`ResponseExt::with_cause`](crate::ResponseExt::with_cause)
    /// attached a cause: most often an `IntoResponse`, not where the error was made.
    pub(crate) attached: bool,
}

/// Where an application's own error was made: the line of the `?` that converted into it, the
/// type it converted from, and a backtrace where they are on. Its `IntoResponse` hands it on
/// with the cause ([`ResponseExt::with_cause_at`](crate::ResponseExt::with_cause_at)), and the
/// report names that line and type instead of the `IntoResponse`'s.
///
/// One field of the application's error, filled by a `#[track_caller]` `From`, the one `?` calls:
///
/// ```
/// use axum::{http::StatusCode, response::{IntoResponse, Response}};
/// use unhandled::{At, ResponseExt};
///
/// #[derive(Debug)]
/// enum Kind {
///     Io(std::io::Error),
///     Parse(std::num::ParseIntError),
/// }
/// impl From<std::io::Error> for Kind { fn from(e: std::io::Error) -> Self { Self::Io(e) } }
/// impl From<std::num::ParseIntError> for Kind {
///     fn from(e: std::num::ParseIntError) -> Self { Self::Parse(e) }
/// }
/// # impl std::fmt::Display for Kind {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("kind") }
/// # }
/// # impl std::error::Error for Kind {}
///
/// /// The application's error: what went wrong, and where.
/// struct AppError {
///     kind: Kind,
///     at: At,
/// }
///
/// impl<E: Into<Kind>> From<E> for AppError {
///     #[track_caller] // so that `At::here` sees the `?`
///     fn from(error: E) -> Self {
///         Self { at: At::here::<E>(), kind: error.into() }
///     }
/// }
///
/// impl IntoResponse for AppError {
///     fn into_response(self) -> Response {
///         StatusCode::INTERNAL_SERVER_ERROR.into_response().with_cause_at(self.kind, self.at)
///     }
/// }
///
/// fn parse(text: &str) -> Result<u32, AppError> {
///     Ok(text.parse::<u32>()?) // this line, and `core::num::error::ParseIntError`
/// }
/// let response = parse("x").unwrap_err().into_response();
/// let error = response.extensions().get::<unhandled::Error>().unwrap();
/// assert_eq!(error.location().unwrap().line(), line!() - 4);
/// assert_eq!(error.type_name(), Some("core::num::error::ParseIntError"));
/// ```
#[derive(Clone, Debug)]
pub struct At(pub(crate) Origin);

impl At {
    /// The caller's location (the `?`, through a `#[track_caller]` `From`), and the type `E` the
    /// error was made from.
    #[track_caller]
    #[inline]
    pub fn here<E>() -> Self {
        Self(Origin::here::<E>())
    }

    /// Where it is.
    pub fn location(&self) -> Option<Location<'_>> {
        self.0.site.as_ref().and_then(Site::location)
    }
}

/// Where an error was made: its maker's caller, or the panic it was made from, as the panic hook
/// noted it ([`crate::panic_location`]).
///
/// Each carries the backtrace taken there, where [`backtraces`] took one.
#[derive(Clone, Debug)]
pub(crate) enum Site {
    Caller {
        at: &'static std::panic::Location<'static>,
        backtrace: Option<Arc<Backtrace>>,
    },
    /// The panic hook's location, its file copied: the one allocation a panic's location costs.
    Panic {
        file: Arc<str>,
        line: u32,
        column: u32,
        backtrace: Option<Arc<Backtrace>>,
    },
    /// None, though the hook is installed: a hook set later replaced it.
    Lost,
}

impl Site {
    pub(crate) fn location(&self) -> Option<Location<'_>> {
        match self {
            Self::Caller { at, .. } => Some(Location::from(*at)),
            Self::Panic {
                file, line, column, ..
            } => Some(Location {
                file,
                line: *line,
                column: *column,
            }),
            Self::Lost => None,
        }
    }

    pub(crate) fn backtrace(&self) -> Option<&Arc<Backtrace>> {
        match self {
            Self::Caller { backtrace, .. } | Self::Panic { backtrace, .. } => backtrace.as_ref(),
            Self::Lost => None,
        }
    }
}

impl Origin {
    /// The caller's location, and the type of `C` where it names the cause's own type.
    #[track_caller]
    #[inline]
    pub(crate) fn here<C>() -> Self {
        let at = std::panic::Location::caller();
        Self {
            site: Some(Site::Caller {
                at,
                backtrace: backtraces::capture(at.file(), at.line(), at.column()),
            }),
            type_name: type_name_of::<C>(),
            attached: false,
        }
    }

    /// No location, and the type of `C`: an error the crate made from one the service returned.
    pub(crate) fn of_type<C>() -> Self {
        Self {
            site: None,
            type_name: type_name_of::<C>(),
            attached: false,
        }
    }

    /// What the panic hook noted of a panic, if anything.
    pub(crate) fn of_panic(site: Option<Site>) -> Self {
        Self {
            site,
            type_name: None,
            attached: false,
        }
    }
}

/// The name of `C`, unless it says nothing of the cause: a plain message (`&str`, `String`) or a
/// box that hides the type it holds.
fn type_name_of<C>() -> Option<&'static str> {
    let name = std::any::type_name::<C>();
    let opaque = name.starts_with('&')
        || name == "alloc::string::String"
        || name.starts_with("alloc::boxed::Box<dyn ");
    (!opaque).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_name_the_cause_not_its_wrapping() {
        assert_eq!(
            type_name_of::<std::io::Error>(),
            Some("std::io::error::Error")
        );
        assert_eq!(type_name_of::<&str>(), None);
        assert_eq!(type_name_of::<String>(), None);
        assert_eq!(type_name_of::<crate::BoxError>(), None);
    }
}
