//! `show crypto isakmp sa [detail]` and `show crypto isakmp policy`.

use std::fmt::Write;

use crate::config::{AuthMethod, DhGroupId, IkeEncryption, IkeHash};
use crate::ctl::view::{IsakmpPolicyView, IsakmpSaView};

use super::hms;

/// The column header of `show crypto isakmp sa`: IOS 12.2's columns and widths, with the
/// `status` column newer IOS added.
const SA_HEADER: &str = "dst             src             state           conn-id    slot status";

/// `show crypto isakmp sa`: IPv4 SAs then IPv6 SAs, in the order given. `slot` is always 0
/// (one software engine). As IOS does, the IPv4 column header is printed even with no SA,
/// the IPv6 one only above IPv6 SAs.
pub fn render_sa(sas: &[IsakmpSaView]) -> String {
    let mut out = String::new();
    for (title, v6) in [("IPv4", false), ("IPv6", true)] {
        let _ = writeln!(out, "{title} Crypto ISAKMP SA");
        let rows: Vec<&IsakmpSaView> = sas.iter().filter(|s| s.dst.is_ipv6() == v6).collect();
        if !v6 || !rows.is_empty() {
            let _ = writeln!(out, "{SA_HEADER}");
        }
        for s in rows {
            let _ = writeln!(
                out,
                "{:<15} {:<15} {:<14} {:>8} {:>7} {}",
                s.dst.to_string(),
                s.src.to_string(),
                s.state,
                s.conn_id,
                0,
                s.status
            );
        }
        out.push('\n');
    }
    out
}

/// `show crypto isakmp sa detail`, in the layout of IOS 12.4 and later (the reference has
/// no sample of it): the capability codes, then per SA its conn-id, ends, status, suite,
/// remaining lifetime and capabilities, and its engine connection.
pub fn render_sa_detail(sas: &[IsakmpSaView]) -> String {
    let mut out = String::from(
        "Codes: C - IKE configuration mode, D - Dead Peer Detection\n\
         \x20      K - Keepalives, N - NAT-traversal\n\
         \x20      T - cTCP encapsulation, X - IKE Extended Authentication\n\
         \x20      psk - Preshared key, rsig - RSA signature\n\
         \x20      renc - RSA encryption\n",
    );
    for (title, v6) in [("IPv4", false), ("IPv6", true)] {
        let _ = writeln!(out, "{title} Crypto ISAKMP SA");
        let rows: Vec<&IsakmpSaView> = sas.iter().filter(|s| s.dst.is_ipv6() == v6).collect();
        if rows.is_empty() {
            out.push('\n');
            continue;
        }
        out.push_str(
            "\nC-id  Local           Remote          I-VRF  Status Encr   Hash   Auth DH Lifetime Cap.\n\n",
        );
        for s in rows {
            let encr = s.encryption.as_deref().map(compact).unwrap_or_default();
            let hash = s.hash.clone().unwrap_or_default();
            let auth = match s.authentication.as_deref() {
                Some("rsa-sig") => "rsig",
                Some("pre-share") => "psk",
                Some(other) => other,
                None => "",
            };
            let dh = s.dh_group.map(|g| g.to_string()).unwrap_or_default();
            let life = s.lifetime_remaining.map(hms).unwrap_or_default();
            let line = format!(
                "{:<5} {:<15} {:<15} {:<6} {:<6} {:<6} {:<6} {:<4} {:<2} {:<8} {}",
                s.conn_id,
                s.local().to_string(),
                s.remote().to_string(),
                "",
                s.status,
                encr,
                hash,
                auth,
                dh,
                life,
                s.capabilities.concat()
            );
            let _ = writeln!(out, "{}", line.trim_end());
            let _ = writeln!(out, "       Engine-id:Conn-id =  SW:{}", s.conn_id);
            if let Some(id) = &s.peer_identity {
                let _ = writeln!(out, "       Peer identity: {id}");
            }
            out.push('\n');
        }
    }
    out
}

/// `aes 256` -> `aes256`: the detail table's one-word cipher names.
fn compact(words: &str) -> String {
    words.split_whitespace().collect()
}

/// `show crypto isakmp policy`: one block per policy in the order given (priority order,
/// the default suite last), with the descriptions `crate::config` prints for each
/// algorithm.
pub fn render_policy(policies: &[IsakmpPolicyView]) -> String {
    let mut out = String::new();
    for p in policies {
        match p.priority {
            Some(n) => {
                let _ = writeln!(out, "Protection suite of priority {n}");
            }
            None => out.push_str("Default protection suite\n"),
        }
        let _ = writeln!(
            out,
            "        encryption algorithm:   {}",
            encryption_text(&p.encryption)
        );
        let _ = writeln!(
            out,
            "        hash algorithm:         {}",
            hash_text(&p.hash)
        );
        let _ = writeln!(
            out,
            "        authentication method:  {}",
            auth_text(&p.authentication)
        );
        let group = DhGroupId::new(p.group)
            .map(|g| g.to_string())
            .unwrap_or_else(|| format!("#{}", p.group));
        let _ = writeln!(out, "        Diffie-Hellman group:   {group}");
        let _ = writeln!(
            out,
            "        lifetime:               {} seconds, no volume limit",
            p.lifetime_seconds
        );
    }
    out
}

