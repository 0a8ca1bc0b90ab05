//! Benchmarks for the ESP dataplane (criterion benches in `benches/`, results in RESULTS.md)
//! and the parts of `ipsec-trafficgen`, the DPDK traffic generator of issue 5:
//!
//! - [`lab`]: the addressing plan of N tunnels and the gateway configuration that installs them;
//! - [`frames`]: test packets, their stamps, and the peer-side SAs (the dataplane's own ESP);
//! - [`search`]: the RFC 2544 zero-loss rate search;
//! - [`pcap`]: pcap files for DPDK-Pktgen on real NICs;
//! - [`report`]: JSON, markdown and SVG output;
//! - [`generator`]: the DPDK side (ports, rate-limited trials, checks, latency).

pub mod frames;
pub mod generator;
pub mod lab;
pub mod pcap;
pub mod report;
pub mod search;
