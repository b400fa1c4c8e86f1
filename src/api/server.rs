//! The HTTP server: one thread waits on every connection with poll(2),
//! reads requests as their bytes arrive and writes responses as the
//! sockets drain; a fixed pool of workers only turns complete requests
//! into responses and never touches a socket.
//!
//! So a slow or greedy client (one byte a minute, a half-open connection,
//! a reader of a large response that takes 512 bytes every few seconds)
//! only holds a slot in the poll set until its deadline, never a worker.
//! Every connection has one deadline at a time: the whole request must
//! arrive within `request_timeout` (408 otherwise), the whole response
//! must be taken within `write_timeout` (closed otherwise). Connections
//! are bounded in total and per address, buffered requests and responses
//! in bytes. When descriptors run out, the listener rests instead of
//! spinning.

use super::http::{self, Parse, Request, Response};
use crate::svc;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Time a client has to take a whole response.
    pub write_timeout: Duration,
}

/// Responses waiting to be written, in bytes, above which no further
/// request is handed to the workers until clients have taken some.
pub const MAX_PENDING_OUTPUT: usize = 256 << 20;

/// Bytes one connection may have buffered unread by the parser: a head,
/// and a largest body with the framing of modest chunks.
const MAX_BUFFERED: usize = http::MAX_HEAD + 2 * http::MAX_BODY;

/// What answers requests.
pub trait Service: Send + Sync {
    /// The response to a complete request from `peer`.
    fn handle(&self, req: &Request, peer: SocketAddr) -> Response;

    /// Before the body of a request sent with `Expect: 100-continue` is
    /// read (`req` has an empty body): the final response now, when the
    /// request will be refused whatever its body (401, 403, 404), or
    /// `None` to let the client send it.
    fn precheck(&self, _req: &Request, _peer: SocketAddr) -> Option<Response> {
        None
    }
}

/// What the server counted, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests answered by a worker.
    pub requests: AtomicU64,
    /// Connections refused at accept (over the total or per-address limit).
    pub refused: AtomicU64,
    /// Requests or responses that missed their deadline.
    pub timeouts: AtomicU64,
    /// Failed accept(2) calls (most often: no descriptor left).
    pub accept_failures: AtomicU64,
    /// Open connections now.
    pub open: AtomicU64,
}

/// Where a connection is in its request/response cycle.
enum State {
    /// Waiting for a whole request in `buf`.
    Reading,
    /// A worker has the request.
    Working,
    /// Writing `out` from `sent`; then reading again, or closing.
    Writing {
        out: Vec<u8>,
        sent: usize,
        close: bool,
        /// A `100 Continue`: the request's deadline goes on.
        interim: bool,
    },
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    buf: Vec<u8>,
    deadline: Instant,
    state: State,
    /// The client half-closed: answer what it sent, then close.
    eof: bool,
    /// `100 Continue` (or the final answer) was sent for this request.
    continued: bool,
}

/// A request for a worker, with a descriptor of its (non-blocking)
/// socket: the worker writes what the socket takes at once, so that most
/// responses go out from the workers in parallel, and hands the rest to
/// the poll loop.
struct Job {
    id: u64,
    req: Request,
    peer: SocketAddr,
    stream: Option<TcpStream>,
}

/// A worker's answer: the response and how much of it is written.
struct Done {
    id: u64,
    bytes: Vec<u8>,
    sent: usize,
    keep_alive: bool,
    /// Writing failed: the connection is gone.
    broken: bool,
}

/// How often a rest of the listener (no descriptor) is logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Serve `listener` until `stop()` says so.
pub fn serve(
    listener: TcpListener,
    limits: Limits,
    service: Arc<dyn Service>,
    stats: Arc<Stats>,
    stop: impl Fn() -> bool,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let wake_tx = Arc::new(Mutex::new(wake_tx));
    let (work_tx, work_rx) = mpsc::channel::<Job>();
    let (back_tx, back_rx) = mpsc::channel::<Done>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    for i in 0..limits.workers.max(1) {
        let (rx, back, wake, svc) = (
            Arc::clone(&work_rx),
            back_tx.clone(),
            Arc::clone(&wake_tx),
            Arc::clone(&service),
        );
        std::thread::Builder::new()
            .name(format!("api-{i}"))
            .spawn(move || work(&rx, &back, &wake, svc.as_ref()))?;
    }
    let mut server = Server {
        limits,
        service,
        stats,
        conns: HashMap::new(),
        per_address: HashMap::new(),
        next_id: 0,
        pending_output: 0,
        work_tx,
        listener_rests_until: None,
        last_rest_log: None,
        scratch: vec![0u8; 64 << 10],
    };
    let mut ids: Vec<u64> = Vec::new();
    while !stop() {
        let now = Instant::now();
        let listening = server.listener_rests_until.is_none_or(|until| now >= until);
        let mut fds = vec![
            libc::pollfd {
                fd: wake_rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: if listening { libc::POLLIN } else { 0 },
                revents: 0,
            },
        ];
        ids.clear();
        let mut next_deadline = now + Duration::from_secs(1);
        for (id, c) in &server.conns {
            let events = match &c.state {
                State::Reading if !c.eof => libc::POLLIN,
                State::Reading | State::Working => 0,
                State::Writing { .. } => libc::POLLOUT,
            };
            if !matches!(c.state, State::Working) {
                next_deadline = next_deadline.min(c.deadline);
            }
            ids.push(*id);
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        if let Some(until) = server.listener_rests_until {
            next_deadline = next_deadline.min(until);
        }
        let wait = next_deadline
            .saturating_duration_since(now)
            .as_millis()
            .clamp(1, 1000) as libc::c_int;
        // SAFETY: fds is a valid array of pollfd for the duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) };
        if n < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            let mut drain = [0u8; 256];
            while matches!((&wake_rx).read(&mut drain), Ok(n) if n > 0) {}
        }
        while let Ok(done) = back_rx.try_recv() {
            server.finished(done);
        }
        let events: Vec<(u64, i16)> = ids
            .iter()
            .zip(&fds[2..])
            .map(|(id, p)| (*id, p.revents))
            .collect();
        for (id, revents) in events {
            server.turn(id, revents);
        }
        if listening && fds[1].revents != 0 {
            server.accept(&listener);
        }
    }
    Ok(())
}

