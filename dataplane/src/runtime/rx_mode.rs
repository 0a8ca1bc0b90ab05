//! How a worker lcore waits when its queues are empty (`[dataplane] rx_mode`).
//!
//! - `polling` (the default): the worker never gives up its CPU. On a bare-metal gateway
//!   with isolated cores this is the lowest latency and the highest rate; the core shows
//!   100 % busy whether or not packets come.
//! - `adaptive`: the worker polls while traffic comes and, after a run of empty polls,
//!   sleeps for a short time that doubles up to a bound ([`MAX_SLEEP`]). The first packet
//!   into an idle worker waits at most that long, and the core goes back to the host's
//!   other work while the gateway is quiet: ipsec-control's IKE exchanges on a host with
//!   fewer cores than processes, or a lab machine. One non-empty poll returns the worker to
//!   polling. VPP's `rx-mode adaptive` and DPDK's l3fwd-power make the same trade.
//!
//! An idle worker still drains its SA intake on every wake-up, so SA installs see at most
//! one sleep of delay (the main lcore acks an install when it is queued, not when it is
//! applied).

use std::time::Duration;

pub use crate::config::RxMode;

/// Empty polls in a row before an adaptive worker first sleeps: a few tens of microseconds
/// of polling, so that the gaps inside a flow of traffic never put the worker to sleep.
pub const EMPTY_POLLS_BEFORE_SLEEP: u32 = 256;
/// The first sleep; each further empty poll doubles it up to [`MAX_SLEEP`].
pub const FIRST_SLEEP: Duration = Duration::from_micros(2);
/// The longest sleep: what the first packet after a quiet spell can wait, and what the RX
/// ring must hold meanwhile (1,024 descriptors are 100 us at 10 Mpps).
pub const MAX_SLEEP: Duration = Duration::from_micros(100);
/// Timer slack asked for by an adaptive worker: the kernel's default (50 us) would make
/// every short sleep a long one.
pub const TIMER_SLACK_NS: u64 = 1_000;

/// A worker's idle state: what it decides after each poll.
#[derive(Debug)]
pub struct IdleBackoff {
    mode: RxMode,
    /// Empty polls since the last frame.
    empty_polls: u32,
    /// The next sleep, when it comes to one.
    next_sleep: Duration,
}

impl IdleBackoff {
    pub fn new(mode: RxMode) -> IdleBackoff {
        IdleBackoff {
            mode,
            empty_polls: 0,
            next_sleep: FIRST_SLEEP,
        }
    }

    /// After a poll that received `frames`: how long to sleep before the next one (None:
    /// poll again at once).
    #[inline]
    pub fn after_poll(&mut self, frames: usize) -> Option<Duration> {
        if self.mode == RxMode::Polling {
            return None;
        }
        if frames > 0 {
            self.empty_polls = 0;
            self.next_sleep = FIRST_SLEEP;
            return None;
        }
        if self.empty_polls < EMPTY_POLLS_BEFORE_SLEEP {
            self.empty_polls += 1;
            return None;
        }
        let sleep = self.next_sleep;
        self.next_sleep = (sleep * 2).min(MAX_SLEEP);
        Some(sleep)
    }

    /// Sets up the calling thread for this mode: an adaptive worker asks for a fine timer
    /// slack, so that its short sleeps stay short. Polling changes nothing.
    pub fn prepare_thread(&self) -> std::io::Result<()> {
        if self.mode == RxMode::Polling {
            return Ok(());
        }
        // SAFETY: PR_SET_TIMERSLACK takes one integer argument by value and changes only the
        // calling thread's timer slack; no memory is passed to the kernel.
        let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS as libc::c_ulong) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_never_sleeps() {
        let mut b = IdleBackoff::new(RxMode::Polling);
        assert!((0..10_000).all(|_| b.after_poll(0).is_none()));
    }

    #[test]
    fn adaptive_sleeps_after_a_run_of_empty_polls_doubling_to_the_bound() {
        let mut b = IdleBackoff::new(RxMode::Adaptive);
        for _ in 0..EMPTY_POLLS_BEFORE_SLEEP {
            assert_eq!(b.after_poll(0), None);
        }
        let sleeps: Vec<Duration> = (0..10).filter_map(|_| b.after_poll(0)).collect();
        assert_eq!(sleeps.len(), 10, "every empty poll after the run sleeps");
        assert_eq!(sleeps[0], FIRST_SLEEP);
        assert_eq!(sleeps[1], FIRST_SLEEP * 2);
        assert!(sleeps.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*sleeps.last().unwrap(), MAX_SLEEP);
    }

    #[test]
    fn one_frame_returns_an_adaptive_worker_to_polling() {
        let mut b = IdleBackoff::new(RxMode::Adaptive);
        for _ in 0..EMPTY_POLLS_BEFORE_SLEEP + 20 {
            b.after_poll(0);
        }
        assert_eq!(b.after_poll(0), Some(MAX_SLEEP));
        assert_eq!(b.after_poll(3), None);
        // a whole new run of empty polls before the next sleep, which is short again
        for _ in 0..EMPTY_POLLS_BEFORE_SLEEP {
            assert_eq!(b.after_poll(0), None);
        }
        assert_eq!(b.after_poll(0), Some(FIRST_SLEEP));
    }
}
