//! gRPC (tonic) over real HTTP/2 on 127.0.0.1, with a tonic client, through both ways of serving:
//! `Routes::into_axum_router()` with `Router::layer`, and `Server::builder().layer(..)`. The
//! service is the standard health service (tonic-health's generated code), whose checks fail as
//! the requested service name says.
//!
//! Each test runs on one thread (server, client, capturing subscriber), so that events and spans
//! are captured wherever they happen.

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, http::Request};
use futures_util::{Stream, StreamExt as _, stream};
use tonic::{Code, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};
use unhandled::{ErrorHandlerLayer, ErrorKind, LoggingLayer, ReportingErrorHandler};

use crate::support;

use support::{capture, counted};

const CHECK: &str = "/grpc.health.v1.Health/Check";
const WATCH: &str = "/grpc.health.v1.Health/Watch";

/// A health service whose answer is what the requested service name asks for.
struct Failing;

/// The error a check with a source fails with.
fn refused() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
}

fn answer(service: &str) -> Result<HealthCheckResponse, Status> {
    let serving = HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    };
    match service {
        "" | "ok" => Ok(serving),
        "internal" => Err(Status::internal("the database is down")),
        "internal-source" => {
            let mut status = Status::internal("loading the health record");
            status.set_source(std::sync::Arc::new(refused()));
            Err(status)
        }
        "not-found" => Err(Status::not_found("no such service")),
        "invalid" => Err(Status::invalid_argument("bad name")),
        "unimplemented" => Err(Status::unimplemented("checks are not implemented yet")),
        "panic" => panic!("the health check divided by zero"),
        code => {
            let code: i32 = code.strip_prefix("code-").unwrap().parse().unwrap();
            Err(Status::new(Code::from(code), format!("code {code}")))
        }
    }
}

#[tonic::async_trait]
impl Health for Failing {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if service == "slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if service == "spawns" {
            // Work handed off: answered `SERVING`, and the task fails after the answer.
            unhandled::spawn(async { Err::<(), _>(refused()) });
            return answer("ok").map(tonic::Response::new);
        }
        answer(&service).map(tonic::Response::new)
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    /// One `SERVING`, then what `answer` gives for the service (in the trailers when it fails).
    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let first = stream::once(async {
            Ok(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })
        });
        let then = stream::once(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            answer(&service)
        });
        Ok(tonic::Response::new(Box::pin(first.chain(then))))
    }
}

#[derive(Clone, Copy, Debug)]
enum Serving {
    /// `Routes::into_axum_router()`, the layers added with `Router::layer`.
    Axum,
    /// `tonic::transport::Server::builder().layer(..)`.
    Tonic,
}

const BOTH: [Serving; 2] = [Serving::Axum, Serving::Tonic];

impl Serving {
    /// The route of a failure that tonic did not answer with a status (a panic, a service error):
    /// the service's route template where the router routed the call to it (the method only
    /// labels a failure the server answered as gRPC); `unmatched` where the layer runs outside
    /// the router and cannot tell a served method from one a client made up.
    fn unanswered_route(self) -> &'static str {
        match self {
            Self::Axum => "/grpc.health.v1.Health/{*rest}",
            Self::Tonic => "unmatched",
        }
    }
}

/// A service that fails with a service error when the request carries `x-fail`: what a
/// middleware inside the error handler does.
#[derive(Clone)]
struct FailWhenAsked<S>(S);

