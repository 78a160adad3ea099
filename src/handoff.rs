//! How a [`LoggingLayer`](crate::LoggingLayer) tells the [`ErrorHandlerLayer`](crate::ErrorHandlerLayer)
//! around it that it logged a failure, so that the failure is not counted.
//!
//! - An [`Error`](crate::Error) in a response is marked on the error itself.
//! - A 5xx response without one, a panic or a service `Err` has no such place (an extension
//!   would allocate the response's map; the panic resumes with its own payload). Instead, the
//!   error handler opens a [`Scope`] around every call and poll of its inner service, numbered
//!   by a per-thread counter, so that no two scopes on a thread share a number; the logging layer
//!   notes the failure it logged under the scope in force, identified by what survives the trip:
//!   a panic by the address of its payload (the box `resume_unwind` hands on), a service error by
//!   its type, a 5xx response or a response body's error by the scope alone (one poll yields at
//!   most one). The handler accepts a note only for its own scope and the same failure. Two
//!   requests never share a scope, so two failures with the same text can never be taken for one
//!   another; nothing is formatted.
//!
//! A logging layer whose failure event the filter disables notes the failure too, as *filtered*
//! with the event's level, and marks an [`Error`](crate::Error) in the response the same way: the
//! failure is still counted, and the report names the filter directive that would log it instead
//! of advising a logging layer. The [subscriber layer](crate::subscriber) notes, once, that it was
//! added to a subscriber, so that the report does not advise it again.
//!
//! The error handler opens the same scope around each poll of a response body it watches
//! (`error_handler::body`), so that a logging layer's body, polled inside it, hands over the same way.
//!
//! The same scopes tell the error handler that the application logged its own failure: the
//! [subscriber layer](crate::subscriber) notes an event the subscriber recorded under the scope in
//! force ([`app_logged`]), and the error handler collects that note when each call or poll ends
//! ([`Scope::leave`]), over as many polls as the request takes. An event on another thread (a task
//! the handler spawned) or in another request's poll is under no scope of this request.
//!
//! A scope costs a thread-local counter and cell per poll: no allocation, no write to memory
//! another thread uses.
//!
//! Work a request hands to a task ([`TaskExt::reported`](crate::TaskExt::reported)) learns whose
//! it is from the same place: while an error handler polls its inner service, the request it
//! serves is in force on the thread ([`Serving`], a pointer set and reset per poll), with the
//! handler its tasks' failures go to ([`Sink`]). A task keeps a copy of what it needs
//! ([`Spawner`]) and puts it in force again while it runs, so that a task spawned by a task is
//! the same request's. No allocation, and no write to memory another thread uses.

use std::{any::TypeId, cell::Cell, error::Error as StdError, fmt};

use axum::{
    body::{Body, HttpBody},
    extract::MatchedPath,
    http::Response,
};

use crate::{
    context::{ErrorContext, ErrorKind},
    error::Error,
    handler::ServerErrorHandler,
    head::RequestHead,
};

/// The request an error handler serves, in force on the thread while it polls its inner service.
pub(crate) struct Serving {
    pub(crate) head: RequestHead,
    /// Where the request's failures go, and those of the work it hands to a task: the error
    /// handler's handler, kept for the process.
    pub(crate) handler: &'static Sink,
}

scoped_tls::scoped_thread_local!(static SERVING: Serving);

/// Runs `f` with `serving` in force on this thread.
#[inline(always)]
pub(crate) fn serve<R>(serving: &Serving, f: impl FnOnce() -> R) -> R {
    SERVING.set(serving, f)
}

/// What a task keeps of the request that spawned it, and puts in force again while it runs, so
/// that the tasks it spawns are the request's too. Copied, never shared, 16 bytes (without the
/// feature `opentelemetry`, which adds the trace id): where failures go, the method as the index
/// of a standard one ([`method_index`](crate::context::method_index)), the route template as the
/// index of the process's copy ([`route_index`]). tokio moves it with the task, and each of the task's polls puts it
/// in force with two copies, no reference count.
#[derive(Clone, Copy)]
pub(crate) struct Spawner {
    pub(crate) handler: &'static Sink,
    method: u8,
    route: u8,
    /// No request's: a task spawned outside any, labelled by its name. Its own polls put it in
    /// force (one way for every task), but a task it spawns is no request's either.
    background: bool,
    #[cfg(feature = "opentelemetry")]
    trace_id: Option<crate::TraceId>,
}

