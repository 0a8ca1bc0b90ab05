//! SIGINT/SIGTERM -> a stop flag that the main and worker loops poll.
//!
//! The handler only stores to an atomic (async-signal-safe); the loops check the flag once
//! per iteration and wind down: workers return, the main lcore stops the ports and prints the
//! final counters.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sa` is fully initialised (zeroed, then handler and empty mask set) before
        // sigaction reads it; the handler only performs an atomic store, which is
        // async-signal-safe.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once a stop was asked for (signal or [`request_stop`]).
#[inline]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks every loop to stop (used by tests and by fatal errors on the main lcore).
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}
