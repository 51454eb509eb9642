//! A connection to vsamrd, or to a fleet of them: requests pipelined over
//! one socket at a time ([`crate::link`]), moving to the next server of the
//! list when that socket is lost.
//!
//! Failover is on when the address lists several servers
//! (`a:2387,b:2387`). What a lost socket means for the request in flight:
//! - a request that changes nothing (PING, INFO, LIST, ROLLBACK, and a GET
//!   or POINT of an open dataset, see [`crate::Dataset`]) is sent again on
//!   the next server;
//! - anything else is in doubt and fails with [`ClientError::ServerLost`]:
//!   it may or may not have been done, and only a read tells;
//! - a unit of work with changes not committed was rolled back with the
//!   server's connection: its COMMIT fails, and so does every change of it
//!   made after, until ROLLBACK ends it.

use crate::error::ClientError;
use crate::link::Link;
use crate::transport::ConnectOptions;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vsam_protocol::{Answer, Request, Welcome};

/// A connection to vsamrd. Cheap to clone and share between tasks: the
/// clones share the socket.
///
/// Poll every request you start until it ends, or drop it. Callers of one
/// connection take turns reading its socket (no task of its own reads
/// it), so a request future left pending and not polled, say in a
/// `FuturesOrdered` while its owner awaits another request of the same
/// connection, may hold that turn and stall every caller. Await such
/// futures alongside the other work (`select!`, `join!`), or give the
/// other work a connection of its own.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    /// The servers, in the order given.
    addresses: Vec<String>,
    options: ConnectOptions,
    /// The socket in use.
    link: Mutex<Arc<Link>>,
    /// How many times the connection moved to another socket.
    moves: AtomicU64,
    /// One reconnection at a time.
    reconnecting: tokio::sync::Mutex<()>,
    /// The unit of work, as far as a failover concerns it.
    unit: Mutex<UnitState>,
}

/// What the client knows of the connection's unit of work.
#[derive(Default)]
struct UnitState {
    /// A change joined the unit since its last COMMIT or ROLLBACK.
    changed: bool,
    /// The unit was rolled back by the loss of its server: why.
    lost: Option<String>,
}

impl Connection {
    /// Connects over plain TCP without a token and performs the handshake.
    pub async fn connect(server: &str) -> Result<Self, ClientError> {
        Self::connect_with(server, &ConnectOptions::default()).await
    }

