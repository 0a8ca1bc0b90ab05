//! `ipsec-control`: the control process. The IKEv1 daemon is issue 3; what exists today is
//! the part every later piece builds on: reading and validating the shared configuration
//! file, which both processes read.
//!
//! `ipsec-control --check FILE` exits 0 when the file is valid, and 1 with `FILE:LINE:
//! reason` when it is not.

use std::process::ExitCode;

use clap::Parser;
use dataplane::config::Config;

#[derive(Parser)]
#[command(name = "ipsec-control", about = "IPsec gateway control process")]
struct Args {
    /// Validate the configuration file and exit.
    #[arg(long, value_name = "FILE")]
    check: std::path::PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match Config::load(&args.check) {
        Ok(cfg) => {
            println!(
                "{}: OK ({} interfaces, {} crypto maps, {} manually keyed SA pairs)",
                args.check.display(),
                cfg.interfaces.len(),
                cfg.crypto_maps.len(),
                cfg.manual_sas.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("% {e}");
            ExitCode::FAILURE
        }
    }
}
