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

/// The running state of one SA's lifetime.
#[derive(Clone, Debug)]
pub struct LifetimeState {
    installed_at: u64,
    soft_secs: u64,
    hard_secs: u64,
    soft_bytes: u64,
    hard_bytes: u64,
    soft_reported: bool,
    hard_reported: bool,
    /// Set when a hard limit was crossed: the SA drops everything.
    pub expired: bool,
    /// Set when the sequence number space is used up (no ESN: 2^32 - 1).
    pub seq_exhausted: bool,
}

impl LifetimeState {
    pub fn new(l: &Lifetime, now: u64) -> LifetimeState {
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
        LifetimeState {
            installed_at: now,
            soft_secs: soft(l.seconds),
            hard_secs: if l.seconds == 0 { u64::MAX } else { l.seconds },
            soft_bytes: if l.kilobytes == 0 {
                u64::MAX
            } else {
                soft(l.kilobytes) * 1024
            },
            hard_bytes,
            soft_reported: false,
            hard_reported: false,
            expired: false,
            seq_exhausted: false,
        }
    }

    /// Checks the byte limits after `bytes` more were counted (`total` in all). Returns true
    /// when the SA is now hard-expired.
    #[inline]
    pub fn on_bytes(&mut self, total: u64) -> bool {
        if total >= self.hard_bytes {
            self.expired = true;
        }
        self.expired
    }

    /// Checks the clock and the byte count, and returns the next event not yet reported
    /// (soft first, then hard), exactly once each.
    pub fn poll(&mut self, now: u64, total_bytes: u64) -> Option<LifetimeEvent> {
        let age = now.saturating_sub(self.installed_at);
        let hard_t = age >= self.hard_secs;
        let hard_b = total_bytes >= self.hard_bytes || self.seq_exhausted;
        if hard_t || hard_b {
            self.expired = true;
        }
        if !self.soft_reported {
            let by_bytes = total_bytes >= self.soft_bytes;
            if by_bytes || age >= self.soft_secs || self.expired {
                self.soft_reported = true;
                return Some(LifetimeEvent::Soft { by_bytes });
            }
        }
        if self.expired && !self.hard_reported {
            self.hard_reported = true;
            return Some(LifetimeEvent::Hard {
                by_bytes: hard_b && !hard_t,
            });
        }
        None
    }

    /// What IOS shows as `remaining key lifetime (k/sec)`.
    pub fn remaining(&self, now: u64, total_bytes: u64) -> (u64, u64) {
        let kb = if self.hard_bytes == u64::MAX {
            0
        } else {
            self.hard_bytes.saturating_sub(total_bytes) / 1024
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
        let mut s = LifetimeState::new(&l, 1000);
        assert_eq!(s.poll(1050, 0), None);
        assert_eq!(
            s.poll(1090, 0),
            Some(LifetimeEvent::Soft { by_bytes: false })
        );
        assert_eq!(s.poll(1091, 0), None);
        assert!(!s.expired);
        assert_eq!(s.remaining(1091, 1024 * 10), (990, 9));
        assert_eq!(
            s.poll(1100, 0),
            Some(LifetimeEvent::Hard { by_bytes: false })
        );
        assert!(s.expired);
        assert_eq!(s.poll(1200, 0), None);
    }

    #[test]
    fn bytes_limits() {
        let l = Lifetime {
            seconds: 3600,
            kilobytes: 2560,
            soft_percent: 90,
        };
        let mut s = LifetimeState::new(&l, 0);
        assert!(!s.on_bytes(2560 * 1024 - 1));
        assert_eq!(
            s.poll(1, 2304 * 1024),
            Some(LifetimeEvent::Soft { by_bytes: true })
        );
        assert!(s.on_bytes(2560 * 1024));
        assert_eq!(
            s.poll(2, 2560 * 1024),
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
        let mut s = LifetimeState::new(&l, 0);
        assert_eq!(s.poll(u64::MAX / 2, u64::MAX / 2), None);
        s.seq_exhausted = true;
        assert_eq!(s.poll(1, 0), Some(LifetimeEvent::Soft { by_bytes: false }));
        assert_eq!(s.poll(1, 0), Some(LifetimeEvent::Hard { by_bytes: true }));
    }
}
