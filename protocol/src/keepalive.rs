//! TCP keepalive on redirector connections. Between requests neither side
//! sends anything, so a peer that vanishes without closing (a machine
//! powered off, a network cut, a NAT that forgot the connection) would go
//! unnoticed: by the server for `[server] idle_timeout_secs` (an hour by
//! default), while the dead client's record locks and unit of work hold
//! others back; by a client waiting for an answer, forever. With
//! keepalive the kernel probes an idle connection, and one that does not
//! answer is closed within about a minute.

use std::io;
use std::time::Duration;

/// Idle time before the first probe.
pub const IDLE: Duration = Duration::from_secs(30);
/// Time between unanswered probes.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes after which the connection is closed: a dead peer
/// is found [`IDLE`] + `PROBES` x [`INTERVAL`] (one minute) after its last
/// sign of life.
pub const PROBES: u32 = 3;

/// Turns keepalive on for a connected TCP socket, with the timings above.
#[cfg(unix)]
pub fn enable(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    let timings = socket2::TcpKeepalive::new()
        .with_time(IDLE)
        .with_interval(INTERVAL)
        .with_retries(PROBES);
    socket2::SockRef::from(socket).set_tcp_keepalive(&timings)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_socket_probes_with_the_timings_given() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        super::enable(&stream).unwrap();
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), super::IDLE);
        assert_eq!(socket.tcp_keepalive_interval().unwrap(), super::INTERVAL);
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), super::PROBES);
    }
}
