//! An owned mbuf, used by the fast path as a [`PacketBuf`]. Only single-segment mbufs are
//! handled (the runtime drops chained ones on receive), so data is one contiguous range
//! `buf_addr + data_off .. + data_len`.

use std::ptr::NonNull;

use crate::packet::PacketBuf;

/// One mbuf. Freed back to its pool on drop, unless handed to DPDK with [`Mbuf::into_raw`].
pub struct Mbuf {
    ptr: NonNull<dpdk_sys::rte_mbuf>,
}

// SAFETY: an mbuf is owned by exactly one Mbuf at a time, and mbufs may be freed from any
// lcore (the pool is thread-safe).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` must be a valid mbuf that nothing else owns or will free.
    pub unsafe fn from_raw(m: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf { ptr: m }
    }

    /// Gives up ownership (to a TX queue or a ring).
    pub fn into_raw(self) -> *mut dpdk_sys::rte_mbuf {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The raw pointer, still owned by `self` (to build a TX array).
    pub(crate) fn as_raw_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.ptr.as_ptr()
    }

    fn m(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.ptr.as_ref() }
    }

    fn m_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf, exclusively.
        unsafe { self.ptr.as_mut() }
    }

    /// The port the mbuf was received on.
    pub fn port(&self) -> u16 {
        self.m().port
    }

    /// Number of segments (1 for the mbufs the fast path handles).
    pub fn segments(&self) -> u16 {
        self.m().nb_segs
    }

    fn set_len(&mut self, len: usize) {
        let m = self.m_mut();
        m.data_len = len as u16;
        m.pkt_len = len as u32;
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; freeing returns it (and any chained segments) to its pool.
        unsafe { dpdk_sys::shim_rte_pktmbuf_free(self.ptr.as_ptr()) };
    }
}

impl PacketBuf for Mbuf {
    fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's data buffer, which
        // we own for as long as the returned borrow of self.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m();
        // SAFETY: as in `data`, and the borrow is exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }
    fn headroom(&self) -> usize {
        self.m().data_off as usize
    }
    fn tailroom(&self) -> usize {
        let m = self.m();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.headroom() {
            return false;
        }
        let len = self.len() + n;
        self.m_mut().data_off -= n as u16;
        self.set_len(len);
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if n > self.tailroom() {
            return false;
        }
        let len = self.len() + n;
        self.set_len(len);
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let len = self.len() - n;
        self.m_mut().data_off += n as u16;
        self.set_len(len);
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let len = self.len() - n;
        self.set_len(len);
        true
    }
    fn len(&self) -> usize {
        self.m().data_len as usize
    }
}
