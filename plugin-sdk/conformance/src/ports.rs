//! Free loopback ports for servers a test starts as processes of their own.
//!
//! A port found free by binding port 0 comes from the kernel's ephemeral
//! range, the range it also hands to outgoing connections: between the
//! check and the server's own bind, a connection (a client, a plugin
//! reaching its store) may take it, and the server fails to start with
//! "Address already in use". Ports below that range are never handed out
//! that way, so one found free stays free unless another test's server
//! binds it first (their harnesses start such a server again on others).

use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;

/// The first port of the kernel's ephemeral range.
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// A port on 127.0.0.1 nobody listens on now, below the ephemeral range
/// (from half its first port up), starting at a random place so that
/// tests running at once rarely try the same one.
pub fn free_port() -> u16 {
    let high = ephemeral_low().max(2048);
    let low = high / 2;
    let span = u64::from(high - low);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let start = hasher.finish() % span;
    (0..span)
        .map(|step| low + ((start + step) % span) as u16)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map(|address| address.port())
                .expect("a loopback port")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_bindable() {
        let high = ephemeral_low().max(2048);
        for _ in 0..20 {
            let port = free_port();
            assert!((high / 2..high).contains(&port), "{port} vs {high}");
            TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }
}
