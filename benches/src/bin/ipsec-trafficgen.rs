//! `ipsec-trafficgen`: the DPDK traffic generator of issue 5.
//!
//! - `lab`: writes a gateway configuration with N tunnels on memif ports, and the lab's
//!   description for `run`.
//! - `run`: against an ipsec-dataplane started with that configuration, finds the zero-loss
//!   rate of each packet size (RFC 2544 binary search), then measures latency at a fraction
//!   of it; writes JSON, markdown and SVG.
//! - `pcap`: plaintext and ESP pcap files and the matching gateway configuration, for
//!   DPDK-Pktgen on real NICs.
//! - `report`: merges the JSON of several runs into one JSON, markdown table and SVG plot.

use std::path::{Path, PathBuf};

use benches::frames::{build_sa, ethernet, peer_view, plaintext_ip, Flow, SizeMix, Stamp};
use benches::generator::{Generator, Mode, Traffic, TrialSpec};
use benches::lab::{self, GatewaySpec, LabInfo};
use benches::pcap::PcapWriter;
use benches::report::{self, Latency, RunReport, SizeResult};
use benches::search::{zero_loss_rate, SearchConfig, Trial};
use clap::{Parser, Subcommand, ValueEnum};
use dataplane::config::Config;
use dataplane::packet::{PacketBuf, VecPacket};