/// The description IOS prints for an `encryption` keyword (the config's wording).
fn encryption_text(keyword: &str) -> String {
    let e = match keyword {
        "des" => IkeEncryption::Des,
        "3des" => IkeEncryption::TripleDes,
        "aes" => IkeEncryption::Aes128,
        "aes 192" => IkeEncryption::Aes192,
        "aes 256" => IkeEncryption::Aes256,
        other => return other.to_string(),
    };
    e.to_string()
}

fn hash_text(keyword: &str) -> String {
    let h = match keyword {
        "md5" => IkeHash::Md5,
        "sha" => IkeHash::Sha1,
        "sha256" => IkeHash::Sha256,
        "sha384" => IkeHash::Sha384,
        other => return other.to_string(),
    };
    h.to_string()
}

fn auth_text(keyword: &str) -> String {
    let a = match keyword {
        "rsa-sig" => AuthMethod::RsaSig,
        "pre-share" => AuthMethod::PreShare,
        other => return other.to_string(),
    };
    a.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::show::samples::{
        unwrap_document, words_per_line, BRANCH_ISAKMP_SA, ROUTER_ISAKMP_POLICY, ROUTER_ISAKMP_SA,
    };
    use crate::ctl::testing;

    /// The IOS 12.2 router's `sh cr isa sa`, byte for byte, with the two things newer IOS
    /// added and we print: the `status` column and the IPv4 / IPv6 section titles.
    #[test]
    fn golden_isakmp_sa_router() {
        let with_status = ROUTER_ISAKMP_SA
            .replacen("slot\n", "slot status\n", 1)
            .replacen("       0\n", "       0 ACTIVE\n", 1);
        let expected = format!("IPv4 Crypto ISAKMP SA\n{with_status}IPv6 Crypto ISAKMP SA\n\n");
        assert_eq!(render_sa(&testing::router_isakmp_sas()), expected);
    }

    /// Branch1's output (a newer IOS); the document collapsed its spacing, so the words of
    /// each line are compared.
    #[test]
    fn golden_isakmp_sa_branch() {
        let ours = render_sa(&testing::branch_isakmp_sas());
        assert_eq!(words_per_line(&ours), words_per_line(BRANCH_ISAKMP_SA));
    }

    /// The router's `sh cr isa policy`, byte for byte once the document's wraps are undone.
    #[test]
    fn golden_isakmp_policy_router() {
        assert_eq!(
            render_policy(&testing::router_isakmp_policies()),
            unwrap_document(ROUTER_ISAKMP_POLICY)
        );
    }

    #[test]
    fn policy_from_config_and_unknown_words() {
        let default = crate::config::IsakmpPolicy::default_suite();
        let v = IsakmpPolicyView::from(&default[0]);
        assert_eq!(v.priority, None);
        assert_eq!(v.hash, "sha");
        let odd = IsakmpPolicyView {
            priority: Some(5),
            encryption: "aes 256".into(),
            hash: "sha384".into(),
            authentication: "pre-share".into(),
            group: 21,
            lifetime_seconds: 3600,
        };
        let text = render_policy(&[odd]);
        assert!(text.contains("AES - Advanced Encryption Standard (256 bit keys)."));
        assert!(text.contains("Diffie-Hellman group:   #21\n"));
        assert!(text.contains("Pre-Shared Key"));
    }

    /// No reference sample exists for the detail form: this pins our layout.
    #[test]
    fn detail_layout() {
        let mut sas = testing::branch_isakmp_sas();
        sas[0].capabilities = vec!["D".into(), "N".into()];
        let text = render_sa_detail(&sas);
        let expected = "Codes: C - IKE configuration mode, D - Dead Peer Detection
       K - Keepalives, N - NAT-traversal
       T - cTCP encapsulation, X - IKE Extended Authentication
       psk - Preshared key, rsig - RSA signature
       renc - RSA encryption
IPv4 Crypto ISAKMP SA

C-id  Local           Remote          I-VRF  Status Encr   Hash   Auth DH Lifetime Cap.

1001  10.1.1.1        10.2.2.1               ACTIVE 3des   md5    rsig 1  23:59:58 DN
       Engine-id:Conn-id =  SW:1001
       Peer identity: Branch2.amit.com

IPv6 Crypto ISAKMP SA

";
        assert_eq!(text, expected);
    }

    #[test]
    fn ipv6_sas_in_their_own_section() {
        let mut sas = testing::branch_isakmp_sas();
        sas[0].dst = "2001:db8::2".parse().unwrap();
        sas[0].src = "2001:db8::1".parse().unwrap();
        let text = render_sa(&sas);
        assert!(text.starts_with(&format!(
            "IPv4 Crypto ISAKMP SA\n{SA_HEADER}\n\nIPv6 Crypto ISAKMP SA\n{SA_HEADER}\n"
        )));
        assert_eq!(
            render_sa(&[]),
            format!("IPv4 Crypto ISAKMP SA\n{SA_HEADER}\n\nIPv6 Crypto ISAKMP SA\n\n")
        );
        assert!(text.contains("2001:db8::2     2001:db8::1     QM_IDLE"));
    }
}
