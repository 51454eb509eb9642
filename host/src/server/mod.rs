//! The TCP server: accepts connections on port 2387 within the connection
//! limits ([`limits`]), tells TLS from plain TCP ([`transport`]), runs the
//! handshake and serves each connection's requests (`connection`).

mod accept_failures;
mod connection;
pub mod frame_budget;
mod idle_poll;
pub mod limits;
pub mod transport;

use crate::config::ServerConfig;
use crate::vsam::Shared;
use accept_failures::AcceptFailures;
use futures::SinkExt;
use limits::ConnectionLimits;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::codec::FramedWrite;
use tracing::Instrument;
use transport::ListenerSecurity;
use vsam_protocol::{Answer, ServerCodec, protocol_error};

pub use connection::server_banner;

/// How long connections get to finish in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the listener needs besides the shared state: limits, time limits
/// and transport security.
#[derive(Clone)]
pub struct ServeSettings {
    /// Most connections in all.
    pub max_connections: usize,
    /// Most connections from one address.
    pub max_connections_per_address: usize,
    /// Most connections in the handshake, in all and from one address.
    pub max_handshakes: (usize, usize),
    /// Time for TLS and HELLO.
    pub handshake_timeout: Duration,
    /// How long a client refused for who it is waits for the refusal.
    pub auth_failure_delay: Duration,
    /// Time without a request before a connection is closed (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Time for a request to arrive whole, and for an answer to be taken.
    pub request_timeout: Duration,
    /// TLS and the plain-TCP policy.
    pub security: ListenerSecurity,
    /// Memory for frames being received, shared by all connections.
    pub frame_budget: Arc<frame_budget::FrameBudget>,
    /// How long a runtime thread keeps polling after a request before it
    /// sleeps (zero: sleep at once); see `idle_poll`.
    pub idle_poll: Duration,
}

impl ServeSettings {
    /// The settings of `[server]`, with `security` for the transport.
    pub fn new(server: &ServerConfig, security: ListenerSecurity) -> Self {
        Self {
            max_connections: server.max_connections,
            max_connections_per_address: server.max_connections_per_address,
            max_handshakes: (server.max_handshakes, server.max_handshakes_per_address),
            handshake_timeout: Duration::from_secs(server.handshake_timeout_secs),
            auth_failure_delay: Duration::from_millis(server.auth_failure_delay_ms),
            idle_timeout: match server.idle_timeout_secs {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            request_timeout: Duration::from_secs(server.request_timeout_secs),
            security,
            frame_budget: frame_budget::FrameBudget::new(
                server
                    .frame_memory_mb
                    .unwrap_or_else(frame_budget::FrameBudget::default_mib),
            ),
            idle_poll: Duration::from_micros(server.idle_poll_us),
        }
    }
}

/// Accepts connections until `shutdown` turns true, then lets every
/// connection finish its current request, closes them and returns.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    settings: ServeSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = ConnectionLimits::new(
        (
            settings.max_connections,
            settings.max_connections_per_address,
        ),
        settings.max_handshakes,
    );
    let settings = Arc::new(settings);
    let mut connections = JoinSet::new();
    let poll = idle_poll::IdlePoll::new(
        settings.idle_poll,
        shared.metrics.idle_poll_counter(),
        shared.background.clone(),
    );
    let pollers: Vec<_> = poll
        .iter()
        .flat_map(|poll| {
            let count = idle_poll::pollers(
                tokio::runtime::Handle::current().metrics().num_workers(),
                crate::machine::cores(),
            );
            (0..count).map(|_| tokio::spawn(poll.clone().run()))
        })
        .collect();
    let mut accept_failures = AcceptFailures::default();
    let mut unit_clock = tokio::time::interval(Duration::from_secs(1));
    unit_clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = unit_clock.tick() => {
                shared.expire_units();
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => {
                        accept_failures.passed(Instant::now());
                        pair
                    }
                    Err(error) => {
                        accept_failures.failed(&error, Instant::now());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Until its HELLO, a connection holds a place in the
                // handshake budget only; then one among the connections.
                let handshake = match limits.handshakes.admit(peer.ip()) {
                    Ok(place) => place,
                    Err(why) => {
                        shared.metrics.refused(crate::metrics::Refusal::Limit);
                        crate::log_limit::limited!(warn, "connection refusal", %peer, "refused: {why}");
                        connections.spawn(refuse(stream, why));
                        continue;
                    }
                };
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                let settings = settings.clone();
                let limits = limits.clone();
                let poll = poll.clone();
                let span = connection::span(peer);
                connections.spawn(
                    async move {
                        connection::serve(stream, peer, shared, &settings, (handshake, limits), poll, shutdown)
                            .await;
                    }
                    .instrument(span),
                );
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    for poller in pollers {
        poller.abort();
    }
    tracing::info!(
        "shutting down: finishing {} connection(s)",
        connections.len()
    );
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections did not finish within {DRAIN_TIMEOUT:?}; closing them");
        connections.shutdown().await;
    }
    for dataset in shared.open_datasets() {
        if let Err(status) = dataset.flush().await {
            tracing::warn!(dataset = %dataset.def.name, "flush at shutdown failed: {status}");
        }
    }
}

/// Tells a connection over a limit why it is closed (in a frame a plain
/// client reads; a TLS client sees the connection close).
async fn refuse(stream: TcpStream, message: String) {
    let mut writer = FramedWrite::new(stream, ServerCodec::new(1 << 16));
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        writer.send((
            0,
            Answer::ProtocolError {
                code: protocol_error::LIMIT,
                fatal: true,
                message,
            },
        )),
    )
    .await;
}
