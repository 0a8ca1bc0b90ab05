//! The gateway's phase 1 credentials: Main Mode's [`Credentials`] over the configured
//! trustpoints ([`TrustStore`]) and pre-shared keys (`crypto isakmp key`), with the identity
//! chosen as `crypto isakmp identity` says.

use std::net::IpAddr;
use std::time::SystemTime;

use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::config::{IdentityMode, PreSharedKey};
use crate::ike::auth::{AuthError, Credentials, IdentityPayload, PeerIdentity};
use crate::isakmp::id::Identity;
use crate::pki::identity::{own_identity, IdentityClaim};
use crate::pki::verify::CertError;
use crate::pki::{verify_hash_cert, TrustStore};

/// The credentials of this gateway toward one local address.
pub struct GatewayCredentials {
    /// Trustpoints (may be empty when only pre-shared keys are used).
    pub store: TrustStore,
    pub keys: Vec<PreSharedKey>,
    pub identity: IdentityMode,
    /// Our address on the IKE side (for `identity address`).
    pub local: IpAddr,
    /// `hostname.domain`, for `identity hostname` and the FQDN fallback.
    pub fqdn: String,
}

/// What an ID payload claims, in the PKI's terms; None for types a peer cannot be
/// authenticated as (subnets and ranges are Quick Mode proxies, not phase 1 identities).
pub fn claim_of(id: &Identity) -> Option<IdentityClaim> {
    Some(match id {
        Identity::Ipv4(a) => IdentityClaim::Ipv4(*a),
        Identity::Ipv6(a) => IdentityClaim::Ipv6(*a),
        Identity::Fqdn(s) => IdentityClaim::Fqdn(s.clone()),
        Identity::UserFqdn(s) => IdentityClaim::UserFqdn(s.clone()),
        Identity::DerAsn1Dn(d) => IdentityClaim::Dn(d.clone()),
        _ => return None,
    })
}

fn payload_of(claim: IdentityClaim) -> IdentityPayload {
    let id = match claim {
        IdentityClaim::Ipv4(a) => Identity::Ipv4(a),
        IdentityClaim::Ipv6(a) => Identity::Ipv6(a),
        IdentityClaim::Fqdn(s) => Identity::Fqdn(s),
        IdentityClaim::UserFqdn(s) => Identity::UserFqdn(s),
        IdentityClaim::Dn(d) => Identity::DerAsn1Dn(d),
    };
    // IOS sends protocol 17, port 500 in its phase 1 ID payloads.
    IdentityPayload {
        protocol: 17,
        port: 500,
        id,
    }
}

fn cert_error(e: CertError) -> AuthError {
    match e {
        CertError::IdMismatch { .. } => AuthError::IdMismatch(e.to_string()),
        other => AuthError::Certificate(other.to_string()),
    }
}

impl Credentials for GatewayCredentials {
    fn local_id(&self) -> IdentityPayload {
        let claim = match self.store.trustpoints().first() {
            Some(tp) => own_identity(tp.cert(), self.identity, self.local, &self.fqdn),
            None => match self.identity {
                IdentityMode::Hostname => IdentityClaim::Fqdn(self.fqdn.clone()),
                _ => IdentityClaim::from(self.local),
            },
        };
        payload_of(claim)
    }

    fn preshared_key(&self, peer: IpAddr) -> Option<Zeroizing<Vec<u8>>> {
        self.keys
            .iter()
            .filter(|k| k.peer.contains(peer))
            .max_by_key(|k| k.peer.len)
            .map(|k| Zeroizing::new(k.secret.expose().to_vec()))
    }

    fn sign(&self, hash: &[u8], requested_cas: &[Vec<u8>]) -> Result<Vec<u8>, AuthError> {
        // The trustpoint whose certificate own_cert_chain sends for the same request.
        let tp = self
            .store
            .select_own_cert(requested_cas)
            .ok_or_else(|| AuthError::Other("no trustpoint: rsa-sig needs one".into()))?;
        tp.sign(hash)
            .map_err(|e| AuthError::Other(format!("signing with our key: {e}")))
    }

    fn own_cert_chain(&self, requested_cas: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.store
            .select_own_cert(requested_cas)
            .map(|tp| tp.cert_chain_der())
            .unwrap_or_default()
    }

    fn ca_names(&self) -> Vec<Vec<u8>> {
        self.store.ca_distinguished_names()
    }

