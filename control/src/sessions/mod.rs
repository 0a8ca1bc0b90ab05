//! What the IKE daemon keeps per exchange besides the exchange's own state: its
//! retransmission timer and its slot in the half-open budget.

pub mod admission;
pub mod retransmit;

pub use admission::{Admission, Slot};
pub use retransmit::{Due, Retransmit, Schedule};
