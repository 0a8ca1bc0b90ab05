//! Diffie-Hellman key pairs made ahead of need (issue 5, "IKE setup rate").
//!
//! Making a key pair is one modular exponentiation (g^x mod p): with MODP-2048 in Main Mode
//! and for PFS, two of the four a hub does per tunnel. None of it depends on the peer, so
//! it can be done before the peer asks, while the machine has nothing else to do, and a
//! burst of spokes then finds its key pairs ready and pays only for the shared secrets.
//!
//! A [`DhPool`] keeps up to a target number of key pairs per group. [`DhPool::take`] hands
//! one out, which leaves the pool for good: a key pair serves exactly one exchange (it is
//! moved out; [`DhPrivate`] cannot be copied). When none is ready it makes one on the spot,
//! as the exchanges did before the pool, and counts it. A refill thread
//! ([`DhPool::start_refill`]) tops the pool up at the scheduler's idle priority
//! (`SCHED_IDLE`: it runs only on a CPU no other thread wants), so precomputing never
//! competes with the exchanges or the dataplane. It also holds off while a burst of
//! exchanges is taking key pairs ([`QUIET_BEFORE_REFILL`]) unless a group runs low: a CPU
//! that looks idle between two messages of a burst is better left to the burst (measured
//! with `benches/ike-setup.sh`, 1,000 spokes, four interleaved pairs: 505 tunnels/s on
//! average against 472 with the refill running through the burst), and the pool is topped
//! up once the burst is over. [`DhPool::fill`] fills it at once, for a
//! load generator that must be ready before its timed start. Private values are zeroized
//! when dropped, as every [`DhPrivate`]'s are, whether they served or not (a reload that
//! stops using a group drops its key pairs).
//!
//! The process has one pool, [`process_pool`]: the exchanges take from the pool of their
//! Main Mode configuration, which is this one unless a test gives its own.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dh::{DhGroup, DhPrivate};
use super::Result;

/// Key pairs kept ready per group and per use (Main Mode, PFS) when the configuration does
/// not say: a burst of this many tunnels finds all of its key pairs made.
pub const DEFAULT_PER_USE: usize = 1024;

/// After a key pair is taken, the refill thread waits until this long has passed without
/// another take (the burst of exchanges is over) before it makes more...
pub const QUIET_BEFORE_REFILL: Duration = Duration::from_millis(20);
/// ...unless a group holds less than 1/LOW_WATER_DIVISOR of its target: then it refills
/// during the burst too, so that a burst longer than the pool does not drain it.
const LOW_WATER_DIVISOR: usize = 4;

/// What the refill thread should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefillDue {
    /// Make a key pair now.
    Now,
    /// Key pairs are missing but a burst is on: look again after this long.
    After(Duration),
    /// Every group is at its target.
    Nothing,
}

/// How long the refill thread waits before trying again after OpenSSL failed to make a key
/// pair (it should not happen; the exchanges would then fail too, and say why).
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// What the pool holds and did for one group: a line of `show crypto engine accelerator
/// statistics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DhPoolStats {
    pub group: DhGroup,
    /// Key pairs the pool is kept filled to (0: the group is not precomputed).
    pub target: usize,
    /// Key pairs ready now.
    pub ready: usize,
    /// Key pairs made ahead of need since the start.
    pub precomputed: u64,
    /// Key pairs handed out from the pool.
    pub taken: u64,
    /// Key pairs made on the spot because none was ready (or the group is not pooled).
    pub on_demand: u64,
}

/// One group's key pairs and counters.
struct Shelf {
    group: DhGroup,
    target: usize,
    /// Oldest first: handed out in the order they were made.
    ready: std::collections::VecDeque<DhPrivate>,
    /// Key pairs being made by refillers now (they count against the target, so that two
    /// refillers do not overshoot it).
    making: usize,
    precomputed: u64,
    taken: u64,
    on_demand: u64,
}

impl Shelf {
    fn new(group: DhGroup) -> Shelf {
        Shelf {
            group,
            target: 0,
            ready: Default::default(),
            making: 0,
            precomputed: 0,
            taken: 0,
            on_demand: 0,
        }
    }

    /// Key pairs missing to reach the target, counting those being made.
    fn missing(&self) -> usize {
        self.target.saturating_sub(self.ready.len() + self.making)
    }
}

#[derive(Default)]
struct State {
    /// By group id (a handful of groups at most).
    shelves: Vec<Shelf>,
    refill_started: bool,
    stopping: bool,
    /// When a key pair was last taken (from the pool or made on the spot).
    last_take: Option<Instant>,
}

