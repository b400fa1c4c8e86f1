//! Pushing samples to one collector: its session, socket and schedule.
//!
//! The agent never hears from a collector, so it must repair every loss
//! by itself:
//! - an auth datagram precedes every fast-lane send, so a restarted
//!   collector knows the session again within one fast interval;
//! - after an auth round, a coin flip decides whether the same auth
//!   datagram is sent again 5 to 20 seconds later (as the original; the
//!   bound is `interval/auth_resend`), so
//!   a lost auth costs seconds, not a whole round;
//! - the collector's name is resolved again at every auth round.

use super::config::CollectorSpec;
use crate::crypto::{random_bytes, SealKey};
use crate::model::HostMeters;
use crate::wire::{split_sample, SenderSession};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Why a send did not happen.
#[derive(Debug)]
pub enum SendError {
    /// The collector's name does not resolve.
    Resolve(String, std::io::Error),
    /// The socket could not be opened or bound.
    Socket(String, std::io::Error),
    /// A datagram could not be sent.
    Send(SocketAddr, std::io::Error),
    /// The random source failed.
    Random(std::io::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Resolve(name, e) => write!(f, "cannot resolve collector {name}: {e}"),
            SendError::Socket(what, e) => write!(f, "cannot open a socket {what}: {e}"),
            SendError::Send(to, e) => write!(f, "cannot send to {to}: {e}"),
            SendError::Random(e) => write!(f, "random source failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Random number below `n` from the kernel source (0 if it fails).
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if random_bytes(&mut b).is_err() || n == 0 {
        return 0;
    }
    u64::from_be_bytes(b) % n
}

/// The agent's link to one collector.
pub struct Link {
    spec: CollectorSpec,
    host: Uuid,
    tenant_key: SealKey,
    session: SenderSession,
    rotated: Instant,
    rotation: Duration,
    resend_max: Duration,
    resend_chance: u64,
    max_datagram: usize,
    socket: Option<(SocketAddr, UdpSocket)>,
    resend: Option<(Instant, Vec<u8>)>,
    /// Bytes sent so far (datagram payloads, without IP/UDP headers).
    pub bytes_sent: u64,
}

impl Link {
    /// A link for `host` to the collector `spec` describes.
    pub fn new(
        spec: CollectorSpec,
        host: Uuid,
        rotation: Duration,
        resend_max: Duration,
        resend_chance: u64,
        max_datagram: usize,
    ) -> Result<Link, SendError> {
        let tenant_key = SealKey::new(&spec.key.0);
        let session = SenderSession::new().map_err(SendError::Random)?;
        Ok(Link {
            host: spec.host.unwrap_or(host),
            spec,
            tenant_key,
            session,
            rotated: Instant::now(),
            rotation,
            resend_max,
            resend_chance,
            max_datagram,
            socket: None,
            resend: None,
            bytes_sent: 0,
        })
    }

    /// `address:port` of the collector, for messages.
    pub fn name(&self) -> String {
        format!("{}:{}", self.spec.address, self.spec.port)
    }

    /// The session id, for messages and tests.
    pub fn session_id(&self) -> u64 {
        self.session.id()
    }

    /// Resolve the collector again and (re)open the socket when its
    /// address changed.
    fn resolve(&mut self) -> Result<(), SendError> {
        let name = self.name();
        let addrs: Vec<SocketAddr> = (self.spec.address.as_str(), self.spec.port)
            .to_socket_addrs()
            .map_err(|e| SendError::Resolve(name.clone(), e))?
            .collect();
        let bind_ip: Option<std::net::IpAddr> =
            self.spec.bind.as_deref().and_then(|b| b.parse().ok());
        let addr = addrs
            .iter()
            .find(|a| bind_ip.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
            .copied()
            .ok_or_else(|| {
                SendError::Resolve(name, std::io::Error::other("no address of the bind family"))
            })?;
        if self.socket.as_ref().is_some_and(|(a, _)| *a == addr) {
            return Ok(());
        }
        let local: SocketAddr = match (bind_ip, addr) {
            (Some(ip), _) => SocketAddr::new(ip, 0),
            (None, SocketAddr::V4(_)) => "0.0.0.0:0"
                .parse()
                .map_err(|e| SendError::Socket("0.0.0.0".into(), std::io::Error::other(e)))?,
            (None, SocketAddr::V6(_)) => "[::]:0"
                .parse()
                .map_err(|e| SendError::Socket("::".into(), std::io::Error::other(e)))?,
        };
        let sock = UdpSocket::bind(local)
            .map_err(|e| SendError::Socket(format!("bound to {local}"), e))?;
        self.socket = Some((addr, sock));
        Ok(())
    }

    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        let Some((addr, sock)) = &self.socket else {
            return Ok(());
        };
        sock.send_to(datagram, addr)
            .map_err(|e| SendError::Send(*addr, e))?;
        self.bytes_sent += datagram.len() as u64;
        Ok(())
    }

    /// Send an auth datagram (re-resolving the collector, rotating the
    /// session key when due), and maybe schedule its resend.
    pub fn auth(&mut self, unix_now: i64) -> Result<(), SendError> {
        self.resolve()?;
        if self.rotated.elapsed() >= self.rotation {
            self.session.rotate_key().map_err(SendError::Random)?;
            self.rotated = Instant::now();
        }
        let d = self
            .session
            .auth_datagram(&self.tenant_key, self.spec.tenant, self.host, unix_now)
            .map_err(SendError::Random)?;
        self.send(&d)?;
        if random_below(100) < self.resend_chance {
            let max = self.resend_max.as_millis() as u64;
            let wait = Duration::from_millis(max / 4 + random_below(max - max / 4 + 1));
            self.resend = Some((Instant::now() + wait, d));
        } else {
            self.resend = None;
        }
        Ok(())
    }

    /// Send a sample, split into datagrams; returns how many.
    pub fn sample(&mut self, meters: &HostMeters, time: i64) -> Result<usize, SendError> {
        if self.socket.is_none() {
            self.resolve()?;
        }
        let payloads = split_sample(time, meters, self.max_datagram).unwrap_or_default();
        let mut out = Vec::with_capacity(self.max_datagram);
        for p in &payloads {
            self.session.seal_meter_into(p, &mut out);
            let d = std::mem::take(&mut out);
            self.send(&d)?;
            out = d;
        }
        Ok(payloads.len())
    }

    /// Send a scheduled auth resend when its time has come.
    pub fn tick(&mut self, now: Instant) -> Result<(), SendError> {
        if let Some((at, d)) = &self.resend {
            if *at <= now {
                let d = d.clone();
                self.resend = None;
                self.send(&d)?;
            }
        }
        Ok(())
    }

    /// When the pending resend is due.
    pub fn next_event(&self) -> Option<Instant> {
        self.resend.as_ref().map(|(at, _)| *at)
    }
}

/// Where in each interval this host sends: a fixed offset derived from
/// its id, so a fleet spreads its datagrams over the whole interval
/// instead of all sending at :00.
pub fn send_offset(host: Uuid, interval: u64) -> Duration {
    let digest = crate::crypto::hmac_sha256(host.as_bytes(), &[b"opticon send offset"]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    let millis = interval.max(1) * 1000;
    Duration::from_millis(u64::from_be_bytes(b) % millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_spread_hosts_over_the_interval() {
        let offsets: Vec<Duration> = (0..200u128)
            .map(|i| send_offset(Uuid::from_u128(i), 60))
            .collect();
        assert!(offsets.iter().all(|o| *o < Duration::from_secs(60)));
        assert_eq!(
            send_offset(Uuid::from_u128(7), 60),
            send_offset(Uuid::from_u128(7), 60)
        );
        let early = offsets
            .iter()
            .filter(|o| **o < Duration::from_secs(30))
            .count();
        assert!(
            (60..140).contains(&early),
            "{early} of 200 in the first half"
        );
    }
}