impl Spawner {
    /// The request in force on this thread, as a task spawned now keeps it: the one an error
    /// handler is polling, else a reported task's own while it runs.
    #[inline]
    pub(crate) fn in_force() -> Option<Self> {
        if SERVING.is_set() {
            return Some(SERVING.with(|serving| {
                let head = &serving.head;
                Self {
                    handler: serving.handler,
                    method: crate::context::method_index(head.method()),
                    route: head.route().map_or(NO_ROUTE, template_index),
                    background: false,
                    #[cfg(feature = "opentelemetry")]
                    trace_id: head.trace_id(),
                }
            }));
        }
        let spawned = STATE.with(|state| state.spawned.get());
        spawned.filter(|spawner| !spawner.background)
    }

    /// Work outside any request, labelled `name` (a constant, the route label) with the method
    /// `_OTHER`, its failures handed to `handler`.
    pub(crate) fn background(name: &'static str, handler: &'static Sink) -> Self {
        Self {
            handler,
            method: crate::context::method_index(&crate::context::OTHER_METHOD),
            route: route_index(name, || Kept::Name(name)),
            background: true,
            #[cfg(feature = "opentelemetry")]
            trace_id: None,
        }
    }

    /// Hands `error`, a failure of `kind` of work spawned at `site` (a stray panic has none), to
    /// the handler; what it renders is dropped.
    pub(crate) fn failed(
        &self,
        error: &Error,
        kind: ErrorKind,
        site: Option<&'static std::panic::Location<'static>>,
    ) {
        let route = route_at(self.route);
        let path = route.unwrap_or("unmatched");
        let method = crate::context::method_at(self.method);
        let context = ErrorContext::new(method, path, route, kind);
        let context = match site {
            Some(site) => context.with_spawned_at(site),
            None => context,
        };
        #[cfg(feature = "opentelemetry")]
        let context = context.with_trace_id(self.trace_id);
        self.handler.failed(error, &context);
    }
}

/// Route labels tasks kept, once per process: at most [`KEPT_ROUTES`]. They are the application's
/// (a request's template, never a path, or a background task's name), so few; beyond them a task
/// is labelled `_OTHER`, as failures beyond the report's groups are.
const KEPT_ROUTES: usize = 64;
/// The route index of a request no route matched.
const NO_ROUTE: u8 = u8::MAX;
/// The route index of a template beyond the [`KEPT_ROUTES`] kept ones.
const OTHER_ROUTE: u8 = u8::MAX - 1;

/// A route label kept for the process: its text is never freed, so that its address is never
/// another label's.
enum Kept {
    /// A request's route template, as axum hands it to every request to that route.
    Route(MatchedPath),
    /// A background task's name.
    Name(&'static str),
}

impl Kept {
    fn as_str(&self) -> &str {
        match self {
            Self::Route(route) => route.as_str(),
            Self::Name(name) => name,
        }
    }
}

static ROUTES: [std::sync::OnceLock<Kept>; KEPT_ROUTES] =
    [const { std::sync::OnceLock::new() }; KEPT_ROUTES];

/// The index of the label `text` in the process's copies, kept now (`keep`) if it is new. Found
/// by address first (a kept label's address is its own), else by text (a router built twice has
/// two copies of a template).
#[inline]
fn route_index(text: &str, keep: impl Fn() -> Kept) -> u8 {
    let found = ROUTES
        .iter()
        .map_while(std::sync::OnceLock::get)
        .position(|kept| std::ptr::eq(kept.as_str(), text));
    let found = found.or_else(|| {
        ROUTES
            .iter()
            .position(|slot| slot.get_or_init(&keep).as_str() == text)
    });
    // At most KEPT_ROUTES (64).
    found.map_or(OTHER_ROUTE, |index| index as u8)
}

/// The index of the route template `route` ([`route_index`]).
#[inline]
fn template_index(route: &MatchedPath) -> u8 {
    route_index(route.as_str(), || Kept::Route(route.clone()))
}

/// The template of the route `index`, `_OTHER` beyond the kept ones; `None` for no route.
fn route_at(index: u8) -> Option<&'static str> {
    match index {
        NO_ROUTE => None,
        _ => Some(
            ROUTES
                .get(usize::from(index))
                .and_then(std::sync::OnceLock::get)
                .map_or("_OTHER", Kept::as_str),
        ),
    }
}

