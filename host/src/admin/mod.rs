//! The admin interface: `vsamr admin` talks to it (reload, status, plugin
//! versions). JSON lines over TCP on loopback by default; every request
//! carries the token from the server's token file ([`token`]).

mod connections;
mod mirrors;
mod report;
pub mod token;

use crate::log_limit::limited;
use crate::reload::Reloader;
use crate::server::limits::serve_port;
use crate::server::transport::{self, Accepted, ListenerSecurity};
use crate::vsam::Shared;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::codec::{Framed, LinesCodec};
use vsam_protocol::admin::{AdminAnswer, AdminCommand, AdminRequest, MAX_REQUEST_LINE};

/// What admin requests work on.
pub struct AdminContext {
    /// The server's shared state.
    pub shared: Arc<Shared>,
    /// The reloader.
    pub reloader: Arc<Reloader>,
    /// Live migrations.
    pub migrations: Arc<crate::migrate::Migrations>,
    /// The token requests must carry.
    pub token: String,
    /// How long a wrong token waits for its answer (`[server]
    /// auth_failure_delay_ms`), after which its connection is closed.
    pub auth_failure_delay: Duration,
    /// How long an answer may wait to be taken (`[server]
    /// request_timeout_secs`), after which its connection is closed: a
    /// client that asks and does not read holds no task, and no state of a
    /// stopped server, for long.
    pub answer_timeout: Duration,
    /// TLS and the plain-TCP policy (the protocol port's).
    pub security: ListenerSecurity,
    /// When the server started.
    pub started: SystemTime,
    /// The VSAM listen address.
    pub listen: SocketAddr,
}

/// Serves admin connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    context: Arc<AdminContext>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_ADDRESS);
    let stopping = shutdown.clone();
    serve_port(listener, "admin", limits, shutdown, |stream, peer| {
        accept(stream, peer, context.clone(), stopping.clone())
    })
    .await;
}

/// Time an admin client gets for TLS and its first request.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time an admin connection may stay without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Most admin connections at once, and from one address: the port is for
/// operators and tools, a few at a time.
pub const MAX_CONNECTIONS: usize = 64;
/// See [`MAX_CONNECTIONS`].
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 16;

/// Runs TLS when the client starts it, refuses plain TCP the policy does
/// not allow (with a readable answer), then serves the connection.
async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    context: Arc<AdminContext>,
    stopping: watch::Receiver<bool>,
) {
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        transport::accept(stream, peer, &context.security),
    )
    .await;
    match accepted {
        Ok(Ok(Accepted::Plain {
            stream,
            refused: None,
        })) => serve_connection(stream, peer, context, stopping).await,
        Ok(Ok(Accepted::Plain {
            stream,
            refused: Some(why),
        })) => {
            limited!(warn, "admin refusal", %peer, "admin connection refused: {why}");
            let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_REQUEST_LINE));
            let refusal = AdminAnswer::Error { message: why };
            let _ = tokio::time::timeout(context.answer_timeout, send(&mut lines, &refusal)).await;
        }
        Ok(Ok(Accepted::Tls { stream, .. })) => {
            serve_connection(*stream, peer, context, stopping).await
        }
        Ok(Err(error)) => {
            limited!(info, "admin closed early", %peer, "admin connection closed before its first request: {error}")
        }
        Err(_) => {
            limited!(info, "admin closed early", %peer, "admin connection closed: nothing within {HANDSHAKE_TIMEOUT:?}")
        }
    }
}

/// Answers the connection's requests one by one, until it closes, stays
/// idle past [`IDLE_TIMEOUT`], leaves an answer untaken past
/// [`AdminContext::answer_timeout`], or the server stops: a client left
/// connected must not keep a stopped server's state (its database
/// connections among it) alive. A request under way is answered first.
async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    context: Arc<AdminContext>,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(mut lines) = first_bytes(stream, peer, &context).await else {
        return;
    };
    let mut wait = HANDSHAKE_TIMEOUT;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(wait, lines.next()) => next,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let Ok(Some(line)) = next else {
            return;
        };
        wait = IDLE_TIMEOUT;
        let answer = match line {
            Ok(line) => match answer(&line, peer, &context).await {
                Ok(answer) => answer,
                Err(refusal) => {
                    // A wrong token is answered after the delay and ends
                    // the connection: one connection cannot pipeline
                    // guesses, and an address has at most
                    // MAX_CONNECTIONS_PER_ADDRESS of them.
                    tokio::select! {
                        _ = tokio::time::sleep(context.auth_failure_delay) => {}
                        _ = stopping.wait_for(|stop| *stop) => return,
                    }
                    let _ = deliver(&mut lines, &refusal, peer, &context, &mut stopping).await;
                    return;
                }
            },
            Err(error) => {
                let answer = AdminAnswer::Error {
                    message: format!("unreadable admin request: {error}"),
                };
                let _ = deliver(&mut lines, &answer, peer, &context, &mut stopping).await;
                return;
            }
        };
        if !deliver(&mut lines, &answer, peer, &context, &mut stopping).await {
            return;
        }
    }
}

/// Sends `answer` unless the client leaves it untaken past
/// [`AdminContext::answer_timeout`] or the server stops first; false if
/// it was not sent, and the connection is to end.
async fn deliver<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Framed<S, LinesCodec>,
    answer: &AdminAnswer,
    peer: SocketAddr,
    context: &AdminContext,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        sent = tokio::time::timeout(context.answer_timeout, send(lines, answer)) => match sent {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                limited!(info, "admin time limit", %peer, "admin connection closed: the client took no answer within {:?} ([server] request_timeout_secs)", context.answer_timeout);
                false
            }
        },
        _ = stopping.wait_for(|stop| *stop) => false,
    }
}

