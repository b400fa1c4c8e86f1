//! The receive thread: it only reads datagrams into a bounded queue, so
//! write cycles, syncs and slow disks never leave the kernel's buffer
//! unread. When the queue is full, datagrams are dropped and counted,
//! never overwritten.
//!
//! Neither side blocks per datagram: the thread reads until the socket is
//! empty and then naps for [`NAP`], and the consumer polls the same way.
//! At a steady 2,000 datagrams a second, waking a sleeping thread for each
//! one cost a quarter of the collector's CPU; napping costs a millisecond
//! of latency, and the kernel's receive buffer holds far more than a
//! millisecond of any rate the collector can process.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Depth and drops of the queue, shared with the metrics.
#[derive(Debug, Clone, Default)]
pub struct QueueStats {
    /// Datagrams waiting.
    pub depth: Arc<AtomicUsize>,
    /// Datagrams dropped because the queue was full.
    pub drops: Arc<AtomicU64>,
}

/// The consuming end of the receive queue; stops the thread when dropped.
pub struct Queue {
    rx: Receiver<(Vec<u8>, SocketAddr)>,
    stats: QueueStats,
    stop: Arc<AtomicBool>,
}

/// How long an idle side waits before looking again.
pub const NAP: Duration = Duration::from_millis(1);

/// Start reading `sock` (made non-blocking here) into a queue of
/// `capacity` datagrams.
pub fn start(sock: UdpSocket, capacity: usize) -> io::Result<Queue> {
    sock.set_nonblocking(true)?;
    let (tx, rx) = sync_channel(capacity.max(1));
    let stats = QueueStats::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (thread_stats, thread_stop) = (stats.clone(), Arc::clone(&stop));
    std::thread::Builder::new()
        .name("receive".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !thread_stop.load(Ordering::Relaxed) {
                let (n, from) = match sock.recv_from(&mut buf) {
                    Ok(got) => got,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(NAP);
                        continue;
                    }
                    Err(_) => continue,
                };
                match tx.try_send((buf[..n].to_vec(), from)) {
                    Ok(()) => {
                        thread_stats.depth.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Full(_)) => {
                        thread_stats.drops.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
        })?;
    Ok(Queue { rx, stats, stop })
}

impl Queue {
    /// The next datagram if one is waiting.
    pub fn try_next(&self) -> Option<(Vec<u8>, SocketAddr)> {
        let d = self.rx.try_recv().ok()?;
        self.stats.depth.fetch_sub(1, Ordering::Relaxed);
        Some(d)
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
