//! Issue 5, "Scale": what the per-packet work costs as the tunnel count grows from 1 to
//! 10,000 (two SAs each), against the 4-tunnel case.
//!
//! The gateway is a hub: tunnel `i` protects 10.0.0.0/8 -> its spoke's /24 (172.16.0.0/12
//! counted up) with outbound SA id `i`, behind one deny line at the top of the ACL, as a
//! crypto map with one entry per spoke compiles. Each measured packet goes to the next
//! tunnel in turn, so the tables are walked the way mixed traffic walks them, not one hot
//! entry. Measured:
//! - `spd`: the outbound SPD lookup (indexed), and `spd-linear`, the rule-by-rule reference
//!   the index replaced (what the SPD cost before issue 5);
//! - `sa-out` / `sa-in`: the outbound SA by SPD id, the inbound SA by SPI;
//! - `encap`: a 64-byte IPv4 packet in an Ethernet frame: classification, SPD lookup, SA
//!   lookup and ESP encapsulation (AES-128-GCM), i.e. the outbound fast path minus L2 and TX,
//!   one packet at a time;
//! - `burst`: the same frames through the worker's real pipeline (`Pipeline::process_rx`,
//!   with the route and neighbour tables and the Ethernet header), 32 frames per call, each
//!   to the next tunnel: what the passes over a burst and their prefetches of each SA and key
//!   schedule win over the one-at-a-time figure.
//!
//! Before criterion runs, a summary is printed: the same costs, the best of a few timed
//! passes (taken round the tunnel counts in turn), with the ratio of each tunnel count to 4 tunnels, the SPD build time, and memory
//! per SA (the structure, and the process RSS growth when installing the SAs). The same
//! figures go to `$SCALE_SUMMARY_JSON` (default `benches/results/scale-summary.json`), for
//! benches/render_results.py.
//!
//! `cargo bench -p benches --bench scale`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use dataplane::crypto::{default_backend, Encryption, Integrity, Transform};
use dataplane::esp::{Direction, Keys, Lifetime, Mode, Prefix, Sa, SaParams, SaShard, Selector};
use dataplane::l3::route::RouteEntry;
use dataplane::l3::{NeighborTable, RouteTable};
use dataplane::packet::{PacketBuf, VecPacket};
use dataplane::pipeline::{
    classify_into, Context, HopCache, IpInfo, Kind, LcoreCounters, LocalAddrs, Pipeline, PortInfo,
    PortRole, SlowPathRequests, Verdict,
};
use dataplane::spd::{Spd, SpdAction, SpdRule};
use dataplane::wire::{ipv4, proto};

const TUNNELS: [u32; 6] = [1, 4, 10, 100, 1_000, 10_000];
/// The reference tunnel count of the targets.
const REFERENCE: u32 = 4;
/// Timed passes per tunnel count in the summary, taken in turn with the other counts; the
/// best one is printed.
const PASSES: usize = 5;
/// Inbound SPIs: allocated ones start high, as the dataplane's do.
const FIRST_SPI: u32 = 0x1000_0000;

fn gcm128() -> Transform {
    Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::None,
    }
}

fn prefix(addr: IpAddr, len: u8) -> Prefix {
    Prefix { addr, len }
}

/// The LAN behind spoke `i`: 172.16.0.0/24 counted up.
fn spoke_lan(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + (i << 8))
}

fn selector(i: u32) -> Selector {
    Selector {
        source: prefix(Ipv4Addr::new(10, 0, 0, 0).into(), 8),
        destination: prefix(spoke_lan(i).into(), 24),
        protocol: 0,
        source_ports: (0, 65535),
        destination_ports: (0, 65535),
    }
}

fn rules(n: u32) -> Vec<SpdRule> {
    // `deny tcp 10.0.0.0/8 host 172.31.255.1 eq 22`, then one permit per spoke.
    let mut rules = vec![SpdRule {
        selector: Selector {
            source: prefix(Ipv4Addr::new(10, 0, 0, 0).into(), 8),
            destination: prefix(Ipv4Addr::new(172, 31, 255, 1).into(), 32),
            protocol: proto::TCP,
            source_ports: (0, 65535),
            destination_ports: (22, 22),
        },
        protect: None,
        entry: u32::MAX,
    }];
    rules.extend((0..n).map(|i| SpdRule {
        selector: selector(i),
        protect: Some(i),
        entry: i,
    }));
    rules
}

