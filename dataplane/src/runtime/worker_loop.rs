//! The poll loop of a worker lcore: at the top of each iteration it takes the SA and SPD
//! changes waiting in its intake queue, then runs one pipeline iteration over its RX queues
//! and its handoff ring. It runs until the stop flag is raised.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::intake::{drain, Mailbox, ReportInProgress, SaStore, Update};
use super::requests::RequestSender;
use super::rx_mode::IdleBackoff;
use crate::packet::PacketBuf;
use crate::pipeline::worker::{poll_once, Staging, WorkerIo};
use crate::pipeline::{
    Context, LcoreCounters, LocalAddrs, Neighbours, Policy, PortInfo, Routes, SaShard, WorkerId,
};
use crate::signals::stop_requested;

/// At most this many SA/SPD changes are applied per iteration, so that a burst of changes
/// cannot starve the packets.
pub const INTAKE_PER_ITERATION: usize = 64;

/// Everything one worker owns or reads.
pub struct Worker<Sa, Spd, A, R, N, In, Back> {
    pub me: WorkerId,
    pub ports: Vec<PortInfo>,
    pub local: LocalAddrs,
    pub routes: Arc<R>,
    pub neighbours: Arc<N>,
    pub spd: Arc<Spd>,
    pub sas: A,
    pub requests: RequestSender,
    pub counters: Arc<LcoreCounters>,
    pub intake: In,
    pub retired: Back,
    pub _sa: std::marker::PhantomData<fn() -> Sa>,
    /// The clock second at which the last lifetime sweep started (see
    /// `SaShard::start_lifetime_sweep`: the SAs are then checked a few per iteration).
    pub lifetimes_checked: u64,
    /// Whether and how long to sleep after an empty poll (`[dataplane] rx_mode`).
    pub idle: IdleBackoff,
    /// An SA dump being answered a slice per iteration (see [`drain`]).
    pub report: ReportInProgress<Sa, Spd>,
}

impl<Sa, Spd, A, R, N, In, Back> Worker<Sa, Spd, A, R, N, In, Back>
where
    Spd: Policy,
    R: Routes,
    N: Neighbours,
    In: Mailbox<Update<Sa, Spd>>,
    Back: Mailbox<Update<Sa, Spd>>,
{
    /// One iteration: intake, then one pipeline pass. Returns the frames received.
    pub fn iterate<P, IO>(&mut self, io: &mut IO, st: &mut Staging<P>) -> usize
    where
        P: PacketBuf,
        A: SaShard<P> + SaStore<Sa>,
        IO: WorkerIo<P>,
    {
        drain(
            &mut self.sas,
            &mut self.spd,
            &self.intake,
            &self.retired,
            INTAKE_PER_ITERATION,
            &mut self.report,
        );
        self.requests.new_iteration();
        let now = super::clock::now_secs();
        if now != self.lifetimes_checked {
            self.lifetimes_checked = now;
            self.sas.start_lifetime_sweep();
        }
        let requests = &mut self.requests;
        self.sas
            .poll_lifetimes(now, &mut |spi, dir, hard, by_bytes| {
                requests.expire(spi, dir, hard, by_bytes)
            });
        let mut cx = Context {
            me: self.me,
            ports: &self.ports,
            local: &self.local,
            routes: &*self.routes,
            neighbours: &*self.neighbours,
            policy: &*self.spd,
            sas: &mut self.sas,
            requests: &mut self.requests,
            counters: &self.counters,
            path_epoch: 0,
            hop_cache: Default::default(),
        };
        let start = crate::pipeline::counters::cycles();
        let frames = poll_once(&mut cx, io, st);
        if frames > 0 {
            self.counters
                .busy_cycles
                .add(crate::pipeline::counters::cycles().wrapping_sub(start));
        }
        frames
    }

    /// One iteration, then the sleep the rx mode asks for after it (none when polling, or
    /// when the iteration had frames). Returns the frames received.
    pub fn poll_or_sleep<P, IO>(&mut self, io: &mut IO, st: &mut Staging<P>) -> usize
    where
        P: PacketBuf,
        A: SaShard<P> + SaStore<Sa>,
        IO: WorkerIo<P>,
    {
        let frames = self.iterate(io, st);
        if let Some(pause) = self.idle.after_poll(frames) {
            self.counters.idle_sleeps.inc();
            std::thread::sleep(pause);
        }
        frames
    }

    /// Polls until SIGINT/SIGTERM (the process-wide stop flag).
    pub fn run<P, IO>(&mut self, io: &mut IO, st: &mut Staging<P>)
    where
        P: PacketBuf,
        A: SaShard<P> + SaStore<Sa>,
        IO: WorkerIo<P>,
    {
        while !stop_requested() {
            self.poll_or_sleep(io, st);
        }
    }

    /// Polls until `stop` is set (tests, and runtimes that stop workers one by one).
    pub fn run_until<P, IO>(&mut self, io: &mut IO, st: &mut Staging<P>, stop: &AtomicBool)
    where
        P: PacketBuf,
        A: SaShard<P> + SaStore<Sa>,
        IO: WorkerIo<P>,
    {
        while !stop.load(Ordering::Relaxed) {
            self.poll_or_sleep(io, st);
        }
    }
}
