//! Our initiator against our responder, in memory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Name, X509};
use zeroize::Zeroizing;

use super::auth::{pkcs1_sign_raw, pkcs1_verify_raw};
use super::*;
use crate::ikecrypto::{keys as ikekeys, DhGroup, HashAlg, IkeCipher};
use crate::isakmp::header::HEADER_LEN;
use crate::isakmp::id::{self, Identity};
use crate::isakmp::message::{parse_header, Message, Payload};
use crate::isakmp::notify::NotifyType;
use crate::isakmp::vendor::KnownVendor;
use crate::isakmp::{delete, ExchangeType, PayloadType, ProtocolId};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The initiator and the responder as each sees itself.
fn ia() -> SocketAddr {
    addr("10.99.0.1:500")
}
fn ra() -> SocketAddr {
    addr("10.99.0.2:500")
}

// --- test credentials -------------------------------------------------------------------

struct Pki {
    ca_key: PKey<Private>,
    ca: X509,
    /// (key, certificate) of gw-a.example.com and gw-b.example.com, issued by the CA.
    a: (PKey<Private>, X509),
    b: (PKey<Private>, X509),
    /// A key nobody certified.
    rogue: PKey<Private>,
    /// A self-signed CA nobody trusts, and a gw-a certificate it issued.
    other_ca: (PKey<Private>, X509),
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_text("C", "CH").unwrap();
    n.append_entry_by_text("O", "Test").unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

fn cert(
    cn: &str,
    dns: Option<&str>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(cn.len() as u32 + 7).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    match issuer {
        Some((c, _)) => b.set_issuer_name(c.subject_name()).unwrap(),
        None => b.set_issuer_name(&name(cn)).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if let Some(d) = dns {
        let san = SubjectAlternativeName::new()
            .dns(d)
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    let signer = issuer.map(|(_, k)| k).unwrap_or(key);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = rsa_key();
        let ca = cert("Test CA", None, &ca_key, None);
        let ka = rsa_key();
        let ca_ref = Some((&ca, &ca_key));
        let a = cert("gw-a", Some("gw-a.example.com"), &ka, ca_ref);
        let kb = rsa_key();
        let b = cert("gw-b", Some("gw-b.example.com"), &kb, ca_ref);
        let ok = rsa_key();
        let oc = cert("Other CA", None, &ok, None);
        Pki {
            ca_key,
            ca,
            a: (ka, a),
            b: (kb, b),
            rogue: rsa_key(),
            other_ca: (ok, oc),
        }
    })
}

/// Credentials over openssl objects: a pre-shared key for any peer, or an RSA key, its
/// certificate and the one CA we trust.
#[derive(Clone)]
struct TestCreds {
    id: IdentityPayload,
    psk: Option<Vec<u8>>,
    key: Option<PKey<Private>>,
    cert: Option<X509>,
    ca: Option<X509>,
}

impl TestCreds {
    fn psk(local: SocketAddr, psk: &[u8]) -> TestCreds {
        let IpAddr::V4(v4) = local.ip() else {
            panic!("IPv4 only here")
        };
        TestCreds {
            id: id::Repr {
                protocol: 17,
                port: 500,
                id: Identity::Ipv4(v4),
            },
            psk: Some(psk.to_vec()),
            key: None,
            cert: None,
            ca: None,
        }
    }

    fn rsa(fqdn: &str, key: &PKey<Private>, cert: &X509) -> TestCreds {
        TestCreds {
            id: id::Repr {
                protocol: 17,
                port: 500,
                id: Identity::Fqdn(fqdn.into()),
            },
            psk: None,
            key: Some(key.clone()),
            cert: Some(cert.clone()),
            ca: Some(pki().ca.clone()),
        }
    }
}

impl Credentials for TestCreds {
    fn local_id(&self) -> IdentityPayload {
        self.id.clone()
    }

    fn preshared_key(&self, _peer: IpAddr) -> Option<Zeroizing<Vec<u8>>> {
        self.psk.clone().map(Zeroizing::new)
    }

    fn sign(&self, hash: &[u8], _requested_cas: &[Vec<u8>]) -> Result<Vec<u8>, AuthError> {
        let k = self.key.as_ref().ok_or(AuthError::Other("no key".into()))?;
        pkcs1_sign_raw(k, hash)
    }

    fn own_cert_chain(&self, requested_cas: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let Some(c) = &self.cert else { return vec![] };
        let issuer = c.issuer_name().to_der().unwrap();
        if requested_cas.is_empty() || requested_cas.contains(&issuer) {
            vec![c.to_der().unwrap()]
        } else {
            vec![]
        }
    }

    fn ca_names(&self) -> Vec<Vec<u8>> {
        self.ca
            .iter()
            .map(|c| c.subject_name().to_der().unwrap())
            .collect()
    }

