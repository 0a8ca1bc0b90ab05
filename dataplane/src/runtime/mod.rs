//! The DPDK process: EAL, mempools, ports, worker lcores running the pipeline, and the main
//! lcore's management loop.