impl<S, B> tower::Service<Request<B>> for FailWhenAsked<S>
where
    S: tower::Service<Request<B>>,
    S::Future: Send + 'static,
    S::Error: Into<unhandled::BoxError>,
{
    type Response = S::Response;
    type Error = unhandled::BoxError;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<S::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.headers().contains_key("x-fail") {
            return Box::pin(async { Err("the quota service is unreachable".into()) });
        }
        let future = self.0.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

/// Serves the health service on 127.0.0.1 the `serving` way, behind `logging` (when set) inside
/// the error handler `reporting`, with the failing middleware innermost.
async fn serve(serving: Serving, reporting: &ReportingErrorHandler, logging: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let handler = ErrorHandlerLayer::new(reporting.clone());
    // `LoggingLayer`, or a layer that only boxes the body as it does (so both have one type).
    fn logging_or<L>(logging: bool, boxing: L) -> tower::util::Either<LoggingLayer, L> {
        match logging {
            true => tower::util::Either::Left(LoggingLayer::new()),
            false => tower::util::Either::Right(boxing),
        }
    }
    match serving {
        Serving::Axum => {
            let app: Router = tonic::service::Routes::new(HealthServer::new(Failing))
                .into_axum_router()
                .layer(
                    tower::ServiceBuilder::new()
                        .layer(handler)
                        .layer(logging_or(
                            logging,
                            tower::util::MapResponseLayer::new(
                                |response: axum::http::Response<Body>| response,
                            ),
                        ))
                        .layer(tower::layer::layer_fn(FailWhenAsked)),
                );
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
        Serving::Tonic => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let server = tonic::transport::Server::builder()
                .layer(handler)
                .layer(logging_or(
                    logging,
                    tower::util::MapResponseLayer::new(
                        |response: axum::http::Response<tonic::body::Body>| response.map(Body::new),
                    ),
                ))
                .layer(tower::layer::layer_fn(FailWhenAsked))
                .add_service(HealthServer::new(Failing));
            tokio::spawn(async move { server.serve_with_incoming(incoming).await.unwrap() });
        }
    }
    address
}

async fn client(address: SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

async fn check(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<HealthCheckResponse, Status> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    client.check(request).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_task_a_grpc_handler_spawns_is_counted_under_the_call_s_route() {
    for (serving, route) in [
        (Serving::Axum, "/grpc.health.v1.Health/{*rest}"),
        // Outside the router no route is matched yet.
        (Serving::Tonic, "unmatched"),
    ] {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;
        let answer = check(&mut client, "spawns").await.unwrap();
        assert_eq!(answer.status, ServingStatus::Serving as i32);
        support::eventually(|| reporting.unhandled_count() == 1).await;
        let groups = reporting.breakdown().groups;
        assert_eq!(groups.len(), 1, "{serving:?}: {groups:?}");
        assert_eq!(
            (groups[0].method, groups[0].route.as_str(), groups[0].kind),
            ("POST", route, ErrorKind::Task),
            "{serving:?}"
        );
    }
}

#[tokio::test]
async fn a_handler_s_internal_status_is_counted_with_its_method_as_route() {
    let (events, _guard) = capture();
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;

        let status = check(&mut client, "internal").await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{serving:?}");
        assert_eq!(status.message(), "the database is down");
        support::eventually(|| counted(&reporting) == [(CHECK.to_owned(), ErrorKind::Status, 1)])
            .await;
        assert_eq!(
            counted(&reporting),
            [(CHECK.to_owned(), ErrorKind::Status, 1)],
            "{serving:?}"
        );
        reporting.shutdown().await;
        let report = events.reports().pop().unwrap();
        assert_eq!(report.field("sample.route"), CHECK);
        assert_eq!(report.field("sample.method"), "POST");
        assert_eq!(report.field("sample.kind"), "status");
        assert_eq!(
            report.field("sample.error"),
            "gRPC status INTERNAL (13): the database is down",
            "the code and the message"
        );
        assert!(
            report.field("sample.fix").contains("set_source"),
            "{report:?}"
        );
    }
}

#[tokio::test]
async fn a_status_with_a_source_is_an_error_with_its_chain_under_the_tonic_feature() {
    let (events, _guard) = capture();
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;
        let status = check(&mut client, "internal-source").await.unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        support::eventually(|| reporting.unhandled_count() == 1).await;
        let kind = if cfg!(feature = "tonic") {
            ErrorKind::Error
        } else {
            ErrorKind::Status
        };
        assert_eq!(counted(&reporting), [(CHECK.to_owned(), kind, 1)]);
        reporting.shutdown().await;
        let report = events.reports().pop().unwrap();
        let expected = if cfg!(feature = "tonic") {
            "gRPC status INTERNAL (13): loading the health record: connection refused"
        } else {
            "gRPC status INTERNAL (13): loading the health record"
        };
        assert_eq!(report.field("sample.error"), expected, "{serving:?}");
    }
}

#[tokio::test]
async fn the_six_server_error_codes_are_counted_and_no_other() {
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;
        for code in 1..=16 {
            let answer = check(&mut client, &format!("code-{code}")).await;
            assert_eq!(answer.unwrap_err().code(), Code::from(code));
        }
        for service in ["not-found", "invalid", "ok"] {
            let _ = check(&mut client, service).await;
        }
        support::eventually(|| reporting.unhandled_count() == 6).await;
        // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED (a handler's, with a message), INTERNAL,
        // UNAVAILABLE, DATA_LOSS.
        assert_eq!(
            counted(&reporting),
            [(CHECK.to_owned(), ErrorKind::Status, 6)],
            "{serving:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_ends_in_internal_is_counted_from_its_trailers() {
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;
        let request = HealthCheckRequest {
            service: "internal".to_owned(),
        };
        let mut watch = client.watch(request).await.unwrap().into_inner();
        let first = watch.message().await.unwrap().unwrap();
        assert_eq!(first.status, ServingStatus::Serving as i32);
        let end = watch.message().await.unwrap_err();
        assert_eq!(end.code(), Code::Internal, "{serving:?}");
        assert_eq!(end.message(), "the database is down");

        // A stream that ends well, or with a client error, is not counted.
        for service in ["ok", "not-found"] {
            let request = HealthCheckRequest {
                service: service.to_owned(),
            };
            let mut watch = client.watch(request).await.unwrap().into_inner();
            while let Ok(Some(_)) = watch.message().await {}
        }
        support::eventually(|| counted(&reporting) == [(WATCH.to_owned(), ErrorKind::Status, 1)])
            .await;
        assert_eq!(
            counted(&reporting),
            [(WATCH.to_owned(), ErrorKind::Status, 1)],
            "{serving:?}"
        );
    }
}

#[tokio::test]
async fn a_panic_is_answered_as_internal_counted_and_the_channel_goes_on() {
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;
        let status = check(&mut client, "panic").await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{serving:?}: {status:?}");
        assert_eq!(
            status.message(),
            "Internal Server Error",
            "nothing internal"
        );
        assert!(!status.message().contains("divided"));
        // The same channel serves the next call.
        assert!(check(&mut client, "ok").await.is_ok());
        support::eventually(|| {
            counted(&reporting) == [(serving.unanswered_route().to_owned(), ErrorKind::Panic, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [(serving.unanswered_route().to_owned(), ErrorKind::Panic, 1)],
            "{serving:?}"
        );
    }
}

#[tokio::test]
async fn a_service_error_is_answered_as_internal_and_counted() {
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, false).await).await;
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: "ok".to_owned(),
        });
        request
            .metadata_mut()
            .insert("x-fail", "1".parse().unwrap());
        let status = client.check(request).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{serving:?}: {status:?}");
        assert!(!status.message().contains("quota"));
        support::eventually(|| {
            counted(&reporting) == [(serving.unanswered_route().to_owned(), ErrorKind::Service, 1)]
        })
        .await;
        assert_eq!(
            counted(&reporting),
            [(serving.unanswered_route().to_owned(), ErrorKind::Service, 1)],
            "{serving:?}"
        );
    }
}

