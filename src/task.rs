//! Work a request hands off: a spawned task's failure, counted and reported under the request
//! that spawned it.
//!
//! A handler that does `tokio::spawn(send_welcome_mail(user))` and answers `201` loses the
//! task's failure: an `Err` is dropped with its `JoinHandle`, and a panic is one line of std's
//! hook, with no route, no count, no metric. [`TaskExt::reported`] (or [`spawn`], which is
//! `tokio::spawn(future.reported())`) makes such a failure a failure of its request:
//!
//! ```
//! use axum::{Router, http::StatusCode, routing::post};
//! use unhandled::TaskExt as _;
//!
//! async fn send_welcome_mail(user: u64) -> Result<(), std::io::Error> {
//!     Err(std::io::Error::other(format!("the mail relay refused user {user}")))
//! }
//!
//! async fn create_user() -> StatusCode {
//!     tokio::spawn(send_welcome_mail(7).reported()); // or unhandled::spawn(send_welcome_mail(7))
//!     StatusCode::CREATED
//! }
//!
//! let app: Router = Router::new()
//!     .route("/users", post(create_user))
//!     .layer(unhandled::layer());
//! ```
//!
//! # What fails
//!
//! A task whose output is `Result<T, E>` fails when it returns `Err`, for any `E` that `?`
//! converts into [`Error`]: a standard error, `anyhow::Error`, `eyre::Report`,
//! `Box<dyn Error + Send + Sync>`, a `String` or `&'static str` message, or [`Error`] itself,
//! which keeps the location of the `?` that made it. A panic fails whatever the output. `()` and
//! `Ok` do not, and neither does a task that is aborted or dropped (`JoinHandle::abort`, a dropped `JoinSet`, the runtime's
//! shutdown). The task's output is left as it was: an awaiting caller gets the same `Err`, and the
//! same `JoinError` for a panic (which is counted, then resumed).
//!
//! # Whose failure it is
//!
//! `.reported()` made while an error handler serves a request (in a handler, a middleware inside
//! the layer, a gRPC handler, or a reported task of that request) takes that request's method,
//! route template and trace id: the failure is counted under its `{method, route}`, with the kind
//! `task` (an `Err`) or `task_panic`, by the request's error handler, whose
//! [`ServerErrorHandler`](crate::ServerErrorHandler) sees it with [`ErrorContext::is_task`](crate::ErrorContext::is_task)
//! (there is no response to render: what it returns is dropped). The report names where it
//! failed and where it was spawned: `POST /users task at src/mail.rs:40:9 ×3, spawned at
//! src/users.rs:88:5`. Made outside any request (a task that such a task spawns included), a
//! task's failure is counted by the process-wide reporter
//! ([`ReportingErrorHandler::global`](crate::ReportingErrorHandler::global), the one
//! [`layer()`](crate::layer()) uses) under the route [`reported_as`](TaskExt::reported_as) gave,
//! else `_background`, and the method `_OTHER`. Tasks keep their route labels (templates and
//! names) as the process keeps them, once, 64 at most; beyond them a task's route is `_OTHER`.
//!
//! # Logged means not counted
//!
//! Each poll of a reported task is a scope of its own, as a handler's is: an `ERROR` event the
//! task records under [`subscriber::layer()`](crate::subscriber::layer) (`#[instrument(err)]` on
//! its function) marks its failure logged, and so does
//! [`Error::mark_logged`](crate::Error::mark_logged). A logged failure is not counted.
//!
//! # Panics nobody reported
//!
//! A plain `tokio::spawn` or a `std::thread` that panics is nobody's request. With
//! [`count_stray_panics(true)`](crate::count_stray_panics) or `UNHANDLED_COUNT_STRAY_PANICS=true`, the
//! panic hook counts such a panic as `task_panic` under the route `_unscoped`, with its location.
//! It is off by default, because a library may catch its own panics: turn it on where every panic
//! of the process is a bug.
//!
//! # Cost
//!
//! A request pays for a pointer set and reset around each poll, which puts it in force for the
//! tasks its handler spawns. `.reported()` keeps 16 bytes of the request in the task (the method
//! and the route template as indexes, the template kept once per process, so that no reference
//! count is shared), and its trace id with the feature `opentelemetry`. Each of the task's polls
//! opens a scope. `benches/tasks.rs` compares it with `tokio::spawn` of
//! the same future (BENCHMARKS.md §12).

