//! The DPDK process: EAL, mempools, ports, worker lcores running the pipeline, and the main
//! lcore's management loop.

pub mod clock;
pub mod control;
pub mod dpdk_run;
pub mod eal_args;
pub mod esp_glue;
pub mod heap;
pub mod ike_out;
pub mod intake;
pub mod main_loop;
pub mod requests;
pub mod resolver;
pub mod rx_mode;
pub mod sa_intake;
pub mod setup;
pub mod slowpath;
pub mod spsc;
pub mod stats;
pub mod worker_loop;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_threads;
pub use dpdk_run::run;
