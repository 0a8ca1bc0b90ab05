//! The DPDK side of `ipsec-trafficgen`: two memif ports facing the gateway's inside and
//! outside ports, and trials that send at a TSC-paced rate on one and count, check and time
//! what comes back on the other.
//!
//! Everything runs on the generator's main lcore, one loop: build a burst when the pacing
//! allows it, transmit it, poll the receiving port. Tunnel `t` is sent on queue `t % queues`,
//! the queue of the gateway worker that owns the tunnel's SAs (memif has no RSS: what the
//! generator sends on queue q arrives on the gateway's RX queue q).
//!
//! - encap: plaintext frames on the inside port; the ESP that comes back on the outside port
//!   must carry the SPI of a known tunnel and be addressed to that tunnel's peer; every
//!   `verify_every`-th packet is decrypted with the peer's SA and must hold the plaintext that
//!   was sent for that very tunnel (its stamp gives the latency).
//! - decap: ESP frames encrypted here, per packet, with the peer's SA of each tunnel (fresh,
//!   increasing sequence numbers, so the gateway's anti-replay window stays on); the plaintext
//!   that comes back on the inside port must equal what was encrypted.

use std::collections::HashMap;

use dataplane::dpdk::{Eal, Mbuf, Mempool, Port};
use dataplane::esp::{Direction, Sa};
use dataplane::packet::PacketBuf;
use hdrhistogram::Histogram;

use crate::frames::{
    build_sa, ethernet, peer_view, plaintext_ip, same_plaintext, Flow, SizeMix, Stamp,
};

const BURST: usize = 32;

/// Which way the traffic goes through the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Plaintext in on the inside, ESP out on the outside.
    Encap,
    /// ESP in on the outside, plaintext out on the inside.
    Decap,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Encap => "encap",
            Mode::Decap => "decap",
        }
    }
}

/// The generator's DPDK process: EAL, one pool, the two ports.
pub struct Generator {
    pool: Mempool,
    inside: Port,
    outside: Port,
    queues: u16,
    hz: u64,
    // Dropped last: EAL cleanup after the ports are closed.
    _eal: Eal,
}

impl Generator {
    /// Initialises EAL with `args` (program name first; the devices given with `--vdev`) and
    /// starts the ports named `inside` and `outside` with `queues` queue pairs each.
    pub fn start(
        args: &[String],
        inside: &str,
        outside: &str,
        queues: u16,
        mbufs: u32,
    ) -> Result<Generator, String> {
        let eal = Eal::init(args)?;
        let pool = Mempool::new("tg_mbufs", mbufs, 0)?;
        let start = |name: &str| -> Result<Port, String> {
            let id = Port::find(name)?;
            let p = Port::start(id, queues, queues, 9000, pool)?;
            if p.rx_queues < queues || p.tx_queues < queues {
                return Err(format!(
                    "{name}: {} rx / {} tx queues where {queues} are needed",
                    p.rx_queues, p.tx_queues
                ));
            }
            Ok(p)
        };
        let inside = start(inside)?;
        let outside = start(outside)?;
        Ok(Generator {
            pool,
            inside,
            outside,
            queues,
            hz: Eal::tsc_hz(),
            _eal: eal,
        })
    }

