//! The success path adds no heap allocation, nor does counting a failure once its group exists:
//! a counting global allocator, in its own test binary, counts the allocations of requests with
//! and without `unhandled::layer()`; the two must be equal. Around a whole router the comparison is with the bare router; per route
//! (`Router::layer`) it is with a layer that does nothing, since axum boxes every layered route.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Request, StatusCode},
    routing::get,
};
use tower::ServiceExt;

/// Counts the allocations (and reallocations) made on threads that switched counting on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees are ours; the counting touches only const-initialised thread-local `Cell`s without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const REQUESTS: u64 = 200;

async fn fails() -> unhandled::Result<&'static str> {
    Err(unhandled::Error::msg("the database is down"))
}

fn routes() -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/fails", get(fails))
}

/// Allocations made by sending `REQUESTS` requests for `path` through `app`, request bodies and
/// URIs built before counting starts.
async fn allocations(app: &Router, path: &str, expected: StatusCode) -> u64 {
    allocations_with(app, path, expected, &[]).await
}

/// [`allocations`], every request carrying `headers`.
async fn allocations_with(
    app: &Router,
    path: &str,
    expected: StatusCode,
    headers: &[(&str, &str)],
) -> u64 {
    let request = || {
        let mut request = Request::get(path);
        for (name, value) in headers {
            // `x-method` stands for the request's method, as a client may send any token.
            request = match *name {
                "x-method" => request.method(*value),
                _ => request.header(*name, *value),
            };
        }
        request.body(Body::empty()).unwrap()
    };
    let requests: Vec<_> = (0..REQUESTS).map(|_| request()).collect();
    // Warm up: first calls fill lazily initialised state (thread-locals, the stripe index).
    for _ in 0..10 {
        let warm = request();
        assert_eq!(app.clone().oneshot(warm).await.unwrap().status(), expected);
    }
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    for request in requests {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected);
    }
    COUNTING.with(|counting| counting.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// Around a whole router, nothing else differs: the layer's own cost is all there is to see.
#[tokio::test(flavor = "current_thread")]
async fn success_path_around_a_router_allocates_exactly_what_the_bare_router_allocates() {
    let bare = Router::new().fallback_service(routes());
    let wrapped = Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(unhandled::layer())
            .service(routes()),
    );

    let bare_count = allocations(&bare, "/users/7", StatusCode::OK).await;
    let wrapped_count = allocations(&wrapped, "/users/7", StatusCode::OK).await;

    assert_eq!(
        wrapped_count, bare_count,
        "unhandled::layer() allocated {wrapped_count} times for {REQUESTS} successful requests, \
         the bare router {bare_count}"
    );
}

/// `Router::layer` boxes every layered route (axum 0.8 clones a boxed service and boxes a future
/// per request, whatever the layer does: two allocations), so the fair comparison is a layer that
/// does nothing. `with_state(())` materialises the routes once, as `axum::serve` does.
#[tokio::test(flavor = "current_thread")]
async fn success_path_per_route_allocates_exactly_what_a_pass_through_layer_allocates() {
    let pass_through = routes()
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .with_state(());
    let layered = routes().layer(unhandled::layer()).with_state(());

    let pass_through_count = allocations(&pass_through, "/users/7", StatusCode::OK).await;
    let layered_count = allocations(&layered, "/users/7", StatusCode::OK).await;

    assert_eq!(
        layered_count, pass_through_count,
        "unhandled::layer() allocated {layered_count} times for {REQUESTS} successful requests, \
         a pass-through layer {pass_through_count}"
    );
}

