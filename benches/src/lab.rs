//! The addressing plan of a traffic-generator lab with N tunnels, and the ipsec-dataplane
//! configuration that installs them (`ipsec-trafficgen lab` and `ipsec-trafficgen pcap`).
//!
//! ```text
//!  generator "inside router"          ipsec-dataplane                generator "outside router"
//!  192.168.0.2  02:00:00:00:00:02 -- inside 192.168.0.1 | outside 198.18.0.1 -- 198.18.0.2  02:00:00:00:01:02
//!  LANs 10.X.Y.0/24 (tunnel t)                                        peers 198.19.0.0/16, LANs 100.64.0.0/10
//! ```
//!
//! Tunnel `t` protects `10.(t/256).(t%256).0/24 -> 100.(64+t/256).(t%256).0/24` toward peer
//! `198.19.0.0 + t + 1`, with esp-gcm 128 in tunnel mode, one `ipsec-manual` crypto-map entry
//! and one access list of its own. Both routed sides sit behind one next hop each (a static
//! ARP entry), so that 10,000 tunnels need no neighbour resolution. The benchmarking ranges of
//! RFC 2544/RFC 6815 (198.18.0.0/15) carry the outer addresses.
//!
//! SPIs: outbound (gateway -> peer) `0x1000_0000 + t`, inbound `0x2000_0000 + t`, so that with K
//! workers the inbound SA of tunnel t belongs to worker `t % K` (the dataplane's owner rule is
//! `spi % workers`) as does its outbound SA (SA id `t`). Keys are test keys derived from a
//! seed and the tunnel number: a lab never carries traffic that matters.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Most tunnels a lab can hold: the remote LANs are /24s of 100.64.0.0/10.
pub const MAX_TUNNELS: u32 = 16_384;

pub const GATEWAY_INSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
pub const GENERATOR_INSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
pub const GATEWAY_OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const GENERATOR_OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The MACs the lab gives the memif ports (DPDK's memif takes `mac=`).
pub const GATEWAY_INSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x00, 0x01];
pub const GENERATOR_INSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x00, 0x02];
pub const GATEWAY_OUTSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
pub const GENERATOR_OUTSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];

const SPI_OUT_BASE: u32 = 0x1000_0000;
const SPI_IN_BASE: u32 = 0x2000_0000;

/// One tunnel of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub index: u32,
    /// Network of the protected LAN behind the gateway (/24).
    pub inside_net: Ipv4Addr,
    /// Network of the peer's LAN (/24).
    pub remote_net: Ipv4Addr,
    pub peer: Ipv4Addr,
    /// SPI of the gateway's outbound SA (what the generator sees on encapsulated packets).
    pub spi_out: u32,
    /// SPI of the gateway's inbound SA (what the generator puts on ESP it sends).
    pub spi_in: u32,
}

/// Tunnel `t` of the plan (`t < MAX_TUNNELS`).
pub fn tunnel(t: u32) -> Tunnel {
    assert!(t < MAX_TUNNELS, "tunnel {t} is beyond the plan");
    let (hi, lo) = ((t >> 8) as u8, (t & 0xff) as u8);
    Tunnel {
        index: t,
        inside_net: Ipv4Addr::new(10, hi, lo, 0),
        remote_net: Ipv4Addr::new(100, 64 + hi, lo, 0),
        peer: Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + t + 1),
        spi_out: SPI_OUT_BASE + t,
        spi_in: SPI_IN_BASE + t,
    }
}

/// esp-gcm 128 key and salt (20 bytes) of tunnel `t`, direction `inbound` or not, from `seed`
/// (splitmix64: distinct per SA, reproducible from the seed).
pub fn gcm128_key(seed: u64, t: u32, inbound: bool) -> [u8; 20] {
    let mut x = seed ^ ((t as u64) << 1 | inbound as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut k = [0u8; 20];
    for chunk in k.chunks_mut(8) {
        let w = next().to_be_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
    k
}

/// `02:00:00:00:00:01`
pub fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `02:00:00:00:00:01` -> bytes.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!("{s:?} is not a MAC address"));
    }
    let mut m = [0u8; 6];
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| format!("{s:?} is not a MAC address"))?;
    }
    Ok(m)
}

