//! A client of vsamrd's admin interface (reload, status, plugin versions):
//! one JSON line out, one back, per request.

use crate::transport::{self, ConnectOptions, Stream, TlsOptions};
use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::codec::{Framed, LinesCodec};
use vsam_protocol::admin::{AdminAnswer, AdminCommand, AdminRequest, MirrorsReport};

/// Default admin address: loopback, port 2388.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:2388";

/// A connection to vsamrd's admin interface.
pub struct AdminClient {
    lines: Framed<Box<dyn Stream>, LinesCodec>,
    token: String,
    address: String,
}

impl AdminClient {
    /// Connects over plain TCP; the token goes with every request.
    pub async fn connect(address: &str, token: String) -> Result<Self> {
        Self::connect_with(address, token, None).await
    }

    /// Connects, with TLS when `tls` is given; the token goes with every
    /// request.
    pub async fn connect_with(
        address: &str,
        token: String,
        tls: Option<&TlsOptions>,
    ) -> Result<Self> {
        let options = ConnectOptions {
            tls: tls.cloned(),
            token: None,
            ..Default::default()
        };
        let (stream, _) = transport::connect(address, &options, false)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!(
                    "cannot reach the admin interface of vsamrd at {address}: is it running, with [admin] enabled on that address?"
                )
            })?;
        Ok(Self {
            lines: Framed::new(stream, LinesCodec::new()),
            token,
            address: address.to_string(),
        })
    }

    /// Sends one request and waits for its answer; a refusal by the server
    /// is an error with its message.
    pub async fn request(&mut self, command: AdminCommand) -> Result<AdminAnswer> {
        let request = AdminRequest {
            token: self.token.clone(),
            command,
        };
        self.lines
            .send(serde_json::to_string(&request)?)
            .await
            .with_context(|| format!("sending to {}", self.address))?;
        let line = self
            .lines
            .next()
            .await
            .with_context(|| format!("{} closed the admin connection", self.address))?
            .with_context(|| format!("reading from {}", self.address))?;
        match serde_json::from_str(&line)
            .with_context(|| format!("{} sent an unreadable admin answer", self.address))?
        {
            AdminAnswer::Error { message } => anyhow::bail!("{message}"),
            answer => Ok(answer),
        }
    }

    /// The mirrors and the change stream, as `vsamr admin mirror status`
    /// shows them.
    pub async fn mirror_status(&mut self) -> Result<MirrorsReport> {
        match self.request(AdminCommand::MirrorStatus).await? {
            AdminAnswer::Mirrors(report) => Ok(report),
            other => anyhow::bail!("{} answered a mirror status with {other:?}", self.address),
        }
    }

    /// Waits until the mirrors and the stream have caught up
    /// ([`MirrorsReport::caught_up`]), asking every `every`; fails with
    /// the last report after `limit`.
    pub async fn mirrors_caught_up(
        &mut self,
        every: Duration,
        limit: Duration,
    ) -> Result<MirrorsReport> {
        let started = Instant::now();
        loop {
            let report = self.mirror_status().await?;
            if report.caught_up() {
                return Ok(report);
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "the mirrors of {} did not catch up within {limit:?}: {report:?}",
                    self.address
                );
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// Reads an admin token from a token file.
pub fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the admin token from {}: give --token-file (the server's [admin] token_file, by default admin.token in its data dir) or set VSAMR_ADMIN_TOKEN",
            path.display()
        )
    })?;
    Ok(text.trim().to_string())
}
