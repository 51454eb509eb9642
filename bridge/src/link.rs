//! The bridge's connection to vsamrd: one per program, made at the first
//! OPEN of a mapped file, driven by the program's thread in a tokio
//! runtime of its own while a request waits for its answer. Every
//! request has a time limit, so a server that stops answering gives the
//! program status 30, never a hang.

use std::future::Future;
use std::time::Duration;
use vsam_client::{ClientError, ConnectOptions, Connection, VsamError};

/// Why a request did not get a VSAM answer.
#[derive(Debug)]
pub enum Failure {
    /// VSAM answered with a non-zero return code.
    Vsam(VsamError),
    /// The connection failed, was lost, or the server took too long.
    Lost(String),
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Vsam(e) => Failure::Vsam(e),
            ClientError::Connect {
                server,
                reason,
                answered,
            } => Failure::Lost(format!(
                "cannot connect to {server}: {reason}{}",
                if answered {
                    ""
                } else {
                    " (is vsamrd running there? set VSAMFH_SERVER)"
                }
            )),
            other => Failure::Lost(other.to_string()),
        }
    }
}

/// The runtime and the connection.
pub struct Link {
    runtime: tokio::runtime::Runtime,
    server: String,
    options: ConnectOptions,
    timeout: Duration,
    connection: Option<Connection>,
}

impl Link {
    /// A link to `server`, not yet connected; `options` say how to connect.
    pub fn new(
        server: String,
        options: ConnectOptions,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        // The program's own thread drives the connection while it waits
        // for an answer: the answer wakes that thread only, where a runtime
        // thread of its own would be woken first and then wake the program.
        // Between requests nothing needs to run (the server never speaks
        // unasked but to close, which the next request then reads).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            server,
            options,
            timeout,
            connection: None,
        })
    }

    /// The connection, made now if there is none (or the last was lost).
    pub fn connection(&mut self) -> Result<Connection, Failure> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let server = self.server.clone();
        let options = self.options.clone();
        let connection =
            self.run(async move { Connection::connect_with(&server, &options).await })?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Runs one request to completion within the time limit. A lost
    /// connection is dropped, so the next OPEN connects again; one given
    /// several servers (`VSAMFH_SERVER=a:2387,b:2387`) is kept: it moves to
    /// the next server itself, and its open files with it.
    pub fn run<T>(
        &mut self,
        request: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, Failure> {
        let limit = self.timeout;
        let outcome = self.runtime.block_on(async move {
            match tokio::time::timeout(limit, request).await {
                Ok(result) => result.map_err(Failure::from),
                Err(_) => Err(Failure::Lost(format!(
                    "no answer within {} s (VSAMFH_TIMEOUT)",
                    limit.as_secs()
                ))),
            }
        });
        if let Err(Failure::Lost(_)) = &outcome
            && !self.connection.as_ref().is_some_and(Connection::fails_over)
        {
            self.connection = None;
        }
        outcome
    }

    /// vsamrd's address, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }
}
