//! SA lifetimes as IOS states them (`4608000 kilobytes/3600 seconds`), with a soft limit
//! that asks the control plane to rekey and a hard limit after which the SA drops traffic.
//!
//! Bytes count the plaintext that the SA protected or recovered, as IOS's kilobyte lifetime
//! does. Time is the caller's coarse clock in seconds (the runtime reads it once per burst),
//! so the per-packet cost is one add and two compares.

use super::params::Lifetime;

/// Which limit was crossed, and by what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifetimeEvent {
    Soft { by_bytes: bool },
    Hard { by_bytes: bool },
}

/// What every packet of an SA reads and writes of its lifetime: the hard byte limit and the
/// flags (16 bytes, kept in the SA's counters line; see `Sa`).
#[derive(Clone, Debug)]
pub struct LifetimeGate {
    hard_bytes: u64,
    /// Set when a hard limit was crossed: the SA drops everything.
    pub expired: bool,
    /// Set when the sequence number space is used up (no ESN: 2^32 - 1).
    pub seq_exhausted: bool,
}

impl LifetimeGate {
    /// Checks the hard byte limit after more bytes were counted (`total` in all). Returns
    /// true when the SA is now hard-expired.
    #[inline]
    pub fn on_bytes(&mut self, total: u64) -> bool {
        if total >= self.hard_bytes {
            self.expired = true;
        }
        self.expired
    }
}

/// The rest of one SA's lifetime: what the lifetime sweep and show output read, never a
/// packet.
#[derive(Clone, Debug)]
pub struct LifetimeState {
    installed_at: u64,
    soft_secs: u64,
    hard_secs: u64,
    soft_bytes: u64,
    soft_reported: bool,
    hard_reported: bool,
}

impl LifetimeState {
    /// The gate and the state of a lifetime that starts at `now`.
    pub fn new(l: &Lifetime, now: u64) -> (LifetimeGate, LifetimeState) {
        let soft = |hard: u64| {
            if hard == 0 {
                u64::MAX
            } else {
                hard * l.soft_percent.clamp(1, 100) as u64 / 100
            }
        };
        let hard_bytes = if l.kilobytes == 0 {
            u64::MAX
        } else {
            l.kilobytes * 1024
        };
        let gate = LifetimeGate {
            hard_bytes,
            expired: false,
            seq_exhausted: false,
        };
        let state = LifetimeState {
            installed_at: now,
            soft_secs: soft(l.seconds),
            hard_secs: if l.seconds == 0 { u64::MAX } else { l.seconds },
            soft_bytes: if l.kilobytes == 0 {
                u64::MAX
            } else {
                soft(l.kilobytes) * 1024
            },
            soft_reported: false,
            hard_reported: false,
        };
        (gate, state)
    }

    /// Checks the clock and the byte count, and returns the next event not yet reported
    /// (soft first, then hard), exactly once each.
    pub fn poll(
        &mut self,
        gate: &mut LifetimeGate,
        now: u64,
        total_bytes: u64,
    ) -> Option<LifetimeEvent> {
        let age = now.saturating_sub(self.installed_at);
        let hard_t = age >= self.hard_secs;
        let hard_b = total_bytes >= gate.hard_bytes || gate.seq_exhausted;
        if hard_t || hard_b {
            gate.expired = true;
        }
        if !self.soft_reported {
            let by_bytes = total_bytes >= self.soft_bytes;
            if by_bytes || age >= self.soft_secs || gate.expired {
                self.soft_reported = true;
                return Some(LifetimeEvent::Soft { by_bytes });
            }
        }
        if gate.expired && !self.hard_reported {
            self.hard_reported = true;
            return Some(LifetimeEvent::Hard {
                by_bytes: hard_b && !hard_t,
            });
        }
        None
    }

    /// What IOS shows as `remaining key lifetime (k/sec)`.
    pub fn remaining(&self, gate: &LifetimeGate, now: u64, total_bytes: u64) -> (u64, u64) {
        let kb = if gate.hard_bytes == u64::MAX {
            0
        } else {
            gate.hard_bytes.saturating_sub(total_bytes) / 1024
        };
        let secs = if self.hard_secs == u64::MAX {
            0
        } else {
            self.hard_secs
                .saturating_sub(now.saturating_sub(self.installed_at))
        };
        (kb, secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_then_hard_exactly_once() {
        let l = Lifetime {
            seconds: 100,
            kilobytes: 1000,
            soft_percent: 90,
        };
        let (mut g, mut s) = LifetimeState::new(&l, 1000);
        assert_eq!(s.poll(&mut g, 1050, 0), None);
        assert_eq!(
            s.poll(&mut g, 1090, 0),
            Some(LifetimeEvent::Soft { by_bytes: false })
        );
        assert_eq!(s.poll(&mut g, 1091, 0), None);
        assert!(!g.expired);
        assert_eq!(s.remaining(&g, 1091, 1024 * 10), (990, 9));
        assert_eq!(
            s.poll(&mut g, 1100, 0),
            Some(LifetimeEvent::Hard { by_bytes: false })
        );
        assert!(g.expired);
        assert_eq!(s.poll(&mut g, 1200, 0), None);
    }

    #[test]
    fn bytes_limits() {
        let l = Lifetime {
            seconds: 3600,
            kilobytes: 2560,
            soft_percent: 90,
        };
        let (mut g, mut s) = LifetimeState::new(&l, 0);
        assert!(!g.on_bytes(2560 * 1024 - 1));
        assert_eq!(
            s.poll(&mut g, 1, 2304 * 1024),
            Some(LifetimeEvent::Soft { by_bytes: true })
        );
        assert!(g.on_bytes(2560 * 1024));
        assert_eq!(
            s.poll(&mut g, 2, 2560 * 1024),
            Some(LifetimeEvent::Hard { by_bytes: true })
        );
    }

    #[test]
    fn unlimited_and_sequence_exhaustion() {
        let l = Lifetime {
            seconds: 0,
            kilobytes: 0,
            soft_percent: 90,
        };
        let (mut g, mut s) = LifetimeState::new(&l, 0);
        assert_eq!(s.poll(&mut g, u64::MAX / 2, u64::MAX / 2), None);
        g.seq_exhausted = true;
        assert_eq!(
            s.poll(&mut g, 1, 0),
            Some(LifetimeEvent::Soft { by_bytes: false })
        );
        assert_eq!(
            s.poll(&mut g, 1, 0),
            Some(LifetimeEvent::Hard { by_bytes: true })
        );
    }
}
