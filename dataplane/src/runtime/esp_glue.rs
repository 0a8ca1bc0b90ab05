//! How the runtime's SA intake drives the ESP module: SAs are built on the main lcore with
//! the default crypto backend of their transform and placed by the ownership rule of
//! [`crate::esp::sad`]; a worker's [`crate::esp::SaShard`] is its SA store.

use super::intake::SaStore;
use super::sa_intake::SaFactory;
use crate::channel::SaCountersMsg;
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
    fn report(&self, now: u64, out: &mut Vec<SaCountersMsg>) {
        let me = self.me();
        out.extend(self.iter().map(|sa| sa.report(now, me)));
    }
    fn report_slice(
        &self,
        now: u64,
        from: usize,
        max: usize,
        out: &mut Vec<SaCountersMsg>,
    ) -> Option<usize> {
        let me = self.me();
        let (sas, next) = self.roster_slice(from, max);
        out.extend(sas.map(|sa| sa.report(now, me)));
        next
    }
    fn start_lifetime_sweep(&mut self) {
        SaShard::start_lifetime_sweep(self)
    }
    fn poll_lifetimes(&mut self, now: u64, emit: &mut dyn FnMut(u32, Direction, bool, bool)) {
        SaShard::poll_lifetimes(self, now, LIFETIMES_PER_ITERATION, emit)
    }
}

/// SAs whose lifetime a worker checks per poll iteration while a sweep runs: 20,000 SAs are
/// swept in 1,250 iterations (well under a second even when the worker sleeps between
/// polls), at a cost per iteration of a few hundred nanoseconds when the SAs are cold.
pub const LIFETIMES_PER_ITERATION: usize = 16;

/// Builds SAs for `workers` workers, with a clock for their lifetimes.
pub struct EspFactory {
    pub workers: u16,
    /// Backends forced by the configuration (`[dataplane] backend`): backend name by the
    /// encryption keyword (`esp-gcm`, `esp-aes`, `esp-3des`, `esp-des`, `esp-null`).
    pub forced_backend: std::collections::BTreeMap<String, String>,
    /// Seconds since the runtime started (lifetimes count from here).
    pub now: fn() -> u64,
}

impl SaFactory<Sa> for EspFactory {
    fn build(&self, sa_id: u32, params: &SaParams) -> Result<Box<Sa>, String> {
        let keyword = params.transform.encryption.cisco_name();
        let keyword = keyword.split(' ').next().unwrap_or(keyword);
        let backend = match self.forced_backend.get(keyword) {
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

/// The SA side of the control channel on the main lcore, over the ESP module.
pub struct EspControl<M> {
    pub intake: super::sa_intake::SaIntake<Sa, M>,
    pub factory: EspFactory,
    /// How long DumpCounters/DumpSas wait for the workers' reports (the main lcore waits:
    /// a worker answers 256 SAs per poll iteration, so 20,000 SAs take 79 iterations, and
    /// longer when it is descheduled on a loaded host).
    pub report_timeout: std::time::Duration,
    next_spi: u32,
}

/// The lowest SPI the dataplane allocates (static SAs use low ones).
const FIRST_DYNAMIC_SPI: u32 = 0x1000_0000;

fn random_u32() -> u32 {
    use rand_core::{OsRng, RngCore};
    OsRng.next_u32()
}

impl<M> EspControl<M>
where
    M: super::intake::Mailbox<super::intake::Update<Sa, crate::spd::Spd>>,
{
    pub fn new(intake: super::sa_intake::SaIntake<Sa, M>, factory: EspFactory) -> Self {
        EspControl {
            intake,
            factory,
            report_timeout: std::time::Duration::from_secs(1),
            // SPIs the dataplane hands out start at a random point high up, away from static
            // ones: a restarted dataplane whose SAs control reinstalls does not walk the
            // same sequence again (and allocation skips SPIs in use anyway)
            next_spi: FIRST_DYNAMIC_SPI + random_u32() % 0x4000_0000,
        }
    }

    /// Every SA's counters, asked of the workers and waited for (bounded): a snapshot
    /// holding each SA installed until now exactly once. A worker that does not report in
    /// time makes it an error, not a dump without that worker's SAs (control would take
    /// their absence for their deletion).
    pub fn dump(&mut self) -> Result<Vec<SaCountersMsg>, String> {
        let workers = self.intake.workers();
        let asked = self.intake.request_reports();
        if asked < workers {
            // the asked ones' late reports are dropped as stale by the next dump
            return Err(format!(
                "{} of {workers} workers could not be asked for their SAs (SA queue full); retry",
                workers - asked
            ));
        }
        let mut out = Vec::new();
        let mut got = 0;
        let deadline = std::time::Instant::now() + self.report_timeout;
        while got < workers && std::time::Instant::now() < deadline {
            got += self.intake.take_reports(&mut out);
            std::thread::yield_now();
        }
        if got < workers {
            log::warn!(
                "%DATAPLANE-4-REPORT: {} of {workers} workers did not report their SAs in time",
                workers - got
            );
            return Err(format!(
                "{} of {workers} workers did not report their SAs within {} ms; retry",
                workers - got,
                self.report_timeout.as_millis()
            ));
        }
        out.sort_by_key(|s| (s.sa_id, s.spi));
        Ok(out)
    }
}

impl<M> super::main_loop::SaControl for EspControl<M>
where
    M: super::intake::Mailbox<super::intake::Update<Sa, crate::spd::Spd>>,
{
    fn handle(&mut self, msg: crate::channel::Message) -> crate::channel::Message {
        use crate::channel::Message;
        match msg {
            Message::AllocateSpi { owner } => {
                let owner = owner.unwrap_or((self.next_spi % self.factory.workers as u32) as u16);
                let spi = loop {
                    let spi =
                        crate::esp::sad::spi_for_owner(self.next_spi, owner, self.factory.workers);
                    self.next_spi = spi.wrapping_add(1).max(FIRST_DYNAMIC_SPI);
                    if !self.intake.has_inbound(spi) {
                        break spi;
                    }
                };
                Message::SpiAllocated { spi, owner }
            }
            other => self.intake.handle(&self.factory, other),
        }
    }
    fn dump_sas(&mut self) -> Result<Vec<SaCountersMsg>, String> {
        self.dump()
    }
}
