//! The Environment Abstraction Layer: initialised once per process, with lcores to launch
//! closures on.

use std::ffi::{c_void, CString};
use std::os::raw::{c_char, c_int};

use super::last_error;

/// The initialised EAL. Dropping it calls `rte_eal_cleanup`.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises the EAL with `args` (program name first). Fails with DPDK's reason.
    pub fn init(args: &[String]) -> Result<Eal, String> {
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| format!("EAL argument {a:?} has a NUL")))
            .collect::<Result<_, _>>()?;
        // rte_eal_init may permute argv: give it an array of our own pointers. The strings
        // are leaked on purpose: EAL keeps pointers into them for the process's lifetime.
        let mut argv: Vec<*mut c_char> = cargs.into_iter().map(|c| c.into_raw()).collect();
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed.
        let r = unsafe { dpdk_sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        std::mem::forget(argv);
        if r < 0 {
            return Err(format!("rte_eal_init: {}", last_error()));
        }
        Ok(Eal { _private: () })
    }

    /// The lcore id of the calling thread.
    pub fn lcore_id() -> u32 {
        // SAFETY: reads a per-thread variable set by EAL.
        unsafe { dpdk_sys::shim_rte_lcore_id() }
    }

    /// Runs `f` on worker lcore `lcore`. The closure must be `Send + 'static`: it runs on
    /// another thread until it returns.
    pub fn launch<F: FnOnce() + Send + 'static>(&self, lcore: u32, f: F) -> Result<(), String> {
        extern "C" fn trampoline(arg: *mut c_void) -> c_int {
            // SAFETY: arg is the Box<Box<dyn FnOnce>> leaked by `launch` for this call only.
            let f: Box<Box<dyn FnOnce() + Send>> = unsafe { Box::from_raw(arg as *mut _) };
            f();
            0
        }
        let boxed: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(f));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: trampoline matches lcore_function_t; arg stays valid until trampoline
        // reclaims it (or below, when the launch fails).
        let r = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if r != 0 {
            // SAFETY: the launch failed, so trampoline will never run: reclaim the box.
            drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() + Send>) });
            return Err(format!("cannot launch on lcore {lcore} ({r})"));
        }
        Ok(())
    }

    /// Waits for every launched lcore to return.
    pub fn wait_all(&self) {
        // SAFETY: plain EAL call from the main lcore.
        unsafe { dpdk_sys::rte_eal_mp_wait_lcore() };
    }

    /// TSC ticks per second.
    pub fn tsc_hz() -> u64 {
        // SAFETY: plain EAL query, valid after init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// The time-stamp counter (`rte_rdtsc`), counting [`Eal::tsc_hz`] ticks per second.
    #[inline]
    pub fn tsc() -> u64 {
        // SAFETY: reads the CPU's time-stamp counter; no memory is touched.
        unsafe { dpdk_sys::shim_rte_rdtsc() }
    }

    /// NUMA socket of an lcore.
    pub fn lcore_socket(lcore: u32) -> u32 {
        // SAFETY: plain EAL query.
        unsafe { dpdk_sys::rte_lcore_to_socket_id(lcore) }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: every lcore has returned (callers wait before dropping) and no DPDK object
        // is used after this point.
        unsafe { dpdk_sys::rte_eal_cleanup() };
    }
}
