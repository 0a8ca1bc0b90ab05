//! Per-SA counters with IOS's meaning, kept by the SA's owner lcore (plain integers: only the
//! owner writes them; the main lcore reads a snapshot through the runtime).

use crate::pipeline::DropReason;

/// What `show crypto ipsec sa` prints for one SA, plus drops by reason.
// repr(C): the per-reason drops stay last, out of the SA's hot lines (see `Sa`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SaCounters {
    /// Outbound: `#pkts encaps`, `#pkts encrypt`, `#pkts digest`.
    pub encaps: u64,
    pub encrypt: u64,
    pub digest: u64,
    /// Inbound: `#pkts decaps`, `#pkts decrypt`, `#pkts verify`.
    pub decaps: u64,
    pub decrypt: u64,
    pub verify: u64,
    /// Plaintext bytes protected or recovered (what the kilobyte lifetime counts).
    pub bytes: u64,
    /// `#send errors`: packets this outbound SA could not send (too big, expired, no room).
    pub send_errors: u64,
    /// `#recv errors`: packets for this inbound SA that failed a check.
    pub recv_errors: u64,
    /// Drops of this SA by reason.
    pub drops: [u64; DropReason::COUNT],
}

impl SaCounters {
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
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
