//! ICMP echo of every host's source address, for `link/rtt` and
//! `link/loss` (the original's `ping.c`, with IPv6 working this time).
//!
//! Sockets: an unprivileged ICMP datagram socket where the kernel allows
//! it (`net.ipv4.ping_group_range`), otherwise a raw socket, which needs
//! root and so is opened before the collector drops privileges. Each
//! target gets one echo per interval; a target without a reply by its next
//! echo counts a loss. The last [`RING`] outcomes give the meters: the loss
//! as a percentage, the round trip as a weighted mean that favours the
//! newest replies (weights 11, then 3 for the next five, then 1).

use crate::svc;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::io::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Outcomes kept per target.
pub const RING: usize = 32;
/// Targets not asked for in this long are dropped.
const FORGET: Duration = Duration::from_secs(180);
/// Marks our echo payloads.
const MAGIC: &[u8; 8] = b"opticon1";

/// How one address family's socket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP`: the kernel sets the echo id.
    Datagram,
    /// `SOCK_RAW`: every ICMP packet arrives (IPv4 with its IP header).
    Raw,
}

/// One family's socket.
struct Socket {
    sock: UdpSocket,
    kind: Kind,
    v6: bool,
}

/// The ICMP sockets, opened before privileges are dropped.
pub struct Sockets {
    v4: Option<Socket>,
    v6: Option<Socket>,
}

fn open_socket(v6: bool) -> Option<Socket> {
    let (family, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    for (ty, kind) in [
        (libc::SOCK_DGRAM, Kind::Datagram),
        (libc::SOCK_RAW, Kind::Raw),
    ] {
        // SAFETY: socket() has no memory effects; the descriptor is owned
        // by the UdpSocket from here on.
        let fd = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, proto) };
        if fd >= 0 {
            // SAFETY: fd is a fresh socket nobody else owns.
            let sock = unsafe { UdpSocket::from_raw_fd(fd) };
            return Some(Socket { sock, kind, v6 });
        }
    }
    None
}

impl Sockets {
    /// Open what the kernel and our privileges allow; say what that was.
    pub fn open() -> Sockets {
        let s = Sockets {
            v4: open_socket(false),
            v6: open_socket(true),
        };
        let describe = |s: &Option<Socket>| match s {
            Some(Socket {
                kind: Kind::Datagram,
                ..
            }) => "unprivileged ICMP socket",
            Some(Socket {
                kind: Kind::Raw, ..
            }) => "raw socket",
            None => "unavailable (needs root or net.ipv4.ping_group_range)",
        };
        svc::log::info(&format!(
            "ping: IPv4 {}, IPv6 {}",
            describe(&s.v4),
            describe(&s.v6)
        ));
        s
    }
}

/// What one target's pings measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Weighted mean round trip, milliseconds.
    pub rtt_ms: f64,
    /// Lost echoes among the last [`RING`], percent.
    pub loss_pct: f64,
}

/// One target's state.
struct Target {
    /// Round trips in milliseconds, newest first; `None` for a loss.
    ring: Vec<Option<f64>>,
    /// The echo in flight: its sequence number and whether it was answered.
    outstanding: Option<(u16, bool)>,
    sent_at: Instant,
    wanted: Instant,
}

impl Target {
    fn record(&mut self, outcome: Option<f64>) {
        if self.ring.is_empty() {
            // The first reply stands for the whole ring.
            if let Some(rtt) = outcome {
                self.ring = vec![Some(rtt); RING];
            }
            return;
        }
        self.ring.insert(0, outcome);
        self.ring.truncate(RING);
    }

    fn link(&self) -> Option<Link> {
        if self.ring.is_empty() {
            return None;
        }
        let lost = self.ring.iter().filter(|r| r.is_none()).count();
        let (mut sum, mut weights) = (0.0, 0.0);
        for (i, rtt) in self.ring.iter().enumerate() {
            if let Some(rtt) = rtt {
                let w = match i {
                    0 => 11.0,
                    1..=5 => 3.0,
                    _ => 1.0,
                };
                sum += w * rtt;
                weights += w;
            }
        }
        Some(Link {
            rtt_ms: if weights > 0.0 { sum / weights } else { 0.0 },
            loss_pct: 100.0 * lost as f64 / RING as f64,
        })
    }
}

/// Shared between the collector and the ping threads.
#[derive(Default)]
struct Shared {
    targets: HashMap<IpAddr, Target>,
    seq: u16,
}

