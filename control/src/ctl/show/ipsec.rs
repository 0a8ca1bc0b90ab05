//! `show crypto ipsec sa [peer A.B.C.D | map NAME | detail]` and `show crypto ipsec
//! transform-set`.

use std::fmt::Write;
use std::net::IpAddr;

use crate::ctl::view::{EspSaView, IdentView, IpsecSaView, TransformSetView};

use super::spi;

/// `show crypto ipsec sa`: the flows in the order given, consecutive flows of one interface
/// and crypto map under one `interface:` header, as IOS groups them. `detail` adds the
/// per-SA drop counts (IOS's detail adds its own error counters in the same place).
pub fn render_sa(flows: &[IpsecSaView], detail: bool) -> String {
    let mut out = String::new();
    let mut header: Option<(&str, &str, IpAddr)> = None;
    for f in flows {
        let key = (f.interface.as_str(), f.crypto_map.as_str(), f.local_addr);
        if header != Some(key) {
            let _ = write!(
                out,
                "\ninterface: {}\n    Crypto map tag: {}, local addr {}\n",
                f.interface, f.crypto_map, f.local_addr
            );
            header = Some(key);
        }
        render_flow(&mut out, f, detail);
    }
    out.push('\n');
    out
}

fn render_flow(out: &mut String, f: &IpsecSaView, detail: bool) {
    let _ = write!(
        out,
        "\n   protected vrf: (none)\n\
         \x20  local  ident (addr/mask/prot/port): {}\n\
         \x20  remote ident (addr/mask/prot/port): {}\n\
         \x20  current_peer {} port {}\n\
         \x20    PERMIT, flags={{{}}}\n",
        ident(&f.local_ident),
        ident(&f.remote_ident),
        f.current_peer,
        f.peer_port,
        f.flags.iter().map(|x| format!("{x},")).collect::<String>()
    );
    let _ = write!(
        out,
        "    #pkts encaps: {}, #pkts encrypt: {}, #pkts digest: {}\n\
         \x20   #pkts decaps: {}, #pkts decrypt: {}, #pkts verify: {}\n\
         \x20   #pkts compressed: 0, #pkts decompressed: 0\n\
         \x20   #pkts not compressed: 0, #pkts compr. failed: 0\n\
         \x20   #pkts not decompressed: 0, #pkts decompress failed: 0\n\
         \x20   #send errors {}, #recv errors {}\n\n",
        f.pkts_encaps,
        f.pkts_encrypt,
        f.pkts_digest,
        f.pkts_decaps,
        f.pkts_decrypt,
        f.pkts_verify,
        f.send_errors,
        f.recv_errors
    );
    let _ = write!(
        out,
        "     local crypto endpt.: {}, remote crypto endpt.: {}\n\
         \x20    path mtu {}, ip mtu {}, ip mtu idb {}\n\
         \x20    current outbound spi: {}\n\n",
        f.local_crypto_endpt,
        f.remote_crypto_endpt,
        f.path_mtu,
        f.ip_mtu,
        f.interface,
        spi(f.current_outbound_spi.unwrap_or(0))
    );
    for (direction, sas) in [("inbound", &f.inbound_esp), ("outbound", &f.outbound_esp)] {
        let _ = writeln!(out, "     {direction} esp sas:");
        for sa in sas {
            render_esp(out, sa, detail);
        }
        let _ = write!(
            out,
            "\n     {direction} ah sas:\n\n     {direction} pcp sas:\n\n"
        );
    }
}

fn render_esp(out: &mut String, sa: &EspSaView, detail: bool) {
    let encaps = if sa.udp_encapsulated {
        " UDP-Encaps"
    } else {
        ""
    };
    let _ = write!(
        out,
        "      spi: {}\n\
         \x20       transform: {} ,\n\
         \x20       in use settings ={{{}{}, }}\n\
         \x20       conn id: {}, flow_id: SW:{}, crypto map: {}\n\
         \x20       sa timing: remaining key lifetime (k/sec): ({}/{})\n\
         \x20       IV size: {} bytes\n\
         \x20       replay detection support: {}\n\
         \x20       Status: {}\n",
        spi(sa.spi),
        sa.transform,
        sa.mode,
        encaps,
        sa.conn_id,
        sa.flow_id,
        sa.crypto_map,
        sa.remaining_kilobytes,
        sa.remaining_seconds,
        sa.iv_size,
        if sa.replay_detection { "Y" } else { "N" },
        sa.status
    );
    if detail {
        let _ = writeln!(out, "        packets: {}, bytes: {}", sa.packets, sa.bytes);
        for (reason, n) in &sa.drops {
            let _ = writeln!(out, "        drops ({reason}): {n}");
        }
    }
}

/// `(addr/mask/prot/port)`.
fn ident(i: &IdentView) -> String {
    format!("({}/{}/{}/{})", i.addr, i.mask, i.protocol, i.port)
}

/// `show crypto ipsec sa peer A.B.C.D`: the flows with that current peer.
pub fn filter_peer(flows: &[IpsecSaView], peer: IpAddr) -> Vec<IpsecSaView> {
    flows
        .iter()
        .filter(|f| f.current_peer == peer)
        .cloned()
        .collect()
}

/// `show crypto ipsec sa map NAME`: the flows of that crypto map.
pub fn filter_map(flows: &[IpsecSaView], map: &str) -> Vec<IpsecSaView> {
    flows
        .iter()
        .filter(|f| f.crypto_map == map)
        .cloned()
        .collect()
}

