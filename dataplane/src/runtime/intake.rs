//! SA and SPD changes on their way from the main lcore to a worker, and back.
//!
//! DESIGN.md rule 4: each worker has its own lock-free queue of changes, drained at the top
//! of each poll iteration, and a deleted SA is freed only after its owner let go of it. Here
//! the same boxed [`Update`] makes the round trip: main boxes an `AddSa`/`DeleteSa`/
//! `InstallSpd`, the worker applies it and turns the box into a `Retired` holding whatever it
//! let go of (the replaced or deleted SA, the previous SPD), and sends it back on its return
//! queue. Main drops it there, off the fast path: the SA's keys are zeroized by their own
//! `Drop`. The worker never allocates or frees on this path.

use std::sync::Arc;

use crate::channel::SaCountersMsg;
use crate::esp::Direction;

/// A single-producer single-consumer queue of boxes (DPDK `rte_ring` in the runtime).
pub trait Mailbox<T> {
    /// Enqueues; gives the box back when full.
    fn try_send(&self, item: Box<T>) -> Result<(), Box<T>>;
    /// Dequeues one, if any.
    fn try_recv(&self) -> Option<Box<T>>;
}

/// One change for one worker, or (on the way back) what the worker released.
pub enum Update<Sa, Spd> {
    /// Install an SA, replacing any SA with the same key (update).
    AddSa(Box<Sa>),
    /// Remove the SA with this key (inbound: SPI; outbound: the SPD's SA id).
    DeleteSa { key: u32, inbound: bool },
    /// Use this SPD from the next burst on.
    InstallSpd(Arc<Spd>),
    /// Main asks for the counters of the worker's SAs; the worker sends the box back with
    /// `reports` filled (a management request, not per packet: it may allocate). `round`
    /// tells one dump's reports from a late answer to an earlier one.
    Report {
        round: u64,
        reports: Vec<SaCountersMsg>,
    },
    /// Sent back by the worker: everything it let go of, for main to drop.
    Retired {
        sa: Option<Box<Sa>>,
        spd: Option<Arc<Spd>>,
    },
}

/// What a worker's SA store must offer to take updates.
pub trait SaStore<Sa> {
    /// Inserts `sa`, returning the SA it replaces.
    fn insert(&mut self, sa: Box<Sa>) -> Option<Box<Sa>>;
    /// Removes the SA with `key`.
    fn remove(&mut self, key: u32, inbound: bool) -> Option<Box<Sa>>;
    /// Appends the counters of every SA (clock `now` in seconds for remaining lifetimes).
    fn report(&self, _now: u64, _out: &mut Vec<SaCountersMsg>) {}
    /// Appends the counters of at most `max` SAs, from the `from`-th on (in an order that
    /// stays put while no SA is added or removed); returns where the next slice starts, or
    /// `None` when every SA was reported. The default reports all of them at once.
    fn report_slice(
        &self,
        now: u64,
        from: usize,
        _max: usize,
        out: &mut Vec<SaCountersMsg>,
    ) -> Option<usize> {
        if from == 0 {
            self.report(now, out);
        }
        None
    }
    /// Starts a sweep of every SA's lifetime (once a second).
    fn start_lifetime_sweep(&mut self) {}
    /// Checks the lifetimes at `now` of the next few SAs of the sweep (a few per poll
    /// iteration, so that a sweep of thousands never holds the worker); each crossing is
    /// reported once through `emit` as (SPI, direction, hard, by_bytes).
    fn poll_lifetimes(&mut self, _now: u64, _emit: &mut dyn FnMut(u32, Direction, bool, bool)) {}
}

/// SAs a worker reports per poll iteration while it answers a dump: the report of 20,000
/// SAs (each with its strings) built at once held the worker for tens of milliseconds, and
/// the frames that arrived meanwhile overflowed the rings; in slices of 256 it takes 79
/// iterations of well under a millisecond each.
pub const REPORTS_PER_ITERATION: usize = 256;

/// A dump (`Update::Report`) a worker is part way through, and where its next slice starts.
/// Until it is done the worker applies no other change, so the dump still holds each SA
/// installed before it was asked for exactly once, and the store's order stays put.
pub struct ReportInProgress<Sa, Spd> {
    update: Option<Box<Update<Sa, Spd>>>,
    next: usize,
}

impl<Sa, Spd> Default for ReportInProgress<Sa, Spd> {
    fn default() -> Self {
        ReportInProgress {
            update: None,
            next: 0,
        }
    }
}