    /// Waits until both links are up (the gateway has accepted the memif connections).
    pub fn wait_links(&self, seconds: f64) -> Result<(), String> {
        let end = Eal::tsc() + (seconds * self.hz as f64) as u64;
        while Eal::tsc() < end {
            if self.inside.link_up() && self.outside.link_up() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(format!(
            "links not up after {seconds} s (inside {}, outside {}): is ipsec-dataplane running with this lab's gateway.toml?",
            self.inside.link_up(),
            self.outside.link_up()
        ))
    }

    pub fn tsc_hz(&self) -> u64 {
        self.hz
    }
}

impl Drop for Generator {
    /// Stops and closes both ports before EAL's cleanup (the `_eal` field, dropped after).
    fn drop(&mut self) {
        self.inside.stop();
        self.outside.stop();
    }
}

/// What to send for one mode and size mix, with what is needed to check it on return.
pub struct Traffic {
    pub mode: Mode,
    flows: Vec<Flow>,
    /// The distinct sizes of the mix, ascending.
    sizes: Vec<usize>,
    /// The sending order, as indices into `sizes`.
    pattern: Vec<usize>,
    /// Per size, every tunnel's Ethernet frame (encap) or inner IP packet (decap), one after
    /// the other (see [`Traffic::template`]): one array per size rather than a vector per
    /// tunnel, so that finding a tunnel's packet is not a chain of cache misses when there
    /// are thousands of tunnels (the generator must stay faster than the gateway).
    templates: Vec<Vec<u8>>,
    /// Decap: the peer's outbound SA per tunnel (encrypts); encap: its inbound SA (decrypts
    /// the sample).
    peer_sas: Vec<Sa>,
    /// Encap: the gateway's outbound SPI -> tunnel.
    tunnel_of_spi: SpiIndex,
    /// Ethernet addresses of the frames sent (dst: the gateway's port).
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    next_tunnel: usize,
    next_size: usize,
}

impl Traffic {
    /// The traffic of `mode` for the tunnels of `sas` (the gateway's manual SA pairs, in
    /// tunnel order), with the sizes of `mix`. `gw_mac`/`gen_mac` are the MACs of the sending
    /// side's link.
    pub fn new(
        mode: Mode,
        sas: &[dataplane::config::ManualSa],
        mix: &SizeMix,
        gw_mac: [u8; 6],
        gen_mac: [u8; 6],
    ) -> Result<Traffic, String> {
        let flows: Vec<Flow> = sas.iter().map(Flow::of).collect::<Result<_, _>>()?;
        let mut peer_sas = Vec::with_capacity(flows.len());
        for (t, m) in sas.iter().enumerate() {
            let gw_side = match mode {
                Mode::Encap => &m.outbound,
                Mode::Decap => &m.inbound,
            };
            peer_sas.push(build_sa(&peer_view(gw_side), t as u32)?);
        }
        let tunnel_of_spi = SpiIndex::new(flows.iter().map(|f| f.spi_out));
        let mut traffic = Traffic {
            mode,
            flows,
            sizes: Vec::new(),
            pattern: Vec::new(),
            templates: Vec::new(),
            peer_sas,
            tunnel_of_spi,
            eth_dst: gw_mac,
            eth_src: gen_mac,
            next_tunnel: 0,
            next_size: 0,
        };
        traffic.set_sizes(mix);
        Ok(traffic)
    }

    /// Switches to the sizes of `mix`. The SAs stay: their sequence numbers go on increasing,
    /// as the gateway's anti-replay windows require.
    pub fn set_sizes(&mut self, mix: &SizeMix) {
        self.sizes = mix.distinct();
        self.pattern = mix
            .pattern
            .iter()
            .map(|s| self.sizes.iter().position(|x| x == s).unwrap_or(0))
            .collect();
        self.templates = self
            .sizes
            .iter()
            .map(|&len| {
                let mut all = Vec::with_capacity(self.flows.len() * self.template_len(len));
                for (t, f) in self.flows.iter().enumerate() {
                    match self.mode {
                        Mode::Encap => all.extend(ethernet(
                            self.eth_dst,
                            self.eth_src,
                            &plaintext_ip(f.inside_host, f.remote_host, len, t as u32),
                        )),
                        Mode::Decap => {
                            all.extend(plaintext_ip(f.remote_host, f.inside_host, len, t as u32))
                        }
                    }
                }
                all
            })
            .collect();
        self.next_size = 0;
    }

    pub fn tunnels(&self) -> usize {
        self.flows.len()
    }

    /// Bytes of a template for IP packets of `ip_len` bytes.
    fn template_len(&self, ip_len: usize) -> usize {
        match self.mode {
            Mode::Encap => 14 + ip_len,
            Mode::Decap => ip_len,
        }
    }

    /// Tunnel `t`'s packet of the `k`-th size.
    #[inline]
    fn template(&self, t: usize, k: usize) -> &[u8] {
        let len = self.template_len(self.sizes[k]);
        &self.templates[k][t * len..(t + 1) * len]
    }

    /// The template of tunnel `t` for an IP packet of `ip_len` bytes, if that is a size sent.
    #[inline]
    fn template_of_ip_len(&self, t: usize, ip_len: usize) -> Option<&[u8]> {
        let k = self.sizes.iter().position(|&l| l == ip_len)?;
        Some(self.template(t, k))
    }