    /// Connects as `options` say (TLS, token) and performs the handshake.
    /// `server` may list several servers of a fleet, separated by commas
    /// (`db1:2387,db2:2387`): they are tried in order, and the first that
    /// completes the handshake is used; if none does, the error names each
    /// with its reason. With several, the connection fails over to the
    /// next when its socket is lost (see the module documentation).
    pub async fn connect_with(server: &str, options: &ConnectOptions) -> Result<Self, ClientError> {
        let mut addresses: Vec<String> = server
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(str::to_string)
            .collect();
        if addresses.is_empty() {
            addresses.push(server.trim().to_string());
        }
        let link = connect_any(&addresses, 0, options, server).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                addresses,
                options: options.clone(),
                link: Mutex::new(link),
                moves: AtomicU64::new(0),
                reconnecting: tokio::sync::Mutex::new(()),
                unit: Mutex::new(UnitState::default()),
            }),
        })
    }

    /// The handshake answer (name, version, limits) of the server in use.
    pub fn welcome(&self) -> Arc<Welcome> {
        self.current().welcome().clone()
    }

    /// The address of the server in use.
    pub fn server(&self) -> String {
        self.current().server.clone()
    }

    /// True if the connection moves to another server when its socket is
    /// lost (several addresses were given).
    pub fn fails_over(&self) -> bool {
        self.shared.addresses.len() > 1
    }

    /// How many times the connection moved to another server.
    pub fn failovers(&self) -> u64 {
        self.shared.moves.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<Link> {
        self.shared.link.lock().unwrap().clone()
    }

    /// The socket to send on: the current one, or, if it was lost and the
    /// connection fails over, a new one to the next server that answers.
    pub(crate) async fn link(&self) -> Result<Arc<Link>, ClientError> {
        let link = self.current();
        if !self.fails_over() || link.look().await.is_none() {
            return Ok(link);
        }
        self.replace(&link).await
    }

    /// Moves off `lost` (unless another caller already did): connects to
    /// the servers of the list in turn, starting after the lost one.
    pub(crate) async fn replace(&self, lost: &Arc<Link>) -> Result<Arc<Link>, ClientError> {
        let _one = self.shared.reconnecting.lock().await;
        let current = self.current();
        if !Arc::ptr_eq(&current, lost) {
            return Ok(current);
        }
        let reason = lost
            .lost()
            .unwrap_or_else(|| "connection closed".to_string());
        let list = self.shared.addresses.join(",");
        let next = connect_any(
            &self.shared.addresses,
            lost.index + 1,
            &self.shared.options,
            &list,
        )
        .await?;
        {
            let mut unit = self.shared.unit.lock().unwrap();
            if std::mem::take(&mut unit.changed) {
                unit.lost = Some(format!(
                    "the connection to {} was lost ({reason}) with changes not committed: the server rolled the unit of work back",
                    lost.server
                ));
            }
        }
        *self.shared.link.lock().unwrap() = next.clone();
        self.shared.moves.fetch_add(1, Ordering::Relaxed);
        Ok(next)
    }

    /// Sends one request and waits for its answer. Many calls may be in
    /// flight at once on one connection.
    pub async fn call(&self, request: Request) -> Result<Answer, ClientError> {
        let name = request_name(&request);
        let again = self.fails_over() && changes_nothing(&request);
        let mut request = Some(request);
        let mut tries = self.shared.addresses.len() + 1;
        loop {
            let link = self.link().await?;
            let sent = match (again, &mut request) {
                (true, Some(request)) => request.clone(),
                (_, request) => request.take().expect("sent once unless sent again"),
            };
            match link.call(sent).await {
                Err(ClientError::Closed(reason)) if self.fails_over() => {
                    tries -= 1;
                    if again && tries > 0 {
                        self.replace(&link).await?;
                        continue;
                    }
                    return Err(ClientError::ServerLost {
                        dataset: "-".into(),
                        request: name,
                        detail: format!(
                            "the connection to {} was lost before the answer ({reason}): whether it was done is unknown; look before repeating it",
                            link.server
                        ),
                    });
                }
                other => return other,
            }
        }
    }

    /// Notes that a change joined the unit of work.
    pub(crate) fn unit_changed(&self) {
        self.shared.unit.lock().unwrap().changed = true;
    }

    /// A change of the unit of work was lost in flight with its server,
    /// which rolls the unit back.
    pub(crate) fn unit_in_doubt(&self, why: String) {
        let mut unit = self.shared.unit.lock().unwrap();
        unit.changed = false;
        unit.lost.get_or_insert(why);
    }

    /// Why the unit of work was rolled back by a lost server, if it was.
    pub(crate) fn unit_lost(&self) -> Option<String> {
        self.shared.unit.lock().unwrap().lost.clone()
    }

    /// The unit of work ended (COMMIT or ROLLBACK): returns why it had been
    /// rolled back by a lost server, if it had.
    pub(crate) fn unit_ended(&self) -> Option<String> {
        let mut unit = self.shared.unit.lock().unwrap();
        unit.changed = false;
        unit.lost.take()
    }
}

/// Connects to the first of `addresses`, from `first` on and round to the
/// start, that completes the handshake.
async fn connect_any(
    addresses: &[String],
    first: usize,
    options: &ConnectOptions,
    list: &str,
) -> Result<Arc<Link>, ClientError> {
    if addresses.len() == 1 {
        return Link::connect(&addresses[0], 0, options, false).await;
    }
    let mut reasons = Vec::with_capacity(addresses.len());
    let mut any_answered = false;
    for turn in 0..addresses.len() {
        let index = (first + turn) % addresses.len();
        match Link::connect(&addresses[index], index, options, true).await {
            Ok(link) => return Ok(link),
            Err(ClientError::Connect {
                server,
                reason,
                answered,
            }) => {
                reasons.push(format!("{server}: {reason}"));
                any_answered |= answered;
            }
            Err(other) => return Err(other),
        }
    }
    Err(ClientError::Connect {
        server: list.to_string(),
        reason: format!("no server of the list answered ({})", reasons.join("; ")),
        answered: any_answered,
    })
}

/// Requests that may be sent again after a lost answer: they change
/// nothing (ROLLBACK of a unit its server already rolled back included).
fn changes_nothing(request: &Request) -> bool {
    matches!(
        request,
        Request::Ping
            | Request::Info { .. }
            | Request::List { .. }
            | Request::Listcat { .. }
            | Request::Rollback
    )
}

/// The request's name, for messages.
pub(crate) fn request_name(request: &Request) -> &'static str {
    request.name()
}
