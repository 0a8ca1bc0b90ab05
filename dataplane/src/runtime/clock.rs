//! A coarse clock in whole seconds since the process started, advanced by the main lcore and
//! read by the workers with one relaxed load (no system call on the fast path). Lifetimes,
//! neighbour ageing and SA reports use it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();
static NOW: AtomicU64 = AtomicU64::new(0);

/// Reads the system clock and publishes it (main lcore, once per loop iteration).
pub fn tick() -> u64 {
    let start = START.get_or_init(Instant::now);
    let now = start.elapsed().as_secs();
    NOW.store(now, Ordering::Relaxed);
    now
}

/// The last published time, in seconds.
#[inline]
pub fn now_secs() -> u64 {
    NOW.load(Ordering::Relaxed)
}