/// An error handler's [`ServerErrorHandler`], its type erased: failures are rare, so that a call
/// through a vtable costs nothing that matters, and the types that hold it are not generic.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response<Body>>;

    /// Whether the handler may read an error's text ([`ServerErrorHandler::reads_errors`]).
    fn reads_errors(&self) -> bool;
}

impl<H: ServerErrorHandler> DynHandler for H {
    fn on_error(&self, error: &Error, context: &ErrorContext<'_>) -> Option<Response<Body>> {
        ServerErrorHandler::on_error(self, error, context)
    }

    fn reads_errors(&self) -> bool {
        ServerErrorHandler::reads_errors(self)
    }
}

/// An error handler's handler, kept for the process: a task can outlive the request that spawned
/// it. The response futures and watched bodies use it too, so that they are not generic over
/// their handler's state. Behind a thin pointer: the response future, which every request moves,
/// holds 8 bytes of it, not 16.
pub(crate) struct Sink(Box<dyn DynHandler>);

impl Sink {
    /// `handler`, kept for the process: one small allocation per error-handler layer built.
    pub(crate) fn keep<H: ServerErrorHandler>(handler: &H) -> &'static Self {
        Box::leak(Box::new(Self(Box::new(handler.clone()))))
    }

    /// `handler`, in a `static`'s place (the process-wide reporter's).
    pub(crate) fn new<H: ServerErrorHandler>(handler: H) -> Self {
        Self(Box::new(handler))
    }

    /// The response the handler renders for `error`; `None` when it defers, or panics itself.
    pub(crate) fn on_error(
        &self,
        error: &Error,
        context: &ErrorContext<'_>,
    ) -> Option<Response<Body>> {
        crate::unwind::catch(|| self.0.on_error(error, context)).flatten()
    }

    /// Hands a failure with no response to render (a spawned task's) to the handler; what it
    /// renders is dropped, under a guard.
    pub(crate) fn failed(&self, error: &Error, context: &ErrorContext<'_>) {
        if let Some(response) = self.on_error(error, context) {
            let _ = crate::unwind::catch(move || drop(response));
        }
    }

    pub(crate) fn reads_errors(&self) -> bool {
        self.0.reads_errors()
    }
}

/// Left by an error handler in a 5xx response without an [`Error`] that it saw (an
/// [`ErrorKind::Status`](crate::ErrorKind::Status) failure) when another error handler or a
/// logging layer encloses it ([`Scope::is_enclosed`]), so that an outer error handler does not
/// count it again and a logging layer outside knows it comes too late. Only then: inserting it
/// into a response without extensions costs two allocations. An `Error` the handler saw stays in
/// the response instead, marked rendered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RenderedStatus;

/// A panic or service error, as both sides of the handoff can tell it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Failure {
    /// The address of the panic's payload.
    Panic(usize),
    /// The type of the service error.
    Service(TypeId),
    /// The error a response body yielded (one per poll, and so per scope).
    Body,
    /// A 5xx response without an [`Error`](crate::Error) (one per poll, and so per scope).
    Status,
}

impl Failure {
    pub(crate) fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        Self::Panic(std::ptr::from_ref(payload).cast::<()>() as usize)
    }

    pub(crate) fn service<E: 'static>() -> Self {
        Self::Service(TypeId::of::<E>())
    }
}

#[derive(Clone, Copy)]
struct Note {
    scope: u64,
    failure: Failure,
    /// `None` when the logging layer logged it; the level of the event the filter disabled when
    /// it did not.
    filtered: Option<tracing::Level>,
}

struct State {
    /// The last scope number given out on this thread.
    last: Cell<u64>,
    /// The scope in force (0: none).
    current: Cell<u64>,
    /// Whether a logging layer is polling (a [`Watch`] is in force).
    watched: Cell<bool>,
    note: Cell<Option<Note>>,
    /// The scope in which the application last recorded an event at the subscriber layer's
    /// level (0: none since it was collected).
    app_logged: Cell<u64>,
    /// The reported task polling on this thread ([`TaskScope`]).
    spawned: Cell<Option<Spawner>>,
}

