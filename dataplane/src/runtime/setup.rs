//! What the runtime derives from the configuration before it starts DPDK: the EAL command
//! line, the gateway's own addresses, and the role and MTU of each port.

use crate::config::{Config, Role};
use crate::pipeline::{LocalAddrs, PortInfo, PortRole};

use super::eal_args::{eal_args, online_cpus};

/// The EAL argv for this configuration (lcores, devices of the `[[interface]]` tables).
pub fn eal_argv(config: &Config) -> Vec<String> {
    let devices: Vec<String> = config.interfaces.iter().map(|i| i.device.clone()).collect();
    eal_args(
        &config.dataplane.eal,
        config.dataplane.main_lcore,
        &config.dataplane.worker_lcores,
        &devices,
        online_cpus(),
    )
}

/// Every address of every interface.
pub fn local_addrs(config: &Config) -> LocalAddrs {
    LocalAddrs::new(
        config
            .interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(|p| p.addr)),
    )
}

/// The pipeline's view of each interface, in configuration order (which is the port order:
/// the devices are given to the EAL in that order). `macs` are the ports' MAC addresses as
/// DPDK reports them.
pub fn port_infos(config: &Config, macs: &[[u8; 6]]) -> Vec<PortInfo> {
    config
        .interfaces
        .iter()
        .zip(macs.iter())
        .map(|(i, mac)| PortInfo {
            mac: *mac,
            mtu: i.mtu,
            role: match i.role {
                Role::Inside => PortRole::Inside,
                Role::Outside => PortRole::Outside,
            },
        })
        .collect()
}

/// The DPDK device name of an interface: the part of the device string before the first
/// comma (`net_af_packet0,iface=x` -> `net_af_packet0`), which `rte_eth_dev_get_port_by_name`
/// takes.
pub fn device_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/secgw-peer.toml");

    #[test]
    fn example_config_gives_eal_args_addresses_and_ports() {
        let c = Config::parse("secgw-peer.toml", EXAMPLE).expect("example config is valid");
        let argv = eal_argv(&c);
        assert!(argv
            .windows(2)
            .any(|w| w[0] == "--vdev" && w[1] == "net_af_packet0,iface=dp-in"));
        assert!(argv
            .windows(2)
            .any(|w| w[0] == "--vdev" && w[1] == "net_af_packet1,iface=dp-out"));
        assert!(argv
            .windows(2)
            .any(|w| w[0] == "--main-lcore" && w[1] == "0"));
        let local = local_addrs(&c);
        assert!(local.contains("10.99.0.1".parse().unwrap()));
        assert!(local.contains("10.10.1.254".parse().unwrap()));
        assert!(!local.contains("10.99.0.2".parse().unwrap()));
        let ports = port_infos(&c, &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]]);
        assert_eq!(ports[0].role, PortRole::Inside);
        assert_eq!(ports[1].role, PortRole::Outside);
        assert_eq!(ports[1].mtu, 1500);
        assert_eq!(device_name("net_af_packet1,iface=dp-out"), "net_af_packet1");
        assert_eq!(device_name("0000:03:00.0"), "0000:03:00.0");
    }
}
