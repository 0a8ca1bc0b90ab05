//! The main lcore's half of the SA intake: turns channel requests (AddSa, UpdateSa, DeleteSa,
//! InstallSpd) into [`Update`]s on the owner worker's queue, and frees what the workers send
//! back. The SA itself (keys expanded, replay window...) is built here, on the main lcore, so
//! a worker only links it in.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::intake::{Mailbox, Update};
use crate::channel::{Message, SaCountersMsg, SpdRuleMsg};
use crate::esp::{Direction, SaParams};
use crate::pipeline::WorkerId;
use crate::spd::{Spd, SpdRule};

/// Slots of each worker's intake queue and of its return queue (the runtime makes both this
/// size).
pub const INTAKE_QUEUE: usize = 1024;

/// How long an SA change waits for room in its worker's queue before control is told to
/// retry. A worker drains 64 changes per poll iteration (microseconds each), so only a stuck
/// or descheduled worker makes this run out. Control waits for each ack, so its requests
/// queue up only while the worker does not run: on a host loaded ten times over (worker at
/// nice 19) 20 and 100 ms both ran out now and then; waiting here is the backpressure,
/// refusing makes control fail an SA.
const INTAKE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How SAs are built and placed (implemented over the ESP module).
pub trait SaFactory<Sa> {
    /// Builds the fast-path SA (expands keys). Errors are reported to control.
    fn build(&self, sa_id: u32, params: &SaParams) -> Result<Box<Sa>, String>;
    /// The worker that will own it (for inbound SAs, the one encoded in the SPI).
    fn owner(&self, sa_id: u32, params: &SaParams) -> WorkerId;
}

/// Queues to and from each worker, and where each installed SA lives.
pub struct SaIntake<Sa, M> {
    pub to_workers: Vec<M>,
    pub from_workers: Vec<M>,
    /// (direction, key) -> owner; the key is the SPI for inbound SAs and the SPD's SA id for
    /// outbound ones (what the worker's store is indexed by).
    placed: BTreeMap<(bool, u32), WorkerId>,
    /// Per worker: boxes sent and not yet back. A worker that finds its return queue full
    /// must leak what it retires, so main never has more boxes out than that queue holds,
    /// however far ahead of it the worker runs.
    in_flight: Vec<usize>,
    /// The size of the queues both ways: the most boxes one worker may have out.
    capacity: usize,
    /// The SA dump being gathered: reports of this round are kept, older ones (a worker that
    /// answered after an earlier dump gave up on it) are dropped.
    report_round: u64,
    /// Reports of this round that came back and were not taken yet, and how many.
    reports: Vec<SaCountersMsg>,
    reports_in: usize,
    _sa: std::marker::PhantomData<fn() -> Sa>,
}

fn key(direction: Direction, spi: u32, sa_id: u32) -> (bool, u32) {
    match direction {
        Direction::Inbound => (true, spi),
        Direction::Outbound => (false, sa_id),
    }
}

impl<Sa, M: Mailbox<Update<Sa, Spd>>> SaIntake<Sa, M> {
    pub fn new(to_workers: Vec<M>, from_workers: Vec<M>) -> Self {
        let in_flight = vec![0; to_workers.len()];
        SaIntake {
            to_workers,
            from_workers,
            placed: BTreeMap::new(),
            in_flight,
            capacity: INTAKE_QUEUE,
            report_round: 0,
            reports: Vec::new(),
            reports_in: 0,
            _sa: std::marker::PhantomData,
        }
    }

    /// The queues hold `slots` boxes each (both ways), not [`INTAKE_QUEUE`].
    pub fn with_capacity(mut self, slots: usize) -> Self {
        self.capacity = slots;
        self
    }

    /// Number of SAs installed.
    pub fn installed(&self) -> usize {
        self.placed.len()
    }

    /// True when an inbound SA with this SPI is installed.
    pub fn has_inbound(&self, spi: u32) -> bool {
        self.placed.contains_key(&(true, spi))
    }

    /// Installs (or replaces) an SA on its owner.
    pub fn add(&mut self, f: &impl SaFactory<Sa>, sa_id: u32, params: &SaParams) -> Message {
        let sa = match f.build(sa_id, params) {
            Ok(sa) => sa,
            Err(reason) => return Message::Error { reason },
        };
        let owner = f.owner(sa_id, params);
        if owner as usize >= self.to_workers.len() {
            return Message::Error {
                reason: format!("no worker {owner}"),
            };
        }
        if !self.send(owner, Update::AddSa(sa)) {
            return Message::Error {
                reason: "intake queue full, retry".into(),
            };
        }
        self.placed
            .insert(key(params.direction, params.spi, sa_id), owner);
        log::info!(
            "%CRYPTO-6-SA_INSTALL: {:?} SA spi 0x{:x} ({}) to {} on worker {owner}",
            params.direction,
            params.spi,
            params.transform,
            params.remote
        );
        Message::Ack
    }

