//! Call admission control for phase 1 (IOS `crypto call admission limit ike in-negotiation-sa
//! N`): a cap on the Main Mode exchanges that are half open, so that a flood of MM1 packets
//! from spoofed addresses cannot make the responder hold unbounded state or run unbounded
//! Diffie-Hellman work. An exchange takes a slot when its first message is accepted and gives
//! it back when it is established, fails or times out. Refused exchanges are counted, as IOS
//! counts them in `show crypto call admission statistics`.

/// The half-open phase 1 budget.
#[derive(Clone, Debug)]
pub struct Admission {
    limit: usize,
    in_negotiation: usize,
    /// Exchanges admitted since start.
    pub accepted: u64,
    /// Exchanges refused because the limit was reached.
    pub rejected: u64,
}

/// A taken slot; give it back with [`Admission::release`]. Not `Clone`, so one exchange
/// cannot give back two slots.
#[derive(Debug)]
#[must_use = "a slot that is dropped without release is never given back"]
pub struct Slot(());

impl Admission {
    /// A budget of `limit` half-open exchanges.
    pub fn new(limit: usize) -> Admission {
        Admission {
            limit,
            in_negotiation: 0,
            accepted: 0,
            rejected: 0,
        }
    }

    /// Takes a slot for a new exchange, or refuses it.
    pub fn admit(&mut self) -> Option<Slot> {
        if self.in_negotiation >= self.limit {
            self.rejected += 1;
            return None;
        }
        self.in_negotiation += 1;
        self.accepted += 1;
        Some(Slot(()))
    }

    /// Gives a slot back (the exchange finished, one way or another).
    pub fn release(&mut self, slot: Slot) {
        let Slot(()) = slot;
        self.in_negotiation -= 1;
    }

    pub fn in_negotiation(&self) -> usize {
        self.in_negotiation
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_capped_and_slots_come_back() {
        let mut a = Admission::new(3);
        let slots: Vec<Slot> = (0..3)
            .map(|_| a.admit().expect("under the limit"))
            .collect();
        for _ in 0..1000 {
            assert!(a.admit().is_none());
        }
        assert_eq!((a.accepted, a.rejected, a.in_negotiation()), (3, 1000, 3));
        for s in slots {
            a.release(s);
        }
        assert_eq!(a.in_negotiation(), 0);
        assert!(a.admit().is_some());
    }
}
