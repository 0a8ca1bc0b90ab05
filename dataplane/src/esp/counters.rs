//! Per-SA counters with IOS's meaning, kept by the SA's owner lcore (plain integers: only the
//! owner writes them; the main lcore reads a snapshot through the runtime).
//!
//! What a packet that goes through touches ([`SaTraffic`]) is kept apart from what only a
//! refused packet touches ([`SaErrors`]): the first sits in the SA's hot lines, the second
//! (a counter per drop reason) far from them. IOS's six packet counters are one count here:
//! every packet this SA encapsulates is encrypted and, with an ICV, digested, and every
//! packet it decapsulates was decrypted and verified; [`SaCounters`] spells them out.

use crate::pipeline::DropReason;

/// Counted for every packet the SA passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SaTraffic {
    /// Packets encapsulated (outbound SA) or decapsulated (inbound SA).
    pub packets: u64,
    /// Plaintext bytes protected or recovered (what the kilobyte lifetime counts).
    pub bytes: u64,
}

/// Counted only when the SA refuses a packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaErrors {
    /// `#send errors` (outbound) or `#recv errors` (inbound).
    pub errors: u64,
    /// By reason.
    pub drops: [u64; DropReason::COUNT],
}

impl SaErrors {
    pub fn count(&mut self, r: DropReason) {
        self.errors += 1;
        self.drops[r as usize] += 1;
    }
}

/// What `show crypto ipsec sa` prints for one SA, plus drops by reason: a view built from
/// [`SaTraffic`] and [`SaErrors`] (see [`crate::esp::Sa::counters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Outbound: `#pkts encaps`, `#pkts encrypt`, `#pkts digest`.
    pub encaps: u64,
    pub encrypt: u64,
    pub digest: u64,
    /// Inbound: `#pkts decaps`, `#pkts decrypt`, `#pkts verify`.
    pub decaps: u64,
    pub decrypt: u64,
    pub verify: u64,
    /// Plaintext bytes protected or recovered.
    pub bytes: u64,
    /// `#send errors`: packets this outbound SA could not send (too big, expired, no room).
    pub send_errors: u64,
    /// `#recv errors`: packets for this inbound SA that failed a check.
    pub recv_errors: u64,
    /// Drops of this SA by reason.
    pub drops: [u64; DropReason::COUNT],
}

impl SaCounters {
    /// The view of an outbound SA's counts (`icv`: its transform has an integrity check).
    pub fn outbound(t: &SaTraffic, e: &SaErrors, icv: bool) -> SaCounters {
        SaCounters {
            encaps: t.packets,
            encrypt: t.packets,
            digest: if icv { t.packets } else { 0 },
            bytes: t.bytes,
            send_errors: e.errors,
            drops: e.drops,
            ..SaCounters::default()
        }
    }

    /// The view of an inbound SA's counts.
    pub fn inbound(t: &SaTraffic, e: &SaErrors, icv: bool) -> SaCounters {
        SaCounters {
            decaps: t.packets,
            decrypt: t.packets,
            verify: if icv { t.packets } else { 0 },
            bytes: t.bytes,
            recv_errors: e.errors,
            drops: e.drops,
            ..SaCounters::default()
        }
    }

    /// Non-zero drops by reason name.
    pub fn drops_by_name(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.drops.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (r.name(), *n))
    }
}
