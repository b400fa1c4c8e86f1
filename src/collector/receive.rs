//! The receive thread: it only reads datagrams into a bounded queue, so
//! write cycles, syncs and slow disks never leave the kernel's buffer
//! unread. When the queue is full, datagrams are dropped and counted,
//! never overwritten, except that an auth datagram arriving at a full
//! queue takes the place of the newest meter datagrams (see [`Backlog`]).
//!
//! It reads up to [`BATCH`] datagrams per system call (`recvmmsg`), and
//! refuses what needs no key to refuse (no magic, another version, a
//! length no datagram has, more bytes than `network/max_datagram`) before
//! it is queued, counting each under its reason: a flood of garbage costs
//! the decoding thread nothing. The queue is bounded in datagrams and in
//! bytes: a sender of large datagrams cannot grow the collector's memory
//! past `network/queue_bytes`.
//!
//! Neither side blocks per datagram while traffic flows: the thread reads
//! until the socket is empty and then naps for [`NAP`], and the consumer
//! takes the whole queue at once and naps the same way. At a steady 2,000
//! datagrams a second, waking a sleeping thread for each one cost a
//! quarter of the collector's CPU; napping costs a few milliseconds of latency,
//! and the kernel's receive buffer holds far more than that of any rate
//! the collector can process. Once [`IDLE_NAPS`] naps in a row
//! found nothing, each side blocks instead (the thread in poll(2), the
//! consumer on a condition variable the thread signals), so an idle
//! collector costs nothing.

use crate::wire::{peek, Datagram};
use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a side that just ran dry waits before looking again: each
/// wake costs a few microseconds of system calls whether it finds one
/// datagram or a hundred, and the kernel's buffer (`network/rcvbuf`,
/// 8 MB) holds 5 ms of 100,000 datagrams a second several times over.
pub const NAP: Duration = Duration::from_millis(5);
/// Naps in a row that found nothing before a side blocks instead (at a
/// steady 2,000 datagrams a second, the first nap finds the next).
pub const IDLE_NAPS: u32 = 4;
/// Longest block of the receive thread in poll(2), so that it sees a
/// stop.
const IDLE_POLL_MS: libc::c_int = 2000;
/// Datagrams read per system call at most.
pub const BATCH: usize = 32;
/// Largest datagram read (the largest UDP payload).
const MAX_DATAGRAM: usize = 65536;
/// Reasons the receive thread refuses datagrams itself.
pub const EARLY_REASONS: [&str; 4] = ["bad_magic", "bad_version", "malformed", "oversize"];
/// Bytes a queued datagram costs beyond its own (the vector and the
/// address), counted against the byte bound.
const ENTRY_OVERHEAD: usize = 64;

/// A received datagram and its sender.
pub type Received = (Vec<u8>, SocketAddr);

/// Counters of the receive thread, shared with the metrics.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Datagrams waiting.
    pub depth: Arc<AtomicUsize>,
    /// Datagrams dropped because the queue was full.
    pub drops: Arc<AtomicU64>,
    /// Datagrams refused before queueing, per [`EARLY_REASONS`].
    pub early: Arc<[AtomicU64; 4]>,
    /// Bytes queued (the consumer's part included).
    pub bytes: Arc<AtomicUsize>,
}

/// The bounds of the receive queue.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Datagrams at most.
    pub datagrams: usize,
    /// Bytes at most.
    pub bytes: usize,
    /// Largest datagram accepted.
    pub max_datagram: usize,
}

/// Datagrams waiting, in two lines (auth datagrams, and the rest), each
/// entry numbered as it arrived so that they are taken in arrival order.
/// Two lines so that an auth datagram arriving at a full queue can take
/// the place of the newest meter datagram: a lost meter datagram costs
/// one sample, a lost auth datagram its host's samples until the next
/// one (an agent sends one every 30 samples; at a million hosts, a new
/// fleet's first minute is half auth datagrams, and an overflow then left
/// 18,375 hosts without a session).
#[derive(Default)]
struct Backlog {
    auths: VecDeque<(u64, Received)>,
    meters: VecDeque<(u64, Received)>,
    /// The next arrival's number.
    next: u64,
}

impl Backlog {
    fn len(&self) -> usize {
        self.auths.len() + self.meters.len()
    }

    fn is_empty(&self) -> bool {
        self.auths.is_empty() && self.meters.is_empty()
    }

