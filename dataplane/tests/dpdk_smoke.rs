//! The DPDK layer on real DPDK: EAL without hugepages or PCI, a pool, a `net_ring` port
//! (which loops its TX back to its RX), mbufs as packet buffers, and a closure launched on a
//! worker lcore. Needs root (CI is root); fails with the reason when it cannot run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dataplane::dpdk::{Eal, Mempool, Port};
use dataplane::packet::PacketBuf;

#[test]
fn eal_pool_port_mbuf_and_lcore_launch() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root (DPDK EAL), and CI runs as root"
    );
    let prefix = format!("smoke{}", std::process::id());
    let args: Vec<String> = [
        "dpdk-smoke",
        "-l",
        "0,1",
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--file-prefix",
        &prefix,
        "--vdev",
        "net_ring0",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let eal = Eal::init(&args).expect("EAL init");
    let pool = Mempool::new("smoke_pool", 2047, 0).expect("mempool");
    let id = Port::find("net_ring0").expect("net_ring0 port");
    let port = Port::start(id, 1, 1, 1500, pool).expect("start port");

    // Mbufs behave as PacketBufs: grow at both ends and shrink back.
    let mut m = pool.alloc().expect("an mbuf");
    assert!(m.is_empty());
    assert!(m.headroom() >= 128);
    assert!(m.append(60));
    m.data_mut().copy_from_slice(&[0x42; 60]);
    assert!(m.prepend(14));
    m.data_mut()[..14].copy_from_slice(&[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
    ]);
    assert_eq!(m.len(), 74);
    assert!(!m.prepend(100_000));
    assert!(m.trim(4) && m.adj(0));

    // net_ring loops TX back to RX: send 8 frames, get the same bytes back.
    let mut burst = vec![m];
    for i in 1..8u8 {
        let mut m = pool.alloc().unwrap();
        assert!(m.append(70));
        m.data_mut().fill(i);
        burst.push(m);
    }
    let sent = port.tx_burst(0, &mut burst);
    assert_eq!(sent, 8);
    assert!(burst.is_empty());
    let mut got = Vec::new();
    port.rx_burst(0, &mut got, 32);
    assert_eq!(got.len(), 8);
    assert_eq!(
        &got[0].data()[..14],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
    );
    assert_eq!(got[0].len(), 70);
    assert!(got[3].data().iter().all(|b| *b == 3));
    let before = pool.available();
    drop(got);
    assert_eq!(
        pool.available(),
        before + 8,
        "dropped mbufs go back to the pool"
    );
    let st = port.stats();
    assert_eq!((st.opackets, st.ipackets), (8, 8));

    // A closure on worker lcore 1, which frees mbufs handed to it.
    let seen = Arc::new(AtomicU64::new(0));
    let s2 = seen.clone();
    let handed: Vec<_> = (0..5).map(|_| pool.alloc().unwrap()).collect();
    eal.launch(1, move || {
        assert_eq!(Eal::lcore_id(), 1);
        s2.store(handed.len() as u64, Ordering::SeqCst);
        drop(handed);
    })
    .expect("launch on lcore 1");
    eal.wait_all();
    assert_eq!(seen.load(Ordering::SeqCst), 5);
    port.stop();
}
