//! Addresses as people read them: a dual-stack socket (bound to `::`)
//! sees an IPv4 peer as `::ffff:192.0.2.7`; every record, log line,
//! access check and output shows it as `192.0.2.7`.

use std::net::{IpAddr, SocketAddr};

/// `ip` with an IPv4 address mapped into IPv6 turned back into IPv4.
pub fn unmapped_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `addr` with its address [`unmapped_ip`] (the port kept).
pub fn unmapped(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(unmapped_ip(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_reads_as_ipv4() {
        let a: SocketAddr = "[::ffff:127.0.0.1]:1047".parse().unwrap();
        assert_eq!(unmapped(a).to_string(), "127.0.0.1:1047");
        let b: SocketAddr = "[::1]:1047".parse().unwrap();
        assert_eq!(unmapped(b), b);
    }
}
