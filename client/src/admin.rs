//! A client of vsamrd's admin interface (reload, status, plugin versions):
//! one JSON line out, one back, per request.

use crate::transport::{self, ConnectOptions, Stream, TlsOptions};
use anyhow::{Context, Result};
use futures::{FutureExt, SinkExt, StreamExt};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};
use vsam_protocol::admin::{
    AdminAnswer, AdminCommand, AdminRequest, MAX_ANSWER_LINE, MirrorsReport,
};

/// Default admin address: loopback, port 2388.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:2388";

/// How long a command the server answers promptly
/// ([`AdminCommand::answered_promptly`]) is waited for, unless
/// [`AdminClient::set_answer_limit`] says otherwise: past it, the address
/// is not vsamrd's admin interface, or the server is stuck.
pub const PROMPT_ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// A connection to vsamrd's admin interface.
pub struct AdminClient {
    lines: Framed<Box<dyn Stream>, LinesCodec>,
    token: String,
    address: String,
    tls: Option<TlsOptions>,
    /// Set by [`AdminClient::set_answer_limit`]; `None`: by command.
    answer_limit: Option<Option<Duration>>,
    /// The command whose answer did not come in time: an answer arriving
    /// later would be taken for the next one's, so the connection serves
    /// no more.
    unanswered: Option<&'static str>,
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
        Ok(Self {
            lines: Self::open(address, tls).await?,
            token,
            address: address.to_string(),
            tls: tls.cloned(),
            answer_limit: None,
            unanswered: None,
        })
    }

    async fn open(
        address: &str,
        tls: Option<&TlsOptions>,
    ) -> Result<Framed<Box<dyn Stream>, LinesCodec>> {
        let options = ConnectOptions {
            tls: tls.cloned(),
            token: None,
            ..Default::default()
        };
        let limit = transport::DEFAULT_CONNECT_TIMEOUT;
        let (stream, _) = tokio::time::timeout(limit, transport::connect(address, &options, false))
            .await
            .unwrap_or_else(|_| Err((format!("no connection within {limit:?}"), false)))
            .map_err(|(reason, _)| anyhow::Error::msg(reason))
            .with_context(|| {
                format!(
                    "cannot reach the admin interface of vsamrd at {address}: is it running, with [admin] enabled on that address?"
                )
            })?;
        Ok(Framed::new(
            stream,
            LinesCodec::new_with_max_length(MAX_ANSWER_LINE),
        ))
    }

    /// Connects again if the server let the connection go while nothing
    /// was asked on it: vsamrd closes an admin connection that sends no
    /// request within 10 s of connecting or 10 minutes of the last, and a
    /// restart closes them all. Its end (or a last line) then waits to be
    /// read; nothing was sent on it, so nothing is lost by a new one. A
    /// connection still open has nothing to read between requests.
    async fn reopen_if_let_go(&mut self) -> Result<()> {
        if self.lines.next().now_or_never().is_some() {
            self.lines = Self::open(&self.address, self.tls.as_ref()).await?;
        }
        Ok(())
    }

    /// How long every request waits for its answer from now on (`None`:
    /// as long as it takes). Without it, a command the server answers
    /// promptly waits [`PROMPT_ANSWER_LIMIT`], and one that may take
    /// minutes (a reload, a mirror's verify...) as long as it takes.
    pub fn set_answer_limit(&mut self, limit: Option<Duration>) {
        self.answer_limit = Some(limit);
    }

    /// How long `command`'s answer is waited for.
    fn answer_limit(&self, command: &AdminCommand) -> Option<Duration> {
        match self.answer_limit {
            Some(limit) => limit,
            None => command.answered_promptly().then_some(PROMPT_ANSWER_LIMIT),
        }
    }

    /// Sends one request and waits for its answer; a refusal by the server
    /// is an error with its message.
    pub async fn request(&mut self, command: AdminCommand) -> Result<AdminAnswer> {
        if let Some(earlier) = self.unanswered {
            anyhow::bail!(
                "the admin connection to {} is given up: it did not answer `{earlier}` in time, and its late answer would be taken for the next one; connect again",
                self.address
            );
        }
        self.reopen_if_let_go().await?;
        let (name, limit) = (command.name(), self.answer_limit(&command));
        let request = AdminRequest {
            token: self.token.clone(),
            command,
        };
        let exchange = async {
            self.lines
                .send(serde_json::to_string(&request)?)
                .await
                .with_context(|| format!("sending to {}", self.address))?;
            self.lines
                .next()
                .await
                .with_context(|| format!("{} closed the admin connection", self.address))
        };
        let next = match limit {
            None => exchange.await?,
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(next) => next?,
                Err(_) => {
                    self.unanswered = Some(name);
                    anyhow::bail!(
                        "{} did not answer `{name}` within {} s: is it vsamrd's admin interface ([admin] listen), and is the server stuck (its log says)? vsamr admin --timeout SECS waits longer, 0 as long as it takes",
                        self.address,
                        limit.as_secs_f64()
                    );
                }
            },
        };
        let line = next
            .map_err(|e| match e {
                LinesCodecError::MaxLineLengthExceeded => anyhow::anyhow!(
                    "{} sent more than {} MiB without ending its answer: is it vsamrd's admin interface ([admin] listen)?",
                    self.address,
                    MAX_ANSWER_LINE >> 20
                ),
                LinesCodecError::Io(e) => {
                    anyhow::Error::new(e).context(format!("reading from {}", self.address))
                }
            })?;
        let answer = serde_json::from_str(&line).map_err(|error| {
            if line.contains("speaking the binary VSAM redirector protocol") {
                anyhow::anyhow!(
                    "{} is a VSAM port, not the admin interface: it answered \"{}\"; give vsamr admin the server's [admin] listen address (--admin, VSAMR_ADMIN; 127.0.0.1:2388 by default)",
                    self.address,
                    shown(&line)
                )
            } else {
                anyhow::anyhow!(
                    "{} sent an unreadable admin answer ({error}): \"{}\"; is it vsamrd's admin interface ([admin] listen)?",
                    self.address,
                    shown(&line)
                )
            }
        })?;
        match answer {
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

/// At most 200 characters of what another program sent, its control
/// characters escaped, for a message.
fn shown(text: &str) -> String {
    let mut shown: String = text
        .trim()
        .chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect();
    if text.trim().chars().count() > 200 {
        shown.push_str("...");
    }
    shown
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

#[cfg(test)]
mod tests {
    use super::AdminClient;
    use tokio::io::AsyncWriteExt;
    use vsam_protocol::admin::{AdminCommand, MAX_ANSWER_LINE};

    #[tokio::test]
    async fn an_endpoint_sending_without_end_is_refused_at_the_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let sender = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let chunk = vec![b'x'; 1 << 20];
            // Past the bound, then more, never a newline: the client must
            // stop reading at the bound, not gather all of it.
            for _ in 0..(MAX_ANSWER_LINE >> 20) * 2 {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut client = AdminClient::connect(&address, "token".into())
            .await
            .unwrap();
        let error = client.request(AdminCommand::Status).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{address} sent more than 64 MiB without ending its answer: is it vsamrd's admin interface ([admin] listen)?"
            )
        );
        drop(client);
        sender.await.unwrap();
    }
}