/// A raw HTTP/2 gRPC request to any path: the `grpc-status` of the answer.
async fn raw_call(
    sender: &mut hyper::client::conn::http2::SendRequest<Body>,
    path: &str,
) -> Option<String> {
    let request = Request::post(format!("http://127.0.0.1{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let in_headers = response.headers().get("grpc-status").cloned();
    let collected = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
    let in_trailers = collected
        .trailers()
        .and_then(|trailers| trailers.get("grpc-status").cloned());
    in_headers
        .or(in_trailers)
        .map(|value| value.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn unknown_methods_and_services_are_not_counted_and_never_become_labels() {
    const PATHS: usize = 10_000;
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let address = serve(serving, &reporting, true).await;
        let io =
            hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(address).await.unwrap());
        let (sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut calls = tokio::task::JoinSet::new();
        for index in 0..PATHS {
            let mut sender = sender.clone();
            // Half unknown methods of the served service, half unknown services.
            let path = match index % 2 {
                0 => format!("/grpc.health.v1.Health/Nope{index}"),
                _ => format!("/pkg{index}.Service/Method"),
            };
            calls.spawn(async move { raw_call(&mut sender, &path).await });
            if calls.len() >= 64 {
                let status = calls.join_next().await.unwrap().unwrap();
                assert_eq!(status.as_deref(), Some("12"), "{serving:?}: UNIMPLEMENTED");
            }
        }
        while let Some(status) = calls.join_next().await {
            assert_eq!(status.unwrap().as_deref(), Some("12"));
        }
        assert_eq!(counted(&reporting), [], "{serving:?}");
        assert_eq!(reporting.breakdown().other, 0);
    }
}

#[tokio::test]
async fn behind_logging_layer_a_server_error_is_logged_not_counted_and_a_client_error_logged_as_success()
 {
    let (events, _guard) = capture();
    for serving in BOTH {
        let reporting = support::quiet_reporting();
        let mut client = client(serve(serving, &reporting, true).await).await;
        let before = events.all().len();
        let _ = check(&mut client, "internal").await;
        let _ = check(&mut client, "not-found").await;
        let _ = check(&mut client, "ok").await;
        let request = HealthCheckRequest {
            service: "internal".to_owned(),
        };
        let mut watch = client.watch(request).await.unwrap().into_inner();
        while let Ok(Some(_)) = watch.message().await {}
        let _ = check(&mut client, "panic").await;
        assert_eq!(counted(&reporting), [], "{serving:?}: all logged");

        let logged: Vec<_> = events.all()[before..]
            .iter()
            .filter(|event| event.target == unhandled::logging::TARGET)
            .cloned()
            .collect();
        assert_eq!(
            logged.len(),
            5,
            "{serving:?}: one event per call: {logged:#?}"
        );
        let by = |route: &str, grpc_status: &str| {
            logged
                .iter()
                .find(|event| {
                    event.fields.get("route").map(String::as_str) == Some(route)
                        && event.fields.get("grpc_status").map(String::as_str) == Some(grpc_status)
                })
                .unwrap_or_else(|| panic!("no event for {route} {grpc_status}: {logged:#?}"))
        };
        let internal = by(CHECK, "13");
        assert_eq!(internal.level, tracing::Level::WARN);
        assert_eq!(internal.field("message"), "request failed");
        assert_eq!(internal.field("kind"), "status");
        assert_eq!(
            internal.field("error"),
            "gRPC status INTERNAL (13): the database is down"
        );
        let not_found = by(CHECK, "5");
        assert_eq!(not_found.level, tracing::Level::DEBUG);
        assert_eq!(not_found.field("message"), "request completed");
        assert_eq!(by(CHECK, "0").field("message"), "request completed");
        let watch = by(WATCH, "13");
        assert_eq!(watch.field("message"), "request failed");
        assert_eq!(watch.span.as_deref(), Some("request"));
        let panic = logged
            .iter()
            .find(|event| event.fields.get("kind").map(String::as_str) == Some("panic"))
            .expect("the panic is logged");
        assert_eq!(panic.field("route"), serving.unanswered_route());
        // The tonic handler's panic, with its line (the health check's `panic!` in this file).
        let location = panic.field("location");
        assert!(location.starts_with(&format!("{}:", file!())), "{location}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logging_layer_s_span_follows_the_rpc_conventions() {
    use opentelemetry::{
        Value,
        trace::{SpanKind, Status as SpanStatus},
    };

    for serving in BOTH {
        let support::Exported {
            provider,
            exporter,
            guard: _guard,
            ..
        } = support::export_spans();

        let reporting = support::quiet_reporting();
        let address = serve(serving, &reporting, true).await;
        let mut client = client(address).await;
        let _ = check(&mut client, "internal").await;
        let _ = check(&mut client, "not-found").await;
        let request = HealthCheckRequest {
            service: "internal".to_owned(),
        };
        let mut watch = client.watch(request).await.unwrap().into_inner();
        while let Ok(Some(_)) = watch.message().await {}
        // A method tonic does not serve.
        let io =
            hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(address).await.unwrap());
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(connection);
        let unknown = raw_call(&mut sender, "/grpc.health.v1.Health/Nope").await;
        assert_eq!(unknown.as_deref(), Some("12"));
        support::eventually(|| {
            exporter.get_finished_spans().is_ok_and(|spans| {
                spans
                    .iter()
                    .filter(|span| span.span_kind == SpanKind::Server)
                    .count()
                    >= 4
            })
        })
        .await;
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let server: Vec<_> = spans
            .iter()
            .filter(|span| span.span_kind == SpanKind::Server)
            .collect();
        assert_eq!(server.len(), 4, "{serving:?}: {spans:#?}");
        let attributes = |index: usize| -> std::collections::HashMap<String, Value> {
            server[index]
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.clone()))
                .collect()
        };
        let text = |index: usize, key: &str| {
            attributes(index)
                .get(key)
                .unwrap_or_else(|| panic!("no {key} in {:#?}", attributes(index)))
                .to_string()
        };
        for index in 0..4 {
            assert_eq!(text(index, "rpc.system"), "grpc");
            assert_eq!(text(index, "rpc.service"), "grpc.health.v1.Health");
        }
        // INTERNAL in the headers (Trailers-Only).
        assert_eq!(server[0].name, "grpc.health.v1.Health/Check");
        assert_eq!(text(0, "rpc.method"), "Check");
        assert_eq!(attributes(0)["rpc.grpc.status_code"], Value::I64(13));
        assert_eq!(text(0, "rpc.response.status_code"), "INTERNAL");
        assert_eq!(
            server[0].status,
            SpanStatus::error("gRPC status INTERNAL (13): the database is down")
        );
        // NOT_FOUND: a client's error, the span's status unset.
        assert_eq!(attributes(1)["rpc.grpc.status_code"], Value::I64(5));
        assert_eq!(server[1].status, SpanStatus::Unset);
        // INTERNAL in the trailers of a stream.
        assert_eq!(server[2].name, "grpc.health.v1.Health/Watch");
        assert_eq!(text(2, "rpc.method"), "Watch");
        assert_eq!(attributes(2)["rpc.grpc.status_code"], Value::I64(13));
        assert_eq!(
            server[2].status,
            SpanStatus::error("gRPC status INTERNAL (13): the database is down")
        );
        // Not served: `rpc.method` is `_OTHER`, and UNIMPLEMENTED without a message no error.
        assert_eq!(text(3, "rpc.method"), "_OTHER");
        assert_eq!(attributes(3)["rpc.grpc.status_code"], Value::I64(12));
        assert_eq!(server[3].status, SpanStatus::Unset);
    }
}

#[tokio::test]
async fn a_server_error_handler_can_tell_a_grpc_call_and_answer_its_own_status() {
    use unhandled::{Error, ErrorContext};
    let handler = |_: &Error, context: &ErrorContext<'_>| {
        context
            .is_grpc()
            .then(|| Status::unavailable("try another replica").into_http::<Body>())
    };
    for serving in BOTH {
        let reporting = ReportingErrorHandler::builder()
            .interval(Duration::ZERO)
            .wrap(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        match serving {
            Serving::Axum => {
                let app: Router = tonic::service::Routes::new(HealthServer::new(Failing))
                    .into_axum_router()
                    .layer(ErrorHandlerLayer::new(reporting.clone()));
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            }
            Serving::Tonic => {
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let server = tonic::transport::Server::builder()
                    .layer(ErrorHandlerLayer::new(reporting.clone()))
                    .add_service(HealthServer::new(Failing));
                tokio::spawn(async move { server.serve_with_incoming(incoming).await.unwrap() });
            }
        }
        let mut client = client(address).await;
        let status = check(&mut client, "panic").await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{serving:?}");
        assert_eq!(status.message(), "try another replica");
        support::eventually(|| reporting.unhandled_count() == 1).await;
        assert_eq!(reporting.unhandled_count(), 1, "still counted");
    }
}

#[tokio::test]
async fn tonic_s_own_timeout_answers_cancelled_before_the_layer_sees_anything() {
    let reporting = support::quiet_reporting();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .timeout(Duration::from_millis(50))
        .layer(ErrorHandlerLayer::new(reporting.clone()))
        .add_service(HealthServer::new(Failing));
    tokio::spawn(async move { server.serve_with_incoming(incoming).await.unwrap() });
    let mut client = client(address).await;
    let status = check(&mut client, "slow").await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    // The layer's future was dropped, as when a client leaves: nothing to count.
    assert_eq!(reporting.unhandled_count(), 0);
}

/// A client that says it is gRPC to a REST route gets that route's HTTP answer to a panic: a
/// `500` that HTTP monitoring sees, not a `200` with `grpc-status: 13`. A route of a service's
/// shape still answers as gRPC.
#[tokio::test]
async fn a_rest_route_answers_a_grpc_looking_client_s_panic_in_http() {
    let reporting = support::quiet_reporting();
    let app: Router = Router::new()
        .route(
            "/orders",
            axum::routing::post(|| async { panic!("the orders table is gone") as &'static str }),
        )
        .route(
            "/shop.Orders/{*rest}",
            axum::routing::post(|| async {
                panic!("the orders service fell over") as &'static str
            }),
        )
        .layer(ErrorHandlerLayer::new(reporting.clone()));
    let call = |path: &str| {
        Request::post(path)
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap()
    };
    let rest = tower::ServiceExt::oneshot(app.clone(), call("/orders"))
        .await
        .unwrap();
    assert_eq!(rest.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(rest.headers().get("grpc-status").is_none());
    let service = tower::ServiceExt::oneshot(app, call("/shop.Orders/Get"))
        .await
        .unwrap();
    assert_eq!(service.status(), axum::http::StatusCode::OK);
    assert_eq!(service.headers()["grpc-status"], "13");
    assert_eq!(
        counted(&reporting),
        [
            ("/orders".to_owned(), ErrorKind::Panic, 1),
            ("/shop.Orders/{*rest}".to_owned(), ErrorKind::Panic, 1)
        ]
    );
}
