//! `ipsec-dataplane`: the DPDK ESP dataplane of ipsec-gateway.
//!
//! ```text
//! ipsec-dataplane --config FILE   run until SIGINT/SIGTERM
//! ipsec-dataplane --check FILE    validate FILE; exit 1 with FILE:LINE: reason if it is bad
//! ```
//!
//! Logs go to stderr, one line per event, with IOS-like tags; keys are never logged.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dataplane::config::Config;
use dataplane::runtime;

#[derive(Parser, Debug)]
#[command(
    name = "ipsec-dataplane",
    version,
    about = "DPDK ESP dataplane of ipsec-gateway"
)]
struct Args {
    /// Run with this configuration until SIGINT or SIGTERM.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "check",
        required_unless_present = "check"
    )]
    config: Option<PathBuf>,
    /// Validate this configuration and exit (non-zero, with FILE:LINE: reason, when bad).
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

fn main() -> ExitCode {
    dataplane::logging::init(Some("DATAPLANE"));
    let args = Args::parse();
    if let Some(path) = args.check {
        return match Config::load(&path) {
            Ok(c) => {
                println!(
                    "{}: OK ({} interfaces, {} routes, {} manual SA pairs, {} SPD rules)",
                    path.display(),
                    c.interfaces.len(),
                    c.routes.len(),
                    c.manual_sas.len(),
                    c.spd_rules.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(path) = args.config else {
        return ExitCode::FAILURE;
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            log::error!("%DATAPLANE-3-CONFIG: {e}");
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("%DATAPLANE-3-FATAL: {e}");
            ExitCode::FAILURE
        }
    }
}
