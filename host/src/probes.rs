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
use std::time::{Duration, Instant};
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

/// How long one readiness answer serves the probes that follow it.
pub const READINESS_FRESH: Duration = Duration::from_secs(1);

/// The last readiness answer and when it was found: `/readyz` asks every
/// database (on a fleet's lock session, which also carries its record
/// locks) and every bucket, so probes in a loop would put their load on
/// the stores at the rate they arrive. Probes within [`READINESS_FRESH`]
/// of an answer get it, and probes arriving while one asks wait for its
/// answer: the stores are asked at most once a second, however many probe.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    /// The answer of `check`, run now unless an answer is fresh.
    pub async fn answer<F, Fut>(&self, check: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last
            && at.elapsed() < READINESS_FRESH
        {
            return answer.clone();
        }
        let answer = check().await;
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// Serves the endpoints on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    migrations: Arc<Migrations>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
    let readiness = Arc::new(Readiness::default());
    serve_port(listener, "metrics", limits, shutdown, |stream, _| {
        let shared = shared.clone();
        let migrations = migrations.clone();
        let readiness = readiness.clone();
        async move {
            let service = service_fn(move |request| {
                answer(
                    request,
                    shared.clone(),
                    migrations.clone(),
                    readiness.clone(),
                )
            });
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
    readiness: Arc<Readiness>,
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
        "/readyz" => match readiness.answer(|| ready(&shared)).await {
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
/// answers (2 s at most each), a bucket's claim still this server's, and
/// no backend refuses requests because its local storage was taken from
/// under the server, nor the change log because its directory was (see
/// `crate::reload::storage`; the catalog is loaded before the listener
/// starts).
async fn ready(shared: &Shared) -> Result<(), String> {
    if let Some(refusal) = crate::reload::storage::refusals(shared).into_iter().next() {
        return Err(refusal);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probes_in_a_flood_ask_the_stores_once_a_second() {
        let readiness = Arc::new(Readiness::default());
        let asked = Arc::new(AtomicUsize::new(0));
        let probe = |readiness: Arc<Readiness>, asked: Arc<AtomicUsize>| async move {
            readiness
                .answer(|| async {
                    let n = asked.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if n == 0 {
                        Ok(())
                    } else {
                        Err("down".to_string())
                    }
                })
                .await
        };
        // Two hundred probes at once, while the first asks: one asking.
        let probes: Vec<_> = (0..200)
            .map(|_| tokio::spawn(probe(readiness.clone(), asked.clone())))
            .collect();
        for answer in futures::future::join_all(probes).await {
            assert_eq!(answer.unwrap(), Ok(()));
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // Past the second, the next probe asks again and sees the change.
        tokio::time::sleep(READINESS_FRESH).await;
        assert_eq!(
            probe(readiness.clone(), asked.clone()).await,
            Err("down".to_string())
        );
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }
}
