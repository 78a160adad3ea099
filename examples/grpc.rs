//! A gRPC health service (tonic) whose checks fail on request, behind `unhandled::layer()`, with
//! its Prometheus metrics on the same port.
//!
//! ```text
//! cargo run --example grpc                    # serves on 127.0.0.1:50051 (ADDR to change)
//! cargo run --example grpc -- call internal   # a tonic client: Check("internal")
//! curl -s 127.0.0.1:50051/metrics | grep unhandled
//! ```
//!
//! The service name of a `Check` says how it goes:
//! - `ok` (or empty): `SERVING`
//! - `internal`: `INTERNAL` "the database is down", from the handler (counted, `kind="status"`)
//! - `internal-source`: `INTERNAL` with a source error (counted; `kind="error"` with the cause's
//!   chain when unhandled's feature `tonic` is on)
//! - `not-found`: `NOT_FOUND`, a client's error (not counted)
//! - `panic`: the handler panics; the client gets `INTERNAL` "Internal Server Error" (counted,
//!   `kind="panic"`)
//!
//! `call watch-internal` calls `Watch`, whose stream sends one `SERVING` and then ends with
//! `INTERNAL` in its trailers (counted). Every failure is reported on standard error within
//! `UNHANDLED_ERRORS_REPORT_INTERVAL` (10 s by default), with the method as its route.

use std::{net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use axum::routing::get;
use futures_util::{Stream, StreamExt as _, stream};
use metrics_exporter_prometheus::PrometheusBuilder;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};

struct FailsOnRequest;

fn answer(service: &str) -> Result<HealthCheckResponse, Status> {
    match service {
        "" | "ok" => Ok(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }),
        "internal" => Err(Status::internal("the database is down")),
        "internal-source" => {
            let mut status = Status::internal("loading the health record");
            let refused =
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
            status.set_source(Arc::new(refused));
            Err(status)
        }
        "not-found" => Err(Status::not_found(format!("no service {service:?}"))),
        "panic" => panic!("the health check indexed past the end"),
        other => Err(Status::not_found(format!("no service {other:?}"))),
    }
}

#[tonic::async_trait]
impl Health for FailsOnRequest {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        answer(&request.into_inner().service).map(Response::new)
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let first = stream::once(async {
            Ok(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })
        });
        let then = stream::once(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            answer(&service)
        });
        Ok(Response::new(Box::pin(first.chain(then))))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:50051".to_owned())
        .parse()?;
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("call") {
        return call(address, &args.next().unwrap_or_default()).await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let metrics = PrometheusBuilder::new().install_recorder()?;
    let _flush_on_exit = unhandled::ReportingErrorHandler::global().shutdown_guard();
    let app = tonic::service::Routes::new(HealthServer::new(FailsOnRequest))
        .into_axum_router()
        .layer(unhandled::layer())
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        );
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The tonic client: `Check(service)`, or `Watch(rest)` for `watch-rest`.
async fn call(address: SocketAddr, service: &str) -> Result<(), Box<dyn std::error::Error>> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    if let Some(watched) = service.strip_prefix("watch-") {
        let request = HealthCheckRequest {
            service: watched.to_owned(),
        };
        let mut stream = client.watch(request).await?.into_inner();
        loop {
            match stream.message().await {
                Ok(Some(message)) => println!("Watch: {message:?}"),
                Ok(None) => break,
                Err(status) => {
                    println!("Watch ended: {:?} {:?}", status.code(), status.message());
                    break;
                }
            }
        }
        return Ok(());
    }
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    match client.check(request).await {
        Ok(response) => println!("Check: {:?}", response.into_inner()),
        Err(status) => println!("Check failed: {:?} {:?}", status.code(), status.message()),
    }
    Ok(())
}