impl<Sa, Spd> ReportInProgress<Sa, Spd> {
    /// True while a dump is being answered.
    pub fn is_active(&self) -> bool {
        self.update.is_some()
    }
}

/// Drains a worker's queue, applying every change, and returns the boxes on `back`. At most
/// `max` changes per call so that a flood of updates cannot stall packet processing, and a
/// dump is answered [`REPORTS_PER_ITERATION`] SAs per call (`report` holds it between
/// calls). Returns the number of changes applied (a dump counts when it starts).
pub fn drain<Sa, Spd, S, In, Back>(
    store: &mut S,
    spd: &mut Arc<Spd>,
    queue: &In,
    back: &Back,
    max: usize,
    report: &mut ReportInProgress<Sa, Spd>,
) -> usize
where
    S: SaStore<Sa>,
    In: Mailbox<Update<Sa, Spd>>,
    Back: Mailbox<Update<Sa, Spd>>,
{
    let now = super::clock::now_secs();
    if let Some(mut update) = report.update.take() {
        if let Update::Report { reports, .. } = &mut *update {
            if let Some(next) = store.report_slice(now, report.next, REPORTS_PER_ITERATION, reports)
            {
                report.next = next;
                report.update = Some(update);
                return 0;
            }
        }
        give_back(back, update);
    }
    let mut n = 0;
    while n < max {
        let Some(mut update) = queue.try_recv() else {
            break;
        };
        n += 1;
        if let Update::Report { reports, .. } = &mut *update {
            match store.report_slice(now, 0, REPORTS_PER_ITERATION, reports) {
                Some(next) => {
                    // The rest on the next calls; nothing else until then.
                    report.next = next;
                    report.update = Some(update);
                    break;
                }
                None => {
                    give_back(back, update);
                    continue;
                }
            }
        }
        let retired = match std::mem::replace(
            &mut *update,
            Update::Retired {
                sa: None,
                spd: None,
            },
        ) {
            Update::AddSa(sa) => Update::Retired {
                sa: store.insert(sa),
                spd: None,
            },
            Update::DeleteSa { key, inbound } => Update::Retired {
                sa: store.remove(key, inbound),
                spd: None,
            },
            Update::InstallSpd(new) => Update::Retired {
                sa: None,
                spd: Some(std::mem::replace(spd, new)),
            },
            // Answered above.
            r @ Update::Report { .. } => r,
            r @ Update::Retired { .. } => r,
        };
        *update = retired;
        give_back(back, update);
    }
    n
}

