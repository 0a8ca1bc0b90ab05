//! The IKEv1 control plane (issue 3): the ISAKMP codec, the IKE key schedule and ciphers,
//! the link to the dataplane, and (being written) the PKI, the Main/Quick Mode state machines
//! and the policy that feeds the dataplane.

pub mod dplink;
pub mod ikecrypto;
pub mod isakmp;