thread_local! {
    static STATE: State = const {
        State {
            last: Cell::new(0),
            current: Cell::new(0),
            watched: Cell::new(false),
            note: Cell::new(None),
            app_logged: Cell::new(0),
            spawned: Cell::new(None),
        }
    };
}

/// One error handler's call or poll of its inner service, on this thread.
pub(crate) struct Scope {
    id: u64,
    outer: u64,
    /// Whether a logging layer was polling when the scope opened.
    watched: bool,
}

impl Scope {
    #[inline]
    pub(crate) fn enter() -> Self {
        STATE.with(Self::open)
    }

    /// The next scope of this thread, put in force.
    #[inline(always)]
    fn open(state: &State) -> Self {
        let id = state.last.get().wrapping_add(1);
        state.last.set(id);
        Self {
            id,
            outer: state.current.replace(id),
            watched: state.watched.get(),
        }
    }

    /// Whether another error handler or a logging layer encloses this scope on this thread: it
    /// is polling the error handler that opened it, and will see the response it renders.
    pub(crate) fn is_enclosed(&self) -> bool {
        self.outer != 0 || self.watched
    }

    /// `error`, marked logged when a logging layer inside this scope noted `failure`; that note
    /// is used up.
    pub(crate) fn claim(&self, failure: Failure, error: Error) -> Error {
        claim(self.id, failure, error)
    }

    /// The scope's number, to [`claim`] a note after the scope closed (a 5xx response, seen once
    /// the poll that made it ended).
    #[inline(always)]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Closes the scope; whether the application recorded an event at the subscriber layer's
    /// level while it was in force (an enclosing scope learns it too).
    #[inline]
    pub(crate) fn leave(self) -> bool {
        let logged = STATE.with(|state| close(state, self.id, self.outer));
        std::mem::forget(self);
        logged
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        STATE.with(|state| close(state, self.id, self.outer));
    }
}

/// `error`, marked logged when a logging layer noted `failure` under the scope `id`; that note is
/// used up.
#[inline]
pub(crate) fn claim(id: u64, failure: Failure, error: Error) -> Error {
    // Read before it is taken: most failures find no note of theirs (no logging layer inside),
    // and a note of another scope is never claimed (scope numbers are not reused).
    let noted = STATE.with(|state| {
        let note = state
            .note
            .get()
            .filter(|note| note.scope == id && note.failure == failure);
        if note.is_some() {
            state.note.set(None);
        }
        note
    });
    match noted {
        Some(Note { filtered: None, .. }) => error.mark_logged(),
        Some(Note {
            filtered: Some(level),
            ..
        }) => error.mark_filtered(level),
        None => {}
    }
    error
}

/// Restores the `outer` scope; whether `id` saw an application's event, which `outer` inherits.
#[inline]
fn close(state: &State, id: u64, outer: u64) -> bool {
    state.current.set(outer);
    let logged = state.app_logged.get() == id;
    if logged {
        state.app_logged.set(outer);
    }
    logged
}

/// One poll of a reported task (or its blocking closure): a [`Scope`] of its own, with the
/// task's request in force ([`Spawner`]); one thread-local access to enter, one to leave.
pub(crate) struct TaskScope {
    scope: Scope,
    /// The task in force before, restored on leaving.
    outer: Option<Spawner>,
}

impl TaskScope {
    #[inline(always)]
    pub(crate) fn enter(spawner: Spawner) -> Self {
        STATE.with(|state| Self {
            scope: Scope::open(state),
            outer: state.spawned.replace(Some(spawner)),
        })
    }

    /// Closes the scope, restoring the request in force before; whether the application logged
    /// at the subscriber layer's level while it was in force ([`Scope::leave`]).
    #[inline(always)]
    pub(crate) fn leave(self) -> bool {
        let Self { scope, outer } = self;
        let logged = STATE.with(|state| {
            state.spawned.set(outer);
            close(state, scope.id, scope.outer)
        });
        std::mem::forget(scope);
        logged
    }
}

/// Whether an error handler's scope is in force on this thread; never panics (the panic hook asks).
pub(crate) fn in_scope() -> bool {
    STATE
        .try_with(|state| state.current.get() != 0)
        .unwrap_or(false)
}