    /// Starts loading what the next `n` packets after the next `n` will need (their
    /// templates' first lines and, for decap, their SAs), and what the next `n` need of what
    /// that loaded a burst earlier (the SAs' key schedules): tunnels are sent round robin, so
    /// with thousands of them every packet's SA and template are cold.
    #[inline]
    fn prefetch_ahead(&self, n: usize) {
        let tunnels = self.flows.len();
        if tunnels <= 2 * n {
            return;
        }
        let k = self.pattern[self.next_size];
        for i in 0..2 * n {
            let t = (self.next_tunnel + i) % tunnels;
            if i >= n {
                let tpl = self.template(t, k);
                dataplane::cache::lines(tpl.as_ptr(), tpl.len().min(128));
            }
            if self.mode == Mode::Decap {
                if i < n {
                    self.peer_sas[t].prefetch_deps(self.sizes[k]);
                } else {
                    self.peer_sas[t].prefetch(Direction::Outbound);
                }
            }
        }
    }

    /// Builds the next packet into a fresh mbuf: (queue, mbuf), or None when the pool is empty
    /// (or, which the SAs' unlimited lifetimes rule out, the peer SA refuses to encrypt).
    #[inline]
    fn next_packet(
        &mut self,
        pool: &Mempool,
        queues: usize,
        trial: u32,
        tsc: u64,
    ) -> Option<(usize, Mbuf)> {
        let t = self.next_tunnel;
        let k = self.pattern[self.next_size];
        self.next_tunnel += 1;
        if self.next_tunnel == self.flows.len() {
            self.next_tunnel = 0;
        }
        self.next_size += 1;
        if self.next_size == self.pattern.len() {
            self.next_size = 0;
        }
        let tpl = self.template(t, k);
        let mut m = pool.alloc()?;
        if !m.append(tpl.len()) {
            return None;
        }
        let stamp = Stamp {
            tunnel: t as u32,
            trial,
            tsc,
        };
        let d = m.data_mut();
        d.copy_from_slice(tpl);
        match self.mode {
            Mode::Encap => stamp.write(&mut d[14..]),
            Mode::Decap => {
                stamp.write(d);
                self.peer_sas[t].encap(&mut m, 9000).ok()?;
                if !m.prepend(14) {
                    return None;
                }
                let h = m.data_mut();
                h[0..6].copy_from_slice(&self.eth_dst);
                h[6..12].copy_from_slice(&self.eth_src);
                h[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            }
        }
        Some((t % queues, m))
    }
}

/// SPI -> tunnel, for the ESP that comes back: a table indexed by SPI when the SPIs are
/// about dense (the lab numbers them in order), a hash map otherwise.
enum SpiIndex {
    Dense { base: u32, tunnel: Vec<u32> },
    Sparse(HashMap<u32, u32>),
}

impl SpiIndex {
    const NONE: u32 = u32::MAX;

    fn new(spis: impl Iterator<Item = u32>) -> SpiIndex {
        let spis: Vec<u32> = spis.collect();
        let (lo, hi) = match (spis.iter().min(), spis.iter().max()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => return SpiIndex::Sparse(HashMap::new()),
        };
        let span = (hi - lo) as usize + 1;
        if span > 4 * spis.len() + 64 {
            return SpiIndex::Sparse(
                spis.iter()
                    .enumerate()
                    .map(|(t, &s)| (s, t as u32))
                    .collect(),
            );
        }
        let mut tunnel = vec![Self::NONE; span];
        for (t, &s) in spis.iter().enumerate() {
            tunnel[(s - lo) as usize] = t as u32;
        }
        SpiIndex::Dense { base: lo, tunnel }
    }

    #[inline]
    fn get(&self, spi: u32) -> Option<u32> {
        match self {
            SpiIndex::Dense { base, tunnel } => spi
                .checked_sub(*base)
                .and_then(|i| tunnel.get(i as usize))
                .copied()
                .filter(|&t| t != Self::NONE),
            SpiIndex::Sparse(m) => m.get(&spi).copied(),
        }
    }
}

/// Counts of one trial.
#[derive(Debug)]
pub struct TrialOutcome {
    /// Packets offered (handed to the TX queue or refused by it: a full ring is a loss of the
    /// gateway, which did not drain it).
    pub sent: u64,
    /// Offered packets the TX ring refused.
    pub refused: u64,
    /// Packets the generator could not build (no free mbuf): its own limit, neither offered
    /// nor counted as lost.
    pub no_mbuf: u64,
    /// Packets back that passed the checks.
    pub received: u64,
    /// Packets back that failed a check.
    pub mismatches: u64,
    /// Why the first of them failed.
    pub first_mismatch: Option<&'static str>,
    /// Packets back from an earlier trial (not counted).
    pub stale: u64,
    /// Frames that are not test traffic (ARP, ...), on either port.
    pub other: u64,
    /// Seconds the generator spent sending.
    pub seconds: f64,
    /// Latency of the checked packets, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl TrialOutcome {
    fn mismatch(&mut self, why: &'static str) {
        self.mismatches += 1;
        self.first_mismatch.get_or_insert(why);
    }

