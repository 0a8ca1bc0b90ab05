//! `ipsec-dpctl`: talks to `ipsec-dataplane` over its channel socket, for operators and
//! tests until `ipsec-ctl` (issue 4) exists: counters, SA dumps, and SA add/delete at run
//! time (the SAs of an `ipsec-manual` crypto map entry, taken from a config file), and
//! `sa load`, which measures how fast a running dataplane takes SAs (issue 5).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dataplane::channel::{Client, Message, SaCountersMsg, SpdRuleMsg};
use dataplane::config::Config;
use dataplane::esp::Direction;

#[derive(Parser)]
#[command(
    name = "ipsec-dpctl",
    about = "Query and drive ipsec-dataplane over its channel"
)]
struct Args {
    /// The dataplane's channel socket ([dataplane] channel in the config).
    #[arg(long, default_value = "/run/ipsec-gateway/dataplane.sock")]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Per-SA and per-lcore counters.
    Counters {
        #[arg(long)]
        json: bool,
    },
    /// The installed SAs (the dataplane sends them in pages; all are read).
    Sas {
        #[arg(long)]
        json: bool,
        /// Only how many SAs there are, by direction.
        #[arg(long, conflicts_with = "json")]
        count: bool,
    },
    /// Install or remove SAs.
    Sa {
        #[command(subcommand)]
        op: SaOp,
    },
    /// Install the SPD compiled from a config file's crypto maps.
    Spd {
        #[arg(long)]
        from_config: PathBuf,
    },
}

#[derive(Subcommand)]
enum SaOp {
    /// Add both SAs of an ipsec-manual crypto map entry from a config file.
    Add {
        #[arg(long)]
        from_config: PathBuf,
        #[arg(long)]
        map: String,
        #[arg(long)]
        seq: u32,
    },
    /// Install COUNT generated tunnels (an inbound and an outbound SA each, esp-gcm 128,
    /// fresh random keys) as fast as the channel takes them, and report SAs per second.
    /// Tunnel i has SPD id FIRST_SA_ID+i, peer 198.18.0.0+i, and protects PROTECTED ->
    /// 172.16.0.0/24 counted up by i; its SPIs are 0x800000+id (in) and 0xc00000+id (out).
    Load {
        #[arg(long)]
        count: u32,
        #[arg(long, default_value_t = 1)]
        first_sa_id: u32,
        /// Requests in flight; 1 waits for each reply, as control's link does.
        #[arg(long, default_value_t = 64)]
        window: u32,
        /// Our tunnel endpoint (the outside interface's address).
        #[arg(long, default_value = "10.99.0.1")]
        local: std::net::IpAddr,
        /// Our side of every tunnel's selector.
        #[arg(long, default_value = "10.0.0.0/8")]
        protected: String,
        /// Also install an SPD: this config's own rules, then one rule per tunnel.
        #[arg(long)]
        spd_from_config: Option<PathBuf>,
        /// Reinstall the SPD after every K tunnels, as a hub does per spoke (0: once, after
        /// all SAs; needs --spd-from-config).
        #[arg(long, default_value_t = 0)]
        spd_every: u32,
        /// Install and delete the tunnels this many times (the last round keeps them unless
        /// --delete): a longer run for throughput measurements during installation.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Delete the tunnels at the end.
        #[arg(long)]
        delete: bool,
        /// One JSON object on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete one SA.
    Delete {
        #[arg(long, value_parser = parse_u32)]
        spi: u32,
        #[arg(long)]
        dir: Dir,
        /// The SPD's id of the SA (outbound SAs).
        #[arg(long, default_value_t = 0)]
        sa_id: u32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Dir {
    In,
    Out,
}

fn parse_u32(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).map_err(|e| e.to_string()),
        None => s
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string()),
    }
}