/// `show crypto ipsec transform-set`, in IOS's layout (the reference names the command but
/// shows no output).
pub fn render_transform_sets(sets: &[TransformSetView]) -> String {
    let mut out = String::new();
    for t in sets {
        let _ = write!(
            out,
            "Transform set {}: {{ {}  }}\n   will negotiate = {{ {},  }},\n\n",
            t.name,
            t.transforms.join(" "),
            t.mode
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::show::samples::{
        unwrap_document, words_per_line, BRANCH_IPSEC_SA, ROUTER_IPSEC_SA,
    };
    use crate::ctl::testing;

    /// The IOS 12.2 router's `sh cr ipsec sa`, byte for byte, once the document's wraps are
    /// undone, with every line newer IOS changed replaced by the newer line (the Branch1
    /// sample below checks those). The differences, all newer IOS's:
    /// - `local addr. A` -> `local addr A`, and a `protected vrf: (none)` line;
    /// - `current_peer: A` -> `current_peer A port 500`;
    /// - `#pkts digest N` / `#pkts verify N` gain a colon;
    /// - `#pkts decompress failed` moves to a `#pkts not decompressed: 0, ...` line;
    /// - `path mtu 1500, media mtu 1500` -> `path mtu 1500, ip mtu 1500, ip mtu idb IF`;
    /// - `current outbound spi: 3803A0C1` -> `0x3803A0C1(939761857)`, like the SA lines;
    /// - `slot: 0, conn id: 200, flow_id: 1, ...` -> `conn id: 200, flow_id: SW:1, ...`;
    /// - each SA ends with `Status: ACTIVE`.
    ///
    /// The document also wrapped the ident lines after their colon with spaces, not a tab;
    /// on the device each is one line (as Branch1's are).
    #[test]
    fn golden_ipsec_sa_router() {
        let expected = unwrap_document(ROUTER_IPSEC_SA)
            .replace("): \n   (", "): (")
            .replace("local addr. ", "local addr ")
            .replace(
                "\n   local  ident",
                "\n   protected vrf: (none)\n   local  ident",
            )
            .replace(
                "current_peer: 172.16.172.34",
                "current_peer 172.16.172.34 port 500",
            )
            .replace("#pkts digest 3", "#pkts digest: 3")
            .replace("#pkts verify 3", "#pkts verify: 3")
            .replace(
                "#pkts compr. failed: 0, #pkts decompress failed: 0",
                "#pkts compr. failed: 0\n    #pkts not decompressed: 0, #pkts decompress failed: 0",
            )
            .replace(
                "path mtu 1500, media mtu 1500",
                "path mtu 1500, ip mtu 1500, ip mtu idb FastEthernet0",
            )
            .replace("spi: 3803A0C1", "spi: 0x3803A0C1(939761857)")
            .replace(
                "slot: 0, conn id: 200, flow_id: 1,",
                "conn id: 200, flow_id: SW:1,",
            )
            .replace(
                "slot: 0, conn id: 201, flow_id: 2,",
                "conn id: 201, flow_id: SW:2,",
            )
            .replace(
                "replay detection support: Y\n",
                "replay detection support: Y\n        Status: ACTIVE\n",
            );
        // The substitutions above must each have applied.
        assert_eq!(expected.matches("Status: ACTIVE").count(), 2);
        assert!(expected.contains("flow_id: SW:2"));
        assert_eq!(render_sa(&testing::router_ipsec_sas(), false), expected);
    }

    /// Branch1's output (a newer IOS): the document removed its indentation and blank
    /// lines, so the words of each non-empty line are compared.
    #[test]
    fn golden_ipsec_sa_branch() {
        let ours = render_sa(&testing::branch_ipsec_sas(), false);
        assert_eq!(words_per_line(&ours), words_per_line(BRANCH_IPSEC_SA));
    }

    #[test]
    fn modes_and_filters() {
        let mut flows = testing::router_ipsec_sas();
        flows[0].inbound_esp[0].udp_encapsulated = true;
        flows[0].outbound_esp[0].mode = "Transport".into();
        flows[0].current_outbound_spi = None;
        let text = render_sa(&flows, true);
        assert!(text.contains("in use settings ={Tunnel UDP-Encaps, }"));
        assert!(text.contains("in use settings ={Transport, }"));
        assert!(text.contains("current outbound spi: 0x0(0)"));
        assert!(text.contains("        drops (replay): 1\n"));
        let peer = "172.16.172.34".parse().unwrap();
        assert_eq!(filter_peer(&flows, peer).len(), 1);
        assert!(filter_peer(&flows, "10.9.9.9".parse().unwrap()).is_empty());
        assert_eq!(filter_map(&flows, "vpn").len(), 1);
        assert!(filter_map(&flows, "other").is_empty());
        assert_eq!(render_sa(&[], false), "\n");
    }

    /// Two flows on one interface share its header.
    #[test]
    fn flows_grouped_by_interface() {
        let mut flows = testing::router_ipsec_sas();
        flows.push(flows[0].clone());
        let text = render_sa(&flows, false);
        assert_eq!(text.matches("interface: FastEthernet0").count(), 1);
        assert_eq!(text.matches("protected vrf").count(), 2);
    }

    /// No reference sample: this pins IOS's layout as we print it.
    #[test]
    fn transform_set_layout() {
        let text = render_transform_sets(&testing::transform_sets());
        assert_eq!(
            text,
            "Transform set myset: { esp-des esp-md5-hmac  }\n   will negotiate = { Tunnel,  },\n\n"
        );
    }
}