    fn verify_peer(
        &self,
        _peer: IpAddr,
        id: &IdentityPayload,
        certs: &[Vec<u8>],
        hash: &[u8],
        sig: &[u8],
    ) -> Result<PeerIdentity, AuthError> {
        let der = certs.first().ok_or(AuthError::NoCertificate)?;
        let cert = X509::from_der(der).map_err(|e| AuthError::Certificate(e.to_string()))?;
        let ca = self
            .ca
            .as_ref()
            .ok_or(AuthError::Certificate("no CA".into()))?;
        if !cert.verify(&ca.public_key().unwrap()).unwrap_or(false) {
            return Err(AuthError::Certificate("not issued by a trusted CA".into()));
        }
        let matches = match &id.id {
            Identity::Fqdn(n) => cert
                .subject_alt_names()
                .is_some_and(|s| s.iter().any(|g| g.dnsname() == Some(n.as_str()))),
            Identity::DerAsn1Dn(d) => cert.subject_name().to_der().unwrap() == *d,
            _ => false,
        };
        if !matches {
            return Err(AuthError::IdMismatch(format!(
                "identity {} does not match the certificate",
                id.id
            )));
        }
        pkcs1_verify_raw(&cert.public_key().unwrap(), hash, sig)?;
        Ok(PeerIdentity {
            id: id.id.clone(),
            certificate: Some(der.clone()),
        })
    }
}

// --- configurations ---------------------------------------------------------------------

fn policy(
    priority: u32,
    cipher: IkeCipher,
    hash: HashAlg,
    auth: AuthMethod,
    group: DhGroup,
) -> Phase1Policy {
    Phase1Policy {
        priority,
        cipher,
        hash,
        auth,
        group,
        lifetime_secs: 86400,
    }
}

fn cfg(policies: Vec<Phase1Policy>, creds: TestCreds) -> Arc<MainModeConfig> {
    Arc::new(MainModeConfig::new(policies, Arc::new(creds)))
}

fn psk_pair(
    p: Phase1Policy,
    psk_i: &[u8],
    psk_r: &[u8],
) -> (Arc<MainModeConfig>, Arc<MainModeConfig>) {
    (
        cfg(vec![p], TestCreds::psk(ia(), psk_i)),
        cfg(vec![p], TestCreds::psk(ra(), psk_r)),
    )
}

fn rsa_pair(p: Phase1Policy) -> (Arc<MainModeConfig>, Arc<MainModeConfig>) {
    let k = pki();
    (
        cfg(vec![p], TestCreds::rsa("gw-a.example.com", &k.a.0, &k.a.1)),
        cfg(vec![p], TestCreds::rsa("gw-b.example.com", &k.b.0, &k.b.1)),
    )
}

// --- step helpers -----------------------------------------------------------------------

#[track_caller]
fn next<S: std::fmt::Debug, N>(s: Step<S, N>) -> (N, Vec<u8>) {
    match s {
        Step::Next(n, d) => (n, d),
        Step::Retransmit(st, _) => panic!("retransmit in {st:?}"),
        Step::Ignored(st, r) => panic!("ignored: {} in {st:?}", r.error),
        Step::Failed(r) => panic!("failed: {}", r.error),
    }
}

#[track_caller]
fn ignored<S, N>(s: Step<S, N>) -> (S, Rejection) {
    match s {
        Step::Ignored(st, r) => (st, r),
        Step::Next(..) => panic!("accepted"),
        Step::Retransmit(..) => panic!("retransmit"),
        Step::Failed(r) => panic!("failed: {}", r.error),
    }
}

#[track_caller]
fn failed<S, N>(s: Step<S, N>) -> Rejection {
    match s {
        Step::Failed(r) => r,
        Step::Next(..) => panic!("accepted"),
        Step::Retransmit(..) => panic!("retransmit"),
        Step::Ignored(_, r) => panic!("ignored: {}", r.error),
    }
}

#[track_caller]
fn retransmit<S, N>(s: Step<S, N>) -> (S, Vec<u8>) {
    match s {
        Step::Retransmit(st, d) => (st, d),
        Step::Next(..) => panic!("accepted"),
        Step::Ignored(_, r) => panic!("ignored: {}", r.error),
        Step::Failed(r) => panic!("failed: {}", r.error),
    }
}

/// The notification type of an Informational message we built.
fn notify_type(msg: &[u8]) -> NotifyType {
    let m = Message::parse(msg).unwrap();
    assert_eq!(m.header.exchange_type, ExchangeType::INFORMATIONAL);
    match &m.payloads[..] {
        [Payload::Notification(n)] => {
            assert_eq!(n.protocol, ProtocolId::ISAKMP);
            assert_eq!(n.spi.len(), 16);
            n.message_type
        }
        other => panic!("not one notification: {other:?}"),
    }
}

/// The notification type of an encrypted Informational message we built after refusing
/// `refused` (MM5 or MM6), decrypted with the refusing side's `keys` (IV from the refused
/// message's last block) and its HASH(1) checked.
fn protected_notify_type(
    msg: &[u8],
    keys: &crate::ikecrypto::keys::Phase1Keys,
    cipher: IkeCipher,
    refused: &[u8],
) -> NotifyType {
    use crate::ikecrypto::keys as k;
    let (h, body) = parse_header(msg).unwrap();
    assert_eq!(h.exchange_type, ExchangeType::INFORMATIONAL);
    assert!(
        h.flags.encryption(),
        "the notification after MM4 is encrypted"
    );
    let (_, rbody) = parse_header(refused).unwrap();
    let bs = cipher.block_size();
    let iv = k::phase2_iv(keys.hash(), &rbody[rbody.len() - bs..], h.message_id, bs);
    let pt = cipher.decrypt(keys.enc_key(), &iv, body).unwrap();
    let chain = crate::isakmp::payload::RawChain::walk(h.next_payload, &pt, true).unwrap();
    let want = k::informational_hash(keys.hash(), keys.skeyid_a(), h.message_id, chain.after(0));
    // the same message in clear, to parse its payloads
    let mut clear = vec![0u8; HEADER_LEN];
    crate::isakmp::header::Repr {
        flags: Default::default(),
        length: (HEADER_LEN + chain.end) as u32,
        ..h
    }
    .emit(&mut clear);
    clear.extend_from_slice(&pt[..chain.end]);
    match &Message::parse(&clear).unwrap().payloads[..] {
        [Payload::Hash(hash), Payload::Notification(n)] => {
            assert_eq!(hash.data, want, "HASH(1)");
            assert_eq!(n.protocol, ProtocolId::ISAKMP);
            assert_eq!(n.spi.len(), 16);
            n.message_type
        }
        other => panic!("not HASH + one notification: {other:?}"),
    }
}

fn payload_kinds(msg: &[u8]) -> Vec<PayloadType> {
    Message::parse(msg)
        .unwrap()
        .payloads
        .iter()
        .map(Payload::kind)
        .collect()
}

/// The whole exchange without NAT; checks what both sides must agree on.
fn handshake(ci: Arc<MainModeConfig>, cr: Arc<MainModeConfig>) -> (Phase1Sa, Phase1Sa) {
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    assert_eq!((i5.local(), i5.remote()), (ia(), ra()), "no NAT, no float");
    let (sa_r, mm6) = next(r4.on_message(&mm5, ra(), ia()));
    let (sa_i, nothing) = next(i5.on_message(&mm6, ia(), ra()));
    assert!(nothing.is_empty());
    for (m, e) in [(&mm1, false), (&mm2, false), (&mm3, false), (&mm4, false)] {
        let (h, _) = parse_header(m).unwrap();
        assert_eq!(h.flags.encryption(), e);
        assert_eq!(h.message_id, 0);
        assert_eq!(h.exchange_type, ExchangeType::MAIN_MODE);
    }
    for m in [&mm5, &mm6] {
        let (h, body) = parse_header(m).unwrap();
        assert!(h.flags.encryption());
        assert_eq!(h.message_id, 0);
        assert_eq!(h.next_payload, PayloadType::ID);
        assert_eq!(body.len() % sa_i.policy.cipher.block_size(), 0);
    }
    // Same keys, same chain state, same view of the SA.
    assert_eq!(sa_i.keys.skeyid_d(), sa_r.keys.skeyid_d());
    assert_eq!(sa_i.keys.skeyid_a(), sa_r.keys.skeyid_a());
    assert_eq!(sa_i.keys.skeyid_e(), sa_r.keys.skeyid_e());
    assert_eq!(sa_i.keys.enc_key(), sa_r.keys.enc_key());
    assert_eq!(sa_i.keys.enc_key().len(), sa_i.policy.cipher.key_len());
    assert_eq!(sa_i.cookies(), sa_r.cookies());
    // The same suite (each side names it by its own priority).
    assert_eq!(
        Phase1Policy {
            priority: 0,
            ..sa_i.policy
        },
        Phase1Policy {
            priority: 0,
            ..sa_r.policy
        }
    );
    // The last CBC block is MM6's last ciphertext block, on both sides.
    let block = sa_i.policy.cipher.block_size();
    assert_eq!(sa_i.last_cbc_block, mm6[mm6.len() - block..]);
    assert_eq!(sa_r.last_cbc_block, sa_i.last_cbc_block);
    assert_eq!(sa_i.phase2_iv(0x1234), sa_r.phase2_iv(0x1234));
    assert_eq!(sa_i.role, Role::Initiator);
    assert_eq!(sa_r.role, Role::Responder);
    // Identities.
    assert_eq!(sa_r.peer.id, sa_i.local_id.id);
    assert_eq!(sa_i.peer.id, sa_r.local_id.id);
    // Vendor IDs: DPD both ways, NAT-T RFC 3947, no NAT.
    assert!(sa_i.peer_vendors.dpd && sa_r.peer_vendors.dpd);
    assert_eq!(sa_i.nat_t, Some(KnownVendor::NatTRfc3947));
    assert_eq!(sa_r.nat_t, Some(KnownVendor::NatTRfc3947));
    assert!(!sa_i.nat_local && !sa_i.nat_remote && !sa_r.nat_local && !sa_r.nat_remote);
    assert!(!sa_i.nat_detected());
    assert!(sa_r.initial_contact);
    (sa_i, sa_r)
}

// --- tests ------------------------------------------------------------------------------

#[test]
fn psk_3des_md5_group2() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"cisco123", b"cisco123");
    let (i, r) = handshake(ci, cr);
    assert_eq!(i.peer.id, Identity::Ipv4(Ipv4Addr::new(10, 99, 0, 2)));
    assert_eq!(r.peer.id, Identity::Ipv4(Ipv4Addr::new(10, 99, 0, 1)));
    assert_eq!(i.peer.certificate, None);
    assert_eq!(i.lifetime.as_secs(), 86400);
    assert_eq!(i.keys.skeyid_d().len(), 16);
}

#[test]
fn psk_aes256_sha256_group14() {
    let p = policy(
        10,
        IkeCipher::Aes256,
        HashAlg::Sha256,
        AuthMethod::PreShare,
        DhGroup::Modp2048,
    );
    let (ci, cr) = psk_pair(p, b"a long shared secret", b"a long shared secret");
    let (i, _) = handshake(ci, cr);
    assert_eq!(i.keys.enc_key().len(), 32);
    assert_eq!(i.last_cbc_block.len(), 16);
}

