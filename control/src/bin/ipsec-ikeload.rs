//! `ipsec-ikeload`: the IKE setup-rate load generator (issue 5; see `control::ikeload`).
//!
//! - `ipsec-ikeload pki --dir DIR --spokes N --hub-address A [--shared-key]` makes (or
//!   completes) the load's PKI in DIR: CA, the responder's certificate, N spokes'.
//! - `ipsec-ikeload run --pki DIR --responder A --first-address B --spokes N ...` runs N
//!   spokes from B, B+1, ... (addresses of this host: add them to an interface first)
//!   against the responder A and prints the figures (`--json FILE` writes them too).
//!
//! Needs root for `run` (raw socket of the probes, joining the sink's namespace).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use dataplane::esp::Prefix;

use control::ikeload::pki::LabPki;
use control::ikeload::run::{run, LoadConfig};
use control::ikeload::spoke::PROBE_PORT;
use control::ikeload::{self, MAX_SPOKES};
use control::sessions::Schedule;

#[derive(Parser)]
#[command(name = "ipsec-ikeload", about = "IKEv1 setup-rate load generator")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make the CA, the responder's and the spokes' keys and certificates (the ones
    /// missing) in a directory.
    Pki {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        spokes: usize,
        /// The responder's address (an IP subjectAltName of its certificate).
        #[arg(long)]
        hub_address: Ipv4Addr,
        /// Spokes made now share one RSA key (each still has its own certificate).
        #[arg(long)]
        shared_key: bool,
    },
    /// Run the load.
    Run {
        /// The PKI directory (`ipsec-ikeload pki`).
        #[arg(long)]
        pki: PathBuf,
        #[arg(long)]
        responder: Ipv4Addr,
        /// Spoke 1's address; spoke N uses the (N-1)-th next one.
        #[arg(long)]
        first_address: Ipv4Addr,
        #[arg(long)]
        spokes: usize,
        /// The responder's side of the proxies (the spokes' side is 10.128.0.0/9 in /24s).
        #[arg(long, default_value = "10.10.0.0/16")]
        responder_lan: String,
        /// Spokes negotiating at once.
        #[arg(long, default_value_t = 200)]
        window: usize,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// The traffic check: the network namespace of the responder's LAN, where a sink
        /// listens on --sink (UDP port 5501). Without it no probes are sent.
        #[arg(long)]
        sink_netns: Option<String>,
        #[arg(long, default_value = "10.10.0.1")]
        sink: Ipv4Addr,
        /// First IKE retransmission after this many ms (doubling, 5 retries).
        #[arg(long, default_value_t = 2000)]
        retransmit_ms: u64,
        /// The run is given up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// The responder's name in the report.
        #[arg(long, default_value = "responder")]
        label: String,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Make each Diffie-Hellman key pair during the exchange that uses it, instead of
        /// all of them before the timed start.
        #[arg(long)]
        dh_on_demand: bool,
    },
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let (a, l) = s.split_once('/').ok_or("a prefix is ADDR/LEN")?;
    let addr: Ipv4Addr = a.parse().map_err(|e| format!("{s}: {e}"))?;
    let len: u8 = l.parse().map_err(|e| format!("{s}: {e}"))?;
    if len > 32 {
        return Err(format!("{s}: length above 32"));
    }
    Ok(Prefix {
        addr: addr.into(),
        len,
    })
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_none() {
        // a thousand exchanges' info lines would cost more than the exchanges
        std::env::set_var("RUST_LOG", "warn");
    }
    control::daemon::monitor_log::init();
    match main_with(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("% ipsec-ikeload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main_with(args: Args) -> Result<(), String> {
    match args.command {
        Command::Pki {
            dir,
            spokes,
            hub_address,
            shared_key,
        } => {
            if spokes == 0 || spokes > MAX_SPOKES {
                return Err(format!("--spokes must be 1..={MAX_SPOKES}"));
            }
            let t = Instant::now();
            let pki = LabPki::new(&dir);
            let ca = pki.ca()?;
            pki.hub(&ca, hub_address.into())?;
            let made = pki.ensure_spokes(&ca, spokes, shared_key, threads())?;
            println!(
                "PKI in {}: CA, hub, {spokes} spokes ({made} made now{}) in {:.1} s",
                dir.display(),
                if shared_key && made > 0 {
                    ", sharing one key"
                } else {
                    ""
                },
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Run {
            pki,
            responder,
            first_address,
            spokes,
            responder_lan,
            window,
            threads: nthreads,
            sink_netns,
            sink,
            retransmit_ms,
            timeout,
            label,
            json,
            dh_on_demand,
        } => {
            let lan = parse_prefix(&responder_lan)?;
            let t = Instant::now();
            let workers = nthreads.unwrap_or_else(threads);
            let setups = ikeload::spokes(
                &LabPki::new(&pki),
                spokes,
                first_address,
                lan,
                sink,
                workers,
            )?;
            eprintln!(
                "ipsec-ikeload: {spokes} spokes loaded (RSA keys set up with a first signature) \
                 in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            if !dh_on_demand {
                // the generator shares the CPU with the responder under test and is not
                // what is measured: its key pairs are made before the clock starts
                let t = Instant::now();
                let made = ikeload::precompute(spokes, workers)?;
                eprintln!(
                    "ipsec-ikeload: {made} Diffie-Hellman key pairs precomputed in {:.1} s, \
                     before the timed start",
                    t.elapsed().as_secs_f64()
                );
            }
            eprintln!("ipsec-ikeload: running against {responder}");
            let report = run(LoadConfig {
                label,
                responder,
                spokes: setups,
                window,
                threads: nthreads.unwrap_or_else(threads),
                schedule: Schedule {
                    first: Duration::from_millis(retransmit_ms),
                    ..Schedule::default()
                },
                sink: sink_netns.map(|n| (n, SocketAddrV4::new(sink, PROBE_PORT))),
                timeout: Duration::from_secs(timeout),
            })?;
            print!("{report}");
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Ok(())
        }
    }
}