#[derive(Parser)]
#[command(
    name = "ipsec-trafficgen",
    about = "DPDK traffic generator for ipsec-dataplane"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Device {
    /// net_memif: the generator connects to the gateway's sockets (two processes).
    Memif,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Encap,
    Decap,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write DIR/gateway.toml (N tunnels on memif ports) and DIR/lab.json.
    Lab {
        #[arg(long)]
        tunnels: u32,
        #[arg(long)]
        out: PathBuf,
        /// Worker lcores of the gateway (lcores 1..=K; main lcore 0).
        #[arg(long, default_value_t = 1)]
        workers: u32,
        #[arg(long, value_enum, default_value = "memif")]
        device: Device,
        /// Anti-replay window of the inbound SAs (64..4096), or 0 to disable it.
        #[arg(long, default_value_t = 1024)]
        replay_window: u32,
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
        /// Mbufs per gateway pool.
        #[arg(long, default_value_t = 32768)]
        mbufs: u32,
        /// memif ring size as a power of two (10 to 14). Deep by default: on a shared machine
        /// the zero-loss rate is otherwise the ring depth over the time the gateway's worker
        /// is descheduled.
        #[arg(long, default_value_t = 14)]
        ring_log2: u32,
    },
    /// Measure a running ipsec-dataplane started with DIR/gateway.toml.
    Run {
        #[arg(long)]
        lab: PathBuf,
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Inner IP packet sizes: numbers and `imix`.
        #[arg(long, default_value = "64,128,512,1420,imix", value_delimiter = ',')]
        sizes: Vec<String>,
        /// Use the first N tunnels of the lab (default: all).
        #[arg(long)]
        tunnels: Option<u32>,
        /// Seconds per trial.
        #[arg(long, default_value_t = 1.0)]
        duration: f64,
        /// Loss still counted as zero, in percent (e.g. 0.001).
        #[arg(long, default_value_t = 0.0)]
        loss_tolerance: f64,
        /// Search resolution in percent of the rate.
        #[arg(long, default_value_t = 2.0)]
        resolution: f64,
        #[arg(long, default_value_t = 10)]
        max_trials: u32,
        /// Trials again at a rate that lost packets before it counts as failed (a hiccup of
        /// a shared host is not the device's limit; see benches/src/search.rs).
        #[arg(long, default_value_t = 1)]
        confirm_loss: u32,
        /// Encap: decrypt and check one returned packet in this many.
        #[arg(long, default_value_t = 16)]
        verify_every: u64,
        /// Latency is measured at this fraction of the zero-loss rate.
        #[arg(long, default_value_t = 0.9)]
        latency_fraction: f64,
        /// Milliseconds left for the last packets to come back after each trial.
        #[arg(long, default_value_t = 100)]
        drain_ms: u64,
        /// CPU of the generator's lcore.
        #[arg(long, default_value_t = 0)]
        cpu: u32,
        /// Seconds to wait for the gateway (memif links up, control channel present): a
        /// gateway with 10,000 tunnels takes a minute to load its configuration.
        #[arg(long, default_value_t = 120.0)]
        wait: f64,
        /// Text for the JSON/markdown saying where generator and gateway run.
        #[arg(long, default_value = "")]
        placement: String,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        md: Option<PathBuf>,
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Write DIR/inside.pcap, DIR/outside.pcap and DIR/gateway.toml for DPDK-Pktgen.
    Pcap {
        #[arg(long)]
        tunnels: u32,
        /// Inner IP packet size in bytes.
        #[arg(long)]
        size: String,
        #[arg(long)]
        out: PathBuf,
        /// MAC of the gateway's inside port (destination of the plaintext frames).
        #[arg(long, default_value = "02:00:00:00:00:01")]
        inside_mac: String,
        /// MAC of the gateway's outside port (destination of the ESP frames).
        #[arg(long, default_value = "02:00:00:00:01:01")]
        outside_mac: String,
        /// MACs of the pktgen ports: sources of the frames, the gateway's next hops.
        #[arg(long, default_value = "02:00:00:00:00:02")]
        pktgen_inside_mac: String,
        #[arg(long, default_value = "02:00:00:00:01:02")]
        pktgen_outside_mac: String,
        /// PCI address of the gateway's inside port (written into gateway.toml).
        #[arg(long, default_value = "PCI-ADDRESS-OF-INSIDE-PORT")]
        inside_device: String,
        #[arg(long, default_value = "PCI-ADDRESS-OF-OUTSIDE-PORT")]
        outside_device: String,
        /// Packets per tunnel in each file (ESP sequence numbers 1..count).
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long, default_value_t = 1)]
        workers: u32,
        #[arg(long, default_value_t = 0x5eed)]
        seed: u64,
    },
    /// Merge run JSON files into one JSON, a markdown table and an SVG plot.
    Report {
        #[arg(long)]
        json: PathBuf,
        #[arg(long)]
        md: PathBuf,
        #[arg(long)]
        svg: PathBuf,
        runs: Vec<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Lab {
            tunnels,
            out,
            workers,
            device: Device::Memif,
            replay_window,
            seed,
            mbufs,
            ring_log2,
        } => cmd_lab(
            tunnels,
            &out,
            workers,
            replay_window,
            seed,
            mbufs,
            ring_log2,
        ),
        Cmd::Run { .. } => cmd_run(cli_run(cli.cmd)),
        Cmd::Pcap {
            tunnels,
            size,
            out,
            inside_mac,
            outside_mac,
            pktgen_inside_mac,
            pktgen_outside_mac,
            inside_device,
            outside_device,
            count,
            workers,
            seed,
        } => (|| {
            cmd_pcap(
                tunnels,
                &size,
                &out,
                [
                    lab::parse_mac(&inside_mac)?,
                    lab::parse_mac(&outside_mac)?,
                    lab::parse_mac(&pktgen_inside_mac)?,
                    lab::parse_mac(&pktgen_outside_mac)?,
                ],
                [inside_device, outside_device],
                count,
                workers,
                seed,
            )
        })(),
        Cmd::Report {
            json,
            md,
            svg,
            runs,
        } => cmd_report(&json, &md, &svg, &runs),
    };
    if let Err(e) = r {
        eprintln!("ipsec-trafficgen: {e}");
        std::process::exit(1);
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn cmd_lab(
    tunnels: u32,
    out: &Path,
    workers: u32,
    replay_window: u32,
    seed: u64,
    mbufs: u32,
    ring_log2: u32,
) -> Result<(), String> {
    if !(10..=14).contains(&ring_log2) {
        return Err("--ring-log2: 10 to 14".into());
    }
    if !(1..=lab::MAX_TUNNELS).contains(&tunnels) {
        return Err(format!("--tunnels: 1 to {}", lab::MAX_TUNNELS));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let dir = std::fs::canonicalize(out).map_err(|e| e.to_string())?;
    let dir_s = dir.to_str().ok_or("directory name is not UTF-8")?;
    if dir_s.contains(',') {
        return Err(
            "the lab directory's path must not contain a comma (DPDK device arguments)".into(),
        );
    }
    let [gw_in, gw_out, gen_in, gen_out] = lab::memif_devices(dir_s, ring_log2);
    let spec = GatewaySpec {
        tunnels,
        workers,
        eal: [
            "--no-huge",
            "--no-pci",
            "-m",
            "2048",
            "--file-prefix",
            "tg-gw",
            "--log-level",
            "*:error",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        inside_device: gw_in,
        outside_device: gw_out,
        channel: format!("{dir_s}/dataplane.sock"),
        replay_window: (replay_window != 0).then_some(replay_window),
        inside_next_hop_mac: lab::GENERATOR_INSIDE_MAC,
        outside_next_hop_mac: lab::GENERATOR_OUTSIDE_MAC,
        seed,
        mbufs,
    };
    write(&dir.join("gateway.toml"), &lab::gateway_toml(&spec))?;
    let info = LabInfo {
        tunnels,
        workers,
        generator_inside_device: gen_in,
        generator_outside_device: gen_out,
        gateway_inside_mac: lab::mac_text(lab::GATEWAY_INSIDE_MAC),
        gateway_outside_mac: lab::mac_text(lab::GATEWAY_OUTSIDE_MAC),
        generator_inside_mac: lab::mac_text(lab::GENERATOR_INSIDE_MAC),
        generator_outside_mac: lab::mac_text(lab::GENERATOR_OUTSIDE_MAC),
    };
    write(
        &dir.join("lab.json"),
        &serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?,
    )?;
    println!("{}", dir.join("gateway.toml").display());
    Ok(())
}

struct RunArgs {
    lab: PathBuf,
    mode: Mode,
    sizes: Vec<String>,
    tunnels: Option<u32>,
    duration: f64,
    search: SearchConfig,
    verify_every: u64,
    latency_fraction: f64,
    drain_ms: u64,
    cpu: u32,
    wait: f64,
    placement: String,
    json: Option<PathBuf>,
    md: Option<PathBuf>,
    svg: Option<PathBuf>,
}

fn cli_run(cmd: Cmd) -> RunArgs {
    match cmd {
        Cmd::Run {
            lab,
            mode,
            sizes,
            tunnels,
            duration,
            loss_tolerance,
            resolution,
            max_trials,
            confirm_loss,
            verify_every,
            latency_fraction,
            drain_ms,
            cpu,
            wait,
            placement,
            json,
            md,
            svg,
        } => RunArgs {
            lab,
            mode: match mode {
                ModeArg::Encap => Mode::Encap,
                ModeArg::Decap => Mode::Decap,
            },
            sizes,
            tunnels,
            duration,
            search: SearchConfig {
                loss_tolerance: loss_tolerance / 100.0,
                resolution: resolution / 100.0,
                max_trials,
                confirm_loss,
            },
            verify_every,
            latency_fraction,
            drain_ms,
            cpu,
            wait,
            placement,
            json,
            md,
            svg,
        },
        _ => unreachable!("called for run only"),
    }
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn cmd_run(a: RunArgs) -> Result<(), String> {
    let load_start = loadavg();
    let info: LabInfo = serde_json::from_str(
        &std::fs::read_to_string(a.lab.join("lab.json"))
            .map_err(|e| format!("{}/lab.json: {e}", a.lab.display()))?,
    )
    .map_err(|e| format!("lab.json: {e}"))?;
    let t0 = std::time::Instant::now();
    let config = Config::load(a.lab.join("gateway.toml")).map_err(|e| e.to_string())?;
    eprintln!(
        "config: {} tunnels parsed in {:.2} s",
        config.manual_sas.len(),
        t0.elapsed().as_secs_f64()
    );
    let n = a.tunnels.unwrap_or(info.tunnels) as usize;
    if n == 0 || n > config.manual_sas.len() {
        return Err(format!("--tunnels: 1 to {}", config.manual_sas.len()));
    }
    let sas = &config.manual_sas[..n];
    let mixes: Vec<SizeMix> = a
        .sizes
        .iter()
        .map(|s| SizeMix::parse(s))
        .collect::<Result<_, _>>()?;
    let queues = info.workers.max(1) as u16;
    let name = |dev: &str| dev.split(',').next().unwrap_or(dev).to_string();
    let args: Vec<String> = vec![
        "ipsec-trafficgen".into(),
        "--no-huge".into(),
        "--no-pci".into(),
        "-m".into(),
        "1024".into(),
        "--file-prefix".into(),
        format!("tg-gen-{}", std::process::id()),
        "--lcores".into(),
        format!("0@{}", a.cpu),
        "--log-level".into(),
        "*:warning".into(),
        "--vdev".into(),
        info.generator_inside_device.clone(),
        "--vdev".into(),
        info.generator_outside_device.clone(),
    ];
    // A memif client that finds no server socket does not try again: wait for the gateway's
    // control channel, which it binds once its ports listen, its SAs are installed and its
    // workers poll (the whole path is ready), then start the ports.
    let waited = std::time::Instant::now();
    while !config.dataplane.channel.exists() {
        if waited.elapsed().as_secs_f64() > a.wait {
            return Err(format!(
                "no control channel {} after {} s: ipsec-dataplane is not ready",
                config.dataplane.channel.display(),
                a.wait
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut gen = Generator::start(
        &args,
        &name(&info.generator_inside_device),
        &name(&info.generator_outside_device),
        queues,
        32768,
    )?;
    gen.wait_links(a.wait)?;
    eprintln!(
        "gateway ready ({:.1} s after the configuration was read)",
        waited.elapsed().as_secs_f64()
    );
    let (gw_mac, gen_mac) = match a.mode {
        Mode::Encap => (&info.gateway_inside_mac, &info.generator_inside_mac),
        Mode::Decap => (&info.gateway_outside_mac, &info.generator_outside_mac),
    };
    let (gw_mac, gen_mac) = (lab::parse_mac(gw_mac)?, lab::parse_mac(gen_mac)?);
    let mut trial_id = 0u32;
    let mut results = Vec::new();
    // One set of peer SAs for the whole run: their sequence numbers keep increasing.
    let mut traffic = Traffic::new(a.mode, sas, &mixes[0], gw_mac, gen_mac)?;
    for mix in &mixes {
        traffic.set_sizes(mix);
        let mut spec = TrialSpec {
            rate_pps: 10_000.0,
            seconds: 0.3,
            drain_seconds: a.drain_ms as f64 / 1000.0,
            verify_every: a.verify_every,
            trial_id,
        };
        // Warm-up at a low rate: the path works, every tunnel has carried a packet. A size
        // whose warm-up gets nothing back (a gateway slower than the warm-up rate) is recorded
        // with a zero rate and the run goes on.
        gen.quiesce(0.2, 30.0);
        let w = gen.trial(&mut traffic, &spec);
        if w.received == 0 {
            let why = format!(
                "warm-up at {:.0} pps: {} sent, nothing came back ({} mismatches{}, {} other frames)",
                spec.rate_pps,
                w.sent,
                w.mismatches,
                w.first_mismatch.map(|r| format!(": {r}")).unwrap_or_default(),
                w.other
            );
            eprintln!("{} {}: {why}", a.mode.name(), mix.label);
            results.push(SizeResult {
                size: mix.label.clone(),
                mean_ip_len: mix.mean(),
                mismatches: w.mismatches,
                mismatch_reason: Some(why),
                ..Default::default()
            });
            trial_id += 1;
            continue;
        }
        let mut mismatches = w.mismatches;
        let mut mismatch_reason = w.first_mismatch;
        spec.seconds = a.duration;
        let mut last_unlimited_delivered = 0.0;
        let search = zero_loss_rate(&a.search, |target| {
            trial_id += 1;
            spec.rate_pps = target;
            spec.trial_id = trial_id;
            gen.quiesce(0.05, 30.0);
            let o = gen.trial(&mut traffic, &spec);
            mismatches += o.mismatches;
            let t = Trial {
                target_pps: target,
                offered_pps: o.offered_pps(),
                sent: o.sent,
                received: o.received,
            };
            if !target.is_finite() {
                last_unlimited_delivered = o.received as f64 / a.duration;
            }
            eprintln!(
                "{} {:>5} {:>5} tunnels: target {:>12} offered {:>10.0} pps, received {:>10}/{:<10} loss {:.5} % (refused {}, no-mbuf {}, stale {}, bad {}{})",
                a.mode.name(),
                mix.label,
                n,
                if target.is_finite() { format!("{target:.0}") } else { "max".into() },
                t.offered_pps,
                o.received,
                o.sent,
                t.loss() * 100.0,
                o.refused,
                o.no_mbuf,
                o.stale,
                o.mismatches,
                o.first_mismatch.map(|w| format!(": {w}")).unwrap_or_default()
            );
            mismatch_reason = mismatch_reason.or(o.first_mismatch);
            t
        });
        let latency = if search.rate_pps > 0.0 {
            trial_id += 1;
            spec.rate_pps = search.rate_pps * a.latency_fraction;
            spec.trial_id = trial_id;
            gen.quiesce(0.05, 30.0);
            let o = gen.trial(&mut traffic, &spec);
            mismatches += o.mismatches;
            mismatch_reason = mismatch_reason.or(o.first_mismatch);
            let h = &o.latency;
            let us = |ns: u64| ns as f64 / 1000.0;
            Some(Latency {
                at_pps: spec.rate_pps,
                samples: h.len(),
                p50_us: us(h.value_at_quantile(0.50)),
                p90_us: us(h.value_at_quantile(0.90)),
                p99_us: us(h.value_at_quantile(0.99)),
                p999_us: us(h.value_at_quantile(0.999)),
                max_us: us(h.max()),
            })
        } else {
            None
        };
        let r = SizeResult {
            size: mix.label.clone(),
            mean_ip_len: mix.mean(),
            zero_loss_pps: search.rate_pps,
            zero_loss_gbps: search.rate_pps * mix.mean() * 8.0 / 1e9,
            overload_delivered_pps: last_unlimited_delivered,
            generator_limited: search.generator_limited,
            trials: search.trials.len(),
            mismatches,
            mismatch_reason: mismatch_reason.map(String::from),
            latency,
        };
        eprintln!(
            "{} {} x{} tunnels: zero-loss {:.3} Mpps ({:.2} Gbps){}",
            a.mode.name(),
            r.size,
            n,
            r.zero_loss_pps / 1e6,
            r.zero_loss_gbps,
            if r.generator_limited {
                ", generator-limited"
            } else {
                ""
            }
        );
        results.push(r);
        trial_id += 1;
    }
    drop(gen);
    let run = RunReport {
        mode: a.mode.name().into(),
        tunnels: n as u32,
        workers: info.workers,
        loss_tolerance: a.search.loss_tolerance,
        confirm_loss: a.search.confirm_loss,
        trial_seconds: a.duration,
        latency_fraction: a.latency_fraction,
        loadavg_start: load_start,
        loadavg_end: loadavg(),
        placement: a.placement.clone(),
        results,
    };
    let runs = [run];
    if let Some(p) = &a.json {
        write(
            p,
            &serde_json::to_string_pretty(&runs[0]).map_err(|e| e.to_string())?,
        )?;
    }
    if let Some(p) = &a.md {
        write(p, &report::markdown(&runs))?;
    }
    if let Some(p) = &a.svg {
        write(p, &report::svg(&runs))?;
    }
    print!("{}", report::markdown(&runs));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmd_pcap(
    tunnels: u32,
    size: &str,
    out: &Path,
    macs: [[u8; 6]; 4],
    devices: [String; 2],
    count: u32,
    workers: u32,
    seed: u64,
) -> Result<(), String> {
    let [gw_in_mac, gw_out_mac, pg_in_mac, pg_out_mac] = macs;
    if !(1..=lab::MAX_TUNNELS).contains(&tunnels) {
        return Err(format!("--tunnels: 1 to {}", lab::MAX_TUNNELS));
    }
    let mix = SizeMix::parse(size)?;
    if mix.pattern.len() != 1 {
        return Err("--size: one size in bytes".into());
    }
    let len = mix.pattern[0];
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let [inside_device, outside_device] = devices;
    let spec = GatewaySpec {
        tunnels,
        workers,
        // Real NICs: hugepages and PCI devices; see tuning/README.md for lcores and queues.
        eal: vec!["--file-prefix".into(), "ipgw".into()],
        inside_device,
        outside_device,
        channel: "/run/ipsec-gateway/dataplane.sock".into(),
        // pktgen replays the same sequence numbers over and over.
        replay_window: None,
        inside_next_hop_mac: pg_in_mac,
        outside_next_hop_mac: pg_out_mac,
        seed,
        mbufs: 65536,
    };
    let text = lab::gateway_toml(&spec);
    let config = Config::parse(out.join("gateway.toml"), &text).map_err(|e| e.to_string())?;
    write(&out.join("gateway.toml"), &text)?;
    let file = |name: &str| -> Result<PcapWriter<std::io::BufWriter<std::fs::File>>, String> {
        let p = out.join(name);
        let f = std::fs::File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        PcapWriter::new(std::io::BufWriter::new(f)).map_err(|e| e.to_string())
    };
    let mut inside = file("inside.pcap")?;
    let mut outside = file("outside.pcap")?;
    let mut peer_out = Vec::new();
    let mut flows = Vec::new();
    for (t, m) in config.manual_sas.iter().enumerate() {
        flows.push(Flow::of(m)?);
        peer_out.push(build_sa(&peer_view(&m.inbound), t as u32)?);
    }
    let mut ts = 0u64;
    for _ in 0..count {
        for (t, f) in flows.iter().enumerate() {
            let stamp = Stamp {
                tunnel: t as u32,
                trial: 0,
                tsc: 0,
            };
            let mut ip = plaintext_ip(f.inside_host, f.remote_host, len, t as u32);
            stamp.write(&mut ip);
            inside
                .write(ts, &ethernet(gw_in_mac, pg_in_mac, &ip))
                .map_err(|e| e.to_string())?;
            let mut ip = plaintext_ip(f.remote_host, f.inside_host, len, t as u32);
            stamp.write(&mut ip);
            let mut pkt = VecPacket::new(&ip);
            peer_out[t]
                .encap(&mut pkt, 9000)
                .map_err(|e| format!("tunnel {t}: encap: {e:?}"))?;
            outside
                .write(ts, &ethernet(gw_out_mac, pg_out_mac, pkt.data()))
                .map_err(|e| e.to_string())?;
            ts += 1;
        }
    }
    inside.finish().map_err(|e| e.to_string())?;
    outside.finish().map_err(|e| e.to_string())?;
    println!(
        "{}: inside.pcap, outside.pcap ({} frames each, inner IP {} bytes), gateway.toml",
        out.display(),
        count as u64 * tunnels as u64,
        len
    );
    Ok(())
}

fn cmd_report(json: &Path, md: &Path, svg: &Path, runs: &[PathBuf]) -> Result<(), String> {
    let mut all: Vec<RunReport> = Vec::new();
    for p in runs {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        all.push(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    write(
        json,
        &serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?,
    )?;
    write(md, &(report::markdown(&all) + &report::ratios(&all)))?;
    write(svg, &report::svg(&all))?;
    Ok(())
}
