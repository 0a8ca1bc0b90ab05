//! The IKEv1 control plane (issue 3): the configuration (`crypto isakmp`, trustpoints,
//! dynamic maps), the ISAKMP codec, the IKE key schedule and ciphers, the PKI (trustpoints,
//! chains, CRLs), the Main Mode exchange, retransmission and call admission, and the link to
//! the dataplane, Quick Mode and informational exchanges, and the daemon that ties them
//! together (`daemon`).

pub mod config;
pub mod credentials;
pub mod ctl;
pub mod daemon;
pub mod dplink;
pub mod ike;
pub mod ikecrypto;
pub mod ikeload;
pub mod isakmp;
pub mod pki;
pub mod sessions;