#[test]
fn psk_aes128_sha1_group19() {
    let p = policy(
        10,
        IkeCipher::Aes128,
        HashAlg::Sha1,
        AuthMethod::PreShare,
        DhGroup::Ecp256,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    let (i, _) = handshake(ci, cr);
    assert_eq!(i.keys.skeyid_a().len(), 20);
}

#[test]
fn rsa_sig_3des_sha1_group2() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Sha1,
        AuthMethod::RsaSig,
        DhGroup::Modp1024,
    );
    let (ci, cr) = rsa_pair(p);
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    // MM3 and MM4 carry a CERT_REQ naming our CA, as IOS does.
    let ca_name = pki().ca.subject_name().to_der().unwrap();
    let msg = Message::parse(&mm3).unwrap();
    let Some(Payload::CertificateRequest(c)) = msg.find(PayloadType::CERT_REQ) else {
        panic!("no CERT_REQ in MM3")
    };
    assert_eq!(c.data, ca_name);
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    assert!(payload_kinds(&mm4).contains(&PayloadType::CERT_REQ));
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    let (sa_r, mm6) = next(r4.on_message(&mm5, ra(), ia()));
    let (sa_i, _) = next(i5.on_message(&mm6, ia(), ra()));
    assert_eq!(sa_i.keys.skeyid_d(), sa_r.keys.skeyid_d());
    assert_eq!(sa_i.keys.skeyid_a(), sa_r.keys.skeyid_a());
    assert_eq!(sa_i.keys.skeyid_e(), sa_r.keys.skeyid_e());
    assert_eq!(sa_i.peer.id, Identity::Fqdn("gw-b.example.com".into()));
    assert_eq!(sa_r.peer.id, Identity::Fqdn("gw-a.example.com".into()));
    assert_eq!(sa_i.peer.certificate, Some(pki().b.1.to_der().unwrap()));
    assert_eq!(sa_r.peer.certificate, Some(pki().a.1.to_der().unwrap()));

    // And through the common path.
    let (ci, cr) = rsa_pair(p);
    handshake(ci, cr);
}

