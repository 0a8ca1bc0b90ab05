//! Security associations and ESP (RFC 4303).

pub mod params;

pub use params::{Direction, Keys, Lifetime, Mode, Prefix, SaParams, Selector, UdpEncap};
