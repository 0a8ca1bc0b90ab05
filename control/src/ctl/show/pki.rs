//! `show crypto pki certificates`, `show crypto pki trustpoints` and `show crypto pki crls`.

use std::fmt::Write;

use crate::ctl::view::{CertificateView, CrlView, TrustpointView};

use super::ios_time;

/// `show crypto pki certificates`: newer IOS's fields (the Branch routers' sample) with
/// IOS's indentation (the IOS 12.2 samples'), one block per certificate.
pub fn render_certificates(certs: &[CertificateView]) -> String {
    let mut out = String::new();
    for c in certs {
        let _ = write!(
            out,
            "{}\n  Status: {}\n  Certificate Serial Number: 0x{}\n  Certificate Usage: {}\n  Issuer:\n",
            c.kind, c.status, c.serial, c.usage
        );
        for rdn in &c.issuer {
            let _ = writeln!(out, "    {rdn}");
        }
        out.push_str("  Subject:\n");
        if let Some(name) = &c.subject_name {
            let _ = writeln!(out, "    Name: {name}");
        }
        for rdn in &c.subject {
            let _ = writeln!(out, "    {rdn}");
        }
        if !c.crl_distribution_points.is_empty() {
            out.push_str("  CRL Distribution Points:\n");
            for url in &c.crl_distribution_points {
                let _ = writeln!(out, "    {url}");
            }
        }
        let _ = write!(
            out,
            "  Validity Date:\n    start date: {}\n    end   date: {}\n  Associated Trustpoints: {}\n\n",
            ios_time(c.not_before),
            ios_time(c.not_after),
            c.trustpoints.join(" ")
        );
    }
    out
}

/// `show crypto pki trustpoints`, in newer IOS's layout (the reference has no sample).
pub fn render_trustpoints(tps: &[TrustpointView]) -> String {
    let mut out = String::new();
    for t in tps {
        let _ = writeln!(out, "Trustpoint {}:", t.name);
        out.push_str("    Subject Name: \n");
        for rdn in &t.ca_subject {
            let _ = writeln!(out, "    {rdn}");
        }
        let _ = writeln!(out, "          Serial Number (hex): {}", t.ca_serial);
        if t.certificate_configured {
            out.push_str("    Certificate configured.\n");
        }
        let _ = writeln!(out, "    Revocation check: {}", t.revocation_check);
        if let Some(src) = &t.crl_source {
            let _ = writeln!(out, "    CRL source: {src}");
        }
        out.push('\n');
    }
    out
}

/// `show crypto pki crls`: IOS 12.2's `show crypto ca crls` layout, plus the revoked
/// serial numbers (newer IOS lists them in the same place).
pub fn render_crls(crls: &[CrlView]) -> String {
    let mut out = String::new();
    for c in crls {
        let next = c.next_update.map(ios_time).unwrap_or_else(|| "none".into());
        let _ = write!(
            out,
            "CRL Issuer Name: \n    {}\n    LastUpdate: {}\n    NextUpdate: {}\n    Retrieved from CRL Distribution Point: \n      {}\n",
            c.issuer,
            ios_time(c.last_update),
            next,
            c.retrieved_from
        );
        if !c.revoked.is_empty() {
            let _ = writeln!(out, "    Revoked certificates: {}", c.revoked.len());
            for r in &c.revoked {
                let _ = writeln!(
                    out,
                    "      Serial Number: 0x{}  Revocation Date: {}",
                    r.serial,
                    ios_time(r.revoked_at)
                );
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::show::samples::{dedent, words_per_line, BRANCH_PKI_CERTIFICATES, ROUTER_CRLS};
    use crate::ctl::testing;
    use crate::ctl::view::RevokedView;

    /// Branch1's `show crypto pki certificates` (a newer IOS). The document removed the
    /// indentation and wrapped the long LDAP URL at 80 columns (we print it on one line, as
    /// the device does: the document's Branch2 copy wraps it elsewhere), so the words of each
    /// line are compared once the URL is joined. Times: the sample's are AEST, ours UTC.
    #[test]
    fn golden_certificates_branch() {
        let joined = BRANCH_PKI_CERTIFICATES
            .replace("CN=S\nervices", "CN=Services")
            .replace("objectCla\nss=", "objectClass=")
            .replace(" AEST ", " UTC ");
        let ours = render_certificates(&testing::branch_certificates());
        assert_eq!(words_per_line(&ours), words_per_line(&joined));
    }

    /// The router's `sh crypto ca crls`, byte for byte, once the document's 4-space indent
    /// is removed; its times are PST, ours UTC.
    #[test]
    fn golden_crls_router() {
        let expected = dedent(ROUTER_CRLS, 4).replace(" PST ", " UTC ");
        assert_eq!(render_crls(&testing::router_crls()), expected);
    }

    #[test]
    fn revoked_serials_listed() {
        let mut crls = testing::router_crls();
        crls[0].revoked.push(RevokedView {
            serial: "3B2FD652".into(),
            revoked_at: 0,
        });
        crls[0].next_update = None;
        let text = render_crls(&crls);
        assert!(text.contains("    NextUpdate: none\n"));
        assert!(text.contains(
            "    Revoked certificates: 1\n      Serial Number: 0x3B2FD652  Revocation Date: 00:00:00 UTC Jan 1 1970\n"
        ));
    }

    /// No reference sample: this pins our layout.
    #[test]
    fn trustpoint_layout() {
        assert_eq!(
            render_trustpoints(&testing::trustpoints()),
            "Trustpoint WIN2003:
    Subject Name: 
    cn=WIN2003
    dc=amit
    dc=com
          Serial Number (hex): 6462CFFA77B593A74DB4E13D530CBC02
    Certificate configured.
    Revocation check: crl
    CRL source: http://amit-ed0d48583a.amit.com/CertEnroll/WIN2003.crl

"
        );
    }
}