#[test]
fn pkcs1_signature_has_no_digest_info() {
    let k = &pki().a.0;
    let hash = [0x5au8; 20];
    let sig = pkcs1_sign_raw(k, &hash).unwrap();
    assert_eq!(sig.len(), 256);
    pkcs1_verify_raw(k, &hash, &sig).unwrap();
    // The signature opens to the bare hash: 00 01 ff .. ff 00 | hash.
    let rsa = k.rsa().unwrap();
    let mut raw = vec![0u8; 256];
    rsa.public_decrypt(&sig, &mut raw, openssl::rsa::Padding::NONE)
        .unwrap();
    assert_eq!(&raw[..2], &[0, 1]);
    assert_eq!(raw[256 - 21], 0);
    assert_eq!(&raw[256 - 20..], &hash);
    assert!(raw[2..256 - 21].iter().all(|&b| b == 0xff));
    assert_eq!(
        pkcs1_verify_raw(k, &[0x5b; 20], &sig),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        pkcs1_verify_raw(&pki().b.0, &hash, &sig),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn wrong_psk_fails_at_mm5_with_authentication_failed() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"cisco123", b"cisco124");
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    let (_i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    let keys = r4.keys().clone();
    let rej = failed(r4.on_message(&mm5, ra(), ia()));
    assert!(
        matches!(rej.error, Error::AuthenticationFailed { method: 1, .. }),
        "{}",
        rej.error
    );
    assert!(rej.error.to_string().starts_with(
        "%CRYPTO-6-IKMP_AUTH_FAIL: Authentication method 1 failed with host 10.99.0.1"
    ));
    assert_eq!(
        protected_notify_type(rej.notify.as_ref().unwrap(), &keys, p.cipher, &mm5),
        NotifyType::AUTHENTICATION_FAILED
    );
}

#[test]
fn psk_hash_mismatch_fails() {
    // Same keys, but the initiator's HASH_I is over a different ID than the one sent: the
    // message decrypts, the hash does not verify. Built by hand from the initiator's keys.
    let p = policy(
        10,
        IkeCipher::Aes128,
        HashAlg::Sha1,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    let seeds = Seeds {
        cookie: Some([1, 2, 3, 4, 5, 6, 7, 8]),
        nonce: Some(vec![0x11; 16]),
        dh_private: Some(vec![0x42; 32]),
    };
    let (i1, mm1) = Initiator::start_seeded(ci, ia(), ra(), seeds).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    // Decrypt MM5 with the initiator's keys, flip a byte of the HASH payload, re-encrypt.
    let keys = i5.keys().clone();
    let (h, body) = parse_header(&mm5).unwrap();
    let g_xi = {
        let msg = Message::parse(&mm3).unwrap();
        match msg.find(PayloadType::KE).unwrap() {
            Payload::KeyExchange(k) => k.data.clone(),
            _ => unreachable!(),
        }
    };
    let g_xr = {
        let msg = Message::parse(&mm4).unwrap();
        match msg.find(PayloadType::KE).unwrap() {
            Payload::KeyExchange(k) => k.data.clone(),
            _ => unreachable!(),
        }
    };
    let iv = ikekeys::phase1_iv(HashAlg::Sha1, &g_xi, &g_xr, 16);
    let mut pt = p.cipher.decrypt(keys.enc_key(), &iv, body).unwrap();
    // ID payload: 4 + 4 + 4 bytes; HASH payload header 4 bytes; flip the first hash byte.
    assert_eq!(pt[0], PayloadType::HASH.0);
    pt[12 + 4] ^= 1;
    let ct = p.cipher.encrypt_no_pad(keys.enc_key(), &iv, &pt).unwrap();
    let mut bad = mm5[..HEADER_LEN].to_vec();
    bad.extend_from_slice(&ct);
    assert_eq!(h.length as usize, bad.len());
    let rej = failed(r4.on_message(&bad, ra(), ia()));
    assert!(
        matches!(&rej.error, Error::AuthenticationFailed { reason, .. } if reason == "hash mismatch"),
        "{}",
        rej.error
    );
    assert_eq!(
        protected_notify_type(rej.notify.as_ref().unwrap(), &keys, p.cipher, &bad),
        NotifyType::AUTHENTICATION_FAILED
    );
}

/// Runs an rsa-sig exchange up to the responder's processing of MM5, with `creds_i` as
/// the initiator's credentials.
/// Main Mode up to MM5 with `creds_i` on the initiator; the responder's step on MM5, its
/// keys, the cipher and MM5.
fn rsa_until_mm5(
    creds_i: TestCreds,
) -> (
    Step<MmR4Sent, Phase1Sa>,
    crate::ikecrypto::keys::Phase1Keys,
    IkeCipher,
    Vec<u8>,
) {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Sha1,
        AuthMethod::RsaSig,
        DhGroup::Modp1024,
    );
    let (_, cr) = rsa_pair(p);
    let ci = cfg(vec![p], creds_i);
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    let (_i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    let keys = r4.keys().clone();
    (r4.on_message(&mm5, ra(), ia()), keys, p.cipher, mm5)
}

#[test]
fn signature_by_the_wrong_key_fails() {
    let k = pki();
    let mut creds = TestCreds::rsa("gw-a.example.com", &k.a.0, &k.a.1);
    creds.key = Some(k.rogue.clone());
    let (step, keys, cipher, mm5) = rsa_until_mm5(creds);
    let rej = failed(step);
    assert!(
        matches!(rej.error, Error::AuthenticationFailed { method: 3, .. }),
        "{}",
        rej.error
    );
    assert_eq!(
        protected_notify_type(rej.notify.as_ref().unwrap(), &keys, cipher, &mm5),
        NotifyType::AUTHENTICATION_FAILED
    );
}

#[test]
fn untrusted_certificate_and_wrong_identity_fail() {
    let k = pki();
    // A certificate from a CA the responder does not trust.
    let (ok, oc) = &k.other_ca;
    let rogue_cert = cert("gw-a", Some("gw-a.example.com"), &k.a.0, Some((oc, ok)));
    let mut creds = TestCreds::rsa("gw-a.example.com", &k.a.0, &rogue_cert);
    creds.ca = Some(oc.clone());
    let (step, keys, cipher, mm5) = rsa_until_mm5(creds);
    let rej = failed(step);
    assert!(
        matches!(rej.error, Error::BadCertificate { .. }),
        "{}",
        rej.error
    );
    assert_eq!(
        protected_notify_type(rej.notify.as_ref().unwrap(), &keys, cipher, &mm5),
        NotifyType::INVALID_CERTIFICATE
    );
    // A valid certificate, but an ID it does not name.
    let creds = TestCreds::rsa("gw-z.example.com", &k.a.0, &k.a.1);
    let rej = failed(rsa_until_mm5(creds).0);
    assert!(
        matches!(rej.error, Error::InvalidId { .. }),
        "{}",
        rej.error
    );
    // Keep the CA key used (it signs the certificates above).
    assert!(k.ca.verify(&k.ca_key).unwrap());
}

#[test]
fn no_common_proposal_gets_no_proposal_chosen() {
    let pi = policy(
        10,
        IkeCipher::Aes256,
        HashAlg::Sha256,
        AuthMethod::PreShare,
        DhGroup::Modp2048,
    );
    let pr = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let ci = cfg(vec![pi], TestCreds::psk(ia(), b"k"));
    let cr = cfg(vec![pr], TestCreds::psk(ra(), b"k"));
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let rej = Responder::on_first(cr, &mm1, ra(), ia()).unwrap_err();
    assert!(matches!(rej.error, Error::NoProposalChosen { .. }));
    assert_eq!(
        rej.error.to_string(),
        "ISAKMP:(0): phase 1 SA policy not acceptable! (local 10.99.0.2 remote 10.99.0.1)"
    );
    let notify = rej.notify.unwrap();
    assert_eq!(notify_type(&notify), NotifyType::NO_PROPOSAL_CHOSEN);
    let (h, _) = parse_header(&notify).unwrap();
    assert_eq!(h.initiator_cookie, i1.cookies().0);
    // The initiator gives up on it.
    let rej = failed(i1.on_message(&notify, ia(), ra()));
    assert!(
        matches!(
            rej.error,
            Error::PeerNotify {
                notify: NotifyType::NO_PROPOSAL_CHOSEN,
                ..
            }
        ),
        "{}",
        rej.error
    );
    assert!(rej.error.to_string().starts_with(
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at 10.99.0.2"
    ));
}

#[test]
fn responder_picks_by_our_priority_with_several_policies() {
    // The initiator offers three suites; the responder's best (priority 5) is the
    // initiator's second.
    let a = policy(
        1,
        IkeCipher::Aes256,
        HashAlg::Sha256,
        AuthMethod::PreShare,
        DhGroup::Modp2048,
    );
    let b = policy(
        2,
        IkeCipher::Aes128,
        HashAlg::Sha1,
        AuthMethod::PreShare,
        DhGroup::Ecp256,
    );
    let c = policy(
        3,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let ci = cfg(vec![c, a, b], TestCreds::psk(ia(), b"k"));
    let mut rb = b;
    rb.priority = 5;
    let mut rc = c;
    rc.priority = 7;
    let cr = cfg(vec![rc, rb], TestCreds::psk(ra(), b"k"));
    let (i, r) = handshake(ci, cr);
    assert_eq!(i.policy.cipher, IkeCipher::Aes128);
    assert_eq!(r.policy.priority, 5);
    assert_eq!(i.policy.priority, 2);
}

#[test]
fn aggressive_mode_is_refused() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    let (_, mut mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    mm1[18] = ExchangeType::AGGRESSIVE.0;
    let rej = Responder::on_first(cr, &mm1, ra(), ia()).unwrap_err();
    assert!(matches!(rej.error, Error::AggressiveModeRefused { .. }));
    assert!(rej.error.is_fatal());
    assert!(rej.notify.is_none());
}

#[test]
fn malformed_mm3_is_dropped_and_the_state_survives() {
    let p = policy(
        10,
        IkeCipher::Aes128,
        HashAlg::Sha1,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (mut r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));

    // Truncated (header length left as is, then adjusted).
    let (s, rej) = ignored(r2.on_message(&mm3[..mm3.len() - 5], ra(), ia()));
    assert!(
        matches!(rej.error, Error::Malformed { .. }),
        "{}",
        rej.error
    );
    assert!(rej.error.to_string().starts_with(
        "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from 10.99.0.1 failed its sanity check or is malformed"
    ));
    assert!(rej.notify.is_none());
    r2 = s;
    let mut short = mm3[..mm3.len() - 5].to_vec();
    let n = short.len() as u32;
    short[24..28].copy_from_slice(&n.to_be_bytes());
    let (s, rej) = ignored(r2.on_message(&short, ra(), ia()));
    assert!(
        matches!(rej.error, Error::Malformed { .. }),
        "{}",
        rej.error
    );
    r2 = s;
    // Garbled: the KE payload's length runs past the message.
    let mut garbled = mm3.clone();
    garbled[HEADER_LEN + 2] = 0xff;
    let (s, rej) = ignored(r2.on_message(&garbled, ra(), ia()));
    assert!(
        matches!(rej.error, Error::Malformed { .. }),
        "{}",
        rej.error
    );
    r2 = s;
    // A KE of the wrong length for the group.
    let mut m = Message::parse(&mm3).unwrap();
    if let Payload::KeyExchange(k) = &mut m.payloads[0] {
        k.data.truncate(64);
    }
    let (s, rej) = ignored(r2.on_message(&m.to_bytes().unwrap(), ra(), ia()));
    assert!(
        matches!(rej.error, Error::Malformed { .. }),
        "{}",
        rej.error
    );
    r2 = s;
    // No nonce.
    let mut m = Message::parse(&mm3).unwrap();
    m.payloads.retain(|p| p.kind() != PayloadType::NONCE);
    let (s, rej) = ignored(r2.on_message(&m.to_bytes().unwrap(), ra(), ia()));
    assert!(
        rej.error.to_string().contains("no NONCE payload"),
        "{}",
        rej.error
    );
    r2 = s;
    // A payload that has no place in MM3: INVALID-PAYLOAD-TYPE.
    let mut m = Message::parse(&mm3).unwrap();
    m.payloads.push(Payload::Delete(delete::Repr::ipsec(
        ProtocolId::IPSEC_ESP,
        &[1],
    )));
    let (s, rej) = ignored(r2.on_message(&m.to_bytes().unwrap(), ra(), ia()));
    assert!(
        matches!(rej.error, Error::InvalidPayloadType { .. }),
        "{}",
        rej.error
    );
    assert_eq!(
        notify_type(rej.notify.as_ref().unwrap()),
        NotifyType::INVALID_PAYLOAD_TYPE
    );
    r2 = s;
    // Wrong cookies.
    let mut other = mm3.clone();
    other[8] ^= 0xff;
    let (s, rej) = ignored(r2.on_message(&other, ra(), ia()));
    assert!(
        matches!(rej.error, Error::UnknownCookies { .. }),
        "{}",
        rej.error
    );
    r2 = s;
    // Encrypted flag on MM3.
    let mut enc = mm3.clone();
    enc[19] |= 1;
    let (s, rej) = ignored(r2.on_message(&enc, ra(), ia()));
    assert!(
        matches!(rej.error, Error::Malformed { .. }),
        "{}",
        rej.error
    );
    r2 = s;
    // Quick Mode in the middle of Main Mode.
    let mut qm = mm3.clone();
    qm[18] = ExchangeType::QUICK_MODE.0;
    let (s, rej) = ignored(r2.on_message(&qm, ra(), ia()));
    assert!(
        matches!(rej.error, Error::UnexpectedExchange { .. }),
        "{}",
        rej.error
    );
    r2 = s;

    // The right MM3 still works, and the exchange completes.
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    // A truncated MM5 (not a whole number of blocks) is dropped too.
    let (r4, rej) = ignored(r4.on_message(&mm5[..mm5.len() - 1], ra(), ia()));
    assert!(
        matches!(rej.error, Error::Malformed { .. }),
        "{}",
        rej.error
    );
    let (sa_r, mm6) = next(r4.on_message(&mm5, ra(), ia()));
    let (sa_i, _) = next(i5.on_message(&mm6, ia(), ra()));
    assert_eq!(sa_i.keys.skeyid_d(), sa_r.keys.skeyid_d());
}

#[test]
fn a_bad_ke_value_spends_no_precomputed_key_pair() {
    let g = DhGroup::Modp1024;
    let p = policy(
        10,
        IkeCipher::Aes128,
        HashAlg::Sha1,
        AuthMethod::PreShare,
        g,
    );
    let (ci, _) = psk_pair(p, b"k", b"k");
    let pool = Arc::new(crate::ikecrypto::dh_pool::DhPool::new());
    pool.set_targets(&[(g, 2)]);
    pool.fill(1).unwrap();
    let mut r = MainModeConfig::new(vec![p], Arc::new(TestCreds::psk(ra(), b"k")));
    r.dh_pool = pool.clone();
    let cr = Arc::new(r);
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (_i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    // g^x = 1: a small-subgroup value, refused before a key pair is taken
    let mut m = Message::parse(&mm3).unwrap();
    if let Payload::KeyExchange(k) = &mut m.payloads[0] {
        k.data.fill(0);
        *k.data.last_mut().unwrap() = 1;
    }
    let (r2, rej) = ignored(r2.on_message(&m.to_bytes().unwrap(), ra(), ia()));
    assert!(
        rej.error.to_string().contains("not in 1 < y < p-1"),
        "{}",
        rej.error
    );
    let s = pool.stats()[0];
    assert_eq!((s.ready, s.taken, s.on_demand), (2, 0, 0));
    // the real MM3 takes one
    let _ = next(r2.on_message(&mm3, ra(), ia()));
    assert_eq!(pool.stats()[0].taken, 1);
}

#[test]
fn retransmissions_get_the_same_reply() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Sha1,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    assert_eq!(i1.last_sent(), &mm1[..]);
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    // MM1 again: MM2 again, byte for byte.
    let (r2, again) = retransmit(r2.on_message(&mm1, ra(), ia()));
    assert_eq!(again, mm2);
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    // MM2 again (the responder did not see MM3): MM3 again.
    let (i3, again) = retransmit(i3.on_message(&mm2, ia(), ra()));
    assert_eq!(again, mm3);
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    // MM3 again: MM4 again.
    let (r4, again) = retransmit(r4.on_message(&mm3, ra(), ia()));
    assert_eq!(again, mm4);
    // An old MM1 reaching a later state is not its message's retransmission: dropped.
    let (r4, rej) = ignored(r4.on_message(&mm1, ra(), ia()));
    assert!(
        matches!(rej.error, Error::UnknownCookies { .. }),
        "{}",
        rej.error
    );
    assert_eq!(r4.last_sent(), &mm4[..]);
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    let (i5, again) = retransmit(i5.on_message(&mm4, ia(), ra()));
    assert_eq!(again, mm5);
    let (sa_r, mm6) = next(r4.on_message(&mm5, ra(), ia()));
    // MM5 again to the established responder: MM6 again.
    assert_eq!(sa_r.on_retransmit(&mm5), Some(mm6.clone()));
    assert_eq!(sa_r.on_retransmit(&mm4), None);
    let (sa_i, _) = next(i5.on_message(&mm6, ia(), ra()));
    assert_eq!(sa_i.keys.skeyid_a(), sa_r.keys.skeyid_a());
}

#[test]
fn nat_detection_and_float_to_4500() {
    let p = policy(
        10,
        IkeCipher::Aes128,
        HashAlg::Sha256,
        AuthMethod::PreShare,
        DhGroup::Modp2048,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    // The initiator (10.99.0.1:500) is behind a NAT that maps it to 198.51.100.7:31000
    // (then 31001 for port 4500).
    let nat500 = addr("198.51.100.7:31000");
    let nat4500 = addr("198.51.100.7:31001");
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), nat500).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    assert_eq!(
        payload_kinds(&mm3),
        [
            PayloadType::KE,
            PayloadType::NONCE,
            PayloadType::NAT_D,
            PayloadType::NAT_D
        ]
    );
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), nat500));
    assert_eq!(r4.nat(), (false, true), "the peer is behind a NAT");
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    assert_eq!(i5.nat(), (true, false), "we are behind a NAT");
    assert_eq!(i5.local(), addr("10.99.0.1:4500"));
    assert_eq!(i5.remote(), addr("10.99.0.2:4500"));
    let r_local = addr("10.99.0.2:4500");
    let (sa_r, mm6) = next(r4.on_message(&mm5, r_local, nat4500));
    assert_eq!(sa_r.remote, nat4500);
    assert_eq!(sa_r.local, r_local);
    let (l5, r5) = (i5.local(), i5.remote());
    let (sa_i, _) = next(i5.on_message(&mm6, l5, r5));
    assert!(sa_i.nat_local && !sa_i.nat_remote && sa_i.nat_detected());
    assert!(!sa_r.nat_local && sa_r.nat_remote && sa_r.nat_detected());
    assert_eq!(sa_i.local, addr("10.99.0.1:4500"));
    assert_eq!(sa_i.keys.skeyid_e(), sa_r.keys.skeyid_e());
}