fn params(i: u32, direction: Direction) -> SaParams {
    let t = gcm128();
    SaParams {
        spi: match direction {
            Direction::Inbound => FIRST_SPI + i,
            Direction::Outbound => 0x2000_0000 + i,
        },
        direction,
        transform: t,
        keys: Keys {
            encryption: (0..t.encryption.key_len())
                .map(|b| b as u8 ^ i as u8)
                .collect(),
            authentication: vec![],
        },
        mode: Mode::Tunnel,
        local: "192.0.2.1".parse().unwrap(),
        remote: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i).into(),
        selectors: vec![selector(i)],
        lifetime: Lifetime {
            seconds: 0,
            kilobytes: 0,
            soft_percent: 90,
        },
        replay_window: 64,
        esn: false,
        udp_encap: None,
        crypto_map: "hub".into(),
        crypto_map_seq: 10,
    }
}

/// One worker's SAs for `n` tunnels (a single worker owns all of them).
fn shard(n: u32) -> SaShard {
    let backend = default_backend(gcm128()).unwrap();
    let mut shard = SaShard::new(0, 1);
    for i in 0..n {
        for d in [Direction::Inbound, Direction::Outbound] {
            shard.insert(Box::new(Sa::new(&params(i, d), i, backend, 0).unwrap()));
        }
    }
    shard
}

/// An Ethernet frame with a 64-byte IPv4/UDP packet from the LAN to spoke `i`.
fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 64];
    f[12] = 0x08;
    ipv4::Repr {
        src: "10.1.0.1".parse().unwrap(),
        dst: Ipv4Addr::from(u32::from(spoke_lan(i)) + 7),
        protocol: proto::UDP,
        payload_len: 64 - 20,
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: false,
    }
    .emit(&mut f[14..]);
    f[34..38].copy_from_slice(&[0x04, 0xd2, 0x16, 0x2e]);
    f
}

/// The packets' address words and ports, one per tunnel, as the classifier produces them.
fn infos(frames: &[Vec<u8>], local: &LocalAddrs) -> Vec<IpInfo> {
    frames
        .iter()
        .map(|f| {
            let mut ip = IpInfo::default();
            assert!(matches!(classify_into(f, local, &mut ip), Kind::Transit));
            ip
        })
        .collect()
}

struct Setup {
    spd: Spd,
    shard: SaShard,
    /// The tunnels in the order packets visit them: shuffled, because traffic from many
    /// tunnels does not arrive in the order their SAs were installed, and walking the SAs in
    /// memory order would let the CPU's stream prefetcher hide the very misses measured here.
    order: Vec<u32>,
    /// One frame per tunnel, in `order`.
    frames: Vec<Vec<u8>>,
    infos: Vec<IpInfo>,
    local: LocalAddrs,
    /// How long building the SPD took.
    spd_build: Duration,
}

