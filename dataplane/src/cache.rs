//! Cache prefetch hints.
//!
//! The fast path works on bursts so that memory latency can overlap: while one packet is
//! being processed, the lines the next ones need are already on their way. With thousands of
//! tunnels every packet's SA and key schedule are cold, and a prefetch issued a burst ahead is
//! what keeps a per-packet cache miss (or three, chained: SA, cipher, key) from setting the
//! packet rate.

/// Bytes in a cache line on the CPUs this runs on (x86-64).
pub const LINE: usize = 64;

/// Starts loading the line holding `p` into every cache level.
#[inline(always)]
pub fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and never changes memory or program
    // state, whatever the address (an unmapped one is simply ignored).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Starts loading every line of `len` bytes from `p`.
#[inline(always)]
pub fn lines(p: *const u8, len: usize) {
    let first = p as usize & !(LINE - 1);
    let end = p as usize + len;
    let mut a = first;
    while a < end {
        line(a as *const u8);
        a += LINE;
    }
}

/// Starts loading every line of `*v` (a value's own bytes, not what it points to).
#[inline(always)]
pub fn value<T: ?Sized>(v: &T) {
    lines(v as *const T as *const u8, std::mem::size_of_val(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_any_address_is_harmless() {
        let v = [7u8; 300];
        lines(v.as_ptr(), v.len());
        value(&v);
        // hints on addresses nothing is mapped at do not fault
        line(std::ptr::null());
        line(usize::MAX as *const u8);
        lines(8 as *const u8, 4096);
        assert_eq!(v[299], 7);
    }
}