impl State {
    fn shelf(&mut self, group: DhGroup) -> &mut Shelf {
        match self.shelves.iter().position(|s| s.group == group) {
            Some(i) => &mut self.shelves[i],
            None => {
                self.shelves.push(Shelf::new(group));
                self.shelves.sort_by_key(|s| s.group.id());
                self.shelf(group)
            }
        }
    }

    /// The group the next precomputed key pair is for: the one least filled in proportion
    /// to its target, so that every group has some ready soon after a start.
    fn most_wanted(&self) -> Option<DhGroup> {
        self.shelves
            .iter()
            .filter(|s| s.missing() > 0)
            .min_by(|a, b| {
                // have_a / target_a < have_b / target_b, without division
                let have = |s: &Shelf| (s.ready.len() + s.making) as u128;
                (have(a) * b.target as u128).cmp(&(have(b) * a.target as u128))
            })
            .map(|s| s.group)
    }

    /// Whether the refill thread should make a key pair at `now` (see
    /// [`QUIET_BEFORE_REFILL`]).
    fn refill_due(&self, now: Instant) -> RefillDue {
        if self.most_wanted().is_none() {
            return RefillDue::Nothing;
        }
        let low = self
            .shelves
            .iter()
            .any(|s| s.target > 0 && (s.ready.len() + s.making) * LOW_WATER_DIVISOR < s.target);
        match self.last_take {
            Some(t) if !low => {
                let quiet = now.saturating_duration_since(t);
                if quiet < QUIET_BEFORE_REFILL {
                    RefillDue::After(QUIET_BEFORE_REFILL - quiet)
                } else {
                    RefillDue::Now
                }
            }
            _ => RefillDue::Now,
        }
    }
}

/// Precomputed Diffie-Hellman key pairs, per group (see the module's documentation).
#[derive(Default)]
pub struct DhPool {
    state: Mutex<State>,
    /// Signalled when a key pair is taken, the targets change or the pool stops.
    wake: Condvar,
}

impl fmt::Debug for DhPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // counts only: the key pairs themselves are never printed
        f.debug_struct("DhPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl DhPool {
    /// An empty pool with no targets: every [`DhPool::take`] makes its key pair on the spot
    /// until [`DhPool::set_targets`] names groups and something fills them.
    pub fn new() -> DhPool {
        DhPool::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // a refiller that panicked leaves consistent counts (nothing is half-updated under
        // the lock), so a poisoned lock is still usable
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The groups to keep key pairs of and how many; groups not named are no longer
    /// precomputed and their ready key pairs are dropped (zeroized). Their counters stay.
    pub fn set_targets(&self, targets: &[(DhGroup, usize)]) {
        let mut st = self.lock();
        for s in &mut st.shelves {
            s.target = 0;
        }
        for &(group, n) in targets {
            let s = st.shelf(group);
            s.target = s.target.max(n);
        }
        for s in &mut st.shelves {
            s.ready.truncate(s.target);
        }
        drop(st);
        self.wake.notify_all();
    }

    /// A key pair of `group` for one exchange: a precomputed one if any is ready, otherwise
    /// one made now. Either way it is the caller's alone.
    pub fn take(&self, group: DhGroup) -> Result<DhPrivate> {
        let mut st = self.lock();
        st.last_take = Some(Instant::now());
        let s = st.shelf(group);
        if let Some(k) = s.ready.pop_front() {
            s.taken += 1;
            drop(st);
            self.wake.notify_one();
            return Ok(k);
        }
        s.on_demand += 1;
        drop(st);
        DhPrivate::generate(group).map(|(k, _)| k)
    }

    /// Makes one key pair for the group that needs it most; false when every group is at
    /// its target. The exponentiation runs without the lock held.
    pub fn refill_one(&self) -> Result<bool> {
        let mut st = self.lock();
        let Some(group) = st.most_wanted() else {
            return Ok(false);
        };
        st.shelf(group).making += 1;
        drop(st);
        let made = DhPrivate::generate(group);
        let mut st = self.lock();
        let s = st.shelf(group);
        s.making -= 1;
        let key = made?.0;
        // the target may have been lowered meanwhile (a reload): then the key pair is
        // dropped, zeroized
        if s.ready.len() < s.target {
            s.ready.push_back(key);
            s.precomputed += 1;
        }
        Ok(true)
    }

    /// Fills every group to its target now, on `threads` threads, and returns how many key
    /// pairs were made.
    pub fn fill(&self, threads: usize) -> Result<usize> {
        let threads = threads.max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut made = 0;
                        while self.refill_one()? {
                            made += 1;
                        }
                        Ok(made)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a key pair refiller panicked"))
                .sum()
        })
    }

    /// Blocks until a key pair is due (true: some group is below its target and no burst
    /// holds the refill off) or the pool is stopped (false).
    fn wait_for_work(&self) -> bool {
        let mut st = self.lock();
        loop {
            if st.stopping {
                return false;
            }
            st = match st.refill_due(Instant::now()) {
                RefillDue::Now => return true,
                RefillDue::After(d) => {
                    self.wake
                        .wait_timeout(st, d)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                RefillDue::Nothing => self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Starts the refill thread, which keeps every group at its target at idle priority
    /// until [`DhPool::stop`]. None if one runs already.
    pub fn start_refill(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        {
            let mut st = self.lock();
            if st.refill_started {
                return None;
            }
            st.refill_started = true;
            st.stopping = false;
        }
        let pool = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("dh-precompute".into())
            .spawn(move || {
                if let Err(e) = idle_priority() {
                    log::warn!(
                        "%CRYPTO-4-DH_PRECOMPUTE: cannot lower the priority of the \
                         Diffie-Hellman precomputation ({e}); it runs at normal priority"
                    );
                }
                while pool.wait_for_work() {
                    if let Err(e) = pool.refill_one() {
                        log::warn!(
                            "%CRYPTO-4-DH_PRECOMPUTE: cannot precompute a Diffie-Hellman key \
                             pair: {e}"
                        );
                        std::thread::sleep(RETRY_AFTER_ERROR);
                    }
                }
                pool.lock().refill_started = false;
            });
        match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                log::warn!(
                    "%CRYPTO-4-DH_PRECOMPUTE: no thread for the Diffie-Hellman precomputation \
                     ({e}); key pairs are made when needed"
                );
                self.lock().refill_started = false;
                None
            }
        }
    }

    /// Stops the refill thread (it finishes the key pair it is making).
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    /// Every group the pool has a target for or has served, by group number.
    pub fn stats(&self) -> Vec<DhPoolStats> {
        self.lock()
            .shelves
            .iter()
            .map(|s| DhPoolStats {
                group: s.group,
                target: s.target,
                ready: s.ready.len(),
                precomputed: s.precomputed,
                taken: s.taken,
                on_demand: s.on_demand,
            })
            .collect()
    }
}

/// The process's pool: what [`crate::ike::MainModeConfig::new`] gives the exchanges.
pub fn process_pool() -> Arc<DhPool> {
    static POOL: OnceLock<Arc<DhPool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(DhPool::new())).clone()
}

