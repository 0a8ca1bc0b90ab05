//! Anti-replay (RFC 4303 section 3.4.3) with 64-bit extended sequence numbers (appendix A).
//!
//! The window is `size` packets wide (64 to 4096, a multiple of 64); its right edge is the
//! highest sequence number that has verified. Its bits live in a ring of `size` rounded up
//! to a power of two, at the front of a bitmap with room for the largest window: with the
//! default window of 64 the ring is one word, in the same cache line as the header, so an
//! inbound packet reads one line of the window where a ring of 4096 bits put the word it
//! needs in any of 8 (a cache miss per packet with thousands of SAs).
//!
//! Checking is split in two, as the RFC requires: [`ReplayWindow::check`] before the ICV is
//! verified (no state change: a forged packet must not move the window) and
//! [`ReplayWindow::accept`] after it verified.

/// Largest window, in packets.
pub const MAX_WINDOW: u32 = 4096;
const WORDS: usize = MAX_WINDOW as usize / 64;

/// Why a sequence number is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Already received.
    Duplicate,
    /// Left of the window: too old to tell.
    TooOld,
}

/// The receive window of one inbound SA. Owned by the SA's lcore: plain fields. `repr(C)`:
/// the header fields come before the bitmap.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct ReplayWindow {
    /// Highest verified sequence number (full 64 bits with ESN), 0 before the first packet.
    top: u64,
    size: u32,
    /// The ring's length in bits minus one (a power of two at least `size`, 64 at least; at
    /// most 4095). A u16, so that the header is 16 bytes and the header and first word fit
    /// the SA's line ([`ReplayWindow::HOT_BYTES`]).
    ring_mask: u16,
    esn: bool,
    bits: [u64; WORDS],
}

impl ReplayWindow {
    /// The header and the first word of the bitmap: what a packet of an SA with the default
    /// window reads (the SA keeps them in one of its hot lines).
    pub const HOT_BYTES: usize = std::mem::offset_of!(ReplayWindow, bits) + 8;

    /// A window of `size` packets (rounded up to a multiple of 64, at most 4096). Size 0
    /// disables replay detection (sequence numbers are still inferred for ESN).
    pub fn new(size: u32, esn: bool) -> ReplayWindow {
        let size = if size == 0 {
            0
        } else {
            size.div_ceil(64).clamp(1, WORDS as u32) * 64
        };
        ReplayWindow {
            top: 0,
            size,
            ring_mask: (size.max(64).next_power_of_two() - 1) as u16,
            esn,
            bits: [0; WORDS],
        }
    }

    /// Window size in packets (0: disabled).
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Highest verified sequence number.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The full sequence number of a packet whose low 32 bits are `seq_lo`: without ESN the
    /// number itself; with ESN, the high half inferred as RFC 4303 appendix A.2.1 does.
    #[inline]
    pub fn infer(&self, seq_lo: u32) -> u64 {
        if !self.esn {
            return seq_lo as u64;
        }
        let w = self.size.max(64) as u64;
        let th = (self.top >> 32) as u32;
        let tl = self.top as u32;
        let bottom = self.top.saturating_sub(w - 1) as u32; // low 32 bits of the window's left edge
        let hi = if tl >= (w - 1) as u32 {
            // Case A: the window lies within one epoch.
            if seq_lo >= bottom {
                th
            } else {
                th.wrapping_add(1)
            }
        } else {
            // Case B: the window spans the epoch boundary.
            if seq_lo >= bottom {
                th.wrapping_sub(1)
            } else {
                th
            }
        };
        // Before the first epoch wraps there is no epoch -1.
        if hi == u32::MAX && th == 0 {
            return seq_lo as u64;
        }
        ((hi as u64) << 32) | seq_lo as u64
    }

    /// Starts loading the bitmap word at the window's right edge, which the next in-order
    /// packet reads, when it is not the first: the SA's own prefetch covers the header and
    /// the first word ([`ReplayWindow::HOT_BYTES`]), all a window of 64 has. Reads the
    /// header.
    #[inline(always)]
    pub fn prefetch(&self) {
        let word = self.slot(self.top) / 64;
        if word > 0 {
            crate::cache::line(&self.bits[word] as *const u64 as *const u8);
        }
    }