/// Sends a box back to main. The return queue has the same capacity as the forward queue,
/// so it is never full while main keeps draining it; if it is, the box is leaked rather than
/// freed here (freeing keys on the fast path is what this design avoids).
fn give_back<Sa, Spd, Back: Mailbox<Update<Sa, Spd>>>(back: &Back, update: Box<Update<Sa, Spd>>) {
    if let Err(b) = back.try_send(update) {
        std::mem::forget(b);
        log::error!("%DATAPLANE-3-INTAKE: return queue full, a retired SA was leaked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeMap, VecDeque};
    use std::rc::Rc;

    struct Q<T>(RefCell<VecDeque<Box<T>>>, usize);
    impl<T> Mailbox<T> for Q<T> {
        fn try_send(&self, item: Box<T>) -> Result<(), Box<T>> {
            let mut q = self.0.borrow_mut();
            if q.len() >= self.1 {
                return Err(item);
            }
            q.push_back(item);
            Ok(())
        }
        fn try_recv(&self) -> Option<Box<T>> {
            self.0.borrow_mut().pop_front()
        }
    }

    /// An SA stand-in that records when it is dropped.
    struct Sa {
        spi: u32,
        version: u32,
        dropped: Rc<RefCell<Vec<(u32, u32)>>>,
    }
    impl Drop for Sa {
        fn drop(&mut self) {
            self.dropped.borrow_mut().push((self.spi, self.version));
        }
    }

    #[derive(Default)]
    struct Store(BTreeMap<u32, Box<Sa>>);
    impl SaStore<Sa> for Store {
        fn insert(&mut self, sa: Box<Sa>) -> Option<Box<Sa>> {
            self.0.insert(sa.spi, sa)
        }
        fn remove(&mut self, key: u32, _inbound: bool) -> Option<Box<Sa>> {
            self.0.remove(&key)
        }
        fn report_slice(
            &self,
            _now: u64,
            from: usize,
            max: usize,
            out: &mut Vec<SaCountersMsg>,
        ) -> Option<usize> {
            out.extend(
                self.0
                    .values()
                    .skip(from)
                    .take(max)
                    .map(|sa| SaCountersMsg {
                        spi: sa.spi,
                        ..Default::default()
                    }),
            );
            (from + max < self.0.len()).then_some(from + max)
        }
    }

    #[test]
    fn a_dump_is_answered_a_slice_per_call_and_changes_behind_it_wait() {
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let sa = |spi| {
            Box::new(Sa {
                spi,
                version: 1,
                dropped: dropped.clone(),
            })
        };
        let mut store = Store::default();
        for spi in 0..600 {
            store.insert(sa(spi));
        }
        let fwd: Q<Update<Sa, &'static str>> = Q(RefCell::new(VecDeque::new()), 8);
        let back: Q<Update<Sa, &'static str>> = Q(RefCell::new(VecDeque::new()), 8);
        let mut spd = Arc::new("v1");
        let mut report = ReportInProgress::default();
        let dump = Update::Report {
            round: 7,
            reports: Vec::new(),
        };
        assert!(fwd.try_send(Box::new(dump)).is_ok());
        assert!(fwd.try_send(Box::new(Update::AddSa(sa(9_999)))).is_ok());
        // 600 SAs: 256, 256, then 88 and the change queued behind the dump.
        for call in 0..2 {
            drain(&mut store, &mut spd, &fwd, &back, 32, &mut report);
            assert!(report.is_active(), "call {call}");
            assert!(
                back.try_recv().is_none(),
                "nothing back before the dump is whole"
            );
            assert!(!store.0.contains_key(&9_999), "the add waits for the dump");
        }
        assert_eq!(drain(&mut store, &mut spd, &fwd, &back, 32, &mut report), 1);
        assert!(!report.is_active());
        assert!(store.0.contains_key(&9_999));
        let Some(b) = back.try_recv() else {
            panic!("the dump came back")
        };
        let Update::Report { round, reports } = *b else {
            panic!("the dump first")
        };
        assert_eq!(round, 7);
        let mut spis: Vec<u32> = reports.iter().map(|r| r.spi).collect();
        spis.dedup();
        assert_eq!(
            spis,
            (0..600).collect::<Vec<_>>(),
            "each SA once, none added after"
        );
        assert!(matches!(
            back.try_recv().as_deref(),
            Some(Update::Retired { sa: None, .. })
        ));
    }

    #[test]
    fn replaced_and_deleted_sas_are_freed_only_by_main_after_the_round_trip() {
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let sa = |spi, version| {
            Box::new(Sa {
                spi,
                version,
                dropped: dropped.clone(),
            })
        };
        let fwd: Q<Update<Sa, &'static str>> = Q(RefCell::new(VecDeque::new()), 8);
        let back: Q<Update<Sa, &'static str>> = Q(RefCell::new(VecDeque::new()), 8);
        let mut store = Store::default();
        let mut spd = Arc::new("v1");
        for u in [
            Update::AddSa(sa(105, 1)),
            Update::AddSa(sa(106, 1)),
            Update::AddSa(sa(105, 2)),
            Update::DeleteSa {
                key: 106,
                inbound: true,
            },
            Update::InstallSpd(Arc::new("v2")),
        ] {
            assert!(fwd.try_send(Box::new(u)).is_ok());
        }
        let mut report = ReportInProgress::default();
        assert_eq!(drain(&mut store, &mut spd, &fwd, &back, 3, &mut report), 3);
        assert_eq!(drain(&mut store, &mut spd, &fwd, &back, 32, &mut report), 2);
        assert_eq!(*spd, "v2");
        assert_eq!(store.0.len(), 1);
        assert_eq!(store.0[&105].version, 2);
        // nothing was freed by the worker
        assert!(dropped.borrow().is_empty());
        // main drains the return queue and drops what comes back
        let mut old_spd = None;
        while let Some(b) = back.try_recv() {
            if let Update::Retired { spd: Some(s), .. } = &*b {
                old_spd = Some(**s);
            }
            drop(b);
        }
        assert_eq!(old_spd, Some("v1"));
        let mut d = dropped.borrow().clone();
        d.sort();
        assert_eq!(d, vec![(105, 1), (106, 1)]);
    }
}
