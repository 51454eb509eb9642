//! The admin interface: `vsamr admin` talks to it (reload, status, plugin
//! versions). JSON lines over TCP on loopback by default; every request
//! carries the token from the server's token file ([`token`]).

mod report;
pub mod token;

use crate::reload::Reloader;
use crate::vsam::Shared;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
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
    /// When the server started.
    pub started: SystemTime,
    /// The VSAM listen address.
    pub listen: SocketAddr,
}

/// Serves admin connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    context: Arc<AdminContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_connection(stream, peer, context.clone()));
                }
                Err(error) => {
                    tracing::warn!("admin accept failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, context: Arc<AdminContext>) {
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_REQUEST_LINE));
    while let Some(line) = lines.next().await {
        let answer = match line {
            Ok(line) => answer(&line, peer, &context).await,
            Err(error) => {
                let answer = AdminAnswer::Error {
                    message: format!("unreadable admin request: {error}"),
                };
                let _ = send(&mut lines, &answer).await;
                return;
            }
        };
        if send(&mut lines, &answer).await.is_err() {
            return;
        }
    }
}

async fn send(
    lines: &mut Framed<TcpStream, LinesCodec>,
    answer: &AdminAnswer,
) -> Result<(), tokio_util::codec::LinesCodecError> {
    let text = serde_json::to_string(answer).expect("admin answers serialize");
    lines.send(text).await
}

/// Checks and runs one request line.
async fn answer(line: &str, peer: SocketAddr, context: &AdminContext) -> AdminAnswer {
    let request: AdminRequest = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(error) => {
            return AdminAnswer::Error {
                message: format!(
                    "not an admin request: {error}; send {{\"token\": ..., \"command\": \"status\"}} (vsamr admin does)"
                ),
            };
        }
    };
    if !token::matches(&request.token, &context.token) {
        tracing::warn!(%peer, command = ?request.command, "admin request refused: wrong token");
        return AdminAnswer::Error {
            message: "wrong admin token: use the one in the server's token file ([admin] token_file, by default admin.token in its data dir)".into(),
        };
    }
    tracing::info!(%peer, command = ?request.command, "admin request");
    match request.command {
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
    }
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