#[test]
fn nat_t_draft_variant_and_nat_t_off() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let (ci, cr) = psk_pair(p, b"k", b"k");
    // An initiator that only speaks draft 03 (RFC 3947 VID removed from MM1): NAT-D goes as
    // payload type 130.
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let mut m = Message::parse(&mm1).unwrap();
    m.payloads
        .retain(|p| !matches!(p, Payload::VendorId(v) if v.data == KnownVendor::NatTRfc3947.id()));
    let mm1_draft = m.to_bytes().unwrap();
    let (r2, mm2) = Responder::on_first(cr.clone(), &mm1_draft, ra(), ia()).unwrap();
    let vids: Vec<_> = Message::parse(&mm2)
        .unwrap()
        .payloads
        .iter()
        .filter_map(|p| match p {
            Payload::VendorId(v) => crate::isakmp::vendor::recognise(&v.data),
            _ => None,
        })
        .collect();
    assert_eq!(vids, [KnownVendor::NatTDraft03, KnownVendor::Dpd]);
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    assert_eq!(
        payload_kinds(&mm3)[2..],
        [PayloadType::NAT_D_DRAFT, PayloadType::NAT_D_DRAFT]
    );
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    let (sa_r, mm6) = next(r4.on_message(&mm5, ra(), ia()));
    let (sa_i, _) = next(i5.on_message(&mm6, ia(), ra()));
    assert_eq!(sa_i.nat_t, Some(KnownVendor::NatTDraft03));
    assert_eq!(sa_r.nat_t, Some(KnownVendor::NatTDraft03));

    // NAT-T off on the responder: no NAT-T VID in MM2, no NAT-D anywhere.
    let mut c = MainModeConfig::new(vec![p], Arc::new(TestCreds::psk(ra(), b"k")));
    c.nat_traversal = false;
    let (ci, _) = psk_pair(p, b"k", b"k");
    let (i, r) = {
        let cr = Arc::new(c);
        let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
        let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
        let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
        assert_eq!(payload_kinds(&mm3), [PayloadType::KE, PayloadType::NONCE]);
        let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
        assert_eq!(payload_kinds(&mm4), [PayloadType::KE, PayloadType::NONCE]);
        let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
        let (sa_r, mm6) = next(r4.on_message(&mm5, ra(), ia()));
        (next(i5.on_message(&mm6, ia(), ra())).0, sa_r)
    };
    assert_eq!((i.nat_t, r.nat_t), (None, None));
}

#[test]
fn no_preshared_key_for_the_peer() {
    let p = policy(
        10,
        IkeCipher::TripleDes,
        HashAlg::Md5,
        AuthMethod::PreShare,
        DhGroup::Modp1024,
    );
    let ci = cfg(vec![p], TestCreds::psk(ia(), b"k"));
    let mut rc = TestCreds::psk(ra(), b"k");
    rc.psk = None;
    let cr = cfg(vec![p], rc);
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), ia()).unwrap();
    let (_i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    let rej = failed(r2.on_message(&mm3, ra(), ia()));
    assert_eq!(
        rej.error.to_string(),
        "ISAKMP:(0):No pre-shared key with 10.99.0.1!"
    );
}

