//! Per-lcore counters: written by exactly one lcore, read by the main lcore.
//!
//! Each worker owns one [`LcoreCounters`]; the main lcore holds a shared reference to every
//! worker's block and sums them for `DumpCounters` and the final summary. Because there is a
//! single writer, an increment is a relaxed load and a relaxed store, not an atomic
//! read-modify-write: no locked instruction on the fast path, yet the reader never sees a torn
//! value.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with one writer and any number of readers.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning lcore may call this (single-writer rule).
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }
    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// Why the pipeline dropped a packet. Every drop is counted under exactly one reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// A header is truncated or inconsistent (lengths, version).
    Malformed,
    /// A multi-segment buffer, a VLAN tag or another layout the fast path does not take.
    Unsupported,
    /// An IP fragment addressed to us (we do not reassemble ESP).
    Fragment,
    /// Addressed to one of our addresses but nothing here handles it (TCP to the gateway...).
    LocalUnhandled,
    /// A NAT-T keepalive (RFC 3948 section 2.3): consumed, counted here.
    NattKeepalive,
    /// No route to the destination.
    NoRoute,
    /// The next hop has no resolved link-layer address yet (resolution was requested).
    NoNeighbour,
    /// TTL / hop limit expired on a routed packet.
    TtlExpired,
    /// The SPD says discard.
    PolicyDiscard,
    /// The SPD says protect but the SA is not installed: an Acquire was raised.
    NoSa,
    /// Plaintext that the inbound policy says should have arrived protected.
    PlainPolicyViolation,
    /// ESP with an SPI nobody owns.
    UnknownSpi,
    /// Anti-replay check failed.
    Replay,
    /// ICV does not verify.
    AuthFailed,
    /// Padding or next header of a decrypted packet is wrong.
    BadPadding,
    /// The decrypted inner packet does not match the SA's selectors.
    PolicyMismatch,
    /// The SA reached its hard lifetime.
    LifetimeExpired,
    /// Too big for the egress MTU with DF set (ICMP frag-needed was generated if possible).
    TooBig,
    /// No room in the buffer to add headers or trailer.
    NoRoom,
    /// Another lcore's handoff ring is full.
    HandoffFull,
    /// The ring toward the main lcore is full.
    PuntFull,
    /// The port's TX queue did not take the packet.
    TxFull,
    /// An ESP processing error not covered above (the ESP module's own reason).
    EspOther,
}

impl DropReason {
    /// Number of reasons (size of the counter array).
    pub const COUNT: usize = DropReason::EspOther as usize + 1;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::Unsupported,
        DropReason::Fragment,
        DropReason::LocalUnhandled,
        DropReason::NattKeepalive,
        DropReason::NoRoute,
        DropReason::NoNeighbour,
        DropReason::TtlExpired,
        DropReason::PolicyDiscard,
        DropReason::NoSa,
        DropReason::PlainPolicyViolation,
        DropReason::UnknownSpi,
        DropReason::Replay,
        DropReason::AuthFailed,
        DropReason::BadPadding,
        DropReason::PolicyMismatch,
        DropReason::LifetimeExpired,
        DropReason::TooBig,
        DropReason::NoRoom,
        DropReason::HandoffFull,
        DropReason::PuntFull,
        DropReason::TxFull,
        DropReason::EspOther,
    ];

    /// Short name used in logs and counter dumps.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Unsupported => "unsupported",
            DropReason::Fragment => "fragment",
            DropReason::LocalUnhandled => "local-unhandled",
            DropReason::NattKeepalive => "natt-keepalive",
            DropReason::NoRoute => "no-route",
            DropReason::NoNeighbour => "no-neighbour",
            DropReason::TtlExpired => "ttl-expired",
            DropReason::PolicyDiscard => "policy-discard",
            DropReason::NoSa => "no-sa",
            DropReason::PlainPolicyViolation => "plain-policy-violation",
            DropReason::UnknownSpi => "unknown-spi",
            DropReason::Replay => "replay",
            DropReason::AuthFailed => "auth-failed",
            DropReason::BadPadding => "bad-padding",
            DropReason::PolicyMismatch => "policy-mismatch",
            DropReason::LifetimeExpired => "lifetime-expired",
            DropReason::TooBig => "too-big",
            DropReason::NoRoom => "no-room",
            DropReason::HandoffFull => "handoff-full",
            DropReason::PuntFull => "punt-full",
            DropReason::TxFull => "tx-full",
            DropReason::EspOther => "esp-other",
        }
    }
}