/// Notes that the application recorded an event that counts as logging its failure, for the
/// error handler whose scope is in force (if any).
pub(crate) fn app_logged() {
    STATE.with(|state| {
        let scope = state.current.get();
        if scope != 0 {
            state.app_logged.set(scope);
        }
    });
}

/// The threshold of the subscriber layer last added to a subscriber, as
/// [`verbosity`](crate::level::verbosity) gives it, plus one; 0 while none is.
static SUBSCRIBER_LAYER: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Notes that a [subscriber layer](crate::subscriber) with `threshold` was added to a subscriber:
/// the report then no longer advises adding one.
pub(crate) fn subscriber_layer_added(threshold: tracing::Level) {
    let noted = crate::level::verbosity(threshold) + 1;
    SUBSCRIBER_LAYER.store(noted, std::sync::atomic::Ordering::Relaxed);
}

/// The threshold of the subscriber layer added, if one was.
pub(crate) fn subscriber_layer() -> Option<tracing::Level> {
    let noted = SUBSCRIBER_LAYER.load(std::sync::atomic::Ordering::Relaxed);
    noted.checked_sub(1).map(crate::level::level_of)
}

/// A logging layer's poll of its inner service, on this thread: an error handler inside it
/// leaves the [`RenderedStatus`] marker on the 5xx responses it saw, so that the logging layer
/// can tell that it comes too late to keep them from being counted.
pub(crate) struct Watch {
    outer: bool,
}

impl Watch {
    pub(crate) fn enter() -> Self {
        STATE.with(|state| Self {
            outer: state.watched.replace(true),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        STATE.with(|state| state.watched.set(self.outer));
    }
}

/// Notes that `failure` was logged, for the error handler whose scope is in force (if any).
pub(crate) fn note_logged(failure: Failure) {
    note(failure, None);
}

/// Notes that a logging layer saw `failure` but the filter disabled its event at `level`.
pub(crate) fn note_filtered(failure: Failure, level: tracing::Level) {
    note(failure, Some(level));
}

fn note(failure: Failure, filtered: Option<tracing::Level>) {
    STATE.with(|state| {
        let scope = state.current.get();
        if scope != 0 {
            state.note.set(Some(Note {
                scope,
                failure,
                filtered,
            }));
        }
    });
}

/// Marks a response whose body must be watched although it has an exact size: see
/// [`ResponseExt::watch_body`](crate::ResponseExt::watch_body).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WatchBody;

/// Whether the body of `response` to the request of `head` can fail after its head, and so must
/// be watched. On the success path: one call through the body's vtable, and for a body with an
/// exact size an extension lookup (nothing to look up when the response has no extensions).
#[inline]
pub(crate) fn needs_watching(response: &Response<Body>, head: &RequestHead) -> bool {
    let exact = response.body().size_hint().exact().is_some();
    let asked = || response.extensions().get::<WatchBody>().is_some();
    // A `HEAD` response's body is dropped unpolled (by axum's router and by hyper).
    (!exact || asked()) && !head.is_head()
}

/// The error a watched body yields once it failed, after the error handler saw the failure; hyper
/// then ends the response. Its source is the cause: the error the body yielded (an `h2::Reason`
/// in it still picks the HTTP/2 reset code), or the panic's message.
///
/// An error handler or a logging layer outside the one that watched the body finds it in the
/// chain, and knows the failure was handled.
pub(crate) struct BodyFailed {
    error: Error,
    kind: ErrorKind,
}

impl BodyFailed {
    pub(crate) fn new(error: Error, kind: ErrorKind) -> Self {
        Self { error, kind }
    }

    /// The failure, as the error handler saw it.
    pub(crate) fn error(&self) -> &Error {
        &self.error
    }

    /// [`ErrorKind::Body`] or, for a panic, [`ErrorKind::Panic`].
    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The `BodyFailed` in `error`'s chain, if any (a bounded walk: [`sources`](crate::error::sources)).
    pub(crate) fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        crate::error::sources(Some(error)).find_map(<dyn StdError>::downcast_ref::<Self>)
    }
}

impl fmt::Display for BodyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response body failed after its head was sent")
    }
}

impl fmt::Debug for BodyFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyFailed")
            .field("error", &self.error)
            .field("kind", &self.kind)
            .finish()
    }
}

