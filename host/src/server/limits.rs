//! Connection budgets: in all (a semaphore) and per client address, so one
//! host cannot take every place. The protocol port has two: connections
//! that finished the handshake, and a smaller one for connections still in
//! it (TLS, HELLO, authentication), so that sockets that never say HELLO
//! cannot lock out clients that do. The admin port and the metrics port
//! have their own, and are served through [`serve_port`].

use crate::after_panic::LockOrStop;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Counts places taken, in all and by client address.
pub struct Budget {
    /// What the places are for, in refusals ("connections").
    what: String,
    /// The configuration fields of the two limits, for refusals.
    fields: (String, String),
    total: Arc<Semaphore>,
    max_total: usize,
    max_per_address: usize,
    by_address: Mutex<HashMap<Client, usize>>,
}

/// Who a per-address limit counts: an IPv4 address, or an IPv6 address's
/// /64 network. One IPv6 host holds a whole /64 (and its privacy
/// addresses change within it), so counting its addresses one by one
/// would give it 2^64 places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    /// The client `address` counts as.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(std::net::Ipv6Addr::from_bits(
                    v6.to_bits() & !u128::from(u64::MAX),
                ))),
            },
            v4 => Self(v4),
        }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// A place in a budget; dropping it frees the place.
pub struct Place {
    _total: OwnedSemaphorePermit,
    budget: Arc<Budget>,
    client: Client,
}

impl Budget {
    /// A budget of `max_total` places, `max_per_address` for one address;
    /// `what` and the two field names make the refusals specific.
    pub fn new(
        what: impl Into<String>,
        fields: (impl Into<String>, impl Into<String>),
        max_total: usize,
        max_per_address: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            what: what.into(),
            fields: (fields.0.into(), fields.1.into()),
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            max_per_address,
            by_address: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for `address`, or says which limit refuses it.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Place, String> {
        let Ok(total) = self.total.clone().try_acquire_owned() else {
            return Err(format!(
                "too many {}: this server allows {} ({})",
                self.what, self.max_total, self.fields.0
            ));
        };
        let client = Client::of(address);
        let mut by_address = self.by_address.lock_or_stop();
        let count = by_address.entry(client).or_insert(0);
        if *count >= self.max_per_address {
            return Err(format!(
                "too many {} from {client}: this server allows {} per address ({}; an IPv6 /64 counts as one address)",
                self.what, self.max_per_address, self.fields.1
            ));
        }
        *count += 1;
        Ok(Place {
            _total: total,
            budget: self.clone(),
            client,
        })
    }

    /// The next connection on `listener` that this budget has a place
    /// for, with its place; `None` once `shutdown` turns. A connection past
    /// a limit is closed at once, and said in the log (`port`'s refusals
    /// limited together, see `log_limit`); an accept that fails (the
    /// process out of file descriptors) is said and tried again 50 ms later.
    async fn next_connection(
        self: &Arc<Self>,
        listener: &TcpListener,
        port: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<(TcpStream, SocketAddr, Place)> {
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.changed() => return None,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!("{port} port: accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            match self.admit(peer.ip()) {
                Ok(place) => return Some((stream, peer, place)),
                Err(why) => {
                    crate::log_limit::limited!(
                        warn,
                        &format!("{port} refusal"),
                        %peer,
                        "{port} connection refused: {why}"
                    );
                    drop(stream);
                }
            }
        }
    }
}

/// Serves the connections of `port` (`"admin"`, `"metrics"`) on
/// `listener` until `shutdown` turns, within a budget of its own:
/// `max_total` at once, `max_per_address` from one address. Each admitted
/// connection runs `serve` in a task of its own and keeps its place until
/// that ends.
pub async fn serve_port<F, Fut>(
    listener: TcpListener,
    port: &str,
    (max_total, max_per_address): (usize, usize),
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let budget = Budget::new(
        format!("{port} connections"),
        (
            format!("the {port} port's limit"),
            format!("the {port} port's limit per address"),
        ),
        max_total,
        max_per_address,
    );
    while let Some((stream, peer, place)) =
        budget.next_connection(&listener, port, &mut shutdown).await
    {
        let connection = serve(stream, peer);
        tokio::spawn(async move {
            connection.await;
            drop(place);
        });
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut by_address = self.budget.by_address.lock_or_stop();
        if let Some(count) = by_address.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.client);
            }
        }
    }
}

/// The protocol port's two budgets.
pub struct ConnectionLimits {
    /// Connections that finished the handshake.
    pub connections: Arc<Budget>,
    /// Connections still in the handshake.
    pub handshakes: Arc<Budget>,
}

impl ConnectionLimits {
    /// The budgets of `[server]`.
    pub fn new(connections: (usize, usize), handshakes: (usize, usize)) -> Arc<Self> {
        Arc::new(Self {
            connections: Budget::new(
                "connections",
                (
                    "[server] max_connections",
                    "[server] max_connections_per_address",
                ),
                connections.0,
                connections.1,
            ),
            handshakes: Budget::new(
                "connections in the handshake",
                (
                    "[server] max_handshakes",
                    "[server] max_handshakes_per_address",
                ),
                handshakes.0,
                handshakes.1,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_count_in_all_and_per_address() {
        let limits = ConnectionLimits::new((3, 2), (1, 1));
        let budget = &limits.connections;
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = budget.admit(a).unwrap();
        let _second = budget.admit(a).unwrap();
        let refused = budget.admit(a).err().unwrap();
        assert!(refused.contains("from 10.0.0.1"), "{refused}");
        let _third = budget.admit(b).unwrap();
        let refused = budget.admit(b).err().unwrap();
        assert!(refused.contains("max_connections)"), "{refused}");
        drop(first);
        let _again = budget.admit(a).unwrap();
        assert_eq!(budget.by_address.lock_or_stop()[&Client::of(a)], 2);
        // The handshake budget is apart from the connections'.
        let _shaking = limits.handshakes.admit(a).unwrap();
        let refused = limits.handshakes.admit(b).err().unwrap();
        assert!(
            refused.contains("too many connections in the handshake")
                && refused.contains("max_handshakes)"),
            "{refused}"
        );
    }

    #[test]
    fn an_ipv6_network_of_one_host_counts_as_one_address() {
        let limits = ConnectionLimits::new((10, 2), (10, 10));
        let budget = &limits.connections;
        let host = |text: &str| text.parse::<IpAddr>().unwrap();
        let _one = budget.admit(host("2001:db8:1:2::1")).unwrap();
        let _two = budget
            .admit(host("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .unwrap();
        let refused = budget.admit(host("2001:db8:1:2:abcd::9")).err().unwrap();
        assert!(
            refused.contains(
                "too many connections from 2001:db8:1:2::/64: this server allows 2 per address"
            ),
            "{refused}"
        );
        // Another /64 is another client.
        let _other = budget.admit(host("2001:db8:1:3::1")).unwrap();
        // An IPv4 address reached over IPv6 is that IPv4 address.
        let _v4 = budget.admit(host("192.0.2.7")).unwrap();
        let _mapped = budget.admit(host("::ffff:192.0.2.7")).unwrap();
        let refused = budget.admit(host("192.0.2.7")).err().unwrap();
        assert!(refused.contains("from 192.0.2.7:"), "{refused}");
    }
}