    pub fn offered_pps(&self) -> f64 {
        self.sent as f64 / self.seconds.max(1e-9)
    }
}

/// How a trial runs.
#[derive(Clone, Copy, Debug)]
pub struct TrialSpec {
    /// Packets per second (infinite: as fast as the generator goes).
    pub rate_pps: f64,
    pub seconds: f64,
    /// Time left for the last packets to come back after sending stops.
    pub drain_seconds: f64,
    /// Encap: decrypt and check one packet in this many (1: all).
    pub verify_every: u64,
    pub trial_id: u32,
}

impl Generator {
    /// Receives and drops whatever still comes back until nothing has arrived for
    /// `quiet_seconds` (or `max_seconds` have passed): a slow gateway still holds the backlog
    /// of an overloaded trial in its rings, which would otherwise spill into the next one.
    /// Returns the number of packets dropped.
    pub fn quiesce(&mut self, quiet_seconds: f64, max_seconds: f64) -> u64 {
        let hz = self.hz as f64;
        let start = Eal::tsc();
        let mut last = start;
        let mut dropped = 0u64;
        let mut rx: Vec<Mbuf> = Vec::with_capacity(BURST);
        loop {
            let now = Eal::tsc();
            if (now - last) as f64 > quiet_seconds * hz || (now - start) as f64 > max_seconds * hz {
                return dropped;
            }
            for port in [&self.inside, &self.outside] {
                for q in 0..self.queues {
                    port.rx_burst(q, &mut rx, BURST);
                    if !rx.is_empty() {
                        dropped += rx.len() as u64;
                        last = now;
                        rx.clear();
                    }
                }
            }
        }
    }

