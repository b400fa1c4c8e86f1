//! The HTTP server: one thread waits on every connection with poll(2)
//! and reads requests as their bytes arrive; a fixed pool of workers
//! handles complete requests and writes the responses.
//!
//! A slow client (one byte a minute, a half-open connection) only holds a
//! slot in the poll set until its request deadline, never a worker; the
//! connections in the set are bounded, in total and per address.

use super::http::{self, Parse, Request, Response};
use crate::svc;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Worker threads.
    pub workers: usize,
    /// Open connections at most.
    pub connections: usize,
    /// Open connections per client address at most.
    pub per_address: usize,
    /// Time a client has to send a whole request (from its first byte, or
    /// from the end of the previous response on a kept-alive connection).
    pub request_timeout: Duration,
    /// Time a response may take to write.
    pub write_timeout: Duration,
}

/// What handles requests: the peer address and the request in, the
/// response out.
pub type Handler = dyn Fn(&Request, SocketAddr) -> Response + Send + Sync;

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
    deadline: Instant,
}

/// A connection handed back by a worker after its response.
type Returned = (Conn, bool);

/// Serve `listener` until `stop()` says so.
pub fn serve(
    listener: TcpListener,
    limits: Limits,
    handler: Arc<Handler>,
    stop: impl Fn() -> bool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let wake_tx = Arc::new(Mutex::new(wake_tx));
    let (work_tx, work_rx) = mpsc::sync_channel::<(Conn, Request)>(limits.connections);
    let (back_tx, back_rx) = mpsc::channel::<Returned>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    for i in 0..limits.workers.max(1) {
        let (rx, back, wake, h) = (
            Arc::clone(&work_rx),
            back_tx.clone(),
            Arc::clone(&wake_tx),
            Arc::clone(&handler),
        );
        let write_timeout = limits.write_timeout;
        std::thread::Builder::new()
            .name(format!("api-{i}"))
            .spawn(move || work(&rx, &back, &wake, &*h, write_timeout))?;
    }
    let mut conns: Vec<Conn> = Vec::new();
    let mut per_address: HashMap<IpAddr, usize> = HashMap::new();
    let mut busy = 0usize;
    let mut scratch = [0u8; 16 << 10];
    while !stop() {
        let mut fds = vec![
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake_rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        fds.extend(conns.iter().map(|c| libc::pollfd {
            fd: c.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        // SAFETY: fds is a valid array of pollfd for the duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 200) };
        if n < 0 {
            continue;
        }
        // Connections back from the workers.
        if fds[1].revents != 0 {
            let mut drain = [0u8; 256];
            while matches!((&wake_rx).read(&mut drain), Ok(n) if n > 0) {}
        }
        let readable: Vec<bool> = fds[2..].iter().map(|p| p.revents != 0).collect();
        let now = Instant::now();
        // Read what arrived; hand complete requests to the workers.
        let mut keep: Vec<Conn> = Vec::with_capacity(conns.len());
        for (i, mut c) in conns.drain(..).enumerate() {
            let mut closed = false;
            if readable.get(i) == Some(&true) {
                match c.stream.read(&mut scratch) {
                    Ok(0) => closed = true,
                    Ok(n) => c.buf.extend_from_slice(&scratch[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => closed = true,
                }
            }
            if closed {
                release(&mut per_address, c.peer.ip());
                continue;
            }
            match http::parse(&c.buf) {
                Ok((req, used)) => {
                    c.buf.drain(..used);
                    busy += 1;
                    if let Err(
                        mpsc::TrySendError::Full((c, _)) | mpsc::TrySendError::Disconnected((c, _)),
                    ) = work_tx.try_send((c, req))
                    {
                        busy -= 1;
                        refuse(c.stream, 503, "Service unavailable");
                        release(&mut per_address, c.peer.ip());
                    }
                }
                Err(Parse::Bad(status, msg)) => {
                    refuse(c.stream, status, msg);
                    release(&mut per_address, c.peer.ip());
                }
                Err(Parse::Incomplete) if now >= c.deadline => {
                    if !c.buf.is_empty() {
                        refuse(c.stream, 408, "Request timeout");
                    }
                    release(&mut per_address, c.peer.ip());
                }
                Err(Parse::Incomplete) => keep.push(c),
            }
        }
        conns = keep;
        while let Ok((mut c, keep_alive)) = back_rx.try_recv() {
            busy = busy.saturating_sub(1);
            if keep_alive && c.stream.set_nonblocking(true).is_ok() {
                c.deadline = Instant::now() + limits.request_timeout;
                // A pipelined request may be complete already: it is
                // handled at the next turn (the wake byte forces one).
                if !c.buf.is_empty() {
                    if let Ok(mut w) = wake_tx.lock() {
                        let _ = w.write(&[1]);
                    }
                }
                conns.push(c);
            } else {
                release(&mut per_address, c.peer.ip());
            }
        }
        // New connections.
        if fds[0].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        let open = per_address.entry(peer.ip()).or_default();
                        if conns.len() + busy >= limits.connections || *open >= limits.per_address {
                            refuse(stream, 503, "Too many connections");
                            continue;
                        }
                        *open += 1;
                        if stream.set_nonblocking(true).is_err() {
                            release(&mut per_address, peer.ip());
                            continue;
                        }
                        let _ = stream.set_nodelay(true);
                        conns.push(Conn {
                            stream,
                            peer,
                            buf: Vec::new(),
                            deadline: Instant::now() + limits.request_timeout,
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        svc::log::warn(&format!("accept: {e}"));
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

fn release(per_address: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = per_address.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            per_address.remove(&ip);
        }
    }
}

/// Answer a request that will not be handled, and close.
fn refuse(mut stream: TcpStream, status: u16, msg: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(&Response::error(status, msg).to_bytes(false));
}

fn work(
    rx: &Mutex<Receiver<(Conn, Request)>>,
    back: &mpsc::Sender<Returned>,
    wake: &Mutex<UnixStream>,
    handler: &Handler,
    write_timeout: Duration,
) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok((mut c, req)) = job else {
            return;
        };
        let response = handler(&req, c.peer);
        let ok = c.stream.set_nonblocking(false).is_ok()
            && c.stream.set_write_timeout(Some(write_timeout)).is_ok()
            && c.stream
                .write_all(&response.to_bytes(req.keep_alive))
                .is_ok();
        if back.send((c, ok && req.keep_alive)).is_err() {
            return;
        }
        if let Ok(mut w) = wake.lock() {
            let _ = w.write(&[1]);
        }
    }
}
