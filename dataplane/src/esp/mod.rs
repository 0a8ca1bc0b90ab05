//! Security associations and ESP (RFC 4303).
//!
//! - [`params`]: what an SA is as config and channel describe it.
//! - [`sa`]: the fast-path SA built from it; [`encap`](sa::Sa::encap) and
//!   [`decap`](sa::Sa::decap) in `encap.rs` / `decap.rs`.
//! - [`replay`]: the anti-replay window with ESN; [`lifetime`]: soft/hard limits;
//!   [`counters`]: IOS's per-SA counters.
//! - [`sad`]: one worker's shard of SAs and the ownership rule.

pub mod counters;
mod decap;
mod encap;
pub mod lifetime;
pub mod params;
pub mod replay;
pub mod sa;
pub mod sad;

pub use params::{Direction, Keys, Lifetime, Mode, Prefix, SaParams, Selector, UdpEncap};
pub use sa::{Sa, SaError};
pub use sad::SaShard;
