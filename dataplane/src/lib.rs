//! The ESP dataplane of ipsec-gateway.
//!
//! Everything that does not need DPDK lives outside the `dpdk` feature so that the control
//! process can share the message types and config, and so that the ESP engine can be tested
//! and benchmarked on plain buffers.
//!
//! Map of the crate:
//! - [`cache`]: prefetch hints for the burst pipeline.
//! - [`packet`]: the buffer abstraction the fast path works on (DPDK mbuf or a Vec in tests).
//! - [`wire`]: zero-copy views of Ethernet, ARP, IPv4/IPv6, ICMP, UDP and ESP headers.
//! - [`crypto`]: the ESP transforms (Cisco names) behind a trait, with several backends.
//! - [`esp`]: security associations, anti-replay, lifetimes, ESP encapsulation/decapsulation.
//! - [`l3`]: routes (LPM), ARP cache, ICMP replies and errors, IPv4 fragmentation.
//! - [`config`]: the TOML configuration, validated with file/line/reason errors.
//! - [`channel`]: the control <-> dataplane messages on the Unix SEQPACKET socket.
//! - `dpdk` (feature): safe wrappers over `dpdk-sys` and the lcore runtime.

pub mod cache;
pub mod channel;
pub mod config;
pub mod crypto;
pub mod esp;
pub mod l3;
pub mod logging;
pub mod packet;
pub mod pipeline;
pub mod signals;
pub mod spd;
pub mod wire;

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod runtime;