    /// The bit of `seq` in the ring.
    #[inline(always)]
    fn slot(&self, seq: u64) -> usize {
        // ring_mask < MAX_WINDOW: the index stays within `bits`.
        (seq & self.ring_mask as u64) as usize
    }

    fn bit(&self, seq: u64) -> bool {
        let i = self.slot(seq);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_bit(&mut self, seq: u64) {
        let i = self.slot(seq);
        self.bits[i / 64] |= 1 << (i % 64);
    }

    fn clear_bit(&mut self, seq: u64) {
        let i = self.slot(seq);
        self.bits[i / 64] &= !(1 << (i % 64));
    }

    /// Checks a packet before its ICV is verified. Returns its full sequence number.
    /// Sequence number 0 is never valid (the sender starts at 1).
    #[inline]
    pub fn check(&self, seq_lo: u32) -> Result<u64, ReplayError> {
        let seq = self.infer(seq_lo);
        if self.size == 0 {
            return Ok(seq);
        }
        if seq == 0 {
            return Err(ReplayError::TooOld);
        }
        if seq > self.top {
            return Ok(seq);
        }
        if self.top - seq >= self.size as u64 {
            return Err(ReplayError::TooOld);
        }
        if self.bit(seq) {
            return Err(ReplayError::Duplicate);
        }
        Ok(seq)
    }

    /// Records a packet whose ICV verified (after a successful [`check`](Self::check)).
    #[inline]
    pub fn accept(&mut self, seq: u64) {
        if self.size == 0 {
            self.top = self.top.max(seq);
            return;
        }
        if seq > self.top {
            let shift = seq - self.top;
            if shift >= self.size as u64 {
                let ring_words = (self.ring_mask as usize + 1) / 64;
                self.bits[..ring_words].fill(0);
            } else {
                // Clear the slots that enter the window on the right.
                for s in self.top + 1..seq {
                    self.clear_bit(s);
                }
            }
            self.clear_bit(seq);
            self.top = seq;
        }
        self.set_bit(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(w: &mut ReplayWindow, seq_lo: u32) -> Result<u64, ReplayError> {
        let s = w.check(seq_lo)?;
        w.accept(s);
        Ok(s)
    }

    #[test]
    fn duplicates_and_left_edge() {
        let mut w = ReplayWindow::new(64, false);
        assert_eq!(w.check(0), Err(ReplayError::TooOld));
        for s in 1..=100 {
            take(&mut w, s).unwrap();
        }
        assert_eq!(w.check(100), Err(ReplayError::Duplicate));
        assert_eq!(w.check(50), Err(ReplayError::Duplicate));
        // 100 - 63 = 37 is the left edge (inside), 36 is outside
        let mut w2 = ReplayWindow::new(64, false);
        take(&mut w2, 100).unwrap();
        assert_eq!(take(&mut w2, 37), Ok(37));
        assert_eq!(w2.check(37), Err(ReplayError::Duplicate));
        assert_eq!(w2.check(36), Err(ReplayError::TooOld));
        // out of order inside the window is fine, once
        assert_eq!(take(&mut w2, 99), Ok(99));
        assert_eq!(w2.check(99), Err(ReplayError::Duplicate));
    }

    #[test]
    fn check_does_not_move_the_window() {
        let mut w = ReplayWindow::new(64, false);
        take(&mut w, 10).unwrap();
        assert_eq!(w.check(1000), Ok(1000)); // a forged packet checks, fails its ICV...
        assert_eq!(w.top(), 10); // ...and has not moved anything
        assert_eq!(take(&mut w, 9), Ok(9));
    }

    #[test]
    fn far_ahead_clears_the_window() {
        let mut w = ReplayWindow::new(128, false);
        for s in 1..=128 {
            take(&mut w, s).unwrap();
        }
        take(&mut w, 10_000).unwrap();
        // everything between 10000-127 and 10000 is new, including slots that aliased old bits
        for s in (10_000 - 127)..10_000 {
            assert_eq!(w.check(s), Ok(s as u64), "seq {s}");
        }
        assert_eq!(w.check(10_000 - 128), Err(ReplayError::TooOld));
        // a shift smaller than the window clears only the slots that enter it
        let mut w = ReplayWindow::new(64, false);
        take(&mut w, 1).unwrap();
        take(&mut w, 2).unwrap();
        take(&mut w, 4097 + 2).unwrap(); // far past the window: the whole ring is cleared
        assert_eq!(w.check(4097 + 1), Ok(4098));
    }

    #[test]
    fn large_window() {
        let mut w = ReplayWindow::new(4096, false);
        take(&mut w, 5000).unwrap();
        assert_eq!(take(&mut w, 5000 - 4095), Ok(905));
        assert_eq!(w.check(5000 - 4096), Err(ReplayError::TooOld));
        assert_eq!(ReplayWindow::new(100, false).size(), 128);
        assert_eq!(ReplayWindow::new(100_000, false).size(), 4096);
    }

    #[test]
    fn esn_rollover_and_late_packet_from_previous_epoch() {
        let mut w = ReplayWindow::new(64, true);
        take(&mut w, 0xffff_fff0).unwrap();
        // the low half wraps: inferred into epoch 1
        assert_eq!(take(&mut w, 0x0000_0002), Ok(0x1_0000_0002));
        // a late packet from epoch 0, still inside the window
        assert_eq!(take(&mut w, 0xffff_fff5), Ok(0xffff_fff5));
        assert_eq!(w.check(0xffff_fff5), Err(ReplayError::Duplicate));
        // an epoch-0 number left of the window is taken as ahead, in epoch 1 (appendix A.2.1);
        // its ICV, computed by the sender with the high half 0, will then fail
        assert_eq!(w.infer(0xffff_ff00), 0x1_ffff_ff00);
        // well inside epoch 1 now
        take(&mut w, 0x0000_1000).unwrap();
        assert_eq!(w.infer(0x0000_0fff), 0x1_0000_0fff);
        assert_eq!(w.infer(0x0000_0100), 0x2_0000_0100); // behind the window: next epoch
                                                         // without ESN the same numbers are taken at face value
        let w = ReplayWindow::new(64, false);
        assert_eq!(w.infer(2), 2);
    }

    /// Against a model that remembers every accepted number: random walks (mostly ahead,
    /// some late, some replayed) through windows whose rings are as wide as the window (64,
    /// 128, 4096) and wider (192 in a ring of 256, 100 rounded to 128).
    #[test]
    fn the_ring_agrees_with_a_set_of_every_accepted_number() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for size in [64u32, 100, 128, 192, 1024, 4096] {
            let mut w = ReplayWindow::new(size, false);
            let width = w.size() as u64;
            let mut seen = std::collections::HashSet::new();
            let mut top = 0u64;
            for _ in 0..20_000 {
                let r = rng.next_u32() as u64;
                let seq = match r % 8 {
                    0..=3 => top + 1 + r % 3,
                    4 => top + 1 + r % (2 * width),
                    _ => top.saturating_sub(r % (width + 8)),
                };
                let want = if seq == 0 || (seq <= top && top - seq >= width) {
                    Err(ReplayError::TooOld)
                } else if seen.contains(&seq) {
                    Err(ReplayError::Duplicate)
                } else {
                    Ok(seq)
                };
                assert_eq!(
                    w.check(seq as u32),
                    want,
                    "window {size}, top {top}, seq {seq}"
                );
                if want.is_ok() {
                    w.accept(seq);
                    seen.insert(seq);
                    top = top.max(seq);
                }
            }
        }
    }

    /// The default window's bits are its first word: a packet reads the header and that
    /// word, [`ReplayWindow::HOT_BYTES`] (24) from the start.
    #[test]
    fn a_window_of_64_is_its_first_word() {
        let w = ReplayWindow::new(64, false);
        assert_eq!(ReplayWindow::HOT_BYTES, 24);
        for seq in [1u64, 63, 64, 12345, u32::MAX as u64 + 7] {
            assert_eq!(w.slot(seq) / 64, 0, "{seq}");
        }
        assert_eq!(ReplayWindow::new(4096, false).slot(4095) / 64, 63);
    }

    #[test]
    fn disabled_window_accepts_everything() {
        let mut w = ReplayWindow::new(0, false);
        take(&mut w, 5).unwrap();
        assert_eq!(take(&mut w, 5), Ok(5));
    }
}