struct Server {
    limits: Limits,
    service: Arc<dyn Service>,
    stats: Arc<Stats>,
    conns: HashMap<u64, Conn>,
    per_address: HashMap<IpAddr, usize>,
    next_id: u64,
    pending_output: usize,
    work_tx: mpsc::Sender<Job>,
    listener_rests_until: Option<Instant>,
    last_rest_log: Option<Instant>,
    scratch: Vec<u8>,
}

impl Server {
    /// A worker's response: write it as the socket drains.
    fn finished(&mut self, done: Done) {
        let Some(c) = self.conns.get_mut(&done.id) else {
            return;
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if done.broken {
            c.state = State::Reading;
            if let Some(c) = self.conns.remove(&done.id) {
                self.close(c);
            }
            return;
        }
        self.pending_output += done.bytes.len();
        c.deadline = Instant::now() + self.limits.write_timeout;
        c.state = State::Writing {
            out: done.bytes,
            sent: done.sent,
            close: !done.keep_alive,
            interim: false,
        };
        // Finish it now when the worker wrote it all, else as it drains.
        self.turn(done.id, libc::POLLOUT);
    }

    /// Whatever the connection can do now: read, parse, write, time out.
    fn turn(&mut self, id: u64, revents: i16) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        let mut keep = match c.state {
            State::Reading => self.read(&mut c, revents),
            State::Working => true,
            State::Writing { .. } => self.write(&mut c, revents),
        };
        // What was read, or a pipelined request already buffered.
        if keep && matches!(c.state, State::Reading) {
            keep = self.advance(id, &mut c);
        }
        if keep {
            self.conns.insert(id, c);
        } else {
            self.close(c);
        }
    }

