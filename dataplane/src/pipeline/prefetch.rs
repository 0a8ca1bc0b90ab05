//! Cache prefetches over a burst (the reason the pipeline runs on bursts at all): while the
//! first frames are being processed, the lines the later ones need are on their way.
//!
//! Two lines per frame: the start of its data (headers the classifier reads), and the line
//! just in front of it, where encapsulation writes the outer IP, UDP and ESP headers and the
//! new Ethernet header. The NIC (or the virtual PMD's copy) never touches that headroom
//! line, so without a prefetch every encapsulated packet pays a cache miss on its first
//! header store.

use crate::cache::{line, LINE};
use crate::packet::PacketBuf;

/// Prefetches the header lines of every frame in `pkts`.
#[inline]
pub fn burst<P: PacketBuf>(pkts: &[P]) {
    for p in pkts {
        let data = p.data().as_ptr();
        line(data);
        if p.headroom() >= LINE {
            line(data.wrapping_sub(LINE));
        }
    }
}
