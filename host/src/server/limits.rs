//! Connection limits: in all (a semaphore) and per client address, so one
//! host cannot take every connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Counts open connections, in all and by client address.
pub struct ConnectionLimits {
    total: Arc<Semaphore>,
    max_total: usize,
    max_per_address: usize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place; dropping it frees the place.
pub struct Admitted {
    _total: OwnedSemaphorePermit,
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl ConnectionLimits {
    /// Limits of `max_total` connections, `max_per_address` from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            max_per_address,
            by_address: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `address`, or says which limit
    /// refuses it.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Admitted, String> {
        let Ok(total) = self.total.clone().try_acquire_owned() else {
            return Err(format!(
                "too many connections: this server allows {} ([server] max_connections)",
                self.max_total
            ));
        };
        let mut by_address = self.by_address.lock().unwrap();
        let count = by_address.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            return Err(format!(
                "too many connections from {address}: this server allows {} per address ([server] max_connections_per_address)",
                self.max_per_address
            ));
        }
        *count += 1;
        Ok(Admitted {
            _total: total,
            limits: self.clone(),
            address,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut by_address = self.limits.by_address.lock().unwrap();
        if let Some(count) = by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_in_all_and_per_address() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        let refused = limits.admit(a).err().unwrap();
        assert!(refused.contains("from 10.0.0.1"), "{refused}");
        let _third = limits.admit(b).unwrap();
        let refused = limits.admit(b).err().unwrap();
        assert!(refused.contains("max_connections)"), "{refused}");
        drop(first);
        let _again = limits.admit(a).unwrap();
        assert_eq!(limits.by_address.lock().unwrap()[&a], 2);
    }
}