/// Reads the connection's first bytes: a VSAM client's HELLO (`vsamr` or
/// a redirector client given the admin port by mistake) is answered in
/// its own protocol, naming the port it wants, and the connection ends
/// (`None`); anything else is the beginning of the first request line.
async fn first_bytes<S>(
    mut stream: S,
    peer: SocketAddr,
    context: &AdminContext,
) -> Option<Framed<S, LinesCodec>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A HELLO frame: length (4), kind 0x01, id (4), the magic.
    const HELLO_MAGIC_AT: usize = 9;
    let mut first = bytes::BytesMut::with_capacity(4096);
    let reading = async {
        while first.len() < HELLO_MAGIC_AT + 4 && !first.contains(&b'\n') {
            if stream.read_buf(&mut first).await.ok()? == 0 {
                break;
            }
        }
        Some(())
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, reading)
        .await
        .ok()??;
    if first.len() >= HELLO_MAGIC_AT + 4
        && first[4] == 0x01
        && first[HELLO_MAGIC_AT..HELLO_MAGIC_AT + 4] == *vsam_protocol::message::MAGIC
    {
        limited!(info, "admin closed early", %peer, "a VSAM client connected to the admin port; told the protocol port");
        let refusal = vsam_protocol::Answer::ProtocolError {
            code: vsam_protocol::protocol_error::NOT_A_CLIENT,
            fatal: true,
            message: format!(
                "this is vsamrd's admin port (JSON lines, for vsamr admin); VSAM requests go to its protocol port, {} ([server] listen)",
                context.listen
            ),
        };
        let frame = vsam_protocol::encode_frame(0, &refusal);
        let _ = tokio::time::timeout(context.answer_timeout, stream.write_all(&frame)).await;
        return None;
    }
    let mut parts = tokio_util::codec::FramedParts::new::<String>(
        stream,
        LinesCodec::new_with_max_length(MAX_REQUEST_LINE),
    );
    parts.read_buf = first;
    Some(Framed::from_parts(parts))
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Framed<S, LinesCodec>,
    answer: &AdminAnswer,
) -> Result<(), tokio_util::codec::LinesCodecError> {
    let text = serde_json::to_string(answer).expect("admin answers serialize");
    lines.send(text).await
}

/// Checks and runs one request line: its answer, or the refusal of a
/// wrong token, after which the connection ends.
async fn answer(
    line: &str,
    peer: SocketAddr,
    context: &AdminContext,
) -> Result<AdminAnswer, AdminAnswer> {
    let request: AdminRequest = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(error) => {
            return Ok(AdminAnswer::Error {
                message: format!(
                    "not an admin request: {error}; send {{\"token\": ..., \"command\": \"status\"}} (vsamr admin does)"
                ),
            });
        }
    };
    if !token::matches(&request.token, &context.token) {
        context
            .shared
            .metrics
            .refused(crate::metrics::Refusal::AdminToken);
        limited!(warn, "admin token refusal", %peer, command = ?request.command, "admin request refused: wrong token");
        return Err(AdminAnswer::Error {
            message: "wrong admin token: use the one in the server's token file ([admin] token_file, by default admin.token in its data dir)".into(),
        });
    }
    tracing::info!(%peer, command = ?request.command, "admin request");
    Ok(match request.command {
        AdminCommand::Reload => AdminAnswer::Reload(context.reloader.reload("admin").await),
        AdminCommand::Status => AdminAnswer::Status(report::status(context).await),
        AdminCommand::Plugins => AdminAnswer::Plugins {
            versions: report::plugins(context).await,
        },
        AdminCommand::Migrate { dataset, to } => {
            migration(context.migrations.start(&dataset, &to).await, "migrate")
        }
        AdminCommand::Finalize { dataset } => {
            migration(context.migrations.finalize(&dataset).await, "finalize")
        }
        AdminCommand::Rollback { dataset } => {
            migration(context.migrations.rollback(&dataset).await, "rollback")
        }
        AdminCommand::RollbackUnit { connection } => roll_back_unit(context, connection),
        AdminCommand::Connections => connections::list(context),
        AdminCommand::Disconnect { connection } => connections::disconnect(context, connection),
        command @ (AdminCommand::MirrorStatus
        | AdminCommand::MirrorPause { .. }
        | AdminCommand::MirrorResume { .. }
        | AdminCommand::MirrorResync { .. }
        | AdminCommand::MirrorVerify { .. }) => mirrors::answer(context, command).await,
    })
}

fn migration(
    outcome: Result<vsam_protocol::admin::MigrationRow, String>,
    what: &str,
) -> AdminAnswer {
    match outcome {
        Ok(row) => AdminAnswer::Migration(row),
        Err(message) => {
            tracing::warn!("{what} refused: {message}");
            AdminAnswer::Error {
                message: format!("{what} refused: {message}"),
            }
        }
    }
}

/// Rolls back a connection's unit of work for the operator.
fn roll_back_unit(context: &AdminContext, connection: u64) -> AdminAnswer {
    let shared = &context.shared;
    let Some(unit) = shared
        .units()
        .into_iter()
        .find(|unit| unit.session == connection)
    else {
        return AdminAnswer::Error {
            message: format!(
                "connection {connection} has no unit of work holding changes (vsamr admin status lists those that do)"
            ),
        };
    };
    let reason = "rolled back by the operator (vsamr admin rollback-unit)".to_string();
    if !shared.roll_back_unit(connection, reason) {
        return AdminAnswer::Error {
            message: format!("the unit of work of connection {connection} ended meanwhile"),
        };
    }
    shared.metrics.unit_rolled_back("operator");
    tracing::warn!(
        connection,
        records = unit.records,
        "unit of work rolled back by the operator; its records are free"
    );
    AdminAnswer::UnitRolledBack(report::unit_row(unit))
}