use std::{
    error::Error as StdError,
    future::Future,
    marker::PhantomData,
    ops::Deref,
    panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind},
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
};

use axum::http::StatusCode;
use pin_project_lite::pin_project;
use tokio::task::JoinHandle;

use crate::{
    context::ErrorKind,
    error::{Chain, Error, Origin},
    handoff::{Spawner, TaskScope},
    panic_location, reporting,
    text::text_of,
};

/// The route of a background task's failure that [`TaskExt::reported_as`] did not name.
pub const BACKGROUND: &str = "_background";

/// `.reported()` and `.reported_as(name)` on every future: its failure is counted and reported,
/// under the request that spawned it where there is one. See the [module docs](self).
pub trait TaskExt: Future + Sized {
    /// This future, its failure reported: under the request in force, else under `_background`.
    ///
    /// `M` tells the ways an output can fail apart ([`TaskOutput`]); it is inferred.
    #[track_caller]
    fn reported<M>(self) -> Reported<Self, M>
    where
        Self::Output: TaskOutput<M>,
    {
        Reported::new(self, BACKGROUND, Location::caller())
    }

    /// This future, its failure reported: under the request in force, else under the route
    /// `name` (a constant: it is a metric label).
    ///
    /// ```
    /// use unhandled::TaskExt as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// async fn collect_garbage() -> anyhow::Result<()> {
    ///     anyhow::bail!("the store is read-only")
    /// }
    ///
    /// let handle = tokio::spawn(collect_garbage().reported_as("nightly-gc"));
    /// assert!(handle.await.unwrap().is_err()); // the caller sees what it saw before
    /// # }
    /// ```
    #[track_caller]
    fn reported_as<M>(self, name: &'static str) -> Reported<Self, M>
    where
        Self::Output: TaskOutput<M>,
    {
        Reported::new(self, name, Location::caller())
    }
}

impl<F: Future> TaskExt for F {}

/// `tokio::spawn(future.reported())`: the task's failure is counted and reported, under the
/// request that spawned it where there is one. Needs a tokio runtime, as `tokio::spawn` does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = unhandled::spawn(async { Err::<(), _>(std::io::Error::other("relay down")) });
/// assert!(handle.await.unwrap().is_err());
/// # }
/// ```
#[track_caller]
pub fn spawn<F, M>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: TaskOutput<M> + Send + 'static,
    M: 'static,
{
    tokio::spawn(future.reported())
}

/// `tokio::task::spawn_blocking(f)`, its failure reported as [`spawn`]'s is.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = unhandled::spawn_blocking(|| std::fs::read("/definitely/not/here"));
/// assert!(handle.await.unwrap().is_err());
/// # }
/// ```
#[track_caller]
pub fn spawn_blocking<F, R, M>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: TaskOutput<M> + Send + 'static,
    M: 'static,
{
    let origin = Spawned::here(BACKGROUND, Location::caller());
    tokio::task::spawn_blocking(move || {
        let mut logged = false;
        let output = origin.run(&mut logged, f);
        origin.finished(output, logged)
    })
}

pin_project! {
    /// A future whose failure is reported ([`TaskExt::reported`]); its output is the future's own.
    pub struct Reported<F, M> {
        #[pin]
        future: F,
        origin: Spawned,
        // Whether the application logged at the subscriber layer's level in any poll so far.
        logged: bool,
        marker: PhantomData<fn() -> M>,
    }
}

impl<F, M> std::fmt::Debug for Reported<F, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reported")
            .field("spawned_at", &self.origin.site)
            .finish_non_exhaustive()
    }
}

impl<F: Future, M> Reported<F, M>
where
    F::Output: TaskOutput<M>,
{
    #[inline]
    fn new(future: F, name: &'static str, site: &'static Location<'static>) -> Self {
        Self {
            future,
            origin: Spawned::here(name, site),
            logged: false,
            marker: PhantomData,
        }
    }
}

