//! `show crypto engine connections active`, `show crypto engine brief`, `show crypto engine
//! configuration` and `show crypto engine accelerator statistics`.

use std::fmt::Write;

use crate::ctl::view::{DhKeyPairsView, EngineConnectionView, EngineView, LcoreStatsView};

/// IOS 12.2's column header of `show crypto engine connections active`.
const CONNECTIONS_HEADER: &str =
    "  ID Interface       IP-Address     State   Algorithm               Encrypt  Decrypt";

/// `show crypto engine connections active`: one row per IKE SA and per ESP SA, in the order
/// given (by id), between the blank lines IOS prints.
pub fn render_connections(rows: &[EngineConnectionView]) -> String {
    let mut out = format!("\n{CONNECTIONS_HEADER}\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{:>4} {:<15} {:<15} {:<6} {:<18} {:>8} {:>8}",
            r.id,
            r.interface,
            r.ip_address.to_string(),
            r.state,
            r.algorithm,
            r.encrypt,
            r.decrypt
        );
    }
    out.push_str("\n\n");
    out
}

/// One `label:  value` line with the label right-aligned, as IOS's engine pages print them.
fn field(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:>30}:  {value}");
}

/// `show crypto engine brief`: what the engine is and whether it is up (IOS's fields; the
/// reference has no sample of this command).
pub fn render_brief(e: &EngineView) -> String {
    let mut out = String::new();
    field(&mut out, "crypto engine name", &e.name);
    field(&mut out, "crypto engine type", &e.engine_type);
    field(&mut out, "crypto engine state", &e.state);
    field(
        &mut out,
        "crypto engine version",
        e.version.as_deref().unwrap_or("unknown"),
    );
    field(&mut out, "crypto engine in slot", "N/A");
    out
}

/// `show crypto engine configuration`: the brief fields, then the lcores, the cipher
/// library per transform, the capabilities and the connection table's use.
pub fn render_configuration(e: &EngineView) -> String {
    let mut out = render_brief(e);
    field(
        &mut out,
        "main lcore",
        e.main_lcore
            .map(|l| l.to_string())
            .unwrap_or_else(|| "unknown".into()),
    );
    let workers: Vec<String> = e.worker_lcores.iter().map(u32::to_string).collect();
    field(&mut out, "worker lcores", workers.join(" "));
    field(
        &mut out,
        "connections",
        match e.connections_max {
            Some(max) => format!(
                "size = {max}, free = {}, used = {}",
                max.saturating_sub(e.connections_used),
                e.connections_used
            ),
            None => format!("used = {}", e.connections_used),
        },
    );
    out.push_str("\nCrypto backends:\n");
    let width = e.backends.keys().map(String::len).max().unwrap_or(0);
    for (transform, backend) in &e.backends {
        let _ = writeln!(out, "    {transform:<width$}  {backend}");
    }
    out.push_str("\nCapabilities:\n");
    for c in &e.capabilities {
        let _ = writeln!(out, "    {c}");
    }
    out
}

