//! Retransmission of IKE messages with back-off, and the exchange timeout (RFC 2408 leaves
//! both to the implementation).
//!
//! IKEv1 runs over UDP: the side that sent the last message of an exchange step resends it
//! until the answer comes. Like IOS, we resend after an interval that grows each time, and
//! after the last retry the exchange is given up and its state deleted (the log line, IOS's
//! "retransmission count exceeded" wording, is the caller's). The schedule is data so that
//! tests and the config can choose it.

use std::time::{Duration, Instant};

/// When to resend and when to give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Wait before the first retransmission.
    pub first: Duration,
    /// Each later wait is the previous one times this (2: doubling).
    pub factor: u32,
    /// Waits never grow beyond this.
    pub max_interval: Duration,
    /// Retransmissions before the exchange is given up.
    pub retries: u32,
}

impl Default for Schedule {
    /// 2, 4, 8, 16, 32 seconds, then give up: the answer has had a minute.
    fn default() -> Self {
        Schedule {
            first: Duration::from_secs(2),
            factor: 2,
            max_interval: Duration::from_secs(32),
            retries: 5,
        }
    }
}

/// What a timer says when polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing to do before this instant.
    Wait(Instant),
    /// Send the last message again (this is retransmission number `n`, from 1).
    Resend { n: u32 },
    /// No answer after every retry: delete the exchange.
    GiveUp,
}

/// The retransmission timer of one exchange step: armed when a message is sent, disarmed
/// when the answer is accepted.
#[derive(Clone, Debug)]
pub struct Retransmit {
    schedule: Schedule,
    deadline: Instant,
    interval: Duration,
    sent: u32,
}

impl Retransmit {
    /// Armed at `now`, right after the first transmission.
    pub fn new(schedule: Schedule, now: Instant) -> Retransmit {
        Retransmit {
            schedule,
            deadline: now + schedule.first,
            interval: schedule.first,
            sent: 0,
        }
    }

    /// Retransmissions made so far.
    pub fn retransmissions(&self) -> u32 {
        self.sent
    }

    /// The next instant this timer needs polling.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Advances the timer to `now`. A `Resend` re-arms it with the next, longer interval.
    pub fn poll(&mut self, now: Instant) -> Due {
        if now < self.deadline {
            return Due::Wait(self.deadline);
        }
        if self.sent >= self.schedule.retries {
            return Due::GiveUp;
        }
        self.sent += 1;
        self.interval =
            (self.interval * self.schedule.factor.max(1)).min(self.schedule.max_interval);
        self.deadline = now + self.interval;
        Due::Resend { n: self.sent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_gives_up() {
        let t0 = Instant::now();
        let mut r = Retransmit::new(Schedule::default(), t0);
        let s = |n| t0 + Duration::from_secs(n);
        assert_eq!(r.poll(s(1)), Due::Wait(s(2)));
        // resends at 2, 6, 14, 30, 62 (waits 2, 4, 8, 16, 32), gives up at 94
        let mut at = 2;
        for (n, wait) in [(1, 4), (2, 8), (3, 16), (4, 32), (5, 32)] {
            assert_eq!(r.poll(s(at)), Due::Resend { n }, "at {at}");
            assert_eq!(r.poll(s(at)), Due::Wait(s(at + wait)));
            at += wait;
        }
        assert_eq!(r.poll(s(at)), Due::GiveUp);
        assert_eq!(r.retransmissions(), 5);
    }

    #[test]
    fn a_late_poll_resends_once_not_for_every_missed_interval() {
        let t0 = Instant::now();
        let mut r = Retransmit::new(Schedule::default(), t0);
        let late = t0 + Duration::from_secs(20);
        assert_eq!(r.poll(late), Due::Resend { n: 1 });
        assert_eq!(r.poll(late), Due::Wait(late + Duration::from_secs(4)));
    }

    #[test]
    fn intervals_are_capped() {
        let t0 = Instant::now();
        let sched = Schedule {
            first: Duration::from_secs(10),
            factor: 3,
            max_interval: Duration::from_secs(20),
            retries: 3,
        };
        let mut r = Retransmit::new(sched, t0);
        let s = |n| t0 + Duration::from_secs(n);
        assert_eq!(r.poll(s(10)), Due::Resend { n: 1 });
        assert_eq!(r.deadline(), s(30));
        assert_eq!(r.poll(s(30)), Due::Resend { n: 2 });
        assert_eq!(r.deadline(), s(50));
    }
}
