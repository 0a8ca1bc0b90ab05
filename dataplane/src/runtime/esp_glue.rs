//! How the runtime's SA intake drives the ESP module: SAs are built on the main lcore with
//! the default crypto backend of their transform and placed by the ownership rule of
//! [`crate::esp::sad`]; a worker's [`crate::esp::SaShard`] is its SA store.

use super::intake::SaStore;
use super::sa_intake::SaFactory;
use crate::crypto::{backend_by_name, default_backend};
use crate::esp::sad::{owner_of_sa, owner_of_spi};
use crate::esp::{Direction, Sa, SaParams, SaShard};
use crate::pipeline::WorkerId;

impl SaStore<Sa> for SaShard {
    fn insert(&mut self, sa: Box<Sa>) -> Option<Box<Sa>> {
        SaShard::insert(self, sa)
    }
    fn remove(&mut self, key: u32, inbound: bool) -> Option<Box<Sa>> {
        SaShard::remove(self, key, inbound)
    }
}

/// Builds SAs for `workers` workers, with a clock for their lifetimes.
pub struct EspFactory {
    pub workers: u16,
    /// A backend forced by the configuration (`[dataplane] backend`), by name.
    pub forced_backend: Option<String>,
    /// Seconds since the runtime started (lifetimes count from here).
    pub now: fn() -> u64,
}

impl SaFactory<Sa> for EspFactory {
    fn build(&self, sa_id: u32, params: &SaParams) -> Result<Box<Sa>, String> {
        let backend = match &self.forced_backend {
            Some(name) => backend_by_name(name).filter(|b| b.supports(params.transform)),
            None => default_backend(params.transform),
        }
        .ok_or_else(|| format!("no crypto backend for {}", params.transform))?;
        Sa::new(params, sa_id, backend, (self.now)())
            .map(Box::new)
            .map_err(|e| e.to_string())
    }
    fn owner(&self, sa_id: u32, params: &SaParams) -> WorkerId {
        match params.direction {
            Direction::Inbound => owner_of_spi(params.spi, self.workers),
            Direction::Outbound => owner_of_sa(sa_id, self.workers),
        }
    }
}