impl StdError for BodyFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.error.cause()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `MatchedPath` axum gives a request to `template` (a path without parameters), from a
    /// router built for it: each router has its own copy of the text.
    async fn matched(template: &str) -> MatchedPath {
        use tower::ServiceExt as _;
        let found = std::sync::Arc::new(std::sync::Mutex::new(None));
        let keep = found.clone();
        let app = axum::Router::new().route(
            template,
            axum::routing::get(move |route: MatchedPath| async move {
                *keep.lock().unwrap() = Some(route);
            }),
        );
        let request = axum::http::Request::get(template)
            .body(Body::empty())
            .unwrap();
        app.oneshot(request).await.unwrap();
        let route = found.lock().unwrap().take();
        route.expect("the route matched")
    }

    #[test]
    #[cfg(not(feature = "opentelemetry"))]
    fn a_task_keeps_16_bytes_of_its_request() {
        assert_eq!(std::mem::size_of::<Spawner>(), 16);
        assert_eq!(std::mem::size_of::<Option<Spawner>>(), 16);
    }

    #[tokio::test]
    async fn a_route_is_kept_once_found_by_address_or_text_and_the_table_is_bounded() {
        let route = matched("/tests/kept").await;
        let index = template_index(&route);
        assert_eq!(route_at(index), Some("/tests/kept"));
        // The same template, and the same text from another router, find the same copy.
        assert_eq!(template_index(&route.clone()), index);
        let elsewhere = matched("/tests/kept").await;
        assert!(!std::ptr::eq(elsewhere.as_str(), route.as_str()));
        assert_eq!(template_index(&elsewhere), index);
        // A background task's name shares the table, found by its text too.
        let name = Spawner::background("tests-kept-name", Sink::keep(&crate::DefaultErrorHandler));
        assert_eq!(route_at(name.route), Some("tests-kept-name"));
        let copy: &'static str = String::from("tests-kept-name").leak();
        assert_eq!(route_index(copy, || Kept::Name(copy)), name.route);
        // The table keeps at most KEPT_ROUTES; beyond, `_OTHER`.
        let mut last = NO_ROUTE;
        for n in 0..KEPT_ROUTES {
            last = template_index(&matched(&format!("/tests/bounded/{n}")).await);
        }
        assert_eq!(last, OTHER_ROUTE);
        assert_eq!(route_at(last), Some("_OTHER"));
        assert_eq!(route_at(NO_ROUTE), None);
        assert_eq!(template_index(&route), index, "kept ones stay");
    }

    #[test]
    fn a_note_is_claimed_only_in_its_own_scope_and_for_the_same_failure() {
        let failure = Failure::service::<std::io::Error>();
        let outer = Scope::enter();
        {
            let inner = Scope::enter();
            note_logged(failure);
            // The outer scope does not take the inner one's note…
            assert!(!outer.claim(failure, Error::msg("x")).is_logged());
            note_logged(failure);
            // …nor does a different failure match…
            assert!(
                !inner
                    .claim(Failure::service::<String>(), Error::msg("x"))
                    .is_logged()
            );
            note_logged(failure);
            // …and the same failure in the same scope does, once.
            assert!(inner.claim(failure, Error::msg("x")).is_logged());
            assert!(!inner.claim(failure, Error::msg("x")).is_logged());
        }
        note_logged(failure);
        assert!(outer.claim(failure, Error::msg("x")).is_logged());
    }

    #[test]
    fn an_application_log_is_collected_by_its_scope_and_the_enclosing_one_only() {
        let outer = Scope::enter();
        let inner = Scope::enter();
        app_logged();
        assert!(inner.leave());
        assert!(outer.leave());
        // Collected: the next scope on this thread starts without it.
        let next = Scope::enter();
        assert!(!next.leave());
        // Outside every scope, nothing is noted.
        app_logged();
        assert!(!Scope::enter().leave());
        // A sibling scope does not see an earlier sibling's log.
        let parent = Scope::enter();
        {
            let first = Scope::enter();
            app_logged();
            drop(first);
        }
        let second = Scope::enter();
        assert!(!second.leave());
        assert!(parent.leave());
    }

    #[test]
    fn nothing_is_noted_outside_any_scope() {
        note_logged(Failure::Panic(1));
        let scope = Scope::enter();
        assert!(!scope.claim(Failure::Panic(1), Error::msg("x")).is_logged());
    }
}