/// What a client chooses costs nothing more: a method longer than the 15 bytes `http::Method`
/// keeps inline (cloning it allocates; axum's route clones it too, so both sides pay that) and a
/// route template too long to copy into the head (cloning its `MatchedPath` would write a
/// reference count every request to the route shares, which no allocator sees; the head names it
/// by its slot in a table kept once per process instead).
#[tokio::test(flavor = "current_thread")]
async fn a_long_route_template_allocates_nothing_more_and_a_long_method_one_clone() {
    let long_template = format!("/{}/{{id}}", "segment".repeat(20));
    let routes = || routes().route(&long_template, get(|| async { "long" }));
    let pass_through = routes()
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .with_state(());
    let layered = routes().layer(unhandled::layer()).with_state(());
    let long_path = format!("/{}/7", "segment".repeat(20));

    let pass_through_count = allocations(&pass_through, &long_path, StatusCode::OK).await;
    let layered_count = allocations(&layered, &long_path, StatusCode::OK).await;
    assert_eq!(layered_count, pass_through_count, "a long route template");

    // A method longer than 15 bytes (any client may send one): the head clones it, which costs
    // one allocation, as hyper's parse of it did. The standard methods cost none (above).
    let method = [("x-method", "AVERYLONGCUSTOMMETHOD")];
    let expected = StatusCode::METHOD_NOT_ALLOWED;
    let pass_through_count = allocations_with(&pass_through, "/users/7", expected, &method).await;
    let layered_count = allocations_with(&layered, "/users/7", expected, &method).await;
    assert_eq!(
        layered_count,
        pass_through_count + REQUESTS,
        "a long method: one clone per request"
    );
}

/// The instrument works: a layered failing route is seen allocating more than the bare one (axum
/// boxes a layered route's service clone and future per request; counting itself adds nothing,
/// as `counting_a_failure_allocates_nothing_once_its_group_exists` shows).
#[tokio::test(flavor = "current_thread")]
async fn the_counting_allocator_sees_the_error_path_allocate() {
    let bare = routes();
    let layered = routes().layer(unhandled::layer());

    let bare_count = allocations(&bare, "/fails", StatusCode::INTERNAL_SERVER_ERROR).await;
    let layered_count = allocations(&layered, "/fails", StatusCode::INTERNAL_SERVER_ERROR).await;

    assert!(
        layered_count > bare_count,
        "{layered_count} <= {bare_count}"
    );
}

/// Counting a failure allocates nothing once its group exists (the first error opens the group,
/// leaves its sample and starts the periodic task, all during the warm-up): a failing route under
/// `unhandled::layer()` allocates what it allocates under a layer that does nothing, for a
/// returned `unhandled::Error` and for a plain 500 the handler built.
#[tokio::test(flavor = "current_thread")]
async fn counting_a_failure_allocates_nothing_once_its_group_exists() {
    let routes = || {
        routes().route(
            "/plain-500",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "the database is down") }),
        )
    };
    let pass_through = routes()
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .with_state(());
    let layered = routes().layer(unhandled::layer()).with_state(());
    let counted_before = unhandled::ReportingErrorHandler::global().unhandled_count();

    for path in ["/fails", "/plain-500"] {
        let expected = StatusCode::INTERNAL_SERVER_ERROR;
        let pass_through_count = allocations(&pass_through, path, expected).await;
        let layered_count = allocations(&layered, path, expected).await;
        assert_eq!(
            layered_count, pass_through_count,
            "{path}: unhandled::layer() allocated {layered_count} times for {REQUESTS} failing \
             requests, a pass-through layer {pass_through_count}"
        );
    }
    let counted = unhandled::ReportingErrorHandler::global().unhandled_count() - counted_before;
    assert!(counted >= 2 * REQUESTS, "{counted}");
}

/// With no subscriber interested, `LoggingLayer` opens no span and captures nothing.
#[tokio::test(flavor = "current_thread")]
async fn logging_layer_with_levels_disabled_allocates_nothing() {
    let pass_through = routes()
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .with_state(());
    let logged = routes()
        .layer(unhandled::LoggingLayer::new())
        .layer(unhandled::layer())
        .with_state(());

    let pass_through_count = allocations(&pass_through, "/users/7", StatusCode::OK).await;
    let logged_count = allocations(&logged, "/users/7", StatusCode::OK).await;

    assert_eq!(logged_count, pass_through_count);
}