    /// Queue `d` (`auth`: an auth datagram) within `bounds` (datagrams
    /// here, bytes counted in `bytes`), or count it in `drops`; an auth
    /// datagram that does not fit drops the newest meter datagrams until
    /// it does (each counted too).
    fn admit(
        &mut self,
        d: Received,
        auth: bool,
        bounds: (usize, usize),
        bytes: &AtomicUsize,
        drops: &AtomicU64,
    ) {
        let cost = d.0.len() + ENTRY_OVERHEAD;
        let (capacity, byte_bound) = bounds;
        let fits =
            |b: &Backlog| b.len() < capacity && bytes.load(Ordering::Relaxed) + cost <= byte_bound;
        if auth {
            while !fits(self) {
                let Some((_, (evicted, _))) = self.meters.pop_back() else {
                    break;
                };
                bytes.fetch_sub(evicted.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
                drops.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !fits(self) {
            drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        bytes.fetch_add(cost, Ordering::Relaxed);
        let entry = (self.next, d);
        self.next += 1;
        if auth {
            self.auths.push_back(entry);
        } else {
            self.meters.push_back(entry);
        }
    }

    /// The datagram that arrived first.
    fn pop(&mut self) -> Option<Received> {
        let auth_first = match (self.auths.front(), self.meters.front()) {
            (Some(a), Some(m)) => a.0 < m.0,
            (a, _) => a.is_some(),
        };
        let line = if auth_first {
            &mut self.auths
        } else {
            &mut self.meters
        };
        line.pop_front().map(|(_, d)| d)
    }
}

/// The queue between the thread and the consumer, and whether the
/// consumer waits for it (both under one lock: no wake-up is lost).
#[derive(Default)]
struct Shared {
    queue: Backlog,
    waiting: bool,
}

/// The consuming end of the receive queue; stops the thread when dropped.
pub struct Queue {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    local: Backlog,
    stats: QueueStats,
    stop: Arc<AtomicBool>,
}

/// Start reading `sock` (made non-blocking here) into a queue within
/// `bounds`.
pub fn start(sock: UdpSocket, bounds: Bounds) -> io::Result<Queue> {
    sock.set_nonblocking(true)?;
    let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
    let stats = QueueStats::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (queue, thread_stats, thread_stop) =
        (Arc::clone(&shared), stats.clone(), Arc::clone(&stop));
    let capacity = bounds.datagrams.max(1);
    let byte_bound = bounds.bytes.max(MAX_DATAGRAM + ENTRY_OVERHEAD);
    let max_datagram = bounds.max_datagram;
    std::thread::Builder::new()
        .name("receive".into())
        .spawn(move || {
            let mut reader = BatchReader::new();
            let mut batch = Vec::with_capacity(BATCH);
            let mut auth: Vec<bool> = Vec::with_capacity(BATCH);
            let mut empty = 0u32;
            while !thread_stop.load(Ordering::Relaxed) {
                batch.clear();
                match reader.read(&sock, &mut batch) {
                    Ok(0) => {}
                    Ok(_) => {
                        empty = 0;
                        // Whether each datagram kept is an auth datagram,
                        // told by the one look at its header.
                        auth.clear();
                        batch.retain(|(d, _)| match peek(d) {
                            Ok(_) if d.len() > max_datagram => {
                                thread_stats.early[3].fetch_add(1, Ordering::Relaxed);
                                false
                            }
                            Ok(kind) => {
                                auth.push(matches!(kind, Datagram::Auth(_)));
                                true
                            }
                            Err(r) => {
                                if let Some(i) =
                                    EARLY_REASONS.iter().position(|x| *x == r.counter())
                                {
                                    thread_stats.early[i].fetch_add(1, Ordering::Relaxed);
                                }
                                false
                            }
                        });
                        let Ok(mut shared) = queue.0.lock() else {
                            return;
                        };
                        let q = &mut shared.queue;
                        for (d, &auth) in batch.drain(..).zip(&auth) {
                            q.admit(
                                d,
                                auth,
                                (capacity, byte_bound),
                                &thread_stats.bytes,
                                &thread_stats.drops,
                            );
                        }
                        thread_stats.depth.store(q.len(), Ordering::Relaxed);
                        if shared.waiting && !shared.queue.is_empty() {
                            queue.1.notify_one();
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {}
                }
                empty = empty.saturating_add(1);
                if empty < IDLE_NAPS {
                    std::thread::sleep(NAP);
                } else {
                    wait_readable(&sock, IDLE_POLL_MS);
                }
            }
        })?;
    Ok(Queue {
        shared,
        local: Backlog::default(),
        stats,
        stop,
    })
}

impl Queue {
    /// The next datagram if one is waiting.
    pub fn try_next(&mut self) -> Option<Received> {
        if self.local.is_empty() {
            let mut shared = self.shared.0.lock().ok()?;
            std::mem::swap(&mut shared.queue, &mut self.local);
            self.stats.depth.store(0, Ordering::Relaxed);
        }
        let next = self.local.pop()?;
        self.stats
            .bytes
            .fetch_sub(next.0.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
        Some(next)
    }

    /// Replace `batch` with up to `max` waiting datagrams, in arrival
    /// order.
    pub fn take_batch(&mut self, batch: &mut Vec<Received>, max: usize) {
        batch.clear();
        while batch.len() < max {
            match self.try_next() {
                Some(d) => batch.push(d),
                None => break,
            }
        }
    }

    /// Block until a datagram is waiting or `limit` passed (an idle
    /// consumer with nothing due before then).
    pub fn wait(&mut self, limit: Duration) {
        if !self.local.is_empty() {
            return;
        }
        let (lock, ready) = &*self.shared;
        let Ok(mut shared) = lock.lock() else {
            return;
        };
        if !shared.queue.is_empty() {
            return;
        }
        shared.waiting = true;
        let mut shared = match ready.wait_timeout_while(shared, limit, |s| s.queue.is_empty()) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
        shared.waiting = false;
    }

    /// Shared counters for the metrics.
    pub fn stats(&self) -> QueueStats {
        self.stats.clone()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Block until `sock` is readable or `ms` milliseconds passed.
fn wait_readable(sock: &UdpSocket, ms: libc::c_int) {
    let mut fd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that lives across the call.
    unsafe {
        libc::poll(&mut fd, 1, ms);
    }
}

/// Buffers for one `recvmmsg` call.
struct BatchReader {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl BatchReader {
    fn new() -> BatchReader {
        let bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
        // SAFETY: sockaddr_storage and mmsghdr are plain C structs for
        // which all-zero bytes are a valid value.
        let zero_addr = unsafe { MaybeUninit::<libc::sockaddr_storage>::zeroed().assume_init() };
        let zero_msg = unsafe { MaybeUninit::<libc::mmsghdr>::zeroed().assume_init() };
        BatchReader {
            bufs,
            addrs: vec![zero_addr; BATCH],
            iovs: Vec::with_capacity(BATCH),
            msgs: vec![zero_msg; BATCH],
        }
    }

    /// Read what is waiting (at most [`BATCH`]) into `out`.
    fn read(&mut self, sock: &UdpSocket, out: &mut Vec<Received>) -> io::Result<usize> {
        self.iovs.clear();
        for b in &mut self.bufs {
            self.iovs.push(libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            });
        }
        for i in 0..BATCH {
            let m = &mut self.msgs[i].msg_hdr;
            m.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_iov = &mut self.iovs[i];
            m.msg_iovlen = 1;
            m.msg_control = std::ptr::null_mut();
            m.msg_controllen = 0;
            m.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        // SAFETY: every message points into buffers owned by self that
        // outlive the call; the kernel writes at most the given lengths.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for i in 0..n {
            let len = (self.msgs[i].msg_len as usize).min(MAX_DATAGRAM);
            if let Some(from) = to_socket_addr(&self.addrs[i]) {
                out.push((self.bufs[i][..len].to_vec(), from));
            }
        }
        Ok(n)
    }
}

/// The sender's address from what the kernel filled in.
fn to_socket_addr(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(a.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(crate::svc::net::unmapped(SocketAddr::V6(
                SocketAddrV6::new(
                    Ipv6Addr::from(v6.sin6_addr.s6_addr),
                    u16::from_be(v6.sin6_port),
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                ),
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(tag: u8, len: usize) -> Received {
        (vec![tag; len], SocketAddr::from(([127, 0, 0, 1], 1047)))
    }

    #[test]
    fn an_auth_datagram_at_a_full_queue_takes_the_newest_meter_datagrams_place() {
        let (bytes, drops) = (AtomicUsize::new(0), AtomicU64::new(0));
        let mut q = Backlog::default();
        let bounds = (4, 4 * (100 + ENTRY_OVERHEAD));
        for (tag, auth) in [(1, false), (2, true), (3, false), (4, false)] {
            q.admit(datagram(tag, 100), auth, bounds, &bytes, &drops);
        }
        // Full by count: a meter datagram is dropped, an auth datagram
        // takes the newest meter datagram's place.
        q.admit(datagram(5, 100), false, bounds, &bytes, &drops);
        q.admit(datagram(6, 100), true, bounds, &bytes, &drops);
        assert_eq!((q.len(), drops.load(Ordering::Relaxed)), (4, 2));
        // Full by bytes: a large auth datagram takes two places.
        q.admit(
            datagram(7, 200 + ENTRY_OVERHEAD),
            true,
            bounds,
            &bytes,
            &drops,
        );
        assert_eq!((q.len(), drops.load(Ordering::Relaxed)), (3, 4));
        // Only auth datagrams left: one more does not fit and is dropped.
        q.admit(datagram(8, 100), true, bounds, &bytes, &drops);
        assert_eq!((q.len(), drops.load(Ordering::Relaxed)), (3, 5));
        // Taken in arrival order across both lines.
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|d| d.0[0]).collect();
        assert_eq!(order, [2, 6, 7]);
        assert_eq!(
            bytes.load(Ordering::Relaxed),
            2 * (100 + ENTRY_OVERHEAD) + 200 + 2 * ENTRY_OVERHEAD
        );
    }

    #[test]
    fn datagrams_are_taken_in_arrival_order() {
        let (bytes, drops) = (AtomicUsize::new(0), AtomicU64::new(0));
        let mut q = Backlog::default();
        let kinds = [true, false, false, true, true, false, true, false];
        for (tag, &auth) in kinds.iter().enumerate() {
            q.admit(
                datagram(tag as u8, 10),
                auth,
                (100, 1 << 20),
                &bytes,
                &drops,
            );
        }
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|d| d.0[0]).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
    }
}
