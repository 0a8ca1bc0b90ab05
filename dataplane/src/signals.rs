//! SIGINT/SIGTERM -> a stop flag that the main and worker loops poll; SIGHUP -> a reload
//! flag for the processes that re-read their configuration (`ipsec-control`).
//!
//! The handler only stores to an atomic (async-signal-safe); the loops check the flag once
//! per iteration and wind down: workers return, the main lcore stops the ports and prints the
//! final counters.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_hangup(_sig: libc::c_int) {
    RELOAD.store(true, Ordering::Relaxed);
}

fn handle(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> std::io::Result<()> {
    // SAFETY: `sa` is fully initialised (zeroed, then handler and empty mask set) before
    // sigaction reads it; the handlers only perform an atomic store, which is
    // async-signal-safe.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        handle(sig, on_signal)?;
    }
    Ok(())
}

/// Installs the handler for SIGHUP (a process that does not is ended by it, as by default).
pub fn install_reload() -> std::io::Result<()> {
    handle(libc::SIGHUP, on_hangup)
}

/// True once per SIGHUP received since the last call.
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::Relaxed)
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