    fn verify_peer(
        &self,
        _peer: IpAddr, // the exchange names the peer in its refusal line
        id: &IdentityPayload,
        certs: &[Vec<u8>],
        hash: &[u8],
        sig: &[u8],
    ) -> Result<PeerIdentity, AuthError> {
        if certs.is_empty() {
            return Err(AuthError::NoCertificate);
        }
        let claim = claim_of(&id.id)
            .ok_or_else(|| AuthError::IdMismatch(format!("{:?} is no phase 1 identity", id.id)))?;
        let verified = self
            .store
            .verify_peer_identity(certs, &claim, SystemTime::now())
            .map_err(cert_error)?;
        if !verify_hash_cert(&verified.cert, hash, sig) {
            return Err(AuthError::BadSignature);
        }
        Ok(PeerIdentity {
            id: id.id.clone(),
            certificate: verified.cert.to_der().ok(),
        })
    }
}

/// The end-entity certificate's subject, for log lines.
pub fn subject_of(der: &[u8]) -> Option<String> {
    X509::from_der(der)
        .ok()
        .map(|c| crate::pki::dn_string(c.subject_name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};

    use crate::ike::main_mode::{Initiator, MainModeConfig, Responder, Step};
    use crate::ike::proposal::{AuthMethod, Phase1Policy};
    use crate::ikecrypto::{DhGroup, HashAlg, IkeCipher};
    use crate::pki::{RevocationCheck, Trustpoint};

    fn key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    /// A certificate for `cn` signed by `issuer` (self-signed when None); `host` adds a
    /// dNSName and `ip` an iPAddress subjectAltName.
    fn cert(
        cn: &str,
        k: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        host: Option<&str>,
        serial: u32,
    ) -> X509 {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let n = n.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(issuer.map(|(c, _)| c.subject_name()).unwrap_or(&n))
            .unwrap();
        b.set_pubkey(k).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        match host {
            None => {
                b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                    .unwrap();
                b.append_extension(KeyUsage::new().key_cert_sign().crl_sign().build().unwrap())
                    .unwrap();
            }
            Some(h) => {
                let san = SubjectAlternativeName::new()
                    .dns(h)
                    .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
                    .unwrap();
                b.append_extension(san).unwrap();
                b.append_extension(KeyUsage::new().digital_signature().build().unwrap())
                    .unwrap();
            }
        }
        b.sign(issuer.map(|(_, k)| k).unwrap_or(k), MessageDigest::sha256())
            .unwrap();
        b.build()
    }

    fn gateway(
        ca: &X509,
        cert: X509,
        key: PKey<Private>,
        fqdn: &str,
        local: &str,
    ) -> GatewayCredentials {
        let tp =
            Trustpoint::new("CA1", vec![ca.clone()], cert, key, RevocationCheck::None).unwrap();
        GatewayCredentials {
            store: TrustStore::new(vec![tp]).unwrap(),
            keys: vec![],
            identity: IdentityMode::Address,
            local: local.parse().unwrap(),
            fqdn: fqdn.into(),
        }
    }

    fn next<S, N>(s: Step<S, N>) -> (N, Vec<u8>) {
        match s {
            Step::Next(n, d) => (n, d),
            _ => panic!("exchange did not advance"),
        }
    }

    fn rsa_policy() -> Vec<Phase1Policy> {
        vec![Phase1Policy {
            priority: 10,
            cipher: IkeCipher::TripleDes,
            hash: HashAlg::Sha1,
            auth: AuthMethod::RsaSig,
            group: DhGroup::Modp1024,
            lifetime_secs: 86400,
        }]
    }

    /// The hub and a spoke, each with a certificate from the same CA that holds its FQDN
    /// but not its address: as IOS does, each sends its FQDN (identity address falls back)
    /// and each verifies the other's chain, identity and signature.
    #[test]
    fn main_mode_rsa_sig_with_trustpoints() {
        let ca_key = key();
        let ca = cert("lab CA", &ca_key, None, None, 1);
        let (hk, sk) = (key(), key());
        let hub_cert = cert(
            "hub.example.com",
            &hk,
            Some((&ca, &ca_key)),
            Some("hub.example.com"),
            2,
        );
        let spoke_cert = cert(
            "spoke1.example.com",
            &sk,
            Some((&ca, &ca_key)),
            Some("spoke1.example.com"),
            3,
        );
        let spoke = gateway(&ca, spoke_cert, sk, "spoke1.example.com", "10.99.0.2");
        let hub = gateway(&ca, hub_cert, hk, "hub.example.com", "10.99.0.1");
        assert_eq!(
            spoke.local_id().id,
            Identity::Fqdn("spoke1.example.com".into())
        );
        let (i, r): (SocketAddr, SocketAddr) = (
            "10.99.0.2:500".parse().unwrap(),
            "10.99.0.1:500".parse().unwrap(),
        );
        let ci = Arc::new(MainModeConfig::new(rsa_policy(), Arc::new(spoke)));
        let cr = Arc::new(MainModeConfig::new(rsa_policy(), Arc::new(hub)));
        let (i1, mm1) = Initiator::start(ci, i, r).unwrap();
        let (r2, mm2) = Responder::on_first(cr, &mm1, r, i).unwrap();
        let (i3, mm3) = next(i1.on_message(&mm2, i, r));
        let (r4, mm4) = next(r2.on_message(&mm3, r, i));
        let (i5, mm5) = next(i3.on_message(&mm4, i, r));
        let (sa_r, mm6) = next(r4.on_message(&mm5, r, i));
        let (sa_i, _) = next(i5.on_message(&mm6, i, r));
        assert_eq!(sa_r.peer.id, Identity::Fqdn("spoke1.example.com".into()));
        assert_eq!(sa_i.peer.id, Identity::Fqdn("hub.example.com".into()));
        let spoke_der = sa_r
            .peer
            .certificate
            .as_deref()
            .expect("the spoke's certificate");
        assert_eq!(subject_of(spoke_der).unwrap(), "CN=spoke1.example.com");
        assert_eq!(sa_i.keys.skeyid_d(), sa_r.keys.skeyid_d());
    }

    /// A spoke whose certificate comes from a CA the hub does not trust is refused at MM5.
    #[test]
    fn unknown_ca_is_refused() {
        let ca_key = key();
        let ca = cert("lab CA", &ca_key, None, None, 1);
        let rogue_key = key();
        let rogue = cert("rogue CA", &rogue_key, None, None, 1);
        let (hk, sk) = (key(), key());
        let hub_cert = cert(
            "hub.example.com",
            &hk,
            Some((&ca, &ca_key)),
            Some("hub.example.com"),
            2,
        );
        let spoke_cert = cert(
            "spoke1.example.com",
            &sk,
            Some((&rogue, &rogue_key)),
            Some("spoke1.example.com"),
            3,
        );
        let spoke = gateway(&rogue, spoke_cert, sk, "spoke1.example.com", "10.99.0.2");
        let hub = gateway(&ca, hub_cert, hk, "hub.example.com", "10.99.0.1");
        let (i, r): (SocketAddr, SocketAddr) = (
            "10.99.0.2:500".parse().unwrap(),
            "10.99.0.1:500".parse().unwrap(),
        );
        let ci = Arc::new(MainModeConfig::new(rsa_policy(), Arc::new(spoke)));
        let cr = Arc::new(MainModeConfig::new(rsa_policy(), Arc::new(hub)));
        let (i1, mm1) = Initiator::start(ci, i, r).unwrap();
        let (r2, mm2) = Responder::on_first(cr, &mm1, r, i).unwrap();
        let (i3, mm3) = next(i1.on_message(&mm2, i, r));
        let (r4, mm4) = next(r2.on_message(&mm3, r, i));
        let (_i5, mm5) = next(i3.on_message(&mm4, i, r));
        assert!(matches!(r4.on_message(&mm5, r, i), Step::Failed(_)));
    }

    #[test]
    fn preshared_key_by_most_specific_prefix() {
        use dataplane::esp::Prefix;
        let k = |s: &str, a: &str, len| PreSharedKey {
            secret: crate::config::Secret::new(s.as_bytes().to_vec()),
            peer: Prefix {
                addr: a.parse().unwrap(),
                len,
            },
        };
        let g = GatewayCredentials {
            store: TrustStore::new(vec![]).unwrap(),
            keys: vec![
                k("any", "0.0.0.0", 0),
                k("lab", "10.99.0.0", 24),
                k("host", "10.99.0.2", 32),
            ],
            identity: IdentityMode::Address,
            local: "10.99.0.1".parse().unwrap(),
            fqdn: "hub.example.com".into(),
        };
        let key = |a: &str| g.preshared_key(a.parse().unwrap()).map(|z| z.to_vec());
        assert_eq!(key("10.99.0.2"), Some(b"host".to_vec()));
        assert_eq!(key("10.99.0.7"), Some(b"lab".to_vec()));
        assert_eq!(key("192.0.2.1"), Some(b"any".to_vec()));
        assert_eq!(
            g.local_id().id,
            Identity::Ipv4("10.99.0.1".parse().unwrap())
        );
    }
}