fn expect_ack(reply: Message) -> Result<(), String> {
    match reply {
        Message::Ack => Ok(()),
        Message::Error { reason } => Err(reason),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

fn print_sa(s: &SaCountersMsg) {
    let dir = match s.direction {
        Some(Direction::Inbound) => "inbound",
        Some(Direction::Outbound) => "outbound",
        None => "?",
    };
    println!(
        "spi 0x{:X}({}) {dir} {} {} -> {} map {} {} lcore-worker {}",
        s.spi, s.spi, s.transform, s.local, s.remote, s.crypto_map, s.crypto_map_seq, s.owner
    );
    println!(
        "  #pkts encaps: {}, #pkts encrypt: {}, #pkts digest: {}",
        s.encaps, s.encrypt, s.digest
    );
    println!(
        "  #pkts decaps: {}, #pkts decrypt: {}, #pkts verify: {}",
        s.decaps, s.decrypt, s.verify
    );
    println!(
        "  #send errors {}, #recv errors {}",
        s.send_errors, s.recv_errors
    );
    println!(
        "  sa timing: remaining key lifetime (k/sec): ({}/{})",
        s.remaining_kilobytes, s.remaining_seconds
    );
    for (r, n) in &s.drops {
        println!("  drop {r}: {n}");
    }
}

/// Request ids of pipelined requests start here, far from the client's own counter.
const PIPELINE_IDS: u32 = 0x4000_0000;

/// Requests sent without waiting for each reply, at most `window` unanswered. The dataplane
/// answers a connection's requests in order, one reply each; events (request id 0) that
/// arrive meanwhile are skipped.
struct Pipeline<'a> {
    conn: &'a mut dataplane::channel::Connection,
    window: u32,
    in_flight: u32,
    next_id: u32,
    acked: u64,
    /// Refusals, by reason, with how many times each came back.
    errors: std::collections::BTreeMap<String, u64>,
}

impl<'a> Pipeline<'a> {
    fn new(conn: &'a mut dataplane::channel::Connection, window: u32) -> Self {
        Pipeline {
            conn,
            window: window.max(1),
            in_flight: 0,
            next_id: PIPELINE_IDS,
            acked: 0,
            errors: Default::default(),
        }
    }

    fn push(&mut self, msg: &Message) -> Result<(), String> {
        while self.in_flight >= self.window {
            self.reap_one()?;
        }
        self.conn
            .send(self.next_id, msg)
            .map_err(|e| format!("send: {e}"))?;
        self.next_id = self.next_id.wrapping_add(1).max(PIPELINE_IDS);
        self.in_flight += 1;
        Ok(())
    }

    fn reap_one(&mut self) -> Result<(), String> {
        loop {
            match self.conn.recv(true).map_err(|e| format!("recv: {e}"))? {
                Some((id, reply)) if id >= PIPELINE_IDS => {
                    self.in_flight -= 1;
                    match reply {
                        Message::Ack => self.acked += 1,
                        Message::Error { reason } => *self.errors.entry(reason).or_default() += 1,
                        other => {
                            *self
                                .errors
                                .entry(format!("unexpected reply kind {}", other.kind()))
                                .or_default() += 1
                        }
                    }
                    return Ok(());
                }
                Some(_) => continue,
                None => return Err("no reply within the timeout".into()),
            }
        }
    }

    /// Waits for every reply.
    fn finish(&mut self) -> Result<(), String> {
        while self.in_flight > 0 {
            self.reap_one()?;
        }
        Ok(())
    }
}

/// The SA pair of generated tunnel `i`.
fn generated_pair(
    i: u32,
    sa_id: u32,
    local: std::net::IpAddr,
    protected: dataplane::esp::Prefix,
) -> [dataplane::esp::SaParams; 2] {
    use dataplane::crypto::{Encryption, Integrity, Transform};
    use dataplane::esp::{Keys, Lifetime, Mode, Prefix, SaParams, Selector};
    use rand_core::{OsRng, RngCore};
    let transform = Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::None,
    };
    let lan =
        std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(172, 16, 0, 0)) + (i << 8));
    let remote = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + i);
    let selector = Selector {
        source: protected,
        destination: Prefix {
            addr: lan.into(),
            len: 24,
        },
        protocol: 0,
        source_ports: (0, 65535),
        destination_ports: (0, 65535),
    };
    let sa = |spi: u32, direction: Direction| {
        let mut key = vec![0u8; transform.encryption.key_len()];
        OsRng.fill_bytes(&mut key);
        SaParams {
            spi,
            direction,
            transform,
            keys: Keys {
                encryption: key,
                authentication: vec![],
            },
            mode: Mode::Tunnel,
            local,
            remote: remote.into(),
            selectors: vec![selector],
            lifetime: Lifetime::default(),
            replay_window: 64,
            esn: false,
            udp_encap: None,
            crypto_map: "load".into(),
            crypto_map_seq: 10,
        }
    };
    [
        sa(0x80_0000 + sa_id, Direction::Inbound),
        sa(0xc0_0000 + sa_id, Direction::Outbound),
    ]
}