    /// Removes an SA; the owner sends it back, and [`SaIntake::collect_retired`] frees it.
    pub fn delete(&mut self, direction: Direction, spi: u32, sa_id: u32) -> Message {
        let k = key(direction, spi, sa_id);
        let Some(&owner) = self.placed.get(&k) else {
            return Message::Error {
                reason: format!("no {direction:?} SA spi 0x{spi:x}"),
            };
        };
        let update = Update::DeleteSa {
            key: k.1,
            inbound: k.0,
        };
        if !self.send(owner, update) {
            return Message::Error {
                reason: "intake queue full, retry".into(),
            };
        }
        self.placed.remove(&k);
        log::info!("%CRYPTO-6-SA_DELETE: {direction:?} SA spi 0x{spi:x} on worker {owner}");
        Message::Ack
    }

    /// Gives every worker the same new SPD.
    pub fn install_spd(&mut self, rules: &[SpdRuleMsg]) -> Message {
        let spd = Arc::new(Spd::new(rules.iter().map(|r| SpdRule {
            selector: r.selector,
            protect: r.protect,
            entry: r.entry,
        })));
        for w in 0..self.to_workers.len() {
            if !self.send(w as WorkerId, Update::InstallSpd(spd.clone())) {
                return Message::Error {
                    reason: "intake queue full, SPD not installed everywhere, retry".into(),
                };
            }
        }
        log::info!("%CRYPTO-6-SPD_INSTALL: {} rules", rules.len());
        Message::Ack
    }

    /// Queues `update` for worker `to`. A full queue is waited on, up to [`INTAKE_WAIT`]:
    /// a worker empties it in a few poll iterations, and control pushing thousands of SAs
    /// back to back (a restart, a hub's spokes) should see them installed, not refused. The return queues are drained meanwhile, so that the worker
    /// always has room to hand back what it lets go of.
    fn send(&mut self, to: WorkerId, update: Update<Sa, Spd>) -> bool {
        let mut update = Box::new(update);
        let deadline = std::time::Instant::now() + INTAKE_WAIT;
        loop {
            self.collect_retired();
            let room = self.in_flight[to as usize] < self.capacity;
            let sent = if room {
                self.to_workers[to as usize].try_send(update)
            } else {
                Err(update)
            };
            match sent {
                Ok(()) => {
                    self.in_flight[to as usize] += 1;
                    return true;
                }
                Err(back) if std::time::Instant::now() < deadline => {
                    update = back;
                    // Give the CPU away: on a shared core the worker is what we wait for.
                    std::thread::yield_now();
                }
                Err(_) => return false,
            }
        }
    }

    /// Drops what the workers let go of (replaced/deleted SAs, old SPDs): their keys are
    /// zeroized by their own `Drop`. Reports of the dump being gathered are kept for
    /// [`SaIntake::take_reports`]. Returns how many boxes came back.
    pub fn collect_retired(&mut self) -> usize {
        let mut n = 0;
        for w in 0..self.from_workers.len() {
            while let Some(b) = self.from_workers[w].try_recv() {
                n += 1;
                self.in_flight[w] = self.in_flight[w].saturating_sub(1);
                match *b {
                    Update::Report { round, reports } if round == self.report_round => {
                        self.reports.extend(reports);
                        self.reports_in += 1;
                    }
                    other => drop(other),
                }
            }
        }
        n
    }

    /// Starts gathering an SA dump: asks every worker for its SAs' counters (waiting for
    /// room in a full queue as SA changes do). The workers report after every change queued
    /// before, so the dump holds each SA installed until now exactly once. Returns how many
    /// workers were asked: fewer than [`SaIntake::workers`] when a queue stayed full.
    pub fn request_reports(&mut self) -> usize {
        self.report_round += 1;
        self.reports.clear();
        self.reports_in = 0;
        let mut sent = 0;
        for w in 0..self.to_workers.len() {
            let r = Update::Report {
                round: self.report_round,
                reports: Vec::with_capacity(16),
            };
            if self.send(w as WorkerId, r) {
                sent += 1;
            }
        }
        sent
    }

    /// Drains the return queues and appends the reports of the dump being gathered to
    /// `out`; returns how many workers' reports that was.
    pub fn take_reports(&mut self, out: &mut Vec<SaCountersMsg>) -> usize {
        self.collect_retired();
        out.append(&mut self.reports);
        std::mem::take(&mut self.reports_in)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.to_workers.len()
    }

