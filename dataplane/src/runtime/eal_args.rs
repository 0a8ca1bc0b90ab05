//! The EAL command line, built from the configuration: the operator's own EAL arguments,
//! then the lcores (main and workers) and the devices of the `[[interface]]` tables.

/// Builds the EAL argv (with `argv[0]`).
///
/// - lcores: `-l` when every lcore id is a CPU of this machine, else `--lcores id@cpu`
///   with the ids folded onto the CPUs (several lcores may share one core on small
///   machines), and `--main-lcore`. Left out when the operator's `eal` already has them.
/// - devices: a name starting with `net_`, `crypto_` or `event_` is a virtual device
///   (`--vdev`); anything else is a PCI address (`-a`).
pub fn eal_args(
    operator: &[String],
    main_lcore: u32,
    workers: &[u32],
    devices: &[String],
    cpus: u32,
) -> Vec<String> {
    let mut args = vec!["ipsec-dataplane".to_string()];
    args.extend(operator.iter().cloned());
    let has = |flag: &str| {
        operator
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !has("-l") && !has("--lcores") && !has("-c") {
        let mut ids = vec![main_lcore];
        ids.extend(workers.iter().copied().filter(|w| *w != main_lcore));
        let cpus = cpus.max(1);
        if ids.iter().all(|id| *id < cpus) {
            args.push("-l".into());
            args.push(join(ids.iter().map(u32::to_string)));
        } else {
            args.push("--lcores".into());
            args.push(join(ids.iter().map(|id| format!("{id}@{}", id % cpus))));
        }
    }
    if !has("--main-lcore") {
        args.push("--main-lcore".into());
        args.push(main_lcore.to_string());
    }
    for dev in devices {
        if ["net_", "crypto_", "event_"]
            .iter()
            .any(|p| dev.starts_with(p))
        {
            args.push("--vdev".into());
        } else {
            args.push("-a".into());
        }
        args.push(dev.clone());
    }
    args
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// Number of CPUs this process may run on.
pub fn online_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn virtual_devices_and_lcores() {
        let a = eal_args(
            &s(&["--no-huge", "-m", "512"]),
            0,
            &[1],
            &s(&["net_af_packet0,iface=dp-in", "0000:03:00.0"]),
            2,
        );
        assert_eq!(
            a,
            s(&[
                "ipsec-dataplane",
                "--no-huge",
                "-m",
                "512",
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--vdev",
                "net_af_packet0,iface=dp-in",
                "-a",
                "0000:03:00.0"
            ])
        );
    }

    #[test]
    fn more_lcores_than_cpus_share_cores() {
        let a = eal_args(&[], 0, &[1, 2], &[], 2);
        assert_eq!(a[1..3], s(&["--lcores", "0@0,1@1,2@0"]));
    }

    #[test]
    fn operator_lcores_win() {
        let a = eal_args(&s(&["-l", "2-3", "--main-lcore", "2"]), 0, &[1], &[], 4);
        assert_eq!(a.iter().filter(|x| *x == "-l").count(), 1);
        assert_eq!(a.iter().filter(|x| *x == "--main-lcore").count(), 1);
    }
}
