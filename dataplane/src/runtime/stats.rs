//! Counter aggregation on the main lcore: per-worker lines and a total, for `DumpCounters`
//! and for the summary printed to stderr when the process stops.

use std::sync::Arc;

use crate::pipeline::{CounterSnapshot, LcoreCounters};

/// The counter blocks of every worker, with their EAL lcore ids.
#[derive(Clone, Default)]
pub struct WorkerCounters {
    pub workers: Vec<(u32, Arc<LcoreCounters>)>,
}

impl WorkerCounters {
    /// Each worker's snapshot and the total.
    pub fn collect(&self) -> (Vec<(u32, CounterSnapshot)>, CounterSnapshot) {
        let mut total = CounterSnapshot::default();
        let per: Vec<_> = self
            .workers
            .iter()
            .map(|(id, c)| {
                let s = c.snapshot();
                total.accumulate(&s);
                (*id, s)
            })
            .collect();
        (per, total)
    }

    /// The multi-line summary: one line per lcore, then the total.
    pub fn summary(&self) -> String {
        let (per, total) = self.collect();
        let mut out = String::new();
        for (id, s) in per {
            out.push_str(&format!("lcore {id}: {s}\n"));
        }
        out.push_str(&format!("total: {total}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DropReason;

    #[test]
    fn summary_has_a_line_per_lcore_and_a_total() {
        let a = Arc::new(LcoreCounters::default());
        let b = Arc::new(LcoreCounters::default());
        a.rx.add(3);
        b.rx.add(4);
        b.count_drop(DropReason::AuthFailed);
        let w = WorkerCounters {
            workers: vec![(1, a), (2, b)],
        };
        let s = w.summary();
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("lcore 1: rx=3 "), "{s}");
        assert!(lines[1].contains("auth-failed=1"), "{s}");
        assert!(lines[2].starts_with("total: rx=7 "), "{s}");
    }
}