#[test]
fn seeded_exchange_is_deterministic() {
    // Same seeds, same messages: MM1..MM4 are reproducible (MM5/MM6 too, as the IVs are
    // derived), which is what replaying a capture needs.
    let p = policy(
        10,
        IkeCipher::Aes256,
        HashAlg::Sha256,
        AuthMethod::PreShare,
        DhGroup::Ecp256,
    );
    let run = || {
        let (ci, cr) = psk_pair(p, b"k", b"k");
        let si = Seeds {
            cookie: Some([9; 8]),
            nonce: Some(vec![1; 32]),
            dh_private: Some(vec![3; 32]),
        };
        let sr = Seeds {
            cookie: Some([8; 8]),
            nonce: Some(vec![2; 32]),
            dh_private: Some(vec![4; 32]),
        };
        let (i1, mm1) = Initiator::start_seeded(ci, ia(), ra(), si).unwrap();
        let (r2, mm2) = Responder::on_first_seeded(cr, &mm1, ra(), ia(), sr).unwrap();
        let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
        let (r4, mm4) = next(r2.on_message(&mm3, ra(), ia()));
        let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
        let (_, mm6) = next(r4.on_message(&mm5, ra(), ia()));
        let _ = i5;
        [mm1, mm2, mm3, mm4, mm5, mm6]
    };
    assert_eq!(run(), run());
    let msgs = run();
    let (h, _) = parse_header(&msgs[1]).unwrap();
    assert_eq!((h.initiator_cookie, h.responder_cookie), ([9; 8], [8; 8]));
}

/// Interop: strongSwan's charon initiates Main Mode (AES-128/SHA-1/group 14) against our
/// responder on `IKE_INTEROP_ADDR`:500/4500. Needs the namespaces and the charon that
/// `tests/integration/50-charon-main-mode.sh` (pre-share) or `51-charon-rsa-sig.sh`
/// (rsa-sig) sets up (root); run through them. The environment says what to do:
///
/// - `IKE_INTEROP_AUTH`: `pre-share` (the default, key `IKE_INTEROP_PSK`) or `rsa-sig`, with
///   the gateway's own credentials ([`crate::credentials::GatewayCredentials`]) over a
///   trustpoint loaded from files: `IKE_INTEROP_CA` (CA certificates, `:`-separated),
///   `IKE_INTEROP_CERT`, `IKE_INTEROP_KEY`, `IKE_INTEROP_CRL` (a CRL file, optional),
///   `IKE_INTEROP_REVOCATION` (`crl`, the default, `crl-none` or `none`),
///   `IKE_INTEROP_IDENTITY` (`address`, the default, `hostname` or `dn`) and
///   `IKE_INTEROP_FQDN` (our `hostname.domain`); `IKE_INTEROP_EXTRA_TP` (`CA:CERT:KEY`)
///   adds a trustpoint before that one;
/// - `IKE_INTEROP_PEER_ID`: the identity charon must have authenticated as, strongSwan
///   style (`ipv4:10.99.0.1`, `fqdn:host.example.net`, `dn:C=CH,O=Test,CN=x`); without it,
///   an IPv4 address;
/// - `IKE_INTEROP_EXPECT_NAT`: charon floated to 4500 (`encap = yes`);
/// - `IKE_INTEROP_QUICK_MODE`: answer charon's Quick Mode too and require a child SA;
/// - `IKE_INTEROP_EXPECT_REFUSAL`: phase 1 must be refused: the test sends charon the
///   notification and passes after printing `REFUSED: ` and the refusal's log line.
///
/// The library's log lines (`debug crypto isakmp` style, the `%CRYPTO-...` lines) go to
/// stderr, prefixed by their level.
#[test]
#[ignore]
fn charon_initiator_interop() {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    let Ok(me) = std::env::var("IKE_INTEROP_ADDR") else {
        panic!("run through tests/integration/50-charon-main-mode.sh or 51-charon-rsa-sig.sh");
    };
    interop_logger();
    let env_flag = |k: &str| std::env::var_os(k).is_some();
    let me: Ipv4Addr = me.parse().unwrap();
    let s500 = UdpSocket::bind((me, 500)).unwrap();
    let s4500 = UdpSocket::bind((me, 4500)).unwrap();
    for s in [&s500, &s4500] {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    let local = SocketAddr::new(IpAddr::V4(me), 500);
    let (auth, creds) = interop_credentials(local);
    let p = policy(
        10,
        IkeCipher::Aes128,
        HashAlg::Sha1,
        auth,
        DhGroup::Modp2048,
    );
    let cr = Arc::new(MainModeConfig::new(vec![p], creds.clone()));
    if auth == AuthMethod::RsaSig {
        eprintln!(
            "AUTH rsa-sig, our ID {}",
            interop_id_string(&creds.local_id().id)
        );
        for dn in creds.ca_names() {
            eprintln!("OUR CERT_REQ names {}", interop_dn(&dn));
        }
    }
    let expect_refusal = env_flag("IKE_INTEROP_EXPECT_REFUSAL");

    enum St {
        Start,
        R2(MmR2Sent),
        R4(MmR4Sent),
        Done(Phase1Sa),
        Refused(Rejection),
    }
    let mut st = St::Start;
    // With IKE_INTEROP_QUICK_MODE, answer charon's Quick Mode too (its child `c`:
    // 10.10.1.0/24 -> 10.10.2.0/24, aes128-sha1, tunnel).
    let quick_mode = env_flag("IKE_INTEROP_QUICK_MODE");
    let qm_policy = {
        use dataplane::crypto::{Encryption, Integrity, Transform};
        use dataplane::esp::{Mode, Prefix, Selector};
        let pfx = |a: [u8; 4]| Prefix {
            addr: IpAddr::V4(a.into()),
            len: 24,
        };
        Phase2Policy::new(
            "interop",
            10,
            vec![TransformSet {
                name: "AES-SHA".into(),
                transform: Transform {
                    encryption: Encryption::AesCbc128,
                    integrity: Integrity::Sha1,
                },
                mode: Mode::Tunnel,
            }],
            Proxies::Static(Selector {
                source: pfx([10, 10, 2, 0]),
                destination: pfx([10, 10, 1, 0]),
                protocol: 0,
                source_ports: (0, 65535),
                destination_ports: (0, 65535),
            }),
        )
    };
    let mut qm_r2: Option<QmR2Sent> = None;
    let mut child: Option<(ChildSa, Instant)> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 65535];
    'run: while Instant::now() < deadline {
        for (sock, port) in [(&s500, 500u16), (&s4500, 4500u16)] {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let mut data = &buf[..n];
            if port == 4500 {
                if n < 4 || data[..4] != [0, 0, 0, 0] {
                    continue; // ESP or keepalive
                }
                data = &data[4..];
            }
            let to = SocketAddr::new(IpAddr::V4(me), port);
            eprintln!("received {} bytes on {to} from {from}", data.len());
            let reply: Option<Vec<u8>>;
            st = match std::mem::replace(&mut st, St::Start) {
                St::Start => match Responder::on_first(cr.clone(), data, to, from) {
                    Ok((s, out)) => {
                        reply = Some(out);
                        St::R2(s)
                    }
                    Err(r) => {
                        reply = r.notify.clone();
                        St::Refused(r)
                    }
                },
                St::R2(s) => match s.on_message(data, to, from) {
                    Step::Next(n, out) => {
                        reply = Some(out);
                        St::R4(n)
                    }
                    Step::Retransmit(s, out) => {
                        reply = Some(out);
                        St::R2(s)
                    }
                    Step::Ignored(s, r) => {
                        eprintln!("{}", r.error);
                        reply = None;
                        St::R2(s)
                    }
                    Step::Failed(r) => {
                        reply = r.notify.clone();
                        St::Refused(r)
                    }
                },
                St::R4(s) => match s.on_message(data, to, from) {
                    Step::Next(n, out) => {
                        reply = Some(out);
                        St::Done(n)
                    }
                    Step::Retransmit(s, out) => {
                        reply = Some(out);
                        St::R4(s)
                    }
                    Step::Ignored(s, r) => {
                        eprintln!("{}", r.error);
                        reply = None;
                        St::R4(s)
                    }
                    Step::Failed(r) => {
                        reply = r.notify.clone();
                        St::Refused(r)
                    }
                },
                St::Done(sa) => {
                    reply = match sa.on_retransmit(data) {
                        Some(r) => Some(r),
                        None if quick_mode => {
                            interop_phase2(&sa, data, &qm_policy, &mut qm_r2, &mut child)
                        }
                        None => {
                            eprintln!("after phase 1 (Quick Mode?), ignored");
                            None
                        }
                    };
                    St::Done(sa)
                }
                St::Refused(r) => {
                    reply = None;
                    St::Refused(r)
                }
            };
            if let Some(out) = reply {
                let mut d = Vec::new();
                if port == 4500 {
                    d.extend_from_slice(&[0, 0, 0, 0]);
                }
                d.extend_from_slice(&out);
                sock.send_to(&d, from).unwrap();
            }
            if let St::Refused(r) = &st {
                if !expect_refusal {
                    panic!("{}", r.error);
                }
                break 'run;
            }
        }
        if let St::Done(sa) = &st {
            // Let a retransmitted MM5 (or QM1) be answered, then stop.
            let since = match (&child, quick_mode) {
                (Some((_, at)), true) => *at,
                (None, true) => continue,
                (_, false) => sa.established,
            };
            if since.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
    }
    let sa = match st {
        St::Refused(r) => {
            eprintln!(
                "REFUSED: {} (notify sent: {})",
                r.error,
                r.error
                    .notify()
                    .map_or_else(|| "none".to_string(), |n| n.to_string())
            );
            assert!(expect_refusal);
            return;
        }
        St::Done(sa) if expect_refusal => {
            panic!(
                "phase 1 established with {}, but a refusal was expected",
                sa.remote
            )
        }
        St::Done(sa) => sa,
        _ if expect_refusal => panic!("no refusal: the exchange did not get that far"),
        _ => panic!("phase 1 not established"),
    };
    eprintln!(
        "ESTABLISHED: Phase1Sa {:?} {} <-> {} {:?} local_id {} peer {} nat_t {:?} nat_remote {}",
        sa.role,
        sa.local,
        sa.remote,
        sa.policy,
        interop_id_string(&sa.local_id.id),
        interop_id_string(&sa.peer.id),
        sa.nat_t,
        sa.nat_remote
    );
    let IpAddr::V4(_) = sa.remote.ip() else {
        unreachable!()
    };
    let peer_id = interop_id_string(&sa.peer.id);
    eprintln!("PEER ID {peer_id}");
    match std::env::var("IKE_INTEROP_PEER_ID") {
        Ok(want) => assert_eq!(peer_id, want, "charon's identity"),
        Err(_) => assert!(matches!(sa.peer.id, Identity::Ipv4(_))),
    }
    if auth == AuthMethod::RsaSig {
        let der = sa
            .peer
            .certificate
            .as_deref()
            .expect("rsa-sig: the peer's certificate");
        eprintln!("PEER CERT {}", interop_cert(der));
    }
    assert!(sa.peer_vendors.dpd);
    assert_eq!(sa.nat_t, Some(KnownVendor::NatTRfc3947));
    if env_flag("IKE_INTEROP_EXPECT_NAT") {
        // charon's `encap = yes` fakes its NAT-D: it looks NATed and floats to 4500.
        assert!(sa.nat_remote && !sa.nat_local);
        assert_eq!((sa.local.port(), sa.remote.port()), (4500, 4500));
    } else {
        assert!(!sa.nat_remote && !sa.nat_local);
    }
    if quick_mode {
        let Some((c, _)) = child else {
            panic!("Quick Mode not completed")
        };
        eprintln!(
            "CHILD ESTABLISHED: spi_in {:#010x} spi_out {:#010x} {} {:?} udp {:?} lifetime {:?}",
            c.spi_in, c.spi_out, c.transform, c.mode, c.outbound.udp_encap, c.lifetime
        );
        assert!(c.outbound.udp_encap.is_some(), "charon floated: ESP in UDP");
        // Throwaway lab keys, for the script to compare with charon's own (chd = 4).
        eprintln!(
            "CHILD KEYS in_enc={} in_auth={} out_enc={} out_auth={}",
            hex::encode(&c.inbound.keys.encryption),
            hex::encode(&c.inbound.keys.authentication),
            hex::encode(&c.outbound.keys.encryption),
            hex::encode(&c.outbound.keys.authentication)
        );
    }
}