/// The counters of one worker lcore.
#[derive(Default, Debug)]
pub struct LcoreCounters {
    /// Frames received from the ports.
    pub rx: Counter,
    /// Frames handed to the ports' TX queues and accepted.
    pub tx: Counter,
    /// Packets received from other lcores' handoff rings.
    pub handoff_in: Counter,
    /// Packets sent to other lcores' handoff rings.
    pub handoff_out: Counter,
    /// Packets sent to the main lcore (ARP, ICMP to us, IKE).
    pub punted: Counter,
    /// Packets encapsulated.
    pub encaps: Counter,
    /// Packets decapsulated.
    pub decaps: Counter,
    /// Non-empty bursts processed.
    pub bursts: Counter,
    /// CPU cycles (TSC) spent in the iterations that had packets: over the packets received
    /// (from the ports and handoff rings), the cost of one packet on this lcore.
    pub busy_cycles: Counter,
    /// The part of `busy_cycles` spent in the pipeline proper: classification, policy and SA
    /// lookups, ESP and its crypto, routing, and placing the frames in their batches. The
    /// rest is the devices' rx and tx bursts (on a software port, a copy of every packet),
    /// so this is the gateway's own cost of a packet whatever port it runs on.
    pub pipeline_cycles: Counter,
    /// Times the worker slept because its queues were empty (`rx_mode = "adaptive"`; always
    /// 0 when polling).
    pub idle_sleeps: Counter,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [Counter; DropReason::COUNT],
}

impl LcoreCounters {
    /// Counts one drop.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason as usize].inc();
    }
    /// Drops counted under `reason`.
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }
    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
    /// A plain copy of the current values.
    pub fn snapshot(&self) -> CounterSnapshot {
        let mut drops = [0u64; DropReason::COUNT];
        for (d, c) in drops.iter_mut().zip(self.drops.iter()) {
            *d = c.get();
        }
        CounterSnapshot {
            rx: self.rx.get(),
            tx: self.tx.get(),
            handoff_in: self.handoff_in.get(),
            handoff_out: self.handoff_out.get(),
            punted: self.punted.get(),
            encaps: self.encaps.get(),
            decaps: self.decaps.get(),
            bursts: self.bursts.get(),
            busy_cycles: self.busy_cycles.get(),
            pipeline_cycles: self.pipeline_cycles.get(),
            idle_sleeps: self.idle_sleeps.get(),
            drops,
        }
    }
}

/// The CPU's cycle counter (TSC on x86-64; elsewhere nanoseconds since the first call): what
/// the workers' busy and pipeline time is counted in.
#[inline]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC exists on every x86-64 CPU and only reads the time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// Values of [`LcoreCounters`] at one moment, which the main lcore can add up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub rx: u64,
    pub tx: u64,
    pub handoff_in: u64,
    pub handoff_out: u64,
    pub punted: u64,
    pub encaps: u64,
    pub decaps: u64,
    pub bursts: u64,
    pub busy_cycles: u64,
    pub pipeline_cycles: u64,
    pub idle_sleeps: u64,
    pub drops: [u64; DropReason::COUNT],
}

impl CounterSnapshot {
    /// Adds another lcore's values to these.
    pub fn accumulate(&mut self, other: &CounterSnapshot) {
        self.rx += other.rx;
        self.tx += other.tx;
        self.handoff_in += other.handoff_in;
        self.handoff_out += other.handoff_out;
        self.punted += other.punted;
        self.encaps += other.encaps;
        self.decaps += other.decaps;
        self.bursts += other.bursts;
        self.busy_cycles += other.busy_cycles;
        self.pipeline_cycles += other.pipeline_cycles;
        self.idle_sleeps += other.idle_sleeps;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += *b;
        }
    }
}

impl fmt::Display for CounterSnapshot {
    /// One line: `rx=.. tx=.. ... drops: reason=n ...` (zero drop reasons left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rx={} tx={} encaps={} decaps={} handoff_in={} handoff_out={} punted={} bursts={}",
            self.rx,
            self.tx,
            self.encaps,
            self.decaps,
            self.handoff_in,
            self.handoff_out,
            self.punted,
            self.bursts
        )?;
        let total: u64 = self.drops.iter().sum();
        write!(f, " drops={total}")?;
        for (reason, n) in DropReason::ALL.iter().zip(self.drops.iter()) {
            if *n != 0 {
                write!(f, " {}={}", reason.name(), n)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn snapshot_accumulates_and_prints_nonzero_drops() {
        let c = LcoreCounters::default();
        c.rx.add(5);
        c.tx.inc();
        c.count_drop(DropReason::Replay);
        c.count_drop(DropReason::Replay);
        c.count_drop(DropReason::NoSa);
        assert_eq!(c.total_drops(), 3);
        let mut sum = c.snapshot();
        sum.accumulate(&c.snapshot());
        assert_eq!(sum.rx, 10);
        assert_eq!(sum.drops[DropReason::Replay as usize], 4);
        let line = sum.to_string();
        assert!(line.contains("rx=10 tx=2"), "{line}");
        assert!(line.contains("drops=6 no-sa=2 replay=4"), "{line}");
        assert!(!line.contains("auth-failed"), "{line}");
    }
}