impl<F: Future, M> Future for Reported<F, M>
where
    F::Output: TaskOutput<M>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        let polled = this.origin.run(this.logged, || future.poll(cx));
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(output) => Poll::Ready(this.origin.finished(output, *this.logged)),
        }
    }
}

/// Where a task came from: the request it was spawned for, else the route of a task spawned
/// outside any request; and the spawn site.
struct Spawned {
    request: Spawner,
    site: &'static Location<'static>,
}

impl Spawned {
    #[inline]
    fn here(name: &'static str, site: &'static Location<'static>) -> Self {
        // A task's panic is located by the hook, as a handler's is.
        panic_location::install();
        Self {
            request: Spawner::in_force()
                .unwrap_or_else(|| Spawner::background(name, reporting::kept_global())),
            site,
        }
    }

    /// Runs one poll (or the blocking closure) in a scope of its own, with the task's request in
    /// force; a panic is reported, then resumed.
    #[inline]
    fn run<R>(&self, logged: &mut bool, f: impl FnOnce() -> R) -> R {
        let scope = TaskScope::enter(self.request);
        let ran = catch_unwind(AssertUnwindSafe(f));
        *logged |= scope.leave();
        match ran {
            Ok(value) => value,
            Err(payload) => {
                self.panicked(&*payload, *logged);
                resume_unwind(payload)
            }
        }
    }

    /// `output`, after its failure, if it is one, was handed to the error handler.
    #[inline]
    fn finished<O: TaskOutput<M>, M>(&self, output: O, logged: bool) -> O {
        if let Some(error) = output.failure() {
            self.failed_with(&output, error, logged);
        }
        output
    }

    /// Hands `output`'s failure over. Its text is formatted only where it is read: before a
    /// handler that may read it is called, or after, where a report kept the error as its sample
    /// (counting alone reads none, and formatting is most of a failure's cost).
    #[cold]
    #[inline(never)]
    fn failed_with<O: TaskOutput<M>, M>(&self, output: &O, error: Error, logged: bool) {
        let reads = self.request.handler.reads_errors();
        if reads {
            output.describe(&error);
        }
        self.failed(&error, ErrorKind::Task, logged);
        if !reads && error.is_shared() {
            output.describe(&error);
        }
    }

    #[cold]
    #[inline(never)]
    fn panicked(&self, payload: &(dyn std::any::Any + Send), logged: bool) {
        let error = Error::from_panic(payload, panic_location::peek(payload));
        self.failed(&error, ErrorKind::TaskPanic, logged);
    }

    fn failed(&self, error: &Error, kind: ErrorKind, logged: bool) {
        if logged {
            error.mark_logged();
        }
        self.request.failed(error, kind, Some(self.site));
    }
}

/// The ways a task's output can fail. `M` tells the ways apart, so that each output type has one
/// (inferred: no one writes it):
///
/// - `()`: never fails;
/// - `Result<T, E>` with `E` a standard error (`std::io::Error`, a `thiserror` enum, …): fails
///   on `Err`, with the error's source chain;
/// - `Result<T, E>` with `E` a pointer to a standard error (`anyhow::Error`, `eyre::Report`,
///   `Box<dyn Error + Send + Sync>`): the same;
/// - `Result<T, unhandled::Error>`: the same, with the location of the `?` that made it;
/// - `Result<T, String>` and `Result<T, &'static str>`: the same, the message its text.
///
/// Sealed: other outputs are not reported (a task's output is what its spawner reads).
pub trait TaskOutput<M>: sealed::Sealed<M> {
    /// The failure this output is, as the error handler sees it; `None` for a success, without
    /// a cost (every task's end asks). Its text may be left to [`describe`](Self::describe).
    #[doc(hidden)]
    fn failure(&self) -> Option<Error>;

    /// Writes the text of `failure`, made by [`failure`](Self::failure), where it was left out.
    #[doc(hidden)]
    fn describe(&self, failure: &Error) {
        let _ = failure;
    }
}

mod sealed {
    pub trait Sealed<M> {}
}

