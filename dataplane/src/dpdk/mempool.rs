//! Packet-buffer pools (`rte_pktmbuf_pool_create`), one per NUMA socket.

use std::ffi::CString;
use std::ptr::NonNull;

use super::last_error;
use super::mbuf::Mbuf;

/// A pktmbuf pool. Pools live as long as the process (DPDK frees them at cleanup), so this
/// handle is a plain pointer that can be shared between lcores.
#[derive(Clone, Copy)]
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: an rte_mempool is designed for concurrent use from every lcore (per-lcore caches,
// lock-free ring underneath).
unsafe impl Send for Mempool {}
// SAFETY: see Send.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `count` mbufs with the default data room, on `socket`.
    pub fn new(name: &str, count: u32, socket: i32) -> Result<Mempool, String> {
        let cname = CString::new(name).unwrap();
        // SAFETY: plain EAL call with a valid name; the result is checked for NULL.
        let p = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                count,
                256,
                0,
                dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| format!("rte_pktmbuf_pool_create {name}: {}", last_error()))
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// One mbuf, or None when the pool is empty.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the process's lifetime.
        let m = unsafe { dpdk_sys::shim_rte_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a freshly allocated mbuf that nothing else references.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Free mbufs left in the pool.
    pub fn available(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }
}
