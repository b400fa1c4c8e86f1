//! A small fixed pool of worker threads for blocking jobs (probe
//! commands), and work split over the cores for a moment ([`map_scoped`]:
//! the collector's datagram batches and write cycles).

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where jobs wait for a thread.
enum Queue {
    /// As many as are submitted (the agent's probes: a fixed set).
    Open(Sender<Job>),
    /// At most so many; more are refused (jobs that outsiders cause).
    Bounded(SyncSender<Job>),
}

/// A fixed number of threads taking jobs from one queue.
pub struct Pool {
    queue: Option<Queue>,
    /// Kept for their names in debuggers; never joined.
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Start `threads` workers (at least one) named `name-N`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = mpsc::channel();
        Pool::start(name, threads, Queue::Open(tx), rx)
    }

    /// [`Pool::new`] with at most `waiting` jobs queued: a job submitted
    /// while that many wait is refused ([`Pool::submit`] is false).
    pub fn bounded(name: &str, threads: usize, waiting: usize) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::sync_channel(waiting);
        Pool::start(name, threads, Queue::Bounded(tx), rx)
    }

    fn start(name: &str, threads: usize, queue: Queue, rx: Receiver<Job>) -> std::io::Result<Pool> {
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    })?,
            );
        }
        Ok(Pool {
            queue: Some(queue),
            workers,
        })
    }

    /// Queue a job; false when the pool is shutting down, or its queue
    /// is bounded and full.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> bool {
        match &self.queue {
            Some(Queue::Open(q)) => q.send(Box::new(job)).is_ok(),
            Some(Queue::Bounded(q)) => q.try_send(Box::new(job)).is_ok(),
            None => false,
        }
    }
}

/// Threads for work split over the cores: one per core, at most 8.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// How much lower than the process a background thread runs (see
/// [`lower_this_thread`]).
pub const BACKGROUND_NICE: i32 = 10;

/// Lower the calling thread's scheduling priority (nice `by` more than
/// the process), so that threads doing background work (disk writes a
/// cycle only waits for at its end) yield the cores to those a deadline
/// depends on; best effort, where the system allows it.
pub fn lower_this_thread(by: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority/setpriority on this thread's own id.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if *libc::__errno_location() == 0 {
            libc::setpriority(libc::PRIO_PROCESS, tid, now.saturating_add(by).min(19));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// `f` applied to every item, split into `threads` shares on scoped
/// threads (this thread takes the first share itself); the results come
/// back in the items' order, and a worker's panic goes on here.
pub fn map_scoped<T: Send, R: Send>(
    items: &mut [T],
    threads: usize,
    f: impl Fn(&mut T) -> R + Sync,
) -> Vec<R> {
    let mut shares = vec![(); threads.max(1)];
    map_scoped_with(items, &mut shares, |_, item| f(item))
}

/// [`map_scoped`] with one piece of working state per share (`states`,
/// one share each): buffers a worker reuses from item to item, and from
/// one call to the next, instead of allocating them per item. Without
/// any state nothing is mapped.
pub fn map_scoped_with<T: Send, S: Send, R: Send>(
    items: &mut [T],
    states: &mut [S],
    f: impl Fn(&mut S, &mut T) -> R + Sync,
) -> Vec<R> {
    let len = items.len();
    let per = len.div_ceil(states.len().max(1)).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = items.chunks_mut(per).zip(states.iter_mut());
        let mut all: Vec<R> = Vec::with_capacity(len);
        let own = parts.next();
        let others: Vec<_> = parts
            .map(|(part, state)| {
                scope.spawn(move || part.iter_mut().map(|i| f(state, i)).collect::<Vec<R>>())
            })
            .collect();
        if let Some((part, state)) = own {
            all.extend(part.iter_mut().map(|i| f(state, i)));
        }
        for other in others {
            match other.join() {
                Ok(results) => all.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

impl Drop for Pool {
    /// Close the queue without waiting: each worker ends after its current
    /// job, so a stop or a reload never waits for a slow probe.
    fn drop(&mut self) {
        self.queue = None;
        self.workers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_scoped_keeps_the_order() {
        for threads in [1, 2, 3, 8] {
            let mut items: Vec<u32> = (0..37).collect();
            let doubled = map_scoped(&mut items, threads, |x| {
                *x += 1;
                *x * 2
            });
            assert_eq!(doubled, (1..38).map(|x| x * 2).collect::<Vec<_>>());
            assert_eq!(items, (1..38).collect::<Vec<_>>());
        }
        assert!(map_scoped(&mut Vec::<u8>::new(), 2, |_| 0).is_empty());
    }

    #[test]
    fn a_bounded_queue_refuses_jobs_past_its_bound() {
        let (hold, release) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel();
        let pool = Pool::bounded("test", 1, 2).unwrap();
        assert!(pool.submit(move || {
            started.send(()).unwrap();
            let _ = release.recv();
        }));
        running
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        // The thread is busy: two wait, the third is refused.
        assert!(pool.submit(|| {}));
        assert!(pool.submit(|| {}));
        assert!(!pool.submit(|| {}));
        drop(hold);
    }

    #[test]
    fn runs_every_job() {
        let (tx, rx) = mpsc::channel();
        let pool = Pool::new("test", 3).unwrap();
        for i in 0..20 {
            let tx = tx.clone();
            assert!(pool.submit(move || tx.send(i).unwrap()));
        }
        let mut got: Vec<i32> = (0..20)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap())
            .collect();
        drop(pool);
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    }

    /// A lowered thread runs nicer than the rest of the process.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lowered_thread_is_nicer_than_its_process() {
        // SAFETY: getpriority of the calling thread.
        let of_this =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let before = of_this();
        let after = std::thread::spawn(move || {
            lower_this_thread(3);
            of_this()
        })
        .join()
        .unwrap();
        assert_eq!(after, (before + 3).min(19));
        assert_eq!(of_this(), before, "the calling thread is left alone");
    }
}