/// The dataplane's resident memory in KiB, from /proc (it runs on this host): its RSS plus
/// its hugetlb pages, which RSS does not count (the systemd unit puts the heap, and so the
/// SAs, on 2 MB pages).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(field("VmRSS:")? + field("HugetlbPages:").unwrap_or(0))
}

/// What `sa load` measured.
#[derive(serde::Serialize, Default)]
struct LoadReport {
    tunnels: u32,
    sas: u64,
    window: u32,
    rounds: u32,
    /// Installs, over every round: SAs acked per second (acked: queued to the owner lcore).
    install_sas_per_s: f64,
    /// The last round: seconds until every SA was acked, and until a dump showed them all
    /// on their lcores.
    install_s: f64,
    on_lcores_s: Option<f64>,
    delete_sas_per_s: Option<f64>,
    spd_installs: u64,
    spd_rules: usize,
    /// Dataplane RSS growth from before the first round to the last round's tunnels
    /// installed, KiB and bytes per SA.
    rss_growth_kib: Option<i64>,
    bytes_per_sa: Option<i64>,
    errors: std::collections::BTreeMap<String, u64>,
}

#[allow(clippy::too_many_arguments)]
fn sa_load(
    c: &mut Client,
    count: u32,
    first_sa_id: u32,
    window: u32,
    local: std::net::IpAddr,
    protected: &str,
    spd_from_config: Option<PathBuf>,
    spd_every: u32,
    rounds: u32,
    delete: bool,
) -> Result<LoadReport, String> {
    use std::time::Instant;
    let protected = {
        let (a, l) = protected
            .split_once('/')
            .ok_or("--protected: ADDRESS/LENGTH")?;
        dataplane::esp::Prefix {
            addr: a.parse().map_err(|e| format!("--protected: {e}"))?,
            len: l.parse().map_err(|e| format!("--protected: {e}"))?,
        }
    };
    let base_rules: Option<Vec<SpdRuleMsg>> = match &spd_from_config {
        Some(path) => {
            let cfg = Config::load(path).map_err(|e| e.to_string())?;
            Some(
                cfg.spd_rules
                    .iter()
                    .map(|r| SpdRuleMsg {
                        selector: r.selector,
                        protect: r.protect,
                        entry: r.entry,
                    })
                    .collect(),
            )
        }
        None if spd_every > 0 => return Err("--spd-every needs --spd-from-config".into()),
        None => None,
    };
    let spd = |installed: u32| {
        let mut rules = base_rules.clone().unwrap_or_default();
        rules.extend((0..installed).map(|i| {
            let [_, out] = generated_pair(i, first_sa_id + i, local, protected);
            SpdRuleMsg {
                selector: out.selectors[0],
                protect: Some(first_sa_id + i),
                entry: first_sa_id + i,
            }
        }));
        Message::InstallSpd { rules }
    };
    // Built before the clock starts: key generation is the client's cost, not the link's.
    let pairs: Vec<_> = (0..count)
        .map(|i| generated_pair(i, first_sa_id + i, local, protected))
        .collect();
    let pid = c.connection().peer_pid().ok();
    let mut report = LoadReport {
        tunnels: count,
        sas: 2 * count as u64,
        window,
        rounds,
        ..Default::default()
    };
    let mut installing = std::time::Duration::ZERO;
    let mut deleting = std::time::Duration::ZERO;
    let mut deleted = 0u64;
    // Before the first round: later rounds reuse what the allocator kept from the earlier
    // ones, so their growth would understate the SAs' memory.
    let rss_before = pid.and_then(rss_kib);
    for round in 0..rounds.max(1) {
        let last = round + 1 == rounds.max(1);
        let t0 = Instant::now();
        let mut pipe = Pipeline::new(c.connection(), window);
        for (i, pair) in pairs.iter().enumerate() {
            // Inbound first, as control does: the peer may use the pair once we send.
            for p in pair {
                pipe.push(&Message::AddSa {
                    sa_id: first_sa_id + i as u32,
                    params: p.clone(),
                })?;
            }
            if spd_every > 0 && (i as u32 + 1).is_multiple_of(spd_every) {
                pipe.push(&spd(i as u32 + 1))?;
                report.spd_installs += 1;
            }
        }
        if base_rules.is_some() && (spd_every == 0 || !count.is_multiple_of(spd_every)) {
            pipe.push(&spd(count))?;
            report.spd_installs += 1;
        }
        pipe.finish()?;
        let acked = t0.elapsed();
        installing += acked;
        for (r, n) in std::mem::take(&mut pipe.errors) {
            *report.errors.entry(r).or_default() += n;
        }
        if last {
            report.install_s = acked.as_secs_f64();
            // The workers hold them when a dump of their shards shows them all.
            let wanted: std::collections::BTreeSet<u32> =
                pairs.iter().map(|[i, _]| i.spi).collect();
            report.on_lcores_s = match c.dump_sas() {
                Ok(sas) => {
                    let found = sas
                        .iter()
                        .filter(|s| {
                            s.direction == Some(Direction::Inbound) && wanted.contains(&s.spi)
                        })
                        .count();
                    (found == wanted.len()).then(|| t0.elapsed().as_secs_f64())
                }
                Err(_) => None,
            };
            if let (Some(a), Some(b)) = (rss_before, pid.and_then(rss_kib)) {
                let grown = b as i64 - a as i64;
                report.rss_growth_kib = Some(grown);
                report.bytes_per_sa = Some(grown * 1024 / (2 * count.max(1)) as i64);
            }
        }
        if !last || delete {
            let t = Instant::now();
            let mut pipe = Pipeline::new(c.connection(), window);
            for (i, [inb, out]) in pairs.iter().enumerate() {
                let sa_id = first_sa_id + i as u32;
                pipe.push(&Message::DeleteSa {
                    spi: out.spi,
                    direction: Direction::Outbound,
                    sa_id,
                })?;
                pipe.push(&Message::DeleteSa {
                    spi: inb.spi,
                    direction: Direction::Inbound,
                    sa_id,
                })?;
            }
            pipe.finish()?;
            deleting += t.elapsed();
            deleted += 2 * count as u64;
            for (r, n) in std::mem::take(&mut pipe.errors) {
                *report.errors.entry(r).or_default() += n;
            }
        }
    }
    report.install_sas_per_s =
        (2 * count as u64 * rounds.max(1) as u64) as f64 / installing.as_secs_f64().max(1e-9);
    if deleted > 0 {
        report.delete_sas_per_s = Some(deleted as f64 / deleting.as_secs_f64().max(1e-9));
    }
    report.spd_rules = base_rules.map_or(0, |r| r.len() + count as usize);
    Ok(report)
}

