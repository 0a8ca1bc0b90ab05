//! Safe wrappers over `dpdk-sys`: the EAL and lcores, mbuf pools, mbufs as [`PacketBuf`]s,
//! and ethdev ports. Every `unsafe` block here says why it is sound; nothing outside this
//! module calls DPDK directly.
//!
//! [`PacketBuf`]: crate::packet::PacketBuf

pub mod eal;
pub mod mbuf;
pub mod mempool;
pub mod port;

pub use eal::Eal;
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::Port;

use std::ffi::CStr;

/// The text of DPDK's last error on this thread.
pub fn last_error() -> String {
    // SAFETY: shim_rte_errno reads the per-thread rte_errno; rte_strerror returns a pointer to
    // a static or thread-local NUL-terminated string that stays valid until the next call.
    unsafe {
        let e = dpdk_sys::shim_rte_errno();
        let s = dpdk_sys::rte_strerror(e);
        format!("{} ({e})", CStr::from_ptr(s).to_string_lossy())
    }
}

/// Text for a negative errno returned by an ethdev call.
pub fn errno_text(ret: i32) -> String {
    // SAFETY: rte_strerror accepts any errno value and returns a NUL-terminated string.
    unsafe {
        let s = dpdk_sys::rte_strerror(-ret);
        format!("{} ({ret})", CStr::from_ptr(s).to_string_lossy())
    }
}