    /// Read what arrived; false when the connection is to be closed.
    fn read(&mut self, c: &mut Conn, revents: i16) -> bool {
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
            return true;
        }
        loop {
            if c.buf.len() > MAX_BUFFERED {
                self.respond_error(c, 413, "Payload too large");
                return true;
            }
            match c.stream.read(&mut self.scratch) {
                Ok(0) => {
                    c.eof = true;
                    return true;
                }
                Ok(n) => {
                    c.buf.extend_from_slice(&self.scratch[..n]);
                    if n < self.scratch.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Parse the buffered bytes of a reading connection: hand a complete
    /// request to a worker, answer `Expect`, refuse bad bytes, time out.
    /// False when the connection is to be closed.
    fn advance(&mut self, id: u64, c: &mut Conn) -> bool {
        if !matches!(c.state, State::Reading) {
            return true;
        }
        let expired = Instant::now() >= c.deadline;
        let head = match http::parse_head(&c.buf) {
            Ok(head) => head,
            Err(Parse::Bad(status, msg)) => {
                self.respond_error(c, status, msg);
                return true;
            }
            Err(Parse::Incomplete) => return self.incomplete(c, expired),
        };
        match http::parse_body(&head, &c.buf[head.len..]) {
            Ok((body, used)) => {
                if self.pending_output > MAX_PENDING_OUTPUT && !expired {
                    // Clients are slow to take what is written: wait.
                    return true;
                }
                c.buf.drain(..head.len + used);
                c.continued = false;
                let mut req = head.request;
                req.body = body;
                c.state = State::Working;
                let job = Job {
                    id,
                    req,
                    peer: c.peer,
                    stream: c.stream.try_clone().ok(),
                };
                if self.work_tx.send(job).is_err() {
                    return false;
                }
                true
            }
            Err(Parse::Bad(status, msg)) => {
                self.respond_error(c, status, msg);
                true
            }
            Err(Parse::Incomplete) if head.expect_continue && !c.continued => {
                c.continued = true;
                match self.service.precheck(&head.request, c.peer) {
                    // Refused whatever the body: the final status now,
                    // and close (the body is never read).
                    Some(response) => {
                        self.start_write(c, response.to_bytes(false), true, false);
                    }
                    None => {
                        let interim = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
                        self.start_write(c, interim, false, true);
                    }
                }
                true
            }
            Err(Parse::Incomplete) => self.incomplete(c, expired),
        }
    }

    /// A request not whole yet: wait, or give up at the deadline or when
    /// the client has closed its side.
    fn incomplete(&mut self, c: &mut Conn, expired: bool) -> bool {
        if c.eof {
            return false;
        }
        if expired {
            if c.buf.is_empty() {
                return false;
            }
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            self.respond_error(c, 408, "Request timeout");
        }
        true
    }

    /// Answer with an error and close after it.
    fn respond_error(&mut self, c: &mut Conn, status: u16, msg: &str) {
        c.buf.clear();
        self.start_write(c, Response::error(status, msg).to_bytes(false), true, false);
    }

    fn start_write(&mut self, c: &mut Conn, out: Vec<u8>, close: bool, interim: bool) {
        self.pending_output += out.len();
        if !interim {
            c.deadline = Instant::now() + self.limits.write_timeout;
        }
        c.state = State::Writing {
            out,
            sent: 0,
            close,
            interim,
        };
    }

    /// Write what the socket takes; false when the connection is to be
    /// closed (what is left unwritten is released by [`Server::close`]).
    fn write(&mut self, c: &mut Conn, revents: i16) -> bool {
        let State::Writing {
            out,
            sent,
            close,
            interim,
        } = &mut c.state
        else {
            return true;
        };
        if revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
            return false;
        }
        while *sent < out.len() {
            match c.stream.write(&out[*sent..]) {
                Ok(0) => break,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if *sent < out.len() {
            if Instant::now() >= c.deadline {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            return true;
        }
        let (len, close, interim) = (out.len(), *close, *interim);
        self.pending_output = self.pending_output.saturating_sub(len);
        c.state = State::Reading;
        if close {
            return false;
        }
        if !interim {
            c.deadline = Instant::now() + self.limits.request_timeout;
        }
        true
    }

    fn close(&mut self, c: Conn) {
        if let State::Writing { out, .. } = &c.state {
            self.pending_output = self.pending_output.saturating_sub(out.len());
        }
        let ip = c.peer.ip();
        if let Some(n) = self.per_address.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&ip);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        // A descriptor is free again: the listener may accept.
        self.listener_rests_until = None;
    }

    /// Accept every waiting connection within the limits.
    fn accept(&mut self, listener: &TcpListener) {
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let peer = crate::svc::net::unmapped(peer);
                    let open = self.per_address.get(&peer.ip()).copied().unwrap_or(0);
                    if self.conns.len() >= self.limits.connections
                        || open >= self.limits.per_address
                    {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        refuse(stream, 503, "Too many connections");
                        continue;
                    }
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    *self.per_address.entry(peer.ip()).or_default() += 1;
                    self.stats.open.fetch_add(1, Ordering::Relaxed);
                    let id = self.next_id;
                    self.next_id += 1;
                    self.conns.insert(
                        id,
                        Conn {
                            stream,
                            peer,
                            buf: Vec::new(),
                            deadline: Instant::now() + self.limits.request_timeout,
                            state: State::Reading,
                            eof: false,
                            continued: false,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors (EMFILE, ENFILE) or another
                    // failure: the listener stays readable, so it rests
                    // until a connection closes or a second passes.
                    self.stats.accept_failures.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    self.listener_rests_until = Some(now + Duration::from_secs(1));
                    if self
                        .last_rest_log
                        .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
                    {
                        self.last_rest_log = Some(now);
                        svc::log::err(&format!(
                            "accept: {e}; not accepting until a connection closes ({} open, {} failures so far)",
                            self.conns.len(),
                            self.stats.accept_failures.load(Ordering::Relaxed)
                        ));
                    }
                    break;
                }
            }
        }
    }
}

/// Answer a connection that will not be served, and close it.
fn refuse(mut stream: TcpStream, status: u16, msg: &str) {
    // A fresh socket's buffer takes this small answer without blocking.
    let _ = stream.set_nonblocking(true);
    let _ = stream.write(&Response::error(status, msg).to_bytes(false));
}

fn work(
    rx: &Mutex<Receiver<Job>>,
    back: &mpsc::Sender<Done>,
    wake: &Mutex<UnixStream>,
    service: &dyn Service,
) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        let response = service.handle(&job.req, job.peer);
        let bytes = response.to_bytes(job.req.keep_alive);
        // What the socket takes now; never waits (it is non-blocking).
        let (mut sent, mut broken) = (0, false);
        if let Some(mut stream) = job.stream {
            while sent < bytes.len() {
                match stream.write(&bytes[sent..]) {
                    Ok(0) => break,
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
        }
        let done = Done {
            id: job.id,
            bytes,
            sent,
            keep_alive: job.req.keep_alive,
            broken,
        };
        if back.send(done).is_err() {
            return;
        }
        if let Ok(mut w) = wake.lock() {
            let _ = w.write(&[1]);
        }
    }
}