/// `show crypto engine accelerator statistics`: per worker lcore, packets in and out,
/// encapsulations and decapsulations, handoffs, average burst size, cycles per packet (and
/// how many of them the pipeline took, the rest being the ports' rx and tx bursts), the
/// times an adaptive worker slept for want of traffic, and drops by reason (our layout: IOS's is per hardware accelerator and has no equivalent);
/// then, per group, ipsec-control's Diffie-Hellman key pairs: how many are ready, made
/// ahead, taken from the pool and made during an exchange because none was ready (the
/// public-key side of the engine, where IOS's accelerators count their DH operations).
pub fn render_accelerator_statistics(lcores: &[LcoreStatsView], dh: &[DhKeyPairsView]) -> String {
    let mut out = String::new();
    for l in lcores {
        let drops: u64 = l.drops.values().sum();
        let burst = if l.bursts == 0 {
            "0.0".to_string()
        } else {
            format!("{:.1}", l.rx as f64 / l.bursts as f64)
        };
        // the whole, then its split: the pipeline's own cost and what the ports' bursts took
        let cycles = match (l.cycles_per_packet, l.pipeline_cycles_per_packet) {
            (Some(all), Some(pipeline)) => format!(
                "{all} (pipeline {pipeline}, ports {})",
                all.saturating_sub(pipeline)
            ),
            (Some(all), None) => all.to_string(),
            (None, _) => "not measured".into(),
        };
        let _ = write!(
            out,
            "lcore {} (worker {}):\n\
             \x20   packets in: {}, packets out: {}\n\
             \x20   encaps: {}, decaps: {}\n\
             \x20   handoffs in: {}, handoffs out: {}, punted: {}\n\
             \x20   bursts: {}, average burst size: {}\n\
             \x20   cycles per packet: {}, idle sleeps: {}\n\
             \x20   drops: {}\n",
            l.lcore,
            l.worker,
            l.rx,
            l.tx,
            l.encaps,
            l.decaps,
            l.handoff_in,
            l.handoff_out,
            l.punted,
            l.bursts,
            burst,
            cycles,
            l.idle_sleeps,
            drops
        );
        for (reason, n) in l.drops.iter().filter(|(_, n)| **n > 0) {
            let _ = writeln!(out, "        {reason}: {n}");
        }
        out.push('\n');
    }
    for g in dh {
        let ready = if g.target == 0 {
            format!("{} (not precomputed)", g.ready)
        } else {
            format!("{} of {}", g.ready, g.target)
        };
        let _ = write!(
            out,
            "DH group {} key pairs (ipsec-control):\n\
             \x20   ready: {}\n\
             \x20   precomputed: {}, taken from the pool: {}, generated on demand: {}\n\n",
            g.group, ready, g.precomputed, g.taken, g.on_demand
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::show::samples::ROUTER_ENGINE_CONNECTIONS;
    use crate::ctl::testing;

    /// The router's `sh cr en conn ac`, byte for byte.
    #[test]
    fn golden_engine_connections_router() {
        assert_eq!(
            render_connections(&testing::router_engine_connections()),
            ROUTER_ENGINE_CONNECTIONS
        );
    }

    #[test]
    fn long_algorithm_names_keep_columns_apart() {
        let mut rows = testing::router_engine_connections();
        rows.truncate(1);
        rows[0].algorithm = "HMAC_SHA256+AES_256_CBC".into();
        rows[0].encrypt = 123_456_789;
        let text = render_connections(&rows);
        assert!(text.contains("HMAC_SHA256+AES_256_CBC 123456789        0"));
    }

    /// No reference sample: these pin our layout.
    #[test]
    fn brief_and_configuration_layout() {
        let e = testing::engine();
        assert_eq!(
            render_brief(&e),
            "            crypto engine name:  ipsec-dataplane
            crypto engine type:  software (DPDK)
           crypto engine state:  installed
         crypto engine version:  0.1.0
         crypto engine in slot:  N/A
"
        );
        let c = render_configuration(&e);
        assert!(c.contains("                    main lcore:  0\n"));
        assert!(c.contains("                 worker lcores:  1 2\n"));
        assert!(c.contains("                   connections:  size = 8, free = 6, used = 2\n"));
        assert!(c.contains("\nCrypto backends:\n    esp-des esp-md5-hmac  openssl\n    esp-gcm 256           intel-ipsec-mb\n"));
        assert!(c.ends_with("\nCapabilities:\n    UDP-encaps\n    anti-replay\n"));
    }

    #[test]
    fn accelerator_statistics_layout() {
        let text = render_accelerator_statistics(&testing::lcores(), &testing::dh_key_pairs());
        assert_eq!(
            text,
            "lcore 1 (worker 0):
    packets in: 100, packets out: 97
    encaps: 50, decaps: 47
    handoffs in: 3, handoffs out: 4, punted: 2
    bursts: 8, average burst size: 12.5
    cycles per packet: 410 (pipeline 300, ports 110), idle sleeps: 5
    drops: 3
        auth-failed: 1
        replay: 2

DH group 14 key pairs (ipsec-control):
    ready: 1536 of 2048
    precomputed: 2560, taken from the pool: 1024, generated on demand: 3

DH group 19 key pairs (ipsec-control):
    ready: 0 (not precomputed)
    precomputed: 0, taken from the pool: 0, generated on demand: 2

"
        );
    }
}
