//! One poll iteration of a worker lcore: receive a burst on each of its queues, run the
//! pipeline, and move every buffer where its verdict says; then the same for the packets
//! other workers handed off to it.
//!
//! The queues are behind [`WorkerIo`], implemented over DPDK ports and rings by the runtime
//! and over in-memory queues in tests. Buffers travel in `Vec`s whose capacity is reserved
//! once ([`Staging::new`]), so a poll iteration never allocates: pushing within capacity does
//! not reallocate.

use super::counters::cycles;
use super::{
    fragment, Context, DropReason, LcoreCounters, Neighbours, PacketBuf, Pipeline, Policy, PortId,
    PuntKind, Routes, SaShard, SlowPathRequests, Verdict, WorkerId,
};

/// Default burst size (DESIGN.md rule 6).
pub const BURST: usize = 32;

/// Where a worker receives from and sends to.
pub trait WorkerIo<P> {
    /// Receives up to `max` frames from `port` (this worker's queue) into `out`.
    fn rx_burst(&mut self, port: PortId, out: &mut Vec<P>, max: usize);
    /// Transmits frames on `port` (this worker's queue) from the front of `pkts`, removing
    /// the ones the port took; those left were not sent.
    fn tx_burst(&mut self, port: PortId, pkts: &mut Vec<P>);
    /// Enqueues frames to worker `to`'s handoff ring from us, removing the ones taken.
    fn handoff_send(&mut self, to: WorkerId, pkts: &mut Vec<P>);
    /// Dequeues up to `max` frames handed off to us by any worker.
    fn handoff_recv(&mut self, out: &mut Vec<P>, max: usize);
    /// Gives one frame received on `port` to the main lcore; gives it back when the ring is
    /// full.
    fn punt(&mut self, kind: PuntKind, port: PortId, pkt: P) -> Result<(), P>;
    /// An empty buffer (with the usual headroom) for a fragment; None when the pool is dry.
    fn alloc(&mut self) -> Option<P>;
}

/// The reusable buffers of one worker: a burst being processed, its verdicts, and one
/// outgoing batch per port and per worker.
pub struct Staging<P> {
    burst: Vec<P>,
    verdicts: Vec<Verdict>,
    tx: Vec<Vec<P>>,
    handoff: Vec<Vec<P>>,
}

impl<P> Staging<P> {
    /// Buffers for `ports` ports and `workers` workers, bursts of at most `burst` frames.
    pub fn new(ports: usize, workers: usize, burst: usize) -> Self {
        Staging {
            burst: Vec::with_capacity(burst),
            verdicts: vec![Verdict::Drop(DropReason::Unsupported); burst],
            // a port's batch may collect one burst from each port plus one of handoffs
            tx: (0..ports)
                .map(|_| Vec::with_capacity(burst * (ports + 1)))
                .collect(),
            handoff: (0..workers).map(|_| Vec::with_capacity(burst)).collect(),
        }
    }
}

/// Runs one poll iteration: every port once, then the handoff ring. Returns the number of
/// frames received (0 means idle).
pub fn poll_once<P, R, N, S, A, Q, IO>(
    cx: &mut Context<'_, R, N, S, A, Q>,
    io: &mut IO,
    st: &mut Staging<P>,
) -> usize
where
    P: PacketBuf,
    R: Routes,
    N: Neighbours,
    S: Policy,
    A: SaShard<P>,
    Q: SlowPathRequests,
    IO: WorkerIo<P>,
{
    cx.refresh_path_epoch();
    let max = st.verdicts.len();
    let mut received = 0;
    for port in 0..cx.ports.len() as PortId {
        st.burst.clear();
        io.rx_burst(port, &mut st.burst, max);
        if st.burst.is_empty() {
            continue;
        }
        received += st.burst.len();
        cx.counters.bursts.inc();
        let n = st.burst.len();
        let start = cycles();
        Pipeline::process_rx(cx, port, &mut st.burst, &mut st.verdicts[..n]);
        dispatch(cx, io, st, port);
        cx.counters
            .pipeline_cycles
            .add(cycles().wrapping_sub(start));
    }
    st.burst.clear();
    io.handoff_recv(&mut st.burst, max);
    if !st.burst.is_empty() {
        received += st.burst.len();
        let n = st.burst.len();
        let start = cycles();
        Pipeline::process_handoff(cx, &mut st.burst, &mut st.verdicts[..n]);
        // handed-off frames are ESP or inside plaintext, never punted; port 0 is a formality
        dispatch(cx, io, st, 0);
        cx.counters
            .pipeline_cycles
            .add(cycles().wrapping_sub(start));
    }
    flush(cx.counters, io, st);
    received
}

