//! A target's sender: one thread that takes the spool's oldest request,
//! posts it, and acknowledges it, by the remote-write rules: 2xx is
//! delivered; 5xx, 429 and no answer are retried with exponential
//! backoff and jitter (the request stays first, so each series' samples
//! arrive in time order); any other status is a refusal, counted and
//! logged, never retried.

use super::config::{Placement, TargetConfig};
use super::spool::{Frame, Spool};
use crate::svc;
use crate::svc::httpc::Endpoint;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a target did, for the collector's metrics.
#[derive(Debug, Default)]
pub struct SenderStats {
    /// Samples delivered.
    pub sent: AtomicU64,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests retried (5xx, 429, no answer).
    pub retried: AtomicU64,
    /// Samples refused by the engine (4xx but 429), not retried.
    pub rejected: AtomicU64,
    /// Unix time of the last delivery (0: none yet).
    pub last_success: AtomicI64,
    /// Duration of the last answered request, in microseconds.
    pub last_latency_us: AtomicU64,
    /// Sum of the durations of answered requests, in microseconds.
    pub latency_us: AtomicU64,
    /// Answered requests (the latency sum's count).
    pub answered: AtomicU64,
}

/// A running sender.
pub struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sender {
    /// Start sending `spool`'s requests to `cfg`'s engine.
    pub fn start(cfg: TargetConfig, spool: Arc<Spool>, stats: Arc<SenderStats>) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("export-{}", cfg.name))
            .spawn(move || run(&cfg, &spool, &stats, &flag))
            .map_err(|e| svc::log::err(&format!("export: cannot start a sender: {e}")))
            .ok();
        Sender { stop, thread }
    }

    /// Ask the thread to end; it leaves whatever it was sending in the
    /// spool. Not waited for: a request in flight ends by its timeout.
    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A jitter factor in [0.5, 1), from the kernel's random source (1
/// when it fails: the plain backoff).
fn jitter() -> f64 {
    let mut b = [0u8; 8];
    match crate::crypto::random_bytes(&mut b) {
        Ok(()) => 0.5 + (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64 / 2.0,
        Err(_) => 1.0,
    }
}

enum Outcome {
    Delivered,
    Retry(String),
    Refused(u16, String),
}

fn post(cfg: &TargetConfig, endpoints: &mut HashMap<String, Endpoint>, frame: &Frame) -> Outcome {
    let url = cfg.url_for(&frame.route);
    let endpoint = match endpoints.get(&url) {
        Some(e) => e.clone(),
        None => match Endpoint::parse(&url) {
            Ok(mut e) => {
                e.timeout = cfg.timeout;
                endpoints.insert(url.clone(), e.clone());
                e
            }
            // Checked when the config was read; a tenant id that makes
            // the URL unusable is the tenant's problem.
            Err(e) => return Outcome::Refused(0, e.to_string()),
        },
    };
    let mut headers: Vec<(&str, &str)> = cfg.format.headers().to_vec();
    headers.extend(cfg.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Placement::Header(name) = &cfg.placement {
        headers.push((name.as_str(), frame.route.as_str()));
    }
    match endpoint.send("POST", "", &headers, &frame.body) {
        Ok(r) if (200..300).contains(&r.status) => Outcome::Delivered,
        Ok(r) if r.status == 429 || r.status >= 500 => {
            Outcome::Retry(format!("{} answered {}", url, r.status))
        }
        Ok(r) => {
            let text: String = r.body.trim().chars().take(300).collect();
            Outcome::Refused(r.status, svc::text::printable(&text).into_owned())
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

fn run(cfg: &TargetConfig, spool: &Spool, stats: &SenderStats, stop: &AtomicBool) {
    let mut endpoints = HashMap::new();
    let mut refusals_logged: Option<Instant> = None;
    let mut retries_logged: Option<Instant> = None;
    while !stop.load(Relaxed) {
        let Some(frame) = spool.next(Duration::from_secs(3600)) else {
            if spool.is_closed() {
                return;
            }
            continue;
        };
        let mut attempt = 0u32;
        // A retried request the full spool dropped meanwhile is given up.
        while !stop.load(Relaxed) && (attempt == 0 || spool.holds(frame.segment, frame.index)) {
            let started = Instant::now();
            stats.requests.fetch_add(1, Relaxed);
            let outcome = post(cfg, &mut endpoints, &frame);
            let took = started.elapsed().as_micros() as u64;
            match outcome {
                Outcome::Delivered => {
                    stats.last_latency_us.store(took, Relaxed);
                    stats.latency_us.fetch_add(took, Relaxed);
                    stats.answered.fetch_add(1, Relaxed);
                    stats.sent.fetch_add(frame.samples, Relaxed);
                    stats.last_success.store(crate::model::unix_now(), Relaxed);
                    spool.ack(frame.segment, frame.index);
                    if attempt > 0 {
                        svc::log::info(&format!(
                            "export {}: delivering again after {attempt} retries",
                            cfg.name
                        ));
                    }
                    break;
                }
                Outcome::Refused(status, why) => {
                    stats.last_latency_us.store(took, Relaxed);
                    stats.latency_us.fetch_add(took, Relaxed);
                    stats.answered.fetch_add(1, Relaxed);
                    stats.rejected.fetch_add(frame.samples, Relaxed);
                    spool.ack(frame.segment, frame.index);
                    if refusals_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        refusals_logged = Some(Instant::now());
                        svc::log::warn(&format!(
                            "export {}: {} refused a request of {} samples ({status}: {why}); dropped, not retried",
                            cfg.name,
                            cfg.url_for(&frame.route),
                            frame.samples
                        ));
                    }
                    break;
                }
                Outcome::Retry(why) => {
                    stats.retried.fetch_add(1, Relaxed);
                    let base = cfg.retry_min.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
                    let wait = base.min(cfg.retry_max.as_secs_f64()) * jitter();
                    if retries_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        retries_logged = Some(Instant::now());
                        svc::log::warn(&format!(
                            "export {}: {why}; retrying in {wait:.1} s (samples wait in the spool)",
                            cfg.name
                        ));
                    }
                    attempt += 1;
                    let until = Instant::now() + Duration::from_secs_f64(wait);
                    while !stop.load(Relaxed) && Instant::now() < until {
                        std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
                    }
                }
            }
        }
    }
}
