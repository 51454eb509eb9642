//! The `[metrics]` listener: `/metrics` (Prometheus text format),
//! `/healthz` (the process answers) and `/readyz` (every shared database
//! answers a query), for Prometheus, load balancers and Kubernetes probes.
//!
//! The port is bounded like the others: a few connections at once (and
//! fewer from one address), a few seconds to send a request's headers and
//! a minute of life each, so that whoever reaches it cannot hold the
//! process's file descriptors and memory, which the VSAM port needs.

use crate::metrics::{BackendRow, Scrape};
use crate::migrate::Migrations;
use crate::server::limits::serve_port;
use crate::vsam::shared::Shared;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Most connections at once, and from one address: a scraper and a few
/// probes use one or two each. Past either, a connection is closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// See [`MAX_CONNECTIONS`].
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;

/// Time a client gets to send a request's headers, from its connection or
/// from the answer before on a connection kept alive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a connection lives, whatever it does: a client that stops
/// reading an answer gives its place back then.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    migrations: Arc<Migrations>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
    serve_port(listener, "metrics", limits, shutdown, |stream, _| {
        let shared = shared.clone();
        let migrations = migrations.clone();
        async move {
            let service =
                service_fn(move |request| answer(request, shared.clone(), migrations.clone()));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
        }
    })
    .await;
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    migrations: Arc<Migrations>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()));
    }
    Ok(match request.uri().path() {
        "/metrics" => {
            let scrape = Scrape {
                backends: backends(&shared),
                units_open: shared.units().len(),
                migrations: migrations.rows(),
                mirrors: shared.changes.followers().map(|f| f.report()),
            };
            let mut response = reply(StatusCode::OK, shared.metrics.render(scrape));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "/healthz" => reply(StatusCode::OK, "ok\n".into()),
        "/readyz" => match ready(&shared).await {
            Ok(()) => reply(StatusCode::OK, "ready\n".into()),
            Err(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        other => reply(
            StatusCode::NOT_FOUND,
            format!("{other}: not here; try /metrics, /healthz or /readyz\n"),
        ),
    })
}

/// What the scrape reads of each backend.
fn backends(shared: &Shared) -> Vec<BackendRow> {
    shared
        .routing()
        .backends
        .iter()
        .map(|(name, handle)| BackendRow {
            backend: name.clone(),
            counts: handle.counts(),
            in_flight: handle
                .generations()
                .iter()
                .map(|generation| generation.in_flight)
                .sum(),
        })
        .collect()
}

/// Ready when every PostgreSQL database and S3 bucket of the backends
/// answers (2 s at most each), a bucket's claim still this server's (the
/// catalog is loaded before the listener starts; local stores are the
/// server's own files).
async fn ready(shared: &Shared) -> Result<(), String> {
    for (url, session) in shared.fleet.sessions() {
        if let Err(refusal) = session.reachable().await {
            let place = url.split('@').next_back().unwrap_or("");
            return Err(format!("database {place}: {refusal}"));
        }
    }
    for bucket in shared.buckets().iter() {
        bucket.reachable(std::time::Duration::from_secs(2)).await?;
    }
    Ok(())
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