/// The interop responder's phase 1 authentication and credentials, from the environment
/// (see [`charon_initiator_interop`]): a pre-shared key for any peer, or the gateway's
/// credentials over one trustpoint loaded from files (`rsa-sig`).
fn interop_credentials(local: SocketAddr) -> (AuthMethod, Arc<dyn Credentials>) {
    use crate::config::{IdentityMode, RevocationCheck, TrustpointConfig};
    use crate::credentials::GatewayCredentials;
    use crate::pki::{TrustStore, Trustpoint};
    use std::path::PathBuf;

    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let must = |k: &str| var(k).unwrap_or_else(|| panic!("rsa-sig: {k} is not set"));
    match var("IKE_INTEROP_AUTH").as_deref() {
        None | Some("pre-share") => {
            let psk = var("IKE_INTEROP_PSK").unwrap_or_else(|| "interop-secret".into());
            (
                AuthMethod::PreShare,
                Arc::new(TestCreds::psk(local, psk.as_bytes())),
            )
        }
        Some("rsa-sig") => {
            let revocation = match var("IKE_INTEROP_REVOCATION").as_deref() {
                None | Some("crl") => RevocationCheck::Crl,
                Some("crl-none") => RevocationCheck::CrlNone,
                Some("none") => RevocationCheck::None,
                Some(x) => panic!("IKE_INTEROP_REVOCATION: {x}?"),
            };
            let identity = match var("IKE_INTEROP_IDENTITY").as_deref() {
                None | Some("address") => IdentityMode::Address,
                Some("hostname") => IdentityMode::Hostname,
                Some("dn") => IdentityMode::Dn,
                Some(x) => panic!("IKE_INTEROP_IDENTITY: {x}?"),
            };
            let tp = TrustpointConfig {
                ca_certificates: must("IKE_INTEROP_CA")
                    .split(':')
                    .map(PathBuf::from)
                    .collect(),
                certificate: must("IKE_INTEROP_CERT").into(),
                private_key: must("IKE_INTEROP_KEY").into(),
                revocation,
                crl_file: var("IKE_INTEROP_CRL").map(PathBuf::from),
                crl_url: None,
            };
            let load = |name: &str, tp: &TrustpointConfig| {
                Trustpoint::load(name, tp).unwrap_or_else(|e| panic!("trustpoint: {e}"))
            };
            // IKE_INTEROP_EXTRA_TP=CA:CERT:KEY: another trustpoint, placed first, so that
            // only the peer's CERT_REQ can make us choose the certificate of the main one.
            let mut tps = Vec::new();
            if let Some(extra) = var("IKE_INTEROP_EXTRA_TP") {
                let [ca, cert, key] = extra.split(':').collect::<Vec<_>>()[..] else {
                    panic!("IKE_INTEROP_EXTRA_TP: CA:CERT:KEY, not {extra}");
                };
                let cfg = TrustpointConfig {
                    ca_certificates: vec![ca.into()],
                    certificate: cert.into(),
                    private_key: key.into(),
                    revocation: RevocationCheck::None,
                    crl_file: None,
                    crl_url: None,
                };
                tps.push(load("extra", &cfg));
            }
            tps.push(load("interop", &tp));
            let store = TrustStore::new(tps).unwrap_or_else(|e| panic!("trust store: {e}"));
            for t in store.trustpoints() {
                eprintln!("TRUSTPOINT {t:?}");
            }
            let creds = GatewayCredentials {
                store,
                keys: vec![],
                identity,
                local: local.ip(),
                fqdn: var("IKE_INTEROP_FQDN").unwrap_or_default(),
            };
            (AuthMethod::RsaSig, Arc::new(LoggedCreds(Arc::new(creds))))
        }
        Some(x) => panic!("IKE_INTEROP_AUTH: {x}? (pre-share or rsa-sig)"),
    }
}