fn run(args: Args) -> Result<(), String> {
    let mut c = Client::connect(&args.socket, "ipsec-dpctl")
        .map_err(|e| format!("{}: {e}", args.socket.display()))?;
    let req = |c: &mut Client, m: &Message| c.request(m).map_err(|e| e.to_string());
    match args.cmd {
        Cmd::Counters { json } => match c.dump_counters().map_err(|e| e.to_string())? {
            cs if json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&cs).map_err(|e| e.to_string())?
                )
            }
            cs => {
                for s in &cs.sas {
                    print_sa(s);
                }
                for l in &cs.lcores {
                    println!(
                        "lcore {} (worker {}): rx {} tx {} encaps {} decaps {} handoff in {} out {} punted {} bursts {}",
                        l.lcore, l.worker, l.rx, l.tx, l.encaps, l.decaps, l.handoff_in, l.handoff_out, l.punted, l.bursts
                    );
                    for (r, n) in l.drops.iter().filter(|(_, n)| **n > 0) {
                        println!("  drop {r}: {n}");
                    }
                }
            }
        },
        Cmd::Sas { json, count } => {
            let sas = c.dump_sas().map_err(|e| e.to_string())?;
            if count {
                let inbound = sas
                    .iter()
                    .filter(|s| s.direction == Some(Direction::Inbound))
                    .count();
                println!(
                    "{} SAs: {inbound} inbound, {} outbound",
                    sas.len(),
                    sas.len() - inbound
                );
            } else if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&sas).map_err(|e| e.to_string())?
                )
            } else {
                sas.iter().for_each(print_sa);
            }
        }
        Cmd::Sa {
            op:
                SaOp::Add {
                    from_config,
                    map,
                    seq,
                },
        } => {
            let cfg = Config::load(&from_config).map_err(|e| e.to_string())?;
            let pair = cfg
                .manual_sas
                .iter()
                .find(|p| p.outbound.crypto_map == map && p.outbound.crypto_map_seq == seq)
                .ok_or_else(|| format!("no ipsec-manual entry crypto map {map} {seq}"))?;
            // Inbound first: the peer may start using the pair as soon as we send with it.
            for p in [&pair.inbound, &pair.outbound] {
                expect_ack(req(
                    &mut c,
                    &Message::AddSa {
                        sa_id: pair.sa_id,
                        params: p.clone(),
                    },
                )?)?;
            }
            println!(
                "added SPIs {} (in) and {} (out)",
                pair.inbound.spi, pair.outbound.spi
            );
        }
        Cmd::Sa {
            op:
                SaOp::Load {
                    count,
                    first_sa_id,
                    window,
                    local,
                    protected,
                    spd_from_config,
                    spd_every,
                    rounds,
                    delete,
                    json,
                },
        } => {
            let r = sa_load(
                &mut c,
                count,
                first_sa_id,
                window,
                local,
                &protected,
                spd_from_config,
                spd_every,
                rounds,
                delete,
            )?;
            if json {
                println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
            } else {
                println!(
                    "{} tunnels ({} SAs), window {}, {} round(s): {:.0} SAs/s acked; last round {:.3} s",
                    r.tunnels, r.sas, r.window, r.rounds, r.install_sas_per_s, r.install_s
                );
                match r.on_lcores_s {
                    Some(t) => println!("  all on their lcores (SA dump) after {t:.3} s"),
                    None => println!("  not all seen on the lcores by an SA dump"),
                }
                if let Some(d) = r.delete_sas_per_s {
                    println!("  deletes: {d:.0} SAs/s");
                }
                if r.spd_installs > 0 {
                    println!(
                        "  SPD installed {} time(s), {} rules at the end",
                        r.spd_installs, r.spd_rules
                    );
                }
                if let (Some(k), Some(b)) = (r.rss_growth_kib, r.bytes_per_sa) {
                    println!("  dataplane RSS grew {k} KiB: {b} bytes per SA");
                }
                for (reason, n) in &r.errors {
                    println!("  refused {n}: {reason}");
                }
            }
            if !r.errors.is_empty() {
                return Err(format!(
                    "{} requests refused",
                    r.errors.values().sum::<u64>()
                ));
            }
        }
        Cmd::Sa {
            op: SaOp::Delete { spi, dir, sa_id },
        } => {
            let direction = match dir {
                Dir::In => Direction::Inbound,
                Dir::Out => Direction::Outbound,
            };
            expect_ack(req(
                &mut c,
                &Message::DeleteSa {
                    spi,
                    direction,
                    sa_id,
                },
            )?)?;
            println!("deleted SPI {spi}");
        }
        Cmd::Spd { from_config } => {
            let cfg = Config::load(&from_config).map_err(|e| e.to_string())?;
            let rules = cfg
                .spd_rules
                .iter()
                .map(|r| SpdRuleMsg {
                    selector: r.selector,
                    protect: r.protect,
                    entry: r.entry,
                })
                .collect();
            expect_ack(req(&mut c, &Message::InstallSpd { rules })?)?;
            println!("installed {} SPD rules", cfg.spd_rules.len());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("% {e}");
            ExitCode::FAILURE
        }
    }
}