/// With the feature `opentelemetry`, the layer reads each request's `traceparent` header: still
/// no allocation, with the header or without.
#[cfg(feature = "opentelemetry")]
#[tokio::test(flavor = "current_thread")]
async fn reading_traceparent_allocates_nothing() {
    let pass_through = routes()
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .with_state(());
    let layered = routes().layer(unhandled::layer()).with_state(());
    let traceparent = [(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )];

    let pass_through_count =
        allocations_with(&pass_through, "/users/7", StatusCode::OK, &traceparent).await;
    let layered_count = allocations_with(&layered, "/users/7", StatusCode::OK, &traceparent).await;

    assert_eq!(layered_count, pass_through_count);
}

/// `unhandled::subscriber::layer()` installed changes no request's allocations: neither a plain
/// successful one nor one whose handler logs at ERROR (the layer notes the event for the error
/// handler, which collects it at the end of the poll). A failing one would compare counting with
/// not counting, whose sample (once per interval) may allocate.
#[tokio::test(flavor = "current_thread")]
async fn the_subscriber_layer_allocates_nothing_per_request() {
    use tracing_subscriber::prelude::*;
    let app = routes()
        .route(
            "/logs",
            get(|| async {
                tracing::error!("the cache is down; served from the database");
                "user"
            }),
        )
        .layer(unhandled::layer())
        .with_state(());
    let mut counts = Vec::new();
    for with_layer in [false, true] {
        let _default = if with_layer {
            let subscriber = tracing_subscriber::registry().with(unhandled::subscriber::layer());
            tracing::subscriber::set_default(subscriber)
        } else {
            tracing::subscriber::set_default(tracing_subscriber::registry())
        };
        let ok = allocations(&app, "/users/7", StatusCode::OK).await;
        let logged = allocations(&app, "/logs", StatusCode::OK).await;
        counts.push((ok, logged));
    }
    assert_eq!(
        counts[1], counts[0],
        "(plain, logging) with the layer, then without"
    );
}

/// Allocations made by sending `REQUESTS` requests for `path` through `app` and reading each
/// response body to its end.
async fn allocations_read(app: &Router, path: &str) -> u64 {
    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| Request::get(path).body(Body::empty()).unwrap())
        .collect();
    for _ in 0..10 {
        let warm = Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(warm).await.unwrap();
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
    }
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|counting| counting.set(true));
    for request in requests {
        let response = app.clone().oneshot(request).await.unwrap();
        let mut body = response.into_body();
        // Frame by frame, so that reading allocates nothing of its own.
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            assert!(frame.unwrap().is_data());
        }
    }
    COUNTING.with(|counting| counting.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// A streamed response (no exact size) is watched for failures after its head: that boxes its
/// body once more, one allocation per response; its frames cost nothing. A response with an
/// exact size, read to its end, costs nothing at all.
#[tokio::test(flavor = "current_thread")]
async fn a_streamed_response_costs_one_allocation_and_its_frames_none() {
    fn streamed() -> Router {
        let frames = || {
            let chunks =
                (0..8).map(|_| Ok::<_, std::convert::Infallible>(Bytes::from_static(b"row\n")));
            Body::from_stream(futures_util::stream::iter(chunks))
        };
        routes().route("/stream", get(move || async move { frames() }))
    }
    let pass_through = streamed()
        .layer(tower::util::MapResponseLayer::new(|response| response))
        .with_state(());
    let layered = streamed().layer(unhandled::layer()).with_state(());

    let pass_through_streamed = allocations_read(&pass_through, "/stream").await;
    let layered_streamed = allocations_read(&layered, "/stream").await;
    assert_eq!(
        layered_streamed,
        pass_through_streamed + REQUESTS,
        "one box per streamed response, none per frame"
    );
    let pass_through_sized = allocations_read(&pass_through, "/users/7").await;
    let layered_sized = allocations_read(&layered, "/users/7").await;
    assert_eq!(layered_sized, pass_through_sized);
}
