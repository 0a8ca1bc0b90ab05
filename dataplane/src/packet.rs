//! The packet buffer the fast path works on.
//!
//! ESP needs to grow a packet at both ends (outer headers in front, trailer and ICV behind)
//! and to shrink it again on decapsulation, without copying the payload. DPDK mbufs do this
//! with headroom/tailroom; [`VecPacket`] does the same over a `Vec` for tests and benchmarks.
//! Only single-segment buffers are handled: a chained mbuf is dropped by the runtime before
//! it reaches the ESP engine.

/// A contiguous packet with room to grow at the front and at the back.
pub trait PacketBuf {
    /// The packet bytes, from the first header to the end.
    fn data(&self) -> &[u8];
    /// The packet bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes before `data()`.
    fn headroom(&self) -> usize;
    /// Free bytes after `data()`.
    fn tailroom(&self) -> usize;
    /// Grows the packet by `n` bytes at the front. Returns false (and changes nothing) when
    /// the headroom is too small.
    fn prepend(&mut self, n: usize) -> bool;
    /// Grows the packet by `n` bytes at the back. Returns false (and changes nothing) when
    /// the tailroom is too small. The new bytes are unspecified.
    fn append(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns false (and changes nothing) if `n > len`.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the back. Returns false (and changes nothing) if `n > len`.
    fn trim(&mut self, n: usize) -> bool;

    /// Length of the packet.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True when the packet holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`PacketBuf`] over a heap buffer, for tests, benchmarks and the slow path.
#[derive(Clone, Debug)]
pub struct VecPacket {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecPacket {
    /// Default headroom, as DPDK's RTE_PKTMBUF_HEADROOM.
    pub const HEADROOM: usize = 128;
    /// Default tailroom.
    pub const TAILROOM: usize = 128;

    /// A packet holding `bytes` with the default head- and tailroom.
    pub fn new(bytes: &[u8]) -> Self {
        Self::with_room(bytes, Self::HEADROOM, Self::TAILROOM)
    }

    /// A packet holding `bytes` with the given head- and tailroom.
    pub fn with_room(bytes: &[u8], headroom: usize, tailroom: usize) -> Self {
        let mut buf = vec![0u8; headroom + bytes.len() + tailroom];
        buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
        VecPacket {
            buf,
            start: headroom,
            end: headroom + bytes.len(),
        }
    }

    /// Resets the packet to hold `bytes` at the default headroom, reusing the allocation
    /// when it is large enough (benchmarks refill the same buffers).
    pub fn reset(&mut self, bytes: &[u8]) {
        let need = Self::HEADROOM + bytes.len() + Self::TAILROOM;
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        self.start = Self::HEADROOM;
        self.end = Self::HEADROOM + bytes.len();
        self.buf[self.start..self.end].copy_from_slice(bytes);
    }
}

impl PacketBuf for VecPacket {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if n > self.tailroom() {
            return false;
        }
        self.end += n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_and_shrink_both_ends() {
        let mut p = VecPacket::with_room(&[1, 2, 3], 4, 2);
        assert!(p.prepend(4));
        assert!(!p.prepend(1));
        assert!(p.append(2));
        assert!(!p.append(1));
        assert_eq!(p.len(), 9);
        assert!(p.adj(4));
        assert!(p.trim(2));
        assert_eq!(p.data(), &[1, 2, 3]);
        assert!(!p.adj(4));
        assert!(!p.trim(4));
    }
}
