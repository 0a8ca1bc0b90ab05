//! The IKEv1 control plane (issue 3): the ISAKMP codec, the IKE key schedule and ciphers,
//! the Main Mode exchange, retransmission and call admission, the link to the dataplane, and
//! (being written) the PKI, Quick Mode and the policy that feeds the dataplane.

pub mod dplink;
pub mod ike;
pub mod ikecrypto;
pub mod isakmp;
pub mod sessions;
