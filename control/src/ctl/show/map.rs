//! `show crypto map`.

use std::fmt::Write;

use crate::ctl::view::CryptoMapView;

/// `show crypto map`: the entries in the order given (by map, then sequence number); after
/// the last entry of each map, the interfaces it is applied to, as IOS 12.2 prints them.
pub fn render(entries: &[CryptoMapView]) -> String {
    let mut out = String::new();
    for (i, e) in entries.iter().enumerate() {
        let _ = writeln!(out, "Crypto Map \"{}\" {} {}", e.name, e.seq, e.kind);
        if let Some(dynamic) = &e.dynamic {
            let _ = writeln!(out, "        Dynamic map template tag: {dynamic}");
        } else {
            for p in &e.peers {
                let _ = writeln!(out, "        Peer = {p}");
            }
            match &e.acl_name {
                Some(acl) => {
                    let _ = writeln!(out, "        Extended IP access list {acl}");
                    for line in &e.acl_entries {
                        let _ = writeln!(out, "            {line}");
                    }
                }
                None => out.push_str("        No matching address list set.\n"),
            }
            match e.current_peer {
                Some(p) => {
                    let _ = writeln!(out, "        Current peer: {p}");
                }
                None => out.push_str("        Current peer: none\n"),
            }
            let _ = writeln!(
                out,
                "        Security association lifetime: {} kilobytes/{} seconds",
                e.lifetime_kilobytes, e.lifetime_seconds
            );
            match e.pfs_group {
                Some(g) => {
                    let _ = write!(out, "        PFS (Y/N): Y\n        DH group:  group{g}\n");
                }
                None => out.push_str("        PFS (Y/N): N\n"),
            }
            let _ = writeln!(
                out,
                "        Transform sets={{ {}}}",
                e.transform_sets
                    .iter()
                    .map(|t| format!("{t}, "))
                    .collect::<String>()
            );
        }
        let last_of_map = entries.get(i + 1).is_none_or(|next| next.name != e.name);
        if last_of_map {
            let _ = writeln!(out, "        Interfaces using crypto map {}:", e.name);
            for interface in &e.interfaces {
                let _ = writeln!(out, "                {interface}");
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::show::samples::ROUTER_CRYPTO_MAP;
    use crate::ctl::testing;

    /// The router's `sh cr map`, byte for byte, without the two lines the reference calls
    /// stale entries of that router (`Interfaces using crypto map mymap:` before the map and
    /// `Interfaces using crypto map certificate:` after it: maps with no entries, which a
    /// configuration of ours cannot hold).
    #[test]
    fn golden_crypto_map_router() {
        let expected = ROUTER_CRYPTO_MAP
            .replacen("        Interfaces using crypto map mymap:\n\n", "", 1)
            .replacen("        Interfaces using crypto map certificate:\n", "", 1);
        assert_eq!(render(&testing::router_crypto_maps()), expected);
    }

    #[test]
    fn entries_of_one_map_share_the_interface_list() {
        let mut maps = testing::router_crypto_maps();
        let mut second = maps[0].clone();
        second.seq = 20;
        second.pfs_group = Some(14);
        second.current_peer = None;
        maps.push(second);
        let mut dynamic = maps[0].clone();
        dynamic.seq = 65535;
        dynamic.dynamic = Some("spokes".into());
        maps.push(dynamic);
        let text = render(&maps);
        assert_eq!(text.matches("Interfaces using crypto map vpn:").count(), 1);
        assert!(text.contains("        PFS (Y/N): Y\n        DH group:  group14\n"));
        assert!(text.contains("        Current peer: none\n"));
        assert!(text.contains(
            "Crypto Map \"vpn\" 65535 ipsec-isakmp\n        Dynamic map template tag: spokes\n        Interfaces using crypto map vpn:\n"
        ));
    }
}
