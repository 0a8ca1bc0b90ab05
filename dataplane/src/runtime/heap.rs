//! What pages the dataplane's heap is on, said once at start-up.
//!
//! The SAs, their key schedules, the SPD and the route and neighbour tables come from the
//! malloc heap, not from DPDK's hugepage memory. With thousands of tunnels each packet reads
//! a different SA and key schedule, and on 4 KB pages that is a TLB miss (a page walk, two
//! dimensional under a hypervisor) on top of the cache miss: the scale bench's burst of 64-byte
//! packets over 10,000 tunnels cost about a quarter less with the heap on 2 MB pages (benches/
//! NOTES.md). glibc puts its heap on hugepages when started with
//! `GLIBC_TUNABLES=glibc.malloc.hugetlb=2` (from the hugetlbfs pool, as DPDK's memory; 4 KB
//! pages when none is free) or `=1` (transparent hugepages, where the kernel gives them);
//! the systemd unit sets the first. Where a heap allocation actually landed is read from
//! /proc/self/smaps, so the log says what is, not what was asked for.

/// The page size, in KiB, of the mapping that holds `addr`, from smaps text
/// (`KernelPageSize`); None when no mapping holds it.
pub fn page_kib_of(addr: usize, smaps: &str) -> Option<u64> {
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            // a mapping's header line: "start-end perms offset dev inode [path]"
            if let (Ok(s), Ok(e)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                inside = (s..e).contains(&addr);
                continue;
            }
        }
        if inside {
            if let Some(v) = line.strip_prefix("KernelPageSize:") {
                return v.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
    }
    None
}

/// The page size, in KiB, under a fresh heap allocation the size of an SA, made on the
/// calling thread (the main lcore builds the SAs); None when /proc is not there.
pub fn sa_heap_page_kib() -> Option<u64> {
    let probe = vec![0u8; std::mem::size_of::<crate::esp::Sa>()];
    let addr = probe.as_ptr() as usize;
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let kib = page_kib_of(addr, &smaps);
    drop(probe);
    kib
}

/// Logs where the SA memory is: an info line on hugepages, a notice with the remedy on small
/// pages.
pub fn log_sa_heap_pages() {
    match sa_heap_page_kib() {
        Some(kib) if kib >= 2048 => {
            log::info!("%DATAPLANE-6-HEAP: SA memory on {kib} kB pages")
        }
        Some(kib) => log::info!(
            "%DATAPLANE-5-HEAP: SA memory on {kib} kB pages: with thousands of tunnels every \
             packet also misses the TLB; start with GLIBC_TUNABLES=glibc.malloc.hugetlb=2 and \
             free hugepages (tuning/README.md)"
        ),
        None => log::info!("%DATAPLANE-5-HEAP: SA memory pages unknown (no /proc/self/smaps)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
Rss:                  20 kB
7f3a00000000-7f3a04000000 rw-p 00000000 00:0f 1234                       /anon_hugepage (deleted)
Size:              65536 kB
KernelPageSize:     2048 kB
MMUPageSize:        2048 kB
Private_Hugetlb:    4096 kB
7ffd1e3c0000-7ffd1e3e1000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
KernelPageSize:        4 kB
";

    #[test]
    fn the_mapping_holding_the_address_gives_the_page_size() {
        assert_eq!(page_kib_of(0x55d0_c000_1000, SMAPS), Some(4));
        assert_eq!(page_kib_of(0x7f3a_0123_4567, SMAPS), Some(2048));
        assert_eq!(
            page_kib_of(0x7f3a_0400_0000, SMAPS),
            None,
            "end is exclusive"
        );
        assert_eq!(page_kib_of(0x1000, SMAPS), None);
    }

    #[test]
    fn this_process_heap_has_a_page_size() {
        // the test binary runs with whatever heap the environment gives: 4 KB or more
        let kib = sa_heap_page_kib().expect("/proc/self/smaps on Linux");
        assert!(kib >= 4, "{kib}");
    }
}
