//! The threads that run a batch's exchange steps (Diffie-Hellman, RSA, certificate checks),
//! kept for the daemon's life.
//!
//! A hub under a burst of spokes steps a batch every few milliseconds. Threads spawned per
//! batch cost a clone, a fresh stack's page faults and a wake-up each time (a tenth of the
//! daemon's CPU in a profile of 1,000 spokes), and the thread that waited for them polled
//! for their end every millisecond, so a batch that finished just after a poll sat idle until
//! the next one. Here the workers wait on a queue, take the next job when they are free (a
//! slow step does not hold the jobs dealt behind it), and the waiting thread wakes on the
//! first result.
//!
//! A job that panics is a bug: [`StepPool::run`] panics too, as the scoped threads it
//! replaces did, rather than wait for a result that will never come.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Jobs waiting for a worker, and whether the pool is shutting down.
struct Queue<J> {
    /// (batch, place in the batch, job)
    jobs: VecDeque<(u64, usize, J)>,
    closed: bool,
}

/// What the workers share: the queue and the bell that says it has work.
struct Shared<J> {
    queue: Mutex<Queue<J>>,
    ready: Condvar,
}

/// A job's result, or `None` when its step panicked; with the job's batch and its place in
/// it (a batch that panicked leaves results behind that the next one must not take).
type Done<R> = (u64, usize, Option<R>);

/// `size` worker threads that run `step` on the jobs of each [`StepPool::run`].
pub(super) struct StepPool<J, R> {
    size: usize,
    step: fn(J) -> R,
    shared: Arc<Shared<J>>,
    results_tx: Sender<Done<R>>,
    results: Receiver<Done<R>>,
    /// Started on the first batch that has two jobs or more.
    workers: Vec<JoinHandle<()>>,
    /// The number of the batch being run.
    batch: u64,
}

impl<J: Send + 'static, R: Send + 'static> StepPool<J, R> {
    /// A pool of `size` threads (none is started yet) running `step`.
    pub fn new(size: usize, step: fn(J) -> R) -> StepPool<J, R> {
        let (results_tx, results) = mpsc::channel();
        StepPool {
            size,
            step,
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    closed: false,
                }),
                ready: Condvar::new(),
            }),
            results_tx,
            results,
            workers: Vec::new(),
            batch: 0,
        }
    }

    /// Runs `step` on every job, in parallel on the pool's threads, and returns the results
    /// in the jobs' order. Until the last result is in, `meanwhile` is called at least every
    /// `every` (and after each result). A single job, or a pool of one thread, runs here.
    pub fn run(&mut self, jobs: Vec<J>, every: Duration, mut meanwhile: impl FnMut()) -> Vec<R> {
        let n = jobs.len();
        if self.size <= 1 || n <= 1 {
            return jobs.into_iter().map(self.step).collect();
        }
        self.start();
        self.batch += 1;
        let batch = self.batch;
        lock(&self.shared.queue)
            .jobs
            .extend(jobs.into_iter().enumerate().map(|(i, j)| (batch, i, j)));
        self.shared.ready.notify_all();
        let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
        let mut left = n;
        while left > 0 {
            match self.results.recv_timeout(every) {
                Ok((b, _, _)) if b != batch => {} // left over from a batch that panicked
                Ok((_, i, Some(r))) => {
                    out[i] = Some(r);
                    left -= 1;
                }
                Ok((_, _, None)) => {
                    lock(&self.shared.queue).jobs.clear();
                    panic!("an exchange step panicked");
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    unreachable!("the pool holds a sender of its own")
                }
            }
            meanwhile();
        }
        out.into_iter()
            .map(|r| r.expect("every job gave a result"))
            .collect()
    }

    /// Starts the worker threads if they are not running.
    fn start(&mut self) {
        if !self.workers.is_empty() {
            return;
        }
        for n in 0..self.size {
            let shared = Arc::clone(&self.shared);
            let results = self.results_tx.clone();
            let step = self.step;
            let worker = std::thread::Builder::new()
                .name(format!("ike-step-{n}"))
                .spawn(move || work(&shared, &results, step))
                .expect("cannot start an IKE step thread");
            self.workers.push(worker);
        }
    }
}

/// A worker: takes jobs until the pool closes.
fn work<J, R>(shared: &Shared<J>, results: &Sender<Done<R>>, step: fn(J) -> R) {
    loop {
        let (batch, i, job) = {
            let mut q = lock(&shared.queue);
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.closed {
                    return;
                }
                q = shared
                    .ready
                    .wait(q)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        let r = catch_unwind(AssertUnwindSafe(|| step(job))).ok();
        if results.send((batch, i, r)).is_err() {
            return; // the pool is gone
        }
    }
}

/// The queue's lock; a worker cannot panic while holding it (a step runs unlocked), so a
/// poisoned lock still holds a consistent queue.
fn lock<J>(m: &Mutex<Queue<J>>) -> std::sync::MutexGuard<'_, Queue<J>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<J, R> Drop for StepPool<J, R> {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.ready.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn slow_square(x: u64) -> u64 {
        // later jobs finish first: the results must still come back in the jobs' order
        std::thread::sleep(Duration::from_millis(20 - x));
        x * x
    }

    #[test]
    fn results_come_back_in_the_jobs_order() {
        let mut pool = StepPool::new(2, slow_square);
        let mut polls = 0;
        let out = pool.run((0..10).collect(), Duration::from_millis(1), || polls += 1);
        assert_eq!(out, (0..10).map(|x| x * x).collect::<Vec<_>>());
        assert!(polls >= 10, "meanwhile ran after each result: {polls}");
        assert_eq!(pool.workers.len(), 2);
        // the same threads serve the next batch
        let out = pool.run(vec![3, 4], Duration::from_millis(1), || {});
        assert_eq!(out, vec![9, 16]);
        assert_eq!(pool.workers.len(), 2);
    }

    static THREAD_OF_LAST: AtomicUsize = AtomicUsize::new(0);

    fn record_thread(x: u32) -> u32 {
        let on_a_worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("ike-step-"));
        THREAD_OF_LAST.store(on_a_worker as usize, Ordering::SeqCst);
        x
    }

    #[test]
    fn one_job_runs_on_the_calling_thread_without_starting_the_pool() {
        let mut pool = StepPool::new(2, record_thread);
        assert_eq!(pool.run(vec![7], Duration::from_millis(1), || {}), vec![7]);
        assert_eq!(THREAD_OF_LAST.load(Ordering::SeqCst), 0);
        assert!(pool.workers.is_empty());
    }

    fn panics_on_three(x: u32) -> u32 {
        assert_ne!(x, 3, "a bug in a step");
        x
    }

    #[test]
    fn a_panicking_step_panics_the_batch_instead_of_hanging_it() {
        let mut pool = StepPool::new(2, panics_on_three);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(vec![1, 2, 3, 4], Duration::from_millis(1), || {})
        }));
        assert!(r.is_err());
        // the workers survive the panic and the pool still works (and shuts down)
        assert_eq!(
            pool.run(vec![5, 6], Duration::from_millis(1), || {}),
            vec![5, 6]
        );
    }
}
