"""How many mbufs the dataplane's pool must hold, from the ring sizes of
dataplane/src/dpdk/port.rs (RX_DESC, TX_DESC) and dataplane/src/runtime/dpdk_run.rs (handoff
and punt rings), and the hugepage memory that takes."""

RX_DESC = 1024
TX_DESC = 1024
HANDOFF_RING = 1024
PUNT_RING = 1024
MEMPOOL_CACHE = 256
# RTE_MBUF_DEFAULT_BUF_SIZE (2176) + struct rte_mbuf (128) + mempool object header/padding.
MBUF_FOOTPRINT = 2176 + 128 + 64
# EAL's own hugepage use besides the pools (rings, ethdev structures, malloc heap).
EAL_OVERHEAD_MB = 256


def held_by_rings(ports, workers):
    """Mbufs that the rings alone can hold at once: every RX and TX descriptor of every
    queue (one pair per worker per port), full handoff rings between every ordered pair of
    workers, and the punt rings to the main lcore. A pool smaller than this can leave RX
    rings unfilled (some drivers then refuse to start the port) or starve under load."""
    return (ports * workers * (RX_DESC + TX_DESC)
            + workers * (workers - 1) * HANDOFF_RING
            + workers * PUNT_RING)


def recommended(ports, workers):
    """held_by_rings plus the per-lcore caches and headroom for frames in the pipeline,
    rounded up to 2^k - 1 (the size rte_mempool stores best)."""
    n = held_by_rings(ports, workers) + (workers + 1) * MEMPOOL_CACHE + 4096
    k = 1
    while (1 << k) - 1 < n:
        k += 1
    return (1 << k) - 1


def socket_mem_mb(mbufs):
    """Hugepage MB for a pool of `mbufs` and EAL, in whole 512 MB steps."""
    mb = mbufs * MBUF_FOOTPRINT // (1024 * 1024) + 1 + EAL_OVERHEAD_MB
    return (mb + 511) // 512 * 512