/// [`TaskOutput`]'s way for `()`.
#[derive(Debug)]
pub enum Unit {}
/// [`TaskOutput`]'s way for `Result<T, E>` with `E` a standard error.
#[derive(Debug)]
pub enum StdErrorResult {}
/// [`TaskOutput`]'s way for `Result<T, E>` with `E` a pointer to a standard error.
#[derive(Debug)]
pub enum BoxedErrorResult {}
/// [`TaskOutput`]'s way for `Result<T, unhandled::Error>`.
#[derive(Debug)]
pub enum UnhandledResult {}
/// [`TaskOutput`]'s way for `Result<T, String>` and `Result<T, &'static str>`.
#[derive(Debug)]
pub enum MessageResult {}
/// [`TaskOutput`]'s way for a future that never returns (`async { loop { … } }`, whose output is
/// `!`), and for one whose output is an error itself rather than a `Result`: it never fails by
/// returning (a panic still does).
#[derive(Debug)]
pub enum Diverges {}

impl<N: StdError + 'static> sealed::Sealed<Diverges> for N {}
impl<N: StdError + 'static> TaskOutput<Diverges> for N {
    fn failure(&self) -> Option<Error> {
        None
    }
}

impl sealed::Sealed<Unit> for () {}
impl TaskOutput<Unit> for () {
    fn failure(&self) -> Option<Error> {
        None
    }
}

impl<T, E> sealed::Sealed<StdErrorResult> for Result<T, E> where E: StdError + Send + Sync + 'static {}
impl<T, E> TaskOutput<StdErrorResult> for Result<T, E>
where
    E: StdError + Send + Sync + 'static,
{
    fn failure(&self) -> Option<Error> {
        self.as_ref().err().map(|_| undescribed::<E>())
    }

    fn describe(&self, failure: &Error) {
        if let Err(error) = self {
            describe(error, failure);
        }
    }
}

impl<T, E> sealed::Sealed<BoxedErrorResult> for Result<T, E> where
    E: Deref<Target = dyn StdError + Send + Sync + 'static>
{
}
impl<T, E> TaskOutput<BoxedErrorResult> for Result<T, E>
where
    E: Deref<Target = dyn StdError + Send + Sync + 'static>,
{
    fn failure(&self) -> Option<Error> {
        self.as_ref().err().map(|_| undescribed::<E>())
    }

    fn describe(&self, failure: &Error) {
        if let Err(error) = self {
            describe(&**error, failure);
        }
    }
}

impl<T> sealed::Sealed<MessageResult> for Result<T, String> {}
impl<T> TaskOutput<MessageResult> for Result<T, String> {
    fn failure(&self) -> Option<Error> {
        self.as_ref().err().map(Error::msg)
    }
}

impl<T> sealed::Sealed<MessageResult> for Result<T, &'static str> {}
impl<T> TaskOutput<MessageResult> for Result<T, &'static str> {
    fn failure(&self) -> Option<Error> {
        self.as_ref().err().map(Error::msg)
    }
}

impl<T> sealed::Sealed<UnhandledResult> for Result<T, Error> {}
impl<T> TaskOutput<UnhandledResult> for Result<T, Error> {
    fn failure(&self) -> Option<Error> {
        self.as_ref().err().cloned()
    }
}

/// The failure of a task that returned an `E`, its text not written yet: the error itself stays
/// the task's output.
#[cold]
#[inline(never)]
fn undescribed<E>() -> Error {
    Error::made(
        StatusCode::INTERNAL_SERVER_ERROR,
        Box::new(TaskFailed(OnceLock::new())),
        Origin::of_type::<E>(),
    )
}

/// Writes `error`'s source chain, on one line and bounded as all error text is, into `failure`.
fn describe(error: &(dyn StdError + 'static), failure: &Error) {
    if let Some(failed) = failure
        .cause()
        .and_then(|cause| cause.downcast_ref::<TaskFailed>())
    {
        let _ = failed.0.set(text_of(&Chain(error)));
    }
}

/// A task's error, as its text: written once it is read ([`describe`]).
#[derive(Debug)]
struct TaskFailed(OnceLock<String>);

impl std::fmt::Display for TaskFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            self.0
                .get()
                .map_or("the task's error (its text was not kept)", String::as_str),
        )
    }
}

impl StdError for TaskFailed {}
