//! `ipsec-dpctl`: talks to `ipsec-dataplane` over its channel socket, for operators and
//! tests until `ipsec-ctl` (issue 4) exists: counters, SA dumps, and SA add/delete at run
//! time (the SAs of an `ipsec-manual` crypto map entry, taken from a config file).

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
    /// The installed SAs.
    Sas {
        #[arg(long)]
        json: bool,
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

fn run(args: Args) -> Result<(), String> {
    let mut c = Client::connect(&args.socket, "ipsec-dpctl")
        .map_err(|e| format!("{}: {e}", args.socket.display()))?;
    let req = |c: &mut Client, m: &Message| c.request(m).map_err(|e| e.to_string());
    match args.cmd {
        Cmd::Counters { json } => match req(&mut c, &Message::DumpCounters)? {
            Message::Counters(cs) if json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&cs).map_err(|e| e.to_string())?
                )
            }
            Message::Counters(cs) => {
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
            other => return Err(format!("unexpected reply {other:?}")),
        },
        Cmd::Sas { json } => match req(&mut c, &Message::DumpSas)? {
            Message::Sas { sas } if json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&sas).map_err(|e| e.to_string())?
                )
            }
            Message::Sas { sas } => sas.iter().for_each(print_sa),
            other => return Err(format!("unexpected reply {other:?}")),
        },
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
