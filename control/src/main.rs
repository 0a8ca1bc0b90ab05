//! `ipsec-control`: the control process (IKEv1 daemon).
//!
//! - `ipsec-control --config FILE` runs the daemon: it connects to the dataplane's channel
//!   (`[dataplane] channel`), answers and starts IKE exchanges, and pushes the SAs it
//!   negotiates, until SIGINT/SIGTERM.
//! - `ipsec-control --check FILE` exits 0 when the file is valid (the dataplane's sections
//!   and the control process's: isakmp, trustpoints, keys, dynamic maps), and 1 with
//!   `FILE:LINE: reason` when it is not.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use control::config::IkeConfig;

#[derive(Parser)]
#[command(
    name = "ipsec-control",
    about = "IPsec gateway control process (IKEv1)"
)]
struct Args {
    /// Validate the configuration file and exit.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check: Option<PathBuf>,
    /// Run the daemon with this configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn check(path: &PathBuf) -> ExitCode {
    match IkeConfig::load(path) {
        Ok(cfg) => {
            for name in cfg.unused_dynamic_maps() {
                eprintln!("% warning: no crypto map entry references dynamic map {name}");
            }
            println!(
                "{}: OK ({} interfaces, {} crypto maps, {} manually keyed SA pairs, {} isakmp policies, {} trustpoints, {} dynamic maps)",
                path.display(),
                cfg.base.interfaces.len(),
                cfg.base.crypto_maps.len(),
                cfg.base.manual_sas.len(),
                cfg.policies.len(),
                cfg.trustpoints.len(),
                cfg.dynamic_maps().len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("% {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check {
        return check(path);
    }
    let Some(path) = &args.config else {
        eprintln!("% ipsec-control: give --config FILE (run) or --check FILE (validate)");
        return ExitCode::FAILURE;
    };
    // dataplane::logging's format, and the lines fed to `debug crypto ...` sessions
    control::daemon::monitor_log::init();
    match control::daemon::run::run(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("% {e}");
            ExitCode::FAILURE
        }
    }
}