    /// Runs one trial of `traffic`.
    pub fn trial(&mut self, traffic: &mut Traffic, spec: &TrialSpec) -> TrialOutcome {
        let (tx_port, rx_port) = match traffic.mode {
            Mode::Encap => (&self.inside, &self.outside),
            Mode::Decap => (&self.outside, &self.inside),
        };
        let queues = self.queues as usize;
        let hz = self.hz as f64;
        let mut out = TrialOutcome {
            sent: 0,
            refused: 0,
            no_mbuf: 0,
            received: 0,
            mismatches: 0,
            first_mismatch: None,
            stale: 0,
            other: 0,
            seconds: spec.seconds,
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds"),
        };
        let mut txq: Vec<Vec<Mbuf>> = (0..queues).map(|_| Vec::with_capacity(BURST)).collect();
        let mut rx: Vec<Mbuf> = Vec::with_capacity(BURST);
        let mut seen = 0u64;
        let start = Eal::tsc();
        let end = start + (spec.seconds * hz) as u64;
        let drain_end = end + (spec.drain_seconds * hz) as u64;
        let unlimited = !spec.rate_pps.is_finite();
        let ns_per_tick = 1e9 / hz;
        let mut now = start;
        while now < drain_end {
            if now < end {
                let due = if unlimited {
                    u64::MAX
                } else {
                    ((now - start) as f64 * spec.rate_pps / hz) as u64
                };
                let n = due.saturating_sub(out.sent + out.no_mbuf).min(BURST as u64);
                if n > 0 {
                    traffic.prefetch_ahead(BURST);
                    for _ in 0..n {
                        match traffic.next_packet(&self.pool, queues, spec.trial_id, now) {
                            Some((q, m)) => txq[q].push(m),
                            None => out.no_mbuf += 1,
                        }
                    }
                    for (q, pkts) in txq.iter_mut().enumerate() {
                        out.sent += pkts.len() as u64;
                        tx_port.tx_burst(q as u16, pkts);
                        out.refused += pkts.len() as u64;
                        pkts.clear();
                    }
                }
            }
            now = Eal::tsc();
            for q in 0..queues as u16 {
                rx_port.rx_burst(q, &mut rx, BURST);
                for m in rx.drain(..) {
                    check(traffic, m, spec, now, ns_per_tick, &mut seen, &mut out);
                }
                // Nothing but test traffic is expected back on the sending port.
                tx_port.rx_burst(q, &mut rx, BURST);
                out.other += rx.len() as u64;
                rx.clear();
            }
        }
        if unlimited {
            // The unlimited trial offered what it could in the time: its real rate.
            out.seconds = spec.seconds;
        }
        out
    }
}

/// Checks one returned packet and counts it.
#[inline]
fn check(
    traffic: &mut Traffic,
    mut m: Mbuf,
    spec: &TrialSpec,
    now: u64,
    ns_per_tick: f64,
    seen: &mut u64,
    out: &mut TrialOutcome,
) {
    let d = m.data();
    if d.len() < 14 + 20 + 8 || d[12..14] != [0x08, 0x00] {
        out.other += 1;
        return;
    }
    let record = |out: &mut TrialOutcome, s: &Stamp| {
        let ns = (now.saturating_sub(s.tsc) as f64 * ns_per_tick) as u64;
        out.latency.saturating_record(ns.max(1));
    };
    match traffic.mode {
        Mode::Encap => {
            if d[14 + 9] != 50 {
                out.other += 1;
                return;
            }
            let esp_at = 14 + (d[14] & 0x0f) as usize * 4;
            let Some(spi) = d.get(esp_at..esp_at + 4) else {
                out.mismatch("ESP header cut short");
                return;
            };
            let spi = u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]]);
            let Some(t) = traffic.tunnel_of_spi.get(spi) else {
                out.mismatch("SPI of no tunnel");
                return;
            };
            let t = t as usize;
            if d[30..34] != traffic.flows[t].peer.octets() {
                out.mismatch("outer destination is not the tunnel's peer");
                return;
            }
            *seen += 1;
            if seen.is_multiple_of(spec.verify_every.max(1)) {
                if traffic.peer_sas[t].decap(&mut m, 14, esp_at).is_err() {
                    out.mismatch("ICV does not verify with the peer's SA");
                    return;
                }
                let inner = m.data();
                let ok = Stamp::read(inner).filter(|s| s.tunnel as usize == t);
                let Some(s) = ok else {
                    out.mismatch("decrypted packet has no stamp of this tunnel");
                    return;
                };
                if s.trial != spec.trial_id {
                    out.stale += 1;
                    return;
                }
                let sent = traffic.template_of_ip_len(t, inner.len()).map(|f| &f[14..]);
                if !sent.is_some_and(|p| same_plaintext(inner, p)) {
                    out.mismatch("decrypted packet differs from the one sent");
                    return;
                }
                record(out, &s);
            }
            out.received += 1;
        }
        Mode::Decap => {
            let ip = &d[14..];
            let Some(s) = Stamp::read(ip) else {
                out.mismatch("plaintext without a stamp");
                return;
            };
            let t = s.tunnel as usize;
            if t >= traffic.flows.len() {
                out.mismatch("stamp names no tunnel");
                return;
            }
            if s.trial != spec.trial_id {
                out.stale += 1;
                return;
            }
            let ip_len = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            let ip = &ip[..ip_len.min(ip.len())];
            let sent = traffic.template_of_ip_len(t, ip.len());
            if !sent.is_some_and(|p| same_plaintext(ip, p)) {
                out.mismatch("plaintext differs from the one sent");
                return;
            }
            record(out, &s);
            out.received += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SpiIndex;

    #[test]
    fn spi_index_finds_every_tunnel_and_nothing_else() {
        // Dense, as the lab numbers them, with a gap.
        let dense = SpiIndex::new([0x1000_0001, 0x1000_0002, 0x1000_0004].into_iter());
        assert!(matches!(dense, SpiIndex::Dense { .. }));
        assert_eq!(dense.get(0x1000_0001), Some(0));
        assert_eq!(dense.get(0x1000_0004), Some(2));
        for miss in [0x1000_0003, 0x1000_0000, 0x1000_0005, 0, u32::MAX] {
            assert_eq!(dense.get(miss), None, "{miss:#x}");
        }
        // Spread over 32 bits, as IKE allocates them.
        let sparse = SpiIndex::new([0x0000_0100, 0x8000_0000, 0xffff_fff0].into_iter());
        assert!(matches!(sparse, SpiIndex::Sparse(_)));
        assert_eq!(sparse.get(0x8000_0000), Some(1));
        assert_eq!(sparse.get(0xffff_fff0), Some(2));
        assert_eq!(sparse.get(0x8000_0001), None);
        assert_eq!(SpiIndex::new(std::iter::empty()).get(1), None);
    }
}