/// Moves each frame of the burst to its batch; dropped frames are freed here.
fn dispatch<P, R, N, S, A, Q, IO>(
    cx: &mut Context<'_, R, N, S, A, Q>,
    io: &mut IO,
    st: &mut Staging<P>,
    rx_port: PortId,
) where
    P: PacketBuf,
    R: Routes,
    N: Neighbours,
    S: Policy,
    A: SaShard<P>,
    Q: SlowPathRequests,
    IO: WorkerIo<P>,
{
    let Staging {
        burst,
        verdicts,
        tx,
        handoff,
    } = st;
    for (pkt, v) in burst.drain(..).zip(verdicts.iter()) {
        match *v {
            Verdict::Fragment { sa, max_inner } => {
                fragment_and_protect(cx, io, tx, pkt, sa, max_inner as usize)
            }
            v => place(cx.counters, io, tx, handoff, pkt, v, rx_port),
        }
    }
}

/// Puts one frame where its verdict says.
fn place<P, IO: WorkerIo<P>>(
    c: &LcoreCounters,
    io: &mut IO,
    tx: &mut [Vec<P>],
    handoff: &mut [Vec<P>],
    pkt: P,
    v: Verdict,
    rx_port: PortId,
) {
    match v {
        Verdict::Tx(port) => match tx.get_mut(port as usize) {
            Some(batch) if batch.len() < batch.capacity() => batch.push(pkt),
            _ => c.count_drop(DropReason::TxFull),
        },
        Verdict::Handoff(w) => match handoff.get_mut(w as usize) {
            Some(batch) if batch.len() < batch.capacity() => batch.push(pkt),
            _ => c.count_drop(DropReason::HandoffFull),
        },
        Verdict::Punt(kind) => {
            if io.punt(kind, rx_port, pkt).is_err() {
                c.count_drop(DropReason::PuntFull);
            }
        }
        // counted by the pipeline
        Verdict::Drop(_) => drop(pkt),
        // never produced for a fragment
        Verdict::Fragment { .. } => c.count_drop(DropReason::TooBig),
    }
}

/// Splits an inner IPv4 packet into fragments that fit SA `sa` and sends each one through
/// the ESP path (RFC 4301: fragment before encryption).
fn fragment_and_protect<P, R, N, S, A, Q, IO>(
    cx: &mut Context<'_, R, N, S, A, Q>,
    io: &mut IO,
    tx: &mut [Vec<P>],
    mut cur: P,
    sa: u32,
    max_inner: usize,
) where
    P: PacketBuf,
    R: Routes,
    N: Neighbours,
    S: Policy,
    A: SaShard<P>,
    Q: SlowPathRequests,
    IO: WorkerIo<P>,
{
    let mut no_handoff: [Vec<P>; 0] = [];
    loop {
        let next = if cur.len() > max_inner {
            let Some(mut tail) = io.alloc() else {
                cx.counters.count_drop(DropReason::NoRoom);
                return;
            };
            if !fragment::split_ipv4(&mut cur, max_inner, &mut tail) {
                cx.counters.count_drop(DropReason::TooBig);
                return;
            }
            Some(tail)
        } else {
            None
        };
        let v = Pipeline::protect_fragment(cx, &mut cur, sa);
        place(cx.counters, io, tx, &mut no_handoff, cur, v, 0);
        match next {
            Some(t) => cur = t,
            None => return,
        }
    }
}

/// Sends the batches; what the ports or rings did not take is freed and counted.
fn flush<P, IO: WorkerIo<P>>(c: &LcoreCounters, io: &mut IO, st: &mut Staging<P>) {
    for (port, batch) in st.tx.iter_mut().enumerate() {
        if batch.is_empty() {
            continue;
        }
        let before = batch.len();
        io.tx_burst(port as PortId, batch);
        c.tx.add((before - batch.len()) as u64);
        for _ in batch.drain(..) {
            c.count_drop(DropReason::TxFull);
        }
    }
    for (w, batch) in st.handoff.iter_mut().enumerate() {
        if batch.is_empty() {
            continue;
        }
        io.handoff_send(w as WorkerId, batch);
        for _ in batch.drain(..) {
            // counted as handoff_out by the pipeline; now it is a drop instead
            c.count_drop(DropReason::HandoffFull);
        }
    }
}