/// The running pinger; stops its threads when dropped.
pub struct Pinger {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

/// The internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum, id, sequence, then our payload.
fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    while p.len() < 64 {
        p.extend_from_slice(MAGIC);
    }
    p.truncate(64);
    // ICMPv6 checksums cover a pseudo-header: the kernel fills them in.
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The sequence number of an echo reply of ours in `packet` (as received
/// from the socket), or `None` for anything else.
fn parse_reply(s: &Socket, packet: &[u8], id: u16) -> Option<u16> {
    let icmp = if !s.v6 && s.kind == Kind::Raw {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(ihl..)?
    } else {
        packet
    };
    let reply = if s.v6 { 129 } else { 0 };
    if icmp.len() < 16 || icmp[0] != reply || icmp[8..16] != MAGIC[..] {
        return None;
    }
    // A datagram socket only ever sees its own echoes (the kernel chose
    // the id); a raw one sees every reply on the host.
    if s.kind == Kind::Raw && u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    Some(u16::from_be_bytes([icmp[6], icmp[7]]))
}

impl Pinger {
    /// Start pinging with `sockets`, each target once per `interval`.
    /// Returns `None` when no socket could be opened.
    pub fn start(sockets: Sockets, interval: Duration) -> Option<Pinger> {
        if sockets.v4.is_none() && sockets.v6.is_none() {
            return None;
        }
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let id = (std::process::id() & 0xffff) as u16;
        let socks: Vec<Arc<Socket>> = [sockets.v4, sockets.v6]
            .into_iter()
            .flatten()
            .map(Arc::new)
            .collect();
        for s in &socks {
            let _ = s.sock.set_read_timeout(Some(STOP_CHECK));
            let (s, shared, stop) = (Arc::clone(s), Arc::clone(&shared), Arc::clone(&stop));
            let spawned = std::thread::Builder::new()
                .name("ping-receive".into())
                .spawn(move || receive(&s, &shared, &stop, id));
            if let Err(e) = spawned {
                svc::log::warn(&format!("ping: cannot start a thread: {e}"));
            }
        }
        let (shared2, stop2) = (Arc::clone(&shared), Arc::clone(&stop));
        let spawned = std::thread::Builder::new()
            .name("ping-send".into())
            .spawn(move || send(&socks, &shared2, &stop2, id, interval));
        if let Err(e) = spawned {
            svc::log::warn(&format!("ping: cannot start a thread: {e}"));
            return None;
        }
        Some(Pinger { shared, stop })
    }

    /// Keep pinging `ip`, and return what its pings measured so far.
    pub fn link(&self, ip: IpAddr) -> Option<Link> {
        let ip = crate::svc::net::unmapped_ip(ip);
        let mut shared = self.shared.lock().ok()?;
        let now = Instant::now();
        let target = shared.targets.entry(ip).or_insert_with(|| Target {
            ring: Vec::new(),
            outstanding: None,
            sent_at: now,
            wanted: now,
        });
        target.wanted = now;
        target.link()
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How often an idle ping thread looks whether the collector stops: it
/// blocks otherwise (an idle collector must not wake for nothing).
const STOP_CHECK: Duration = Duration::from_secs(2);

fn send(
    socks: &[Arc<Socket>],
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
    id: u16,
    every: Duration,
) {
    while !stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        let targets: Vec<IpAddr> = match shared.lock() {
            Ok(mut s) => {
                s.targets.retain(|_, t| t.wanted.elapsed() < FORGET);
                s.targets.keys().copied().collect()
            }
            Err(_) => return,
        };
        // Spread the round over the interval.
        let gap = every / (targets.len().max(1) as u32);
        for ip in targets {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(sock) = socks.iter().find(|s| s.v6 == ip.is_ipv6()) else {
                continue;
            };
            let seq = {
                let Ok(mut s) = shared.lock() else { return };
                s.seq = s.seq.wrapping_add(1);
                let seq = s.seq;
                if let Some(t) = s.targets.get_mut(&ip) {
                    if let Some((_, false)) = t.outstanding {
                        t.record(None);
                    }
                    t.outstanding = Some((seq, false));
                    t.sent_at = Instant::now();
                }
                seq
            };
            let _ = sock
                .sock
                .send_to(&echo_request(sock.v6, id, seq), SocketAddr::new(ip, 0));
            std::thread::sleep(gap.min(Duration::from_millis(100)));
        }
        let rest = every.saturating_sub(round.elapsed());
        let until = Instant::now() + rest;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(STOP_CHECK.min(rest));
        }
    }
}

fn receive(s: &Socket, shared: &Mutex<Shared>, stop: &AtomicBool, id: u16) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = s.sock.recv_from(&mut buf) else {
            continue;
        };
        let Some(seq) = parse_reply(s, &buf[..n], id) else {
            continue;
        };
        let Ok(mut shared) = shared.lock() else {
            return;
        };
        if let Some(t) = shared
            .targets
            .get_mut(&crate::svc::net::unmapped_ip(from.ip()))
        {
            if t.outstanding == Some((seq, false)) {
                t.outstanding = Some((seq, true));
                let rtt = t.sent_at.elapsed().as_secs_f64() * 1e3;
                t.record(Some(rtt));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_and_ring() {
        // RFC 1071's example words sum to 0xddf2; the checksum is its
        // complement.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        let p = echo_request(false, 7, 9);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        let mut t = Target {
            ring: Vec::new(),
            outstanding: None,
            sent_at: Instant::now(),
            wanted: Instant::now(),
        };
        t.record(None);
        assert_eq!(
            t.link(),
            None,
            "losses before the first reply count nothing"
        );
        t.record(Some(2.0));
        assert_eq!(
            t.link(),
            Some(Link {
                rtt_ms: 2.0,
                loss_pct: 0.0
            })
        );
        t.record(None);
        t.record(Some(4.0));
        let l = t.link().unwrap();
        assert_eq!(l.loss_pct, 100.0 / 32.0);
        // Newest 4.0 at weight 11, the loss skipped, then 2.0 at weight 3
        // four times and at weight 1 for the remaining 26.
        let expect = (11.0 * 4.0 + 4.0 * 3.0 * 2.0 + 26.0 * 2.0) / (11.0 + 12.0 + 26.0);
        assert!((l.rtt_ms - expect).abs() < 1e-9, "{l:?}");
    }
}
