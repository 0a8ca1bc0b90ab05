//! An ethdev port: configured with one RX and one TX queue per user (the workers, plus the
//! main lcore's TX queue), RSS when the device has it, started in promiscuous mode.

use std::ffi::CString;

use super::errno_text;
use super::mbuf::Mbuf;
use super::mempool::Mempool;

/// Counters of a port (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A started port.
pub struct Port {
    pub id: u16,
    pub rx_queues: u16,
    pub tx_queues: u16,
}

const RX_DESC: u16 = 1024;

// RTE_ETH_RSS_* are RTE_BIT64() macros, which bindgen cannot evaluate: the bits, from
// rte_ethdev.h. Addresses and ports of IPv4/IPv6 (TCP, UDP, other), and the ESP SPI where the
// NIC hashes it, so that ESP lands on the lcore that owns its SA.
const RSS_WANTED: u64 = (1 << 2) // IPV4
    | (1 << 3) // FRAG_IPV4
    | (1 << 4) // NONFRAG_IPV4_TCP
    | (1 << 5) // NONFRAG_IPV4_UDP
    | (1 << 7) // NONFRAG_IPV4_OTHER
    | (1 << 8) // IPV6
    | (1 << 9) // FRAG_IPV6
    | (1 << 10) // NONFRAG_IPV6_TCP
    | (1 << 11) // NONFRAG_IPV6_UDP
    | (1 << 13) // NONFRAG_IPV6_OTHER
    | (1 << 27); // ESP
const TX_DESC: u16 = 1024;

impl Port {
    /// The port id of a device given to EAL (a vdev name such as `net_af_packet0`, or a PCI
    /// address).
    pub fn find(name: &str) -> Result<u16, String> {
        let c = CString::new(name).unwrap();
        let mut id = 0u16;
        // SAFETY: valid NUL-terminated name and out-pointer.
        let r = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if r != 0 {
            return Err(format!("no DPDK port named {name}: {}", errno_text(r)));
        }
        Ok(id)
    }

    /// The NUMA socket the device sits on (0 when DPDK does not know, as for virtual devices).
    pub fn socket(id: u16) -> u32 {
        // SAFETY: plain ethdev query on a port id that `find` returned.
        let s = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        if s < 0 {
            0
        } else {
            s as u32
        }
    }

    /// Configures and starts port `id` with `rx` RX queues and `tx` TX queues on `pool`.
    /// Queue counts above what the device offers are reduced to its maximum (a virtual device
    /// often has one queue); the caller reads the counts it got.
    pub fn start(id: u16, rx: u16, tx: u16, mtu: u16, pool: Mempool) -> Result<Port, String> {
        // SAFETY: zeroed rte_eth_dev_info is a valid out-parameter.
        let mut info: dpdk_sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: valid port id and out-pointer.
        let r = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
        if r != 0 {
            return Err(format!("port {id}: dev_info: {}", errno_text(r)));
        }
        let rx = rx.min(info.max_rx_queues).max(1);
        let tx = tx.min(info.max_tx_queues).max(1);
        // SAFETY: zeroed rte_eth_conf means "defaults" to DPDK.
        let mut conf: dpdk_sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        let rss = info.flow_type_rss_offloads & RSS_WANTED;
        if rx > 1 && rss != 0 {
            conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss;
        }
        // SAFETY: valid port id and a conf that outlives the call.
        let r = unsafe { dpdk_sys::rte_eth_dev_configure(id, rx, tx, &conf) };
        if r != 0 {
            return Err(format!("port {id}: configure: {}", errno_text(r)));
        }
        // SAFETY: plain ethdev query.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..rx {
            // SAFETY: configured port, valid pool; NULL conf means the driver's defaults.
            let r = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    RX_DESC,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if r != 0 {
                return Err(format!("port {id}: rx queue {q}: {}", errno_text(r)));
            }
        }
        for q in 0..tx {
            // SAFETY: configured port; NULL conf means the driver's defaults.
            let r = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, TX_DESC, socket, std::ptr::null())
            };
            if r != 0 {
                return Err(format!("port {id}: tx queue {q}: {}", errno_text(r)));
            }
        }
        // The MTU is best effort: virtual devices may not support setting it.
        // SAFETY: plain ethdev call on a configured port.
        let _ = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id, mtu) };
        // SAFETY: configured port with all queues set up.
        let r = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if r != 0 {
            return Err(format!("port {id}: start: {}", errno_text(r)));
        }
        // SAFETY: started port. Promiscuous mode is best effort (a tap may refuse it).
        let _ = unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        Ok(Port {
            id,
            rx_queues: rx,
            tx_queues: tx,
        })
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port and out-pointer.
        unsafe { dpdk_sys::rte_eth_macaddr_get(self.id, &mut a) };
        a.addr_bytes
    }

    /// Receives up to `max` mbufs from `queue` into `out` (appended).
    #[inline]
    pub fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>, max: usize) {
        let mut raw = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>(); 64];
        let max = max.min(raw.len());
        // SAFETY: raw has room for `max` pointers; the queue belongs to this lcore.
        let n = unsafe {
            dpdk_sys::shim_rte_eth_rx_burst(self.id, queue, raw.as_mut_ptr(), max as u16)
        };
        for &m in &raw[..n as usize] {
            // SAFETY: the driver hands us ownership of each received mbuf.
            out.push(unsafe { Mbuf::from_raw(std::ptr::NonNull::new_unchecked(m)) });
        }
    }

    /// Transmits from the front of `pkts` on `queue`; the mbufs the driver took are removed,
    /// the rest stay for the caller to retry or drop.
    #[inline]
    pub fn tx_burst(&self, queue: u16, pkts: &mut Vec<Mbuf>) -> usize {
        if pkts.is_empty() {
            return 0;
        }
        let mut raw = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>(); 64];
        let n = pkts.len().min(raw.len());
        for (r, m) in raw.iter_mut().zip(pkts.iter()) {
            *r = m.as_raw_ptr();
        }
        // SAFETY: raw[..n] are valid mbufs we own; the driver takes ownership of the first
        // `sent` of them, which we then forget below.
        let sent =
            unsafe { dpdk_sys::shim_rte_eth_tx_burst(self.id, queue, raw.as_mut_ptr(), n as u16) }
                as usize;
        for m in pkts.drain(..sent) {
            let _ = m.into_raw();
        }
        sent
    }

    /// True when the link is up, asked without waiting (`rte_eth_link_get_nowait`). A memif
    /// port is up once its peer process has connected.
    pub fn link_up(&self) -> bool {
        // SAFETY: zeroed rte_eth_link is a valid out-parameter.
        let mut l: dpdk_sys::rte_eth_link = unsafe { std::mem::zeroed() };
        // SAFETY: valid port id and out-pointer.
        let r = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.id, &mut l) };
        r == 0 && l.link_status() != 0
    }

    /// The port's counters.
    pub fn stats(&self) -> PortStats {
        // SAFETY: zeroed rte_eth_stats is a valid out-parameter.
        let mut s: dpdk_sys::rte_eth_stats = unsafe { std::mem::zeroed() };
        // SAFETY: valid port and out-pointer.
        unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Stops the port.
    pub fn stop(&self) {
        // SAFETY: plain ethdev call; no lcore polls the port any more.
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}