/// 0..n in a fixed pseudo-random order (Fisher-Yates over a xorshift stream).
fn shuffled(n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn setup(n: u32) -> Setup {
    let rules = rules(n);
    let t = Instant::now();
    let spd = Spd::new(rules);
    let spd_build = t.elapsed();
    let local = LocalAddrs::new(["192.0.2.1".parse().unwrap()]);
    let order = shuffled(n);
    let frames: Vec<Vec<u8>> = order.iter().map(|&i| frame(i)).collect();
    let infos = infos(&frames, &local);
    Setup {
        spd,
        shard: shard(n),
        order,
        frames,
        infos,
        local,
        spd_build,
    }
}

#[inline(always)]
fn spd_lookup(spd: &Spd, ip: &IpInfo) -> SpdAction {
    spd.outbound_words(
        ip.v6,
        ip.src_word(),
        ip.dst_word(),
        ip.protocol,
        ip.sport,
        ip.dport,
    )
}

/// The outbound fast path of one frame; returns the ESP packet's length.
#[inline(always)]
fn encap(s: &mut Setup, buf: &mut VecPacket, i: usize) -> usize {
    buf.reset(&s.frames[i]);
    let mut ip = IpInfo::default();
    let Kind::Transit = classify_into(buf.data(), &s.local, &mut ip) else {
        unreachable!("a transit frame")
    };
    let SpdAction::Protect(id) = spd_lookup(&s.spd, &ip) else {
        unreachable!("every spoke's LAN is protected")
    };
    let sa = s.shard.outbound_sa(id).expect("installed");
    buf.adj(14);
    sa.encap(buf, 1500).unwrap();
    buf.len()
}

/// What the pipeline needs besides the SPD and the SAs: an inside port 0 and an outside port
/// 1 whose gateway leads to every spoke, with its neighbour entry already learned.
struct Plumbing {
    ports: [PortInfo; 2],
    routes: RouteTable,
    neighbours: NeighborTable,
    counters: LcoreCounters,
    requests: NoRequests,
}

/// Slow-path requests: none is expected (every SA is installed, the neighbour is known).
struct NoRequests;
impl SlowPathRequests for NoRequests {
    fn resolve(&mut self, _: u16, ip: IpAddr) {
        panic!("unexpected neighbour resolution of {ip}");
    }
    fn acquire(&mut self, sa: u32, _: &IpInfo) {
        panic!("unexpected acquire for SA {sa}");
    }
}

fn plumbing() -> Plumbing {
    let mut routes = RouteTable::default();
    let gateway: IpAddr = "192.0.2.254".parse().unwrap();
    routes.insert(
        prefix(Ipv4Addr::new(198, 18, 0, 0).into(), 15),
        RouteEntry {
            port: 1,
            gateway: Some(gateway),
        },
    );
    let neighbours = NeighborTable::new(64);
    neighbours.add_static(gateway, [2, 0, 0, 0, 0, 0xfe], 1);
    let port = |role, last| PortInfo {
        mac: [2, 0, 0, 0, 0, last],
        mtu: 1500,
        role,
    };
    Plumbing {
        ports: [port(PortRole::Inside, 1), port(PortRole::Outside, 2)],
        routes,
        neighbours,
        counters: LcoreCounters::default(),
        requests: NoRequests,
    }
}

/// Frames per call of the pipeline, as a worker receives them.
const BURST: usize = 32;

/// One burst of frames through the pipeline, starting at tunnel `first` (each frame to the
/// next tunnel); returns the bytes sent.
#[inline(always)]
fn burst(
    s: &mut Setup,
    pl: &mut Plumbing,
    bufs: &mut [VecPacket; BURST],
    verdicts: &mut [Verdict; BURST],
    first: usize,
) -> usize {
    let n = s.frames.len();
    for (k, buf) in bufs.iter_mut().enumerate() {
        buf.reset(&s.frames[(first + k) % n]);
    }
    let mut cx = Context {
        me: 0,
        ports: &pl.ports,
        local: &s.local,
        routes: &pl.routes,
        neighbours: &pl.neighbours,
        policy: &s.spd,
        sas: &mut s.shard,
        requests: &mut pl.requests,
        counters: &pl.counters,
        path_epoch: 0,
        hop_cache: HopCache::default(),
    };
    cx.refresh_path_epoch();
    Pipeline::process_rx(&mut cx, 0, &mut bufs[..], &mut verdicts[..]);
    bufs.iter().map(|b| b.len()).sum()
}

/// ns per packet of [`burst`] over `rounds` passes through every tunnel (rounded up to whole
/// bursts).
fn burst_cost(s: &mut Setup, pl: &mut Plumbing, ops_target: u64) -> f64 {
    let n = s.frames.len();
    let mut bufs: [VecPacket; BURST] = std::array::from_fn(|_| VecPacket::new(&s.frames[0]));
    let mut verdicts = [Verdict::Tx(0); BURST];
    // every frame must come out encapsulated on the outside port, or the figure is wrong
    burst(s, pl, &mut bufs, &mut verdicts, 0);
    assert!(
        verdicts.iter().all(|v| *v == Verdict::Tx(1)),
        "a frame was not encapsulated: {verdicts:?}"
    );
    let bursts = (ops_target as usize).div_ceil(BURST).max(n.div_ceil(BURST));
    let t = Instant::now();
    let mut first = 0;
    for _ in 0..bursts {
        black_box(burst(s, pl, &mut bufs, &mut verdicts, first));
        first = (first + BURST) % n;
    }
    t.elapsed().as_nanos() as f64 / (bursts * BURST) as f64
}

/// The five costs, ns per packet, timed over `rounds` passes through every tunnel.
fn costs(s: &mut Setup, pl: &mut Plumbing, n: u32) -> [f64; 5] {
    let per = |elapsed: Duration, ops: u64| elapsed.as_nanos() as f64 / ops as f64;
    let ops_target = 400_000u64;
    let rounds = (ops_target / n as u64).max(1);
    let ops = rounds * n as u64;
    let t = Instant::now();
    for _ in 0..rounds {
        for ip in &s.infos {
            black_box(spd_lookup(&s.spd, black_box(ip)));
        }
    }
    let spd = per(t.elapsed(), ops);
    let t = Instant::now();
    for _ in 0..rounds {
        for &id in &s.order {
            black_box(s.shard.outbound_sa(black_box(id)).map(|sa| sa.spi));
        }
    }
    let out = per(t.elapsed(), ops);
    let t = Instant::now();
    for _ in 0..rounds {
        for &i in &s.order {
            black_box(s.shard.inbound(black_box(FIRST_SPI + i)).map(|sa| sa.sa_id));
        }
    }
    let inb = per(t.elapsed(), ops);
    let mut buf = VecPacket::new(&s.frames[0]);
    let t = Instant::now();
    for _ in 0..rounds {
        for i in 0..n as usize {
            black_box(encap(s, &mut buf, i));
        }
    }
    let enc = per(t.elapsed(), ops);
    let burst = burst_cost(s, pl, ops_target);
    [spd, out, inb, enc, burst]
}

/// The summary as benches/render_results.py reads it: the figures only (ratios are the
/// reader's to compute), ns per packet and ms.
#[derive(serde::Serialize)]
struct SummaryJson {
    reference_tunnels: u32,
    spd_rules: usize,
    spd_bytes_per_rule: usize,
    sa_struct_bytes: usize,
    shard_table_bytes_per_sa: usize,
    rss_sas: usize,
    rss_growth_kib: Option<u64>,
    /// The page size under the bench's SA memory (4 on the default heap, 2048 with
    /// GLIBC_TUNABLES=glibc.malloc.hugetlb=2 and hugepages free): benches/criterion.sh runs
    /// the summary on both.
    heap_page_kib: Option<u64>,
    load_start: Option<String>,
    load_end: Option<String>,
    rows: Vec<SummaryRow>,
}

#[derive(serde::Serialize)]
struct SummaryRow {
    tunnels: u32,
    spd_ns: f64,
    sa_out_ns: f64,
    sa_in_ns: f64,
    encap_64_ns: f64,
    /// The same frames through the pipeline, a burst at a time (the fast path as it runs).
    burst_64_ns: f64,
    spd_build_ms: f64,
}

/// The 1-, 5- and 15-minute load averages.
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Writes the summary where `$SCALE_SUMMARY_JSON` says, or to benches/results/; a failure is
/// reported, not fatal (the printed summary and criterion's runs still count).
fn write_summary(summary: &SummaryJson) {
    let path = std::env::var_os("SCALE_SUMMARY_JSON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results/scale-summary.json")
        });
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
            std::fs::write(&path, json + "\n")
        });
    match written {
        Ok(()) => println!("scale summary written to {}", path.display()),
        Err(e) => eprintln!("scale summary not written to {}: {e}", path.display()),
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One timed pass over every tunnel count, with ratios to [`REFERENCE`], and the memory
/// figures; printed before criterion's own runs.
fn summary() {
    let load_start = load_average();
    // Memory first, while the heap is fresh: RSS growth is then the SAs' own.
    let n = 10_000u32;
    let spd = Spd::new(rules(n));
    println!(
        "SPD of {} rules: {} bytes per rule",
        spd.len(),
        spd.heap_bytes() / spd.len()
    );
    let before = rss_kib();
    let s = shard(n);
    let after = rss_kib();
    println!(
        "SA: struct {} bytes; shard tables {} bytes per SA; RSS growth for {} SAs: {}",
        std::mem::size_of::<Sa>(),
        s.table_bytes() / s.len(),
        s.len(),
        match (before, after) {
            (Some(b), Some(a)) => format!(
                "{} KiB, {} bytes per SA (keys expanded, tables included)",
                a.saturating_sub(b),
                a.saturating_sub(b) * 1024 / s.len() as u64
            ),
            _ => "unknown (no /proc/self/status)".into(),
        }
    );
    println!("scale summary (ns per packet; ratio to {REFERENCE} tunnels in brackets)");
    println!(
        "{:>7} {:>16} {:>16} {:>16} {:>16} {:>16} {:>12}",
        "tunnels", "spd", "sa-out", "sa-in", "encap-64B", "burst-64B", "spd build"
    );
    // SCALE_TUNNELS="4 10000" limits the summary to some of the counts (quick comparisons).
    let counts: Vec<u32> = match std::env::var("SCALE_TUNNELS") {
        Ok(v) => v
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
        Err(_) => TUNNELS.to_vec(),
    };
    // Every count is set up first and the timed passes go round the counts, PASSES times:
    // a slow stretch of this shared machine then falls on one pass of each count instead of
    // on all the passes of one count (which, falling on the reference, skewed every ratio).
    // Each count's first pass warms the caches and the CPU's frequency, and the best pass
    // stands for the cost.
    let mut setups: Vec<(u32, Setup, Plumbing)> =
        counts.iter().map(|&n| (n, setup(n), plumbing())).collect();
    let mut best = vec![[f64::INFINITY; 5]; setups.len()];
    for pass in 0..=PASSES {
        for ((n, s, pl), best) in setups.iter_mut().zip(best.iter_mut()) {
            if pass == 0 {
                costs(s, pl, *n);
            }
            let c = costs(s, pl, *n);
            if pass > 0 {
                for (b, c) in best.iter_mut().zip(c) {
                    *b = b.min(c);
                }
            }
        }
    }
    let rows: Vec<(u32, [f64; 5], Duration)> = setups
        .iter()
        .zip(best)
        .map(|((n, s, _), best)| (*n, best, s.spd_build))
        .collect();
    let rss_growth_kib = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let json = SummaryJson {
        reference_tunnels: REFERENCE,
        spd_rules: spd.len(),
        spd_bytes_per_rule: spd.heap_bytes() / spd.len(),
        sa_struct_bytes: std::mem::size_of::<Sa>(),
        shard_table_bytes_per_sa: s.table_bytes() / s.len(),
        rss_sas: s.len(),
        rss_growth_kib,
        heap_page_kib: dataplane::runtime::heap::sa_heap_page_kib(),
        load_start,
        load_end: load_average(),
        rows: rows
            .iter()
            .map(|(n, c, build)| SummaryRow {
                tunnels: *n,
                spd_ns: c[0],
                sa_out_ns: c[1],
                sa_in_ns: c[2],
                encap_64_ns: c[3],
                burst_64_ns: c[4],
                spd_build_ms: build.as_secs_f64() * 1e3,
            })
            .collect(),
    };
    let r = rows
        .iter()
        .find(|row| row.0 == REFERENCE)
        .expect("the reference count is among SCALE_TUNNELS")
        .1;
    for (n, c, build) in rows {
        let cell = |i: usize| format!("{:.1} ({:.2})", c[i], c[i] / r[i]);
        println!(
            "{n:>7} {:>16} {:>16} {:>16} {:>16} {:>16} {:>9.2} ms",
            cell(0),
            cell(1),
            cell(2),
            cell(3),
            cell(4),
            build.as_secs_f64() * 1e3
        );
    }
    write_summary(&json);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600));
    for n in TUNNELS {
        let mut s = setup(n);
        let mut k = 0usize;
        let mut next = move || {
            k += 1;
            if k >= n as usize {
                k = 0;
            }
            k
        };
        g.bench_function(BenchmarkId::new("spd", n), |b| {
            b.iter(|| spd_lookup(&s.spd, black_box(&s.infos[next()])))
        });
        if n <= 1_000 || std::env::var_os("SCALE_LINEAR_10K").is_some() {
            g.bench_function(BenchmarkId::new("spd-linear", n), |b| {
                b.iter(|| {
                    let ip = &s.infos[next()];
                    s.spd
                        .outbound_linear(ip.src(), ip.dst(), ip.protocol, ip.sport, ip.dport)
                })
            });
        }
        g.bench_function(BenchmarkId::new("sa-out", n), |b| {
            b.iter(|| {
                let id = s.order[next()];
                s.shard.outbound_sa(black_box(id)).map(|sa| sa.spi)
            })
        });
        g.bench_function(BenchmarkId::new("sa-in", n), |b| {
            b.iter(|| {
                let spi = FIRST_SPI + s.order[next()];
                s.shard.inbound(black_box(spi)).map(|sa| sa.sa_id)
            })
        });
        let mut buf = VecPacket::new(&s.frames[0]);
        g.bench_function(BenchmarkId::new("encap-64", n), |b| {
            b.iter(|| {
                let i = next();
                encap(&mut s, &mut buf, i)
            })
        });
        let mut pl = plumbing();
        let mut bufs: [VecPacket; BURST] = std::array::from_fn(|_| VecPacket::new(&s.frames[0]));
        let mut verdicts = [Verdict::Tx(0); BURST];
        let mut first = 0usize;
        g.throughput(criterion::Throughput::Elements(BURST as u64));
        g.bench_function(BenchmarkId::new("burst-64", n), |b| {
            b.iter(|| {
                first = (first + BURST) % n as usize;
                burst(&mut s, &mut pl, &mut bufs, &mut verdicts, first)
            })
        });
        g.throughput(criterion::Throughput::Elements(1));
    }
    g.finish();
}

fn main() {
    summary();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
