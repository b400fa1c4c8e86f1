//! A small fixed pool of worker threads for blocking jobs (probe commands,
//! later the collector's datagram work).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed number of threads taking jobs from one queue.
pub struct Pool {
    queue: Option<Sender<Job>>,
    /// Kept for their names in debuggers; never joined.
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Start `threads` workers (at least one) named `name-N`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Pool> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = mpsc::channel();
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
            queue: Some(tx),
            workers,
        })
    }

    /// Queue a job; false when the pool is shutting down.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.queue
            .as_ref()
            .is_some_and(|q| q.send(Box::new(job)).is_ok())
    }
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
}