/// Puts the calling thread in the `SCHED_IDLE` class (Linux: the policy is per thread), or
/// failing that at nice 19.
fn idle_priority() -> std::io::Result<()> {
    use nix::libc;
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param that outlives the
    // call (SCHED_IDLE requires priority 0).
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return Ok(());
    }
    // SAFETY: plain system calls on the calling thread (gettid has no arguments; PRIO_PROCESS
    // with a thread id sets that thread's nice value on Linux).
    let r = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const G: DhGroup = DhGroup::Modp1024;

    /// A key pair is valid if it agrees on a shared secret with a key pair made apart from
    /// the pool: that holds only if its public value is g^x mod p for its private x.
    fn assert_valid(k: &DhPrivate) {
        let (other, other_pub) = DhPrivate::generate(k.group()).unwrap();
        assert_eq!(
            *k.shared_secret(&other_pub).unwrap(),
            *other.shared_secret(k.public_value()).unwrap(),
            "{:?}",
            k.group()
        );
    }

    #[test]
    fn filled_pool_serves_distinct_valid_key_pairs_once() {
        let pool = DhPool::new();
        pool.set_targets(&[(G, 24), (DhGroup::Ecp256, 4)]);
        assert_eq!(pool.fill(3).unwrap(), 28);
        let s = pool.stats();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].group, s[0].ready, s[0].precomputed), (G, 24, 24));
        assert_eq!(
            (s[1].group, s[1].ready, s[1].precomputed),
            (DhGroup::Ecp256, 4, 4)
        );
        let mut publics = HashSet::new();
        for _ in 0..24 {
            let k = pool.take(G).unwrap();
            assert_eq!(k.group(), G);
            assert_valid(&k);
            assert!(
                publics.insert(k.public_value().to_vec()),
                "a key pair came twice"
            );
        }
        let k = pool.take(DhGroup::Ecp256).unwrap();
        assert_valid(&k);
        let s = pool.stats();
        assert_eq!((s[0].ready, s[0].taken, s[0].on_demand), (0, 24, 0));
        assert_eq!((s[1].ready, s[1].taken), (3, 1));
        // the pool is empty now: the next one is made on the spot, and is new too
        let k = pool.take(G).unwrap();
        assert_valid(&k);
        assert!(publics.insert(k.public_value().to_vec()));
        let s = pool.stats();
        assert_eq!((s[0].taken, s[0].on_demand), (24, 1));
    }

    #[test]
    fn empty_or_unpooled_groups_fall_back_to_making_one() {
        let pool = DhPool::new();
        let k = pool.take(G).unwrap();
        assert_valid(&k);
        pool.set_targets(&[(G, 2)]);
        // targets alone fill nothing: still made on the spot
        let k2 = pool.take(G).unwrap();
        assert_valid(&k2);
        assert_ne!(k.public_value(), k2.public_value());
        let k3 = pool.take(DhGroup::Modp768).unwrap();
        assert_valid(&k3);
        let s = pool.stats();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].group, s[0].target, s[0].on_demand),
            (DhGroup::Modp768, 0, 1)
        );
        assert_eq!(
            (s[1].group, s[1].target, s[1].on_demand, s[1].taken),
            (G, 2, 2, 0)
        );
    }

    #[test]
    fn fill_stops_at_the_target_and_lowering_it_drops_key_pairs() {
        let pool = DhPool::new();
        pool.set_targets(&[(G, 5)]);
        assert_eq!(pool.fill(2).unwrap(), 5);
        assert_eq!(pool.fill(2).unwrap(), 0);
        assert!(!pool.refill_one().unwrap());
        pool.set_targets(&[(G, 2), (DhGroup::Modp768, 1)]);
        let s = pool.stats();
        assert_eq!((s[1].target, s[1].ready), (2, 2));
        // the least filled group first
        assert!(pool.refill_one().unwrap());
        assert_eq!(pool.stats()[0].ready, 1);
        pool.set_targets(&[]);
        assert!(pool.stats().iter().all(|s| s.ready == 0 && s.target == 0));
        assert_eq!(pool.fill(1).unwrap(), 0);
    }

    #[test]
    fn refill_thread_tops_the_pool_up_after_takes() {
        let pool = Arc::new(DhPool::new());
        pool.set_targets(&[(G, 6)]);
        let thread = pool.start_refill().expect("a refill thread");
        assert!(pool.start_refill().is_none(), "one refill thread per pool");
        let wait_ready = |n: usize| {
            // no clock in the assertion: poll until the thread got there (it must, or the
            // test hangs and the harness reports it)
            while pool.stats()[0].ready < n {
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait_ready(6);
        let mut publics = HashSet::new();
        for _ in 0..4 {
            let k = pool.take(G).unwrap();
            assert_valid(&k);
            assert!(publics.insert(k.public_value().to_vec()));
        }
        wait_ready(6);
        let s = pool.stats()[0];
        assert_eq!((s.ready, s.taken, s.on_demand), (6, 4, 0));
        assert_eq!(s.precomputed, 10);
        // the refilled ones are new ones
        for _ in 0..6 {
            let k = pool.take(G).unwrap();
            assert!(publics.insert(k.public_value().to_vec()));
        }
        pool.stop();
        thread.join().unwrap();
        assert!(pool.start_refill().is_some(), "restartable after stop");
        pool.stop();
    }

    #[test]
    fn a_burst_of_takes_holds_the_refill_off_until_quiet_or_low() {
        let g = DhGroup::Modp768;
        let pool = DhPool::new();
        pool.set_targets(&[(g, 8)]);
        assert_eq!(
            pool.lock().refill_due(Instant::now()),
            RefillDue::Now,
            "never taken"
        );
        pool.fill(1).unwrap();
        assert_eq!(pool.lock().refill_due(Instant::now()), RefillDue::Nothing);
        drop(pool.take(g).unwrap());
        let taken = pool.lock().last_take.expect("a take is remembered");
        // 7 of 8 left: held off during the burst, due once it has been quiet long enough
        match pool.lock().refill_due(taken) {
            RefillDue::After(d) => assert_eq!(d, QUIET_BEFORE_REFILL),
            other => panic!("refill during the burst: {other:?}"),
        }
        assert_eq!(
            pool.lock().refill_due(taken + QUIET_BEFORE_REFILL),
            RefillDue::Now
        );
        // down to 1 of 8 (below a quarter): due at once, burst or not
        for _ in 0..6 {
            drop(pool.take(g).unwrap());
        }
        let taken = pool.lock().last_take.unwrap();
        assert_eq!(pool.lock().refill_due(taken), RefillDue::Now);
    }

    #[test]
    fn debug_prints_counts_only() {
        let pool = DhPool::new();
        pool.set_targets(&[(DhGroup::Modp768, 1)]);
        pool.fill(1).unwrap();
        let s = format!("{pool:?}");
        assert!(s.contains("ready: 1"), "{s}");
        assert!(!s.contains("DhPrivate"), "{s}");
    }
}