/// What differs between a lab on memif (generator on the same host) and a bare-metal setup.
#[derive(Clone, Debug)]
pub struct GatewaySpec {
    pub tunnels: u32,
    pub workers: u32,
    /// EAL arguments of the gateway other than lcores and devices.
    pub eal: Vec<String>,
    pub inside_device: String,
    pub outside_device: String,
    /// Control channel socket.
    pub channel: String,
    /// Anti-replay window in packets, or None for `"disable"` (pcap replay repeats sequence
    /// numbers).
    pub replay_window: Option<u32>,
    /// MACs of the next hops on the inside and outside (the generator's ports).
    pub inside_next_hop_mac: [u8; 6],
    pub outside_next_hop_mac: [u8; 6],
    pub seed: u64,
    /// Mbufs per pool.
    pub mbufs: u32,
}

/// The ipsec-dataplane configuration of `spec`.
pub fn gateway_toml(spec: &GatewaySpec) -> String {
    assert!(spec.tunnels >= 1 && spec.tunnels <= MAX_TUNNELS);
    let mut s = String::with_capacity(600 * spec.tunnels as usize + 2048);
    let q = |v: &str| format!("{v:?}");
    let eal: Vec<String> = spec.eal.iter().map(|a| q(a)).collect();
    let workers: Vec<String> = (1..=spec.workers.max(1)).map(|w| w.to_string()).collect();
    let replay = match spec.replay_window {
        Some(w) => w.to_string(),
        None => "\"disable\"".into(),
    };
    // writeln! into a String cannot fail.
    let _ = writeln!(
        s,
        "# Written by `ipsec-trafficgen`: {} tunnels (esp-gcm 128, tunnel mode), one ipsec-manual\n\
         # crypto-map entry and one access list each. Lab keys, derived from a seed: test only.\n\
         hostname = \"trafficgen-lab\"\n\n\
         [dataplane]\n\
         eal = [{}]\n\
         lcores = {{ main = 0, workers = [{}] }}\n\
         mbufs = {}\n\
         channel = {}\n\n\
         [[interface]]\nname = \"inside\"\nrole = \"inside\"\ndevice = {}\naddress = [\"{GATEWAY_INSIDE}/24\"]\n\n\
         [[interface]]\nname = \"outside\"\nrole = \"outside\"\ndevice = {}\naddress = [\"{GATEWAY_OUTSIDE}/24\"]\ncrypto_map = \"vpn\"\n\n\
         [[route]]\nprefix = \"10.0.0.0/8\"\nnext_hop = \"{GENERATOR_INSIDE}\"\n\n\
         [[route]]\nprefix = \"198.19.0.0/16\"\nnext_hop = \"{GENERATOR_OUTSIDE}\"\n\n\
         [[route]]\nprefix = \"100.64.0.0/10\"\nnext_hop = \"{GENERATOR_OUTSIDE}\"\n\n\
         [[arp]]\naddress = \"{GENERATOR_INSIDE}\"\nmac = \"{}\"\n\n\
         [[arp]]\naddress = \"{GENERATOR_OUTSIDE}\"\nmac = \"{}\"\n\n\
         [transform_set.gcm128]\nesp = [\"esp-gcm\", \"128\"]\nmode = \"tunnel\"\n\n\
         [access_list]",
        spec.tunnels,
        eal.join(", "),
        workers.join(", "),
        spec.mbufs,
        q(&spec.channel),
        q(&spec.inside_device),
        q(&spec.outside_device),
        mac_text(spec.inside_next_hop_mac),
        mac_text(spec.outside_next_hop_mac),
    );
    for t in 0..spec.tunnels {
        let tu = tunnel(t);
        let _ = writeln!(
            s,
            "t{t} = [{{ action = \"permit\", protocol = \"ip\", source = \"{}/24\", destination = \"{}/24\" }}]",
            tu.inside_net, tu.remote_net
        );
    }
    for t in 0..spec.tunnels {
        let tu = tunnel(t);
        let _ = writeln!(
            s,
            "\n[[crypto_map.vpn]]\nseq = {}\ntype = \"ipsec-manual\"\npeer = \"{}\"\n\
             transform_set = \"gcm128\"\nmatch_address = \"t{t}\"\nreplay_window = {replay}\n\
             lifetime = {{ seconds = 86400, kilobytes = 4294967295 }}\n\
             session_key.inbound = {{ spi = {}, cipher = \"{}\" }}\n\
             session_key.outbound = {{ spi = {}, cipher = \"{}\" }}",
            t + 1,
            tu.peer,
            tu.spi_in,
            hex(&gcm128_key(spec.seed, t, true)),
            tu.spi_out,
            hex(&gcm128_key(spec.seed, t, false)),
        );
    }
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The memif device strings of a lab in `dir`: (gateway inside, gateway outside, generator
/// inside, generator outside). The gateway is the memif server (it listens when it starts;
/// DPDK 22.11 puts the socket in the abstract namespace, so no file appears in `dir`); the
/// generator connects as client. memif uses as many rings as both sides have queues.
/// `ring_log2` sets the ring size (memif's `rsize`, 2^n descriptors): a deeper ring absorbs
/// the time the gateway's worker loses to other processes on a shared core.
pub fn memif_devices(dir: &str, ring_log2: u32) -> [String; 4] {
    let dev = |n: u32, role: &str, sock: &str, mac: [u8; 6]| {
        format!(
            "net_memif{n},role={role},socket={dir}/{sock}.sock,id=0,rsize={ring_log2},mac={}",
            mac_text(mac)
        )
    };
    [
        dev(0, "server", "inside", GATEWAY_INSIDE_MAC),
        dev(1, "server", "outside", GATEWAY_OUTSIDE_MAC),
        dev(0, "client", "inside", GENERATOR_INSIDE_MAC),
        dev(1, "client", "outside", GENERATOR_OUTSIDE_MAC),
    ]
}

/// What `ipsec-trafficgen run` needs to know about a lab besides its gateway.toml, kept in
/// `DIR/lab.json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabInfo {
    pub tunnels: u32,
    pub workers: u32,
    /// The generator's memif devices (clients of the gateway's sockets).
    pub generator_inside_device: String,
    pub generator_outside_device: String,
    pub gateway_inside_mac: String,
    pub gateway_outside_mac: String,
    pub generator_inside_mac: String,
    pub generator_outside_mac: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::config::Config;
    use dataplane::esp::Direction;

    fn spec(n: u32) -> GatewaySpec {
        let [gi, go, _, _] = memif_devices("/tmp/lab", 10);
        GatewaySpec {
            tunnels: n,
            workers: 2,
            eal: vec!["--no-huge".into(), "-m".into(), "1024".into()],
            inside_device: gi,
            outside_device: go,
            channel: "/tmp/lab/dp.sock".into(),
            replay_window: Some(1024),
            inside_next_hop_mac: GENERATOR_INSIDE_MAC,
            outside_next_hop_mac: GENERATOR_OUTSIDE_MAC,
            seed: 7,
            mbufs: 16384,
        }
    }

    #[test]
    fn lab_config_parses_with_two_sas_per_tunnel() {
        let n = 300;
        let c = Config::parse("gateway.toml", &gateway_toml(&spec(n))).expect("valid config");
        assert_eq!(c.manual_sas.len(), n as usize);
        assert_eq!(c.dataplane.worker_lcores, vec![1, 2]);
        let mut spis = std::collections::HashSet::new();
        for (t, m) in c.manual_sas.iter().enumerate() {
            let tu = tunnel(t as u32);
            assert_eq!(m.inbound.direction, Direction::Inbound);
            assert_eq!(m.inbound.spi, tu.spi_in);
            assert_eq!(m.outbound.spi, tu.spi_out);
            assert_eq!(m.outbound.remote, std::net::IpAddr::V4(tu.peer));
            assert_eq!(m.inbound.replay_window, 1024);
            assert_eq!(m.outbound.keys.encryption, gcm128_key(7, t as u32, false));
            assert_ne!(m.inbound.keys.encryption, m.outbound.keys.encryption);
            assert!(spis.insert(m.inbound.spi) && spis.insert(m.outbound.spi));
        }
        // Every ACL is its own rule: N permits.
        assert_eq!(c.spd_rules.len(), n as usize);
    }

    #[test]
    fn tunnels_have_distinct_prefixes_and_peers() {
        let a = tunnel(0);
        let b = tunnel(257);
        assert_eq!(a.inside_net, Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(b.inside_net, Ipv4Addr::new(10, 1, 1, 0));
        assert_eq!(b.remote_net, Ipv4Addr::new(100, 65, 1, 0));
        assert_eq!(a.peer, Ipv4Addr::new(198, 19, 0, 1));
        assert_eq!(tunnel(255).peer, Ipv4Addr::new(198, 19, 1, 0));
        assert_eq!(
            tunnel(MAX_TUNNELS - 1).remote_net,
            Ipv4Addr::new(100, 127, 255, 0)
        );
    }

    #[test]
    fn replay_disable_and_mac_round_trip() {
        let mut s = spec(2);
        s.replay_window = None;
        let c = Config::parse("g.toml", &gateway_toml(&s)).unwrap();
        assert_eq!(c.manual_sas[1].inbound.replay_window, 0);
        assert_eq!(
            parse_mac("02:00:00:00:01:02").unwrap(),
            GENERATOR_OUTSIDE_MAC
        );
        assert!(parse_mac("02:00:00:00:01").is_err());
    }
}
