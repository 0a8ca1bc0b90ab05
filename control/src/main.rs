//! `ipsec-control`: the control process. The IKEv1 daemon is issue 3; what exists today is
//! the part every later piece builds on: reading and validating the shared configuration
//! file, which both processes read.
//!
//! `ipsec-control --check FILE` exits 0 when the file is valid (the dataplane's sections and
//! the control process's: isakmp, trustpoints, keys, dynamic maps), and 1 with `FILE:LINE:
//! reason` when it is not.

use std::process::ExitCode;

use clap::Parser;
use control::config::IkeConfig;

#[derive(Parser)]
#[command(name = "ipsec-control", about = "IPsec gateway control process")]
struct Args {
    /// Validate the configuration file and exit.
    #[arg(long, value_name = "FILE")]
    check: std::path::PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match IkeConfig::load(&args.check) {
        Ok(cfg) => {
            for name in cfg.unused_dynamic_maps() {
                eprintln!("% warning: no crypto map entry references dynamic map {name}");
            }
            println!(
                "{}: OK ({} interfaces, {} crypto maps, {} manually keyed SA pairs, {} isakmp policies, {} trustpoints, {} dynamic maps)",
                args.check.display(),
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
