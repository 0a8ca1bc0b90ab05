//! The traffic check: a UDP listener in the responder's LAN (another network namespace)
//! that records when the first probe of each spoke arrived. A probe gets there only if the
//! responder decrypted it with the SA it negotiated with that spoke, checked it against
//! that SA's selectors and routed it into its LAN, so an arrival is a tunnel carrying
//! traffic, seen from the far side.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::net::bind_in_netns;
use super::spoke::PROBE_MAGIC;

/// First arrivals, shared by the sink (writer) and the spokes' workers (readers).
pub struct Arrivals {
    /// Per spoke (index = number - 1): nanoseconds since the run's start + 1, 0 = none yet.
    first: Vec<AtomicU64>,
    count: AtomicUsize,
    /// Datagrams that were no probe of ours, or of an unknown spoke.
    pub strays: AtomicU64,
    /// Probes after a spoke's first.
    pub duplicates: AtomicU64,
}

impl Arrivals {
    pub fn new(spokes: usize) -> Arrivals {
        Arrivals {
            first: (0..spokes).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
            strays: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }

    /// Spoke `number`'s (1-based) first probe, as time since the run's start.
    pub fn of(&self, number: usize) -> Option<Duration> {
        match self
            .first
            .get(number.wrapping_sub(1))?
            .load(Ordering::Acquire)
        {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }

    /// Spokes whose probe arrived.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn record(&self, payload: &[u8], at: Duration) {
        let number = match payload.strip_prefix(&PROBE_MAGIC[..]) {
            Some(n) if n.len() >= 4 => u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize,
            _ => {
                self.strays.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let Some(slot) = self.first.get(number.wrapping_sub(1)) else {
            self.strays.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let v = at.as_nanos() as u64 + 1;
        if slot
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.count.fetch_add(1, Ordering::AcqRel);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the sink: a thread that joins `netns`, binds `addr` there and records probes
/// until `stop`. Returns once the socket is bound (or failed to bind).
pub fn start(
    netns: String,
    addr: SocketAddrV4,
    arrivals: Arc<Arrivals>,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::Builder::new()
        .name("ikeload-sink".into())
        .spawn(move || {
            // this thread alone changes namespace: the others stay where they were
            let s = match bind_in_netns(&netns, addr) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = tx.send(Ok(()));
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = s.recv(&mut buf) {
                    arrivals.record(&buf[..n], t0.elapsed());
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|_| "the sink thread died".to_string())??;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(n: u32) -> Vec<u8> {
        let mut p = PROBE_MAGIC.to_vec();
        p.extend_from_slice(&n.to_be_bytes());
        p
    }

    #[test]
    fn first_arrival_counts_once_and_strays_are_not_arrivals() {
        let a = Arrivals::new(3);
        a.record(&probe(2), Duration::from_millis(5));
        a.record(&probe(2), Duration::from_millis(9));
        a.record(&probe(4), Duration::from_millis(9)); // no such spoke
        a.record(&probe(0), Duration::from_millis(9)); // numbers are 1-based
        a.record(b"something else", Duration::from_millis(9));
        assert_eq!(a.count(), 1);
        assert_eq!(a.of(2), Some(Duration::from_millis(5)));
        assert_eq!(a.of(1), None);
        assert_eq!(a.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(a.strays.load(Ordering::Relaxed), 3);
    }
}