/// An identity as strongSwan writes it with a type prefix (`fqdn:gw.example.net`).
fn interop_id_string(id: &Identity) -> String {
    match id {
        Identity::Ipv4(a) => format!("ipv4:{a}"),
        Identity::Ipv6(a) => format!("ipv6:{a}"),
        Identity::Fqdn(s) => format!("fqdn:{s}"),
        Identity::UserFqdn(s) => format!("email:{s}"),
        Identity::DerAsn1Dn(d) => format!("dn:{}", interop_dn(d)),
        other => format!("{:?}", other),
    }
}

/// A DER name in the one-line form (`CN=x,O=Test,C=CH`), or its hex when it does not parse.
fn interop_dn(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok(n) => crate::pki::dn_string(&n),
        Err(_) => format!("<unparsable name {}>", hex::encode(der)),
    }
}

/// A certificate (DER) for log lines: subject, issuer and serial.
fn interop_cert(der: &[u8]) -> String {
    match X509::from_der(der) {
        Ok(c) => format!(
            "subject {} issuer {} serial {}",
            crate::pki::dn_string(c.subject_name()),
            crate::pki::dn_string(c.issuer_name()),
            c.serial_number()
                .to_bn()
                .ok()
                .and_then(|b| b.to_hex_str().ok().map(|h| h.to_string()))
                .unwrap_or_default()
        ),
        Err(_) => format!("<unparsable certificate of {} bytes>", der.len()),
    }
}

/// Credentials that print what Main Mode asks of them, for the interop script: the CAs
/// the peer's CERT_REQ payloads name, the certificate we send, the one the peer sent.
struct LoggedCreds(Arc<dyn Credentials>);

impl Credentials for LoggedCreds {
    fn local_id(&self) -> IdentityPayload {
        self.0.local_id()
    }

    fn preshared_key(&self, peer: IpAddr) -> Option<Zeroizing<Vec<u8>>> {
        self.0.preshared_key(peer)
    }

    fn sign(&self, hash: &[u8], requested_cas: &[Vec<u8>]) -> Result<Vec<u8>, AuthError> {
        self.0.sign(hash, requested_cas)
    }

    fn own_cert_chain(&self, requested_cas: &[Vec<u8>]) -> Vec<Vec<u8>> {
        for dn in requested_cas {
            eprintln!("CERT_REQ from peer names {}", interop_dn(dn));
        }
        let chain = self.0.own_cert_chain(requested_cas);
        if let Some(c) = chain.first() {
            eprintln!("OUR CERT sent: {}", interop_cert(c));
        }
        chain
    }

    fn ca_names(&self) -> Vec<Vec<u8>> {
        self.0.ca_names()
    }

    fn verify_peer(
        &self,
        peer: IpAddr,
        id: &IdentityPayload,
        certs: &[Vec<u8>],
        hash: &[u8],
        sig: &[u8],
    ) -> Result<PeerIdentity, AuthError> {
        for c in certs {
            eprintln!("PEER SENT CERT {}", interop_cert(c));
        }
        self.0.verify_peer(peer, id, certs, hash, sig)
    }
}

/// Sends the library's log records to stderr (`LEVEL message`), once per process.
fn interop_logger() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, r: &log::Record) {
            eprintln!("{:<5} {}", r.level(), r.args());
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// The interop responder after phase 1: Quick Mode (QM1 -> QM2, QM3 -> child SA, a
/// retransmitted QM1 -> QM2 again) and informational messages (logged, DPD answered).
fn interop_phase2(
    sa: &Phase1Sa,
    data: &[u8],
    policy: &Phase2Policy,
    qm_r2: &mut Option<QmR2Sent>,
    child: &mut Option<(ChildSa, std::time::Instant)>,
) -> Option<Vec<u8>> {
    let Ok((h, _)) = parse_header(data) else {
        eprintln!("unparsable datagram after phase 1");
        return None;
    };
    if h.exchange_type == ExchangeType::INFORMATIONAL {
        match informational::parse(sa, data) {
            Ok(info) => {
                eprintln!("informational: {:?}", info.events);
                return info.dpd_reply(sa);
            }
            Err(e) => {
                eprintln!("informational dropped: {e}");
                return None;
            }
        }
    }
    if h.exchange_type != ExchangeType::QUICK_MODE {
        eprintln!("exchange {} after phase 1 ignored", h.exchange_type);
        return None;
    }
    if let Some(r2) = qm_r2.take() {
        if r2.message_id() == h.message_id {
            return match r2.on_message(sa, data) {
                Step::Next(c, _) => {
                    eprintln!(
                        "QM3 accepted: child SA {:#010x}/{:#010x}",
                        c.spi_in, c.spi_out
                    );
                    *child = Some((c, std::time::Instant::now()));
                    None
                }
                Step::Retransmit(s, out) => {
                    *qm_r2 = Some(s);
                    Some(out)
                }
                Step::Ignored(s, r) => {
                    eprintln!("{}", r.error);
                    *qm_r2 = Some(s);
                    r.notify
                }
                Step::Failed(r) => panic!("{}", r.error),
            };
        }
        *qm_r2 = Some(r2);
    }
    let mut spi = || 0xc0de_0001u32;
    match QuickModeResponder::on_qm1(sa, data, std::slice::from_ref(policy), &mut spi) {
        Ok(resp) => {
            eprintln!(
                "QM1 accepted; install inbound SA {:#010x} before QM2",
                resp.inbound.spi
            );
            *qm_r2 = Some(resp.state);
            Some(resp.qm2)
        }
        Err(r) => panic!("QM1 refused: {}", r.error),
    }
}

// --- helpers for the Quick Mode tests (quick_mode_tests.rs) ------------------------------

/// An established pair (initiator's, responder's) of ISAKMP SAs with pre-share and `p`,
/// between `ia()` and `ra()` without NAT.
pub(super) fn established_pair(p: Phase1Policy) -> (Phase1Sa, Phase1Sa) {
    let (ci, cr) = psk_pair(p, b"cisco123", b"cisco123");
    handshake(ci, cr)
}

/// An established pair where the initiator is behind a NAT (198.51.100.7), floated to
/// 4500: both sides see `nat_detected()`.
pub(super) fn established_pair_nat(p: Phase1Policy) -> (Phase1Sa, Phase1Sa) {
    let (ci, cr) = psk_pair(p, b"k", b"k");
    let nat500 = addr("198.51.100.7:31000");
    let nat4500 = addr("198.51.100.7:31001");
    let (i1, mm1) = Initiator::start(ci, ia(), ra()).unwrap();
    let (r2, mm2) = Responder::on_first(cr, &mm1, ra(), nat500).unwrap();
    let (i3, mm3) = next(i1.on_message(&mm2, ia(), ra()));
    let (r4, mm4) = next(r2.on_message(&mm3, ra(), nat500));
    let (i5, mm5) = next(i3.on_message(&mm4, ia(), ra()));
    let (sa_r, mm6) = next(r4.on_message(&mm5, addr("10.99.0.2:4500"), nat4500));
    let (l5, r5) = (i5.local(), i5.remote());
    let (sa_i, _) = next(i5.on_message(&mm6, l5, r5));
    assert!(sa_i.nat_detected() && sa_r.nat_detected());
    (sa_i, sa_r)
}

/// A phase 1 policy for the Quick Mode tests.
pub(super) fn p1_policy(cipher: IkeCipher, hash: HashAlg, group: DhGroup) -> Phase1Policy {
    policy(10, cipher, hash, AuthMethod::PreShare, group)
}
