//! The receive thread: it only reads datagrams into a bounded queue, so
//! write cycles, syncs and slow disks never leave the kernel's buffer
//! unread. When the queue is full, datagrams are dropped and counted,
//! never overwritten; meter datagrams are dropped first (see
//! [`AUTH_RESERVE`]).
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

/// The part of the queue's bounds (one part in this many) that only auth
/// datagrams may fill. An auth datagram opens a host's session for all
/// its next datagrams (an agent sends one every 30 samples), so when the
/// queue overflows, meter datagrams are dropped first: at a million
/// hosts, auth datagrams lost in an overflow cost 12,746 hosts their
/// samples until their agents' next auth datagram.
const AUTH_RESERVE: usize = 16;

/// Whether a datagram of `cost` bytes (`auth`: an auth datagram) goes in
/// a queue holding `queued` (datagrams, bytes) within `bounds` (the
/// same): meter datagrams only below the auth datagrams' reserve.
fn admits(auth: bool, cost: usize, queued: (usize, usize), bounds: (usize, usize)) -> bool {
    let (count, bytes) = bounds;
    let (count, bytes) = if auth {
        (count, bytes)
    } else {
        (count - count / AUTH_RESERVE, bytes - bytes / AUTH_RESERVE)
    };
    queued.0 < count && queued.1 + cost <= bytes
}

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

/// The queue between the thread and the consumer, and whether the
/// consumer waits for it (both under one lock: no wake-up is lost).
#[derive(Default)]
struct Shared {
    queue: VecDeque<Received>,
    waiting: bool,
}

/// The consuming end of the receive queue; stops the thread when dropped.
pub struct Queue {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    local: VecDeque<Received>,
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
                            let cost = d.0.len() + ENTRY_OVERHEAD;
                            let queued = thread_stats.bytes.load(Ordering::Relaxed);
                            if admits(auth, cost, (q.len(), queued), (capacity, byte_bound)) {
                                thread_stats.bytes.fetch_add(cost, Ordering::Relaxed);
                                q.push_back(d);
                            } else {
                                thread_stats.drops.fetch_add(1, Ordering::Relaxed);
                            }
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
        local: VecDeque::new(),
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
        let next = self.local.pop_front()?;
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

    #[test]
    fn meter_datagrams_leave_the_last_part_of_the_queue_to_auth_datagrams() {
        let bounds = (1600, 160_000);
        // Room for both.
        assert!(admits(false, 1000, (0, 0), bounds));
        assert!(admits(true, 100, (0, 0), bounds));
        // In the reserve: auth datagrams only, by bytes and by count.
        assert!(!admits(false, 1000, (100, 150_000), bounds));
        assert!(admits(true, 100, (100, 150_000), bounds));
        assert!(!admits(false, 10, (1500, 15_000), bounds));
        assert!(admits(true, 10, (1500, 15_000), bounds));
        // Full: nothing.
        assert!(!admits(true, 100, (100, 159_950), bounds));
        assert!(!admits(true, 10, (1600, 16_000), bounds));
        // A queue of one datagram still takes one.
        assert!(admits(false, 10, (0, 0), (1, 65_600)));
    }
}