    /// Handles the SA-related channel requests.
    pub fn handle(&mut self, f: &impl SaFactory<Sa>, msg: Message) -> Message {
        match msg {
            Message::AddSa { sa_id, params } | Message::UpdateSa { sa_id, params } => {
                self.add(f, sa_id, &params)
            }
            Message::DeleteSa {
                spi,
                direction,
                sa_id,
            } => self.delete(direction, spi, sa_id),
            Message::InstallSpd { rules } => self.install_spd(&rules),
            other => Message::Error {
                reason: format!("unsupported request (kind {})", other.kind()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Encryption, Integrity, Transform};
    use crate::esp::{Keys, Lifetime, Mode};
    use crate::runtime::intake::{drain, ReportInProgress, SaStore};
    use std::cell::RefCell;
    use std::collections::VecDeque;

    struct Q<T>(RefCell<VecDeque<Box<T>>>);
    impl<T> Mailbox<T> for Q<T> {
        fn try_send(&self, item: Box<T>) -> Result<(), Box<T>> {
            self.0.borrow_mut().push_back(item);
            Ok(())
        }
        fn try_recv(&self) -> Option<Box<T>> {
            self.0.borrow_mut().pop_front()
        }
    }
    fn q<T>() -> Q<T> {
        Q(RefCell::new(VecDeque::new()))
    }

    /// The SA as a worker would hold it, reduced to what this test checks.
    struct TestSa {
        spi: u32,
        inbound: bool,
        key: u32,
    }
    struct ByOwnerBit;
    impl SaFactory<TestSa> for ByOwnerBit {
        fn build(&self, sa_id: u32, p: &SaParams) -> Result<Box<TestSa>, String> {
            if p.keys.encryption.len() != p.transform.encryption.key_len() {
                return Err("bad key length".into());
            }
            let inbound = p.direction == Direction::Inbound;
            Ok(Box::new(TestSa {
                spi: p.spi,
                inbound,
                key: if inbound { p.spi } else { sa_id },
            }))
        }
        fn owner(&self, _sa_id: u32, p: &SaParams) -> WorkerId {
            (p.spi & 1) as WorkerId
        }
    }
    // Boxes on purpose: the store hands the very boxes back to main, as a real shard does.
    #[allow(clippy::vec_box)]
    #[derive(Default)]
    struct Store(Vec<Box<TestSa>>);
    impl SaStore<TestSa> for Store {
        fn insert(&mut self, sa: Box<TestSa>) -> Option<Box<TestSa>> {
            let old = self.remove(sa.key, sa.inbound);
            self.0.push(sa);
            old
        }
        fn remove(&mut self, key: u32, inbound: bool) -> Option<Box<TestSa>> {
            let i = self
                .0
                .iter()
                .position(|s| s.key == key && s.inbound == inbound)?;
            Some(self.0.remove(i))
        }
        fn report(&self, _now: u64, out: &mut Vec<SaCountersMsg>) {
            out.extend(self.0.iter().map(|s| SaCountersMsg {
                spi: s.spi,
                ..Default::default()
            }));
        }
    }

    fn params(spi: u32, direction: Direction, key_len: usize) -> SaParams {
        SaParams {
            spi,
            direction,
            transform: Transform {
                encryption: Encryption::Gcm128,
                integrity: Integrity::None,
            },
            keys: Keys {
                encryption: vec![7; key_len],
                authentication: vec![],
            },
            mode: Mode::Tunnel,
            local: "10.99.0.1".parse().unwrap(),
            remote: "10.99.0.2".parse().unwrap(),
            selectors: vec![],
            lifetime: Lifetime::default(),
            replay_window: 64,
            esn: false,
            udp_encap: None,
            crypto_map: "vpn".into(),
            crypto_map_seq: 10,
        }
    }

    #[test]
    fn sas_reach_their_owner_and_deleted_ones_come_back() {
        let mut intake: SaIntake<TestSa, Q<Update<TestSa, Spd>>> =
            SaIntake::new(vec![q(), q()], vec![q(), q()]);
        let f = ByOwnerBit;
        assert_eq!(
            intake.handle(
                &f,
                Message::AddSa {
                    sa_id: 1,
                    params: params(105, Direction::Inbound, 20)
                }
            ),
            Message::Ack
        );
        assert_eq!(
            intake.handle(
                &f,
                Message::AddSa {
                    sa_id: 1,
                    params: params(6, Direction::Outbound, 20)
                }
            ),
            Message::Ack
        );
        assert!(matches!(
            intake.handle(
                &f,
                Message::AddSa {
                    sa_id: 2,
                    params: params(7, Direction::Outbound, 3)
                }
            ),
            Message::Error { .. }
        ));
        assert_eq!(intake.installed(), 2);
        let mut stores = [Store::default(), Store::default()];
        let mut spds = [Arc::new(Spd::new([])), Arc::new(Spd::new([]))];
        for w in 0..2 {
            drain(
                &mut stores[w],
                &mut spds[w],
                &intake.to_workers[w],
                &intake.from_workers[w],
                32,
                &mut ReportInProgress::default(),
            );
        }
        assert_eq!(stores[1].0.len(), 1, "spi 105 is odd: worker 1");
        assert_eq!(stores[1].0[0].spi, 105);
        assert_eq!(stores[0].0.len(), 1, "spi 6 is even: worker 0");
        // adds come back as empty retirements
        assert_eq!(intake.collect_retired(), 2);
        assert_eq!(
            intake.handle(
                &f,
                Message::DeleteSa {
                    spi: 105,
                    direction: Direction::Inbound,
                    sa_id: 1
                }
            ),
            Message::Ack
        );
        assert!(matches!(
            intake.handle(
                &f,
                Message::DeleteSa {
                    spi: 105,
                    direction: Direction::Inbound,
                    sa_id: 1
                }
            ),
            Message::Error { .. }
        ));
        assert_eq!(
            intake.handle(&f, Message::InstallSpd { rules: vec![] }),
            Message::Ack
        );
        for w in 0..2 {
            drain(
                &mut stores[w],
                &mut spds[w],
                &intake.to_workers[w],
                &intake.from_workers[w],
                32,
                &mut ReportInProgress::default(),
            );
        }
        assert!(stores[1].0.is_empty());
        assert_eq!(stores[0].0.len(), 1);
        assert_eq!(
            intake.collect_retired(),
            3,
            "the deleted SA and two old SPDs"
        );
        assert_eq!(intake.installed(), 1);
    }

    #[test]
    fn never_more_boxes_out_than_the_return_queue_holds() {
        let mut intake: SaIntake<TestSa, Q<Update<TestSa, Spd>>> =
            SaIntake::new(vec![q(), q()], vec![q(), q()]);
        let f = ByOwnerBit;
        let add = |intake: &mut SaIntake<_, _>, spi: u32| {
            intake.handle(
                &f,
                Message::AddSa {
                    sa_id: spi,
                    params: params(spi, Direction::Inbound, 20),
                },
            )
        };
        // Even SPIs: worker 0, which does not run yet.
        for i in 0..INTAKE_QUEUE as u32 {
            assert_eq!(add(&mut intake, 2 * i), Message::Ack);
        }
        assert!(
            matches!(add(&mut intake, 1_000_000), Message::Error { .. }),
            "a full return queue's worth is out: refused, not sent"
        );
        assert_eq!(add(&mut intake, 1), Message::Ack, "worker 1 is not held up");
        let mut store = Store::default();
        let mut spd = Arc::new(Spd::new([]));
        assert_eq!(
            drain(
                &mut store,
                &mut spd,
                &intake.to_workers[0],
                &intake.from_workers[0],
                usize::MAX,
                &mut ReportInProgress::default()
            ),
            INTAKE_QUEUE
        );
        // The boxes came back: room again.
        assert_eq!(add(&mut intake, 1_000_000), Message::Ack);
        assert_eq!(store.0.len(), INTAKE_QUEUE);
    }

    #[test]
    fn a_late_report_of_an_earlier_dump_is_not_mixed_into_the_next() {
        let mut intake: SaIntake<TestSa, Q<Update<TestSa, Spd>>> =
            SaIntake::new(vec![q(), q()], vec![q(), q()]);
        let f = ByOwnerBit;
        for (spi, dir) in [(105, Direction::Inbound), (6, Direction::Outbound)] {
            let add = Message::AddSa {
                sa_id: 1,
                params: params(spi, dir, 20),
            };
            assert_eq!(intake.handle(&f, add), Message::Ack);
        }
        let mut stores = [Store::default(), Store::default()];
        let mut spds = [Arc::new(Spd::new([])), Arc::new(Spd::new([]))];
        let mut run = |intake: &SaIntake<TestSa, Q<Update<TestSa, Spd>>>, w: usize| {
            drain(
                &mut stores[w],
                &mut spds[w],
                &intake.to_workers[w],
                &intake.from_workers[w],
                32,
                &mut ReportInProgress::default(),
            )
        };
        run(&intake, 0);
        run(&intake, 1);
        intake.collect_retired();
        // a dump that only worker 0 answers in time
        assert_eq!(intake.request_reports(), 2);
        run(&intake, 0);
        let mut out = Vec::new();
        assert_eq!(intake.take_reports(&mut out), 1);
        assert_eq!(out.len(), 1);
        // the next dump: worker 1 answers the earlier request too, late
        assert_eq!(intake.request_reports(), 2);
        run(&intake, 1);
        run(&intake, 0);
        // SA changes collect what comes back meanwhile: this dump's reports are kept
        intake.collect_retired();
        let mut out = Vec::new();
        assert_eq!(intake.take_reports(&mut out), 2, "one report per worker");
        let mut spis: Vec<u32> = out.iter().map(|s| s.spi).collect();
        spis.sort_unstable();
        assert_eq!(spis, vec![6, 105], "each SA once");
    }
}
