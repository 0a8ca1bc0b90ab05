//! PKI tests over a real test PKI generated at test time with the openssl crate (root CA,
//! subordinate CA, end-entity certificates good and bad) and CRLs made by the `openssl`
//! command-line tool (`openssl ca -revoke` / `-gencrl`), some served over HTTP by a small
//! `TcpListener` thread.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Crl, X509Extension, X509Name, X509};

use super::chain_cache::{ChainCache, ChainCacheStats};
use super::crl::CrlCache;
use super::*;
use crate::config::IdentityMode;

type Key = PKey<Private>;

fn rsa() -> Key {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn now() -> i64 {
    unix_secs(SystemTime::now())
}

fn at(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
}

const DAY: i64 = 86_400;

/// What a test certificate looks like.
struct Spec<'a> {
    cn: &'a str,
    /// Extra subject attributes (by NID), before the CN.
    extra: Vec<(Nid, &'a str)>,
    ca: Option<bool>,
    /// Validity, in days from now.
    from: i64,
    to: i64,
    dns: Vec<&'a str>,
    ips: Vec<&'a str>,
    emails: Vec<&'a str>,
    /// None: no keyUsage; Some(true): digitalSignature (or keyCertSign+cRLSign for a CA);
    /// Some(false): keyEncipherment only.
    ku: Option<bool>,
    cdp: Option<String>,
}

impl<'a> Spec<'a> {
    fn ee(cn: &'a str) -> Spec<'a> {
        Spec {
            cn,
            extra: vec![],
            ca: Some(false),
            from: -1,
            to: 30,
            dns: vec![],
            ips: vec![],
            emails: vec![],
            ku: Some(true),
            cdp: None,
        }
    }
    fn ca(cn: &'a str) -> Spec<'a> {
        Spec {
            ca: Some(true),
            from: -60,
            to: 365,
            ..Spec::ee(cn)
        }
    }
}

fn name(extra: &[(Nid, &str)], cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_text("C", "US").unwrap();
    n.append_entry_by_text("O", "example").unwrap();
    for (nid, v) in extra {
        n.append_entry_by_nid(*nid, v).unwrap();
    }
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

static SERIAL: AtomicU32 = AtomicU32::new(0x1000);

/// A certificate for `key`, signed by `issuer` (cert, key) or self-signed.
fn make(spec: &Spec, key: &Key, issuer: Option<(&X509, &Key)>) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(SERIAL.fetch_add(1, Ordering::Relaxed)).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    let subject = name(&spec.extra, spec.cn);
    b.set_subject_name(&subject).unwrap();
    match issuer {
        Some((c, _)) => b.set_issuer_name(c.subject_name()).unwrap(),
        None => b.set_issuer_name(&subject).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    let t = now();
    b.set_not_before(&Asn1Time::from_unix(t + spec.from * DAY).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(t + spec.to * DAY).unwrap())
        .unwrap();
    match spec.ca {
        Some(true) => b
            .append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap(),
        Some(false) => b
            .append_extension(BasicConstraints::new().build().unwrap())
            .unwrap(),
        None => {}
    }
    match (spec.ku, spec.ca) {
        (Some(true), Some(true)) => b
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        (Some(true), _) => b
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        (Some(false), _) => b
            .append_extension(
                KeyUsage::new()
                    .critical()
                    .key_encipherment()
                    .build()
                    .unwrap(),
            )
            .unwrap(),
        (None, _) => {}
    }
    if !(spec.dns.is_empty() && spec.ips.is_empty() && spec.emails.is_empty()) {
        let mut san = SubjectAlternativeName::new();
        for d in &spec.dns {
            san.dns(d);
        }
        for i in &spec.ips {
            san.ip(i);
        }
        for e in &spec.emails {
            san.email(e);
        }
        let ext = san
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .unwrap();
        b.append_extension(ext).unwrap();
    }
    if let Some(url) = &spec.cdp {
        #[allow(deprecated)]
        let ext = X509Extension::new_nid(
            None,
            None,
            Nid::CRL_DISTRIBUTION_POINTS,
            &format!("URI:{url}"),
        )
        .unwrap();
        b.append_extension(ext).unwrap();
    }
    let signer = issuer.map(|(_, k)| k).unwrap_or(key);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

/// The shared test PKI.
struct Pki {
    root: (Key, X509),
    sub: (Key, X509),
    other_root: (Key, X509),
    /// A CA with the sub-CA's name but another key (its CRLs must not be believed).
    fake_sub: (Key, X509),
    /// The key of most end-entity certificates.
    ee: Key,
    /// hub.example.com, issued by the root: SAN DNS + IP 192.0.2.1.
    hub: (Key, X509),
    /// spoke1.example.com, issued by the sub-CA, no address.
    spoke: (Key, X509),
    /// Issued by the other root.
    other: (Key, X509),
    /// Issued by the root.
    expired: X509,
    not_yet_valid: X509,
    /// Issued by an unknown root.
    unknown: X509,
    /// keyEncipherment only.
    no_dsig: X509,
    /// Claims the root as issuer but signed by another key.
    forged: X509,
    /// Issued by the hub's (non-CA) certificate.
    under_ee: X509,
    /// Issued by the sub-CA, listed in its CRL.
    revoked: X509,
    /// An IOS-enrolled router: unstructuredName + unstructuredAddress in the subject.
    ios: X509,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let rk = rsa();
        let root = make(
            &Spec {
                to: 3650,
                ..Spec::ca("Root CA")
            },
            &rk,
            None,
        );
        let sk = rsa();
        let sub = make(&Spec::ca("Sub CA East"), &sk, Some((&root, &rk)));
        let ok = rsa();
        let other_root = make(&Spec::ca("Other Root"), &ok, None);
        let fk = rsa();
        let fake_sub = make(&Spec::ca("Sub CA East"), &fk, None);
        let ee = rsa();
        let r = Some((&root, &rk));
        let s = Some((&sub, &sk));

        let hk = rsa();
        let hub = make(
            &Spec {
                dns: vec!["hub.example.com"],
                ips: vec!["192.0.2.1", "2001:db8::1"],
                emails: vec!["vpn@example.com"],
                ..Spec::ee("hub")
            },
            &hk,
            r,
        );
        let pk = rsa();
        let spoke = make(
            &Spec {
                dns: vec!["spoke1.example.com"],
                ..Spec::ee("spoke1")
            },
            &pk,
            s,
        );
        let other = make(
            &Spec {
                dns: vec!["other.example.net"],
                ..Spec::ee("other")
            },
            &ee,
            Some((&other_root, &ok)),
        );
        let expired = make(
            &Spec {
                from: -30,
                to: -1,
                ..Spec::ee("expired")
            },
            &ee,
            r,
        );
        let not_yet_valid = make(
            &Spec {
                from: 1,
                to: 30,
                ..Spec::ee("later")
            },
            &ee,
            r,
        );
        let uk = rsa();
        let unknown_root = make(&Spec::ca("Unknown Root"), &uk, None);
        let unknown = make(&Spec::ee("stranger"), &ee, Some((&unknown_root, &uk)));
        let no_dsig = make(
            &Spec {
                ku: Some(false),
                ..Spec::ee("encipher-only")
            },
            &ee,
            r,
        );
        // Same issuer name as the root, signed by the unknown root's key.
        let forged = make(&Spec::ee("forged"), &ee, Some((&root, &uk)));
        let under_ee = make(&Spec::ee("under-ee"), &ee, Some((&hub, &hk)));
        let revoked = make(&Spec::ee("revoked"), &ee, s);
        let ios = make(
            &Spec {
                extra: vec![
                    (Nid::PKCS9_UNSTRUCTUREDNAME, "router1.example.com"),
                    (Nid::PKCS9_UNSTRUCTUREDADDRESS, "10.1.1.1"),
                ],
                ..Spec::ee("router1")
            },
            &ee,
            r,
        );
        Pki {
            root: (rk, root),
            sub: (sk, sub),
            other_root: (ok, other_root),
            fake_sub: (fk, fake_sub),
            ee: ee.clone(),
            hub: (hk, hub),
            spoke: (pk, spoke),
            other: (ee, other),
            expired,
            not_yet_valid,
            unknown,
            no_dsig,
            forged,
            under_ee,
            revoked,
            ios,
        }
    })
}

fn der(certs: &[&X509]) -> Vec<Vec<u8>> {
    certs.iter().map(|c| c.to_der().unwrap()).collect()
}

fn subject_der(c: &X509) -> Vec<u8> {
    c.subject_name().to_der().unwrap()
}

/// A trustpoint "hub" (trusting `cas`) whose own certificate is the hub's.
fn hub_tp(cas: &[&X509], mode: RevocationCheck) -> Trustpoint {
    let p = pki();
    Trustpoint::new(
        "hub",
        cas.iter().map(|c| (*c).clone()).collect(),
        p.hub.1.clone(),
        p.hub.0.clone(),
        mode,
    )
    .unwrap()
}

fn store(cas: &[&X509], mode: RevocationCheck) -> TrustStore {
    TrustStore::new(vec![hub_tp(cas, mode)]).unwrap()
}

fn verify(s: &TrustStore, chain: &[&X509]) -> Result<VerifiedPeer, CertError> {
    s.verify_peer(&der(chain), SystemTime::now())
}

// --- CRLs made by the openssl command-line tool -------------------------------------------

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the `openssl` command-line tool is needed to generate the test CRLs \
             (`openssl ca -gencrl`), but it cannot be run: {e}"
            )
        });
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CRL of the CA (`cert`, `key`) listing `revoked`, valid for `hours`, made by `openssl
/// ca` in `dir`. Returns the PEM file's path and the CRL.
fn gen_crl(
    dir: &Path,
    tag: &str,
    ca: &(Key, X509),
    revoked: &[&X509],
    hours: u32,
) -> (PathBuf, X509Crl) {
    let d = dir.join(tag);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ca.pem"), ca.1.to_pem().unwrap()).unwrap();
    std::fs::write(d.join("ca.key"), ca.0.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("crlnumber"), "01\n").unwrap();
    let cnf = d.join("openssl.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[ ca ]\ndefault_ca = CA_default\n\n[ CA_default ]\ndir = {}\n\
             database = $dir/index.txt\ncrlnumber = $dir/crlnumber\n\
             certificate = $dir/ca.pem\nprivate_key = $dir/ca.key\nnew_certs_dir = $dir\n\
             serial = $dir/serial\ndefault_md = sha256\ndefault_crl_days = 1\n\
             unique_subject = no\n",
            d.display()
        ),
    )
    .unwrap();
    let cnf = cnf.to_str().unwrap();
    for (i, r) in revoked.iter().enumerate() {
        let f = d.join(format!("revoked{i}.pem"));
        std::fs::write(&f, r.to_pem().unwrap()).unwrap();
        openssl(&[
            "ca",
            "-config",
            cnf,
            "-batch",
            "-revoke",
            f.to_str().unwrap(),
        ]);
    }
    let out = d.join("crl.pem");
    let hours = hours.to_string();
    openssl(&[
        "ca",
        "-config",
        cnf,
        "-batch",
        "-gencrl",
        "-crlhours",
        &hours,
        "-out",
        out.to_str().unwrap(),
    ]);
    let crl = X509Crl::from_pem(&std::fs::read(&out).unwrap()).unwrap();
    (out, crl)
}

/// The sub-CA's CRL (revoking `revoked`), valid 24 hours: made once.
fn sub_crl() -> &'static (tempfile::TempDir, PathBuf, Vec<u8>) {
    static CRL: OnceLock<(tempfile::TempDir, PathBuf, Vec<u8>)> = OnceLock::new();
    CRL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = pki();
        let (path, crl) = gen_crl(dir.path(), "sub", &p.sub, &[&p.revoked], 24);
        let der = crl.to_der().unwrap();
        (dir, path, der)
    })
}

fn sub_crl_der() -> X509Crl {
    X509Crl::from_der(&sub_crl().2).unwrap()
}

// --- a tiny HTTP server ------------------------------------------------------------------

struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
}

/// Serves `body` at `/path` (404 elsewhere; `status` other than 200 everywhere) until the
/// test ends; counts requests.
fn serve(path: &'static str, body: Vec<u8>, status: u16, content_length: bool) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req);
            let first = req.lines().next().unwrap_or("").to_string();
            assert!(req.contains("\r\nHost: 127.0.0.1:"), "{req}");
            let (code, body) = if status != 200 {
                (status, b"error".to_vec())
            } else if first == format!("GET {path} HTTP/1.0") {
                (200, body.clone())
            } else {
                (404, b"not found".to_vec())
            };
            let mut head = format!("HTTP/1.0 {code} X\r\nContent-Type: application/pkix-crl\r\n");
            if content_length {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            let _ = c.write_all(head.as_bytes());
            // In two pieces, to exercise the reader.
            let (a, b) = body.split_at(body.len() / 2);
            let _ = c.write_all(a);
            let _ = c.flush();
            let _ = c.write_all(b);
        }
    });
    Server {
        url: format!("http://127.0.0.1:{port}{path}"),
        hits,
    }
}

// --- chain validation ----------------------------------------------------------------------

#[test]
fn end_entity_issued_by_the_root() {
    let p = pki();
    let s = store(&[&p.root.1], RevocationCheck::None);
    let v = verify(&s, &[&p.hub.1]).unwrap();
    assert_eq!(v.chain.len(), 2);
    assert_eq!(v.trustpoint, "hub");
    assert_eq!(v.subject, "CN=hub,O=example,C=US");
    assert_eq!(v.revocation, RevocationStatus::Skipped);
}

#[test]
fn subordinate_ca_sent_by_the_peer() {
    let p = pki();
    let s = store(&[&p.root.1], RevocationCheck::None);
    let v = verify(&s, &[&p.spoke.1, &p.sub.1]).unwrap();
    assert_eq!(v.chain.len(), 3, "spoke, sub, root");
    assert!(v.chain[1].to_der().unwrap() == p.sub.1.to_der().unwrap());
    // Without the sub-CA the chain does not reach the root.
    let e = verify(&s, &[&p.spoke.1]).unwrap_err();
    assert!(
        matches!(&e, CertError::UnknownCa { issuer } if issuer.contains("Sub CA East")),
        "{e}"
    );
}

#[test]
fn subordinate_ca_configured_in_the_trustpoint() {
    let p = pki();
    // Root and sub configured: the peer sends only its own certificate.
    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::None);
    let v = verify(&s, &[&p.spoke.1]).unwrap();
    assert_eq!(v.chain.len(), 3, "the chain goes up to the root");
    // The hub's own certificate (root-issued) still works.
    verify(&s, &[&p.hub.1]).unwrap();
    // The sub-CA alone: it ends the chain.
    let tp = Trustpoint::new(
        "sub-only",
        vec![p.sub.1.clone()],
        p.spoke.1.clone(),
        p.spoke.0.clone(),
        RevocationCheck::None,
    )
    .unwrap();
    let s = TrustStore::new(vec![tp]).unwrap();
    let v = verify(&s, &[&p.spoke.1]).unwrap();
    assert_eq!(v.chain.len(), 2);
    assert_eq!(v.trustpoint, "sub-only");
    let e = verify(&s, &[&p.hub.1]).unwrap_err();
    assert!(matches!(e, CertError::UnknownCa { .. }), "{e}");
}

#[test]
fn hub_trusting_several_trustpoints() {
    let p = pki();
    let other = Trustpoint::new(
        "other",
        vec![p.other_root.1.clone()],
        p.other.1.clone(),
        p.other.0.clone(),
        RevocationCheck::None,
    )
    .unwrap();
    let s = TrustStore::new(vec![
        hub_tp(&[&p.root.1, &p.sub.1], RevocationCheck::None),
        other,
    ])
    .unwrap();
    assert_eq!(verify(&s, &[&p.spoke.1]).unwrap().trustpoint, "hub");
    assert_eq!(verify(&s, &[&p.other.1]).unwrap().trustpoint, "other");
}

#[test]
fn each_refusal_reason() {
    let p = pki();
    let s = store(&[&p.root.1], RevocationCheck::None);
    let peer: IpAddr = "10.0.0.2".parse().unwrap();

    let e = verify(&s, &[&p.expired]).unwrap_err();
    assert!(
        matches!(&e, CertError::Expired { subject, .. } if subject.contains("expired")),
        "{e}"
    );
    assert!(
        inval_cert_message(peer, &e).starts_with(
            "%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10.0.0.2 is bad: \
             certificate expired"
        ),
        "{}",
        inval_cert_message(peer, &e)
    );

    let e = verify(&s, &[&p.not_yet_valid]).unwrap_err();
    assert!(matches!(e, CertError::NotYetValid { .. }), "{e}");
    assert!(
        e.to_string().starts_with("certificate not yet valid"),
        "{e}"
    );

    let e = verify(&s, &[&p.unknown]).unwrap_err();
    assert!(
        matches!(&e, CertError::UnknownCa { issuer } if issuer.contains("Unknown Root")),
        "{e}"
    );

    let e = verify(&s, &[&p.forged]).unwrap_err();
    assert!(matches!(e, CertError::BadSignature { .. }), "{e}");

    let e = verify(&s, &[&p.under_ee, &p.hub.1]).unwrap_err();
    assert!(
        matches!(&e, CertError::NotCa { subject, .. } if subject.contains("hub")),
        "{e}"
    );

    let e = verify(&s, &[&p.no_dsig]).unwrap_err();
    assert!(matches!(e, CertError::BadKeyUsage { .. }), "{e}");

    let e = s
        .verify_peer(&[b"\x30\x82junk".to_vec()], SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, CertError::Malformed { .. }), "{e}");
    let e = s.verify_peer(&[], SystemTime::now()).unwrap_err();
    assert!(matches!(e, CertError::Malformed { .. }), "{e}");
}

#[test]
fn validity_against_the_given_clock() {
    let p = pki();
    let s = store(&[&p.root.1], RevocationCheck::None);
    let t = now();
    s.verify_peer(&der(&[&p.hub.1]), at(t + 29 * DAY)).unwrap();
    let e = s
        .verify_peer(&der(&[&p.hub.1]), at(t + 31 * DAY))
        .unwrap_err();
    assert!(matches!(e, CertError::Expired { .. }), "{e}");
    let e = s
        .verify_peer(&der(&[&p.hub.1]), at(t - 2 * DAY))
        .unwrap_err();
    assert!(matches!(e, CertError::NotYetValid { .. }), "{e}");
    // The expired certificate was fine a few days ago.
    s.verify_peer(&der(&[&p.expired]), at(t - 5 * DAY)).unwrap();
    // The sub-CA expires after a year: its spokes with it (the spoke's own is 30 days, so
    // look at the CA's error at depth 1 with a long-lived spoke).
    let long = make(
        &Spec {
            to: 400,
            ..Spec::ee("long")
        },
        &p.ee,
        Some((&p.sub.1, &p.sub.0)),
    );
    let e = s
        .verify_peer(&der(&[&long, &p.sub.1]), at(t + 370 * DAY))
        .unwrap_err();
    assert!(
        matches!(&e, CertError::Expired { subject, .. } if subject.contains("Sub CA")),
        "{e}"
    );
}

// --- CERT_REQ and our certificate ----------------------------------------------------------

#[test]
fn ca_names_and_own_certificate_selection() {
    let p = pki();
    let east = Trustpoint::new(
        "east",
        vec![p.root.1.clone(), p.sub.1.clone()],
        p.spoke.1.clone(),
        p.spoke.0.clone(),
        RevocationCheck::None,
    )
    .unwrap();
    let other = Trustpoint::new(
        "other",
        vec![p.other_root.1.clone()],
        p.other.1.clone(),
        p.other.0.clone(),
        RevocationCheck::None,
    )
    .unwrap();
    let s = TrustStore::new(vec![east, other]).unwrap();
    assert_eq!(
        s.ca_distinguished_names(),
        vec![
            subject_der(&p.root.1),
            subject_der(&p.sub.1),
            subject_der(&p.other_root.1)
        ]
    );
    let unknown = X509Name::from_der(&name(&[], "Nobody").to_der().unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    let pick = |req: &[Vec<u8>]| s.select_own_cert(req).unwrap().name.clone();
    assert_eq!(pick(&[subject_der(&p.other_root.1)]), "other");
    assert_eq!(pick(&[unknown.clone(), subject_der(&p.root.1)]), "east");
    assert_eq!(pick(&[subject_der(&p.sub.1)]), "east");
    assert_eq!(
        pick(&[subject_der(&p.other_root.1), subject_der(&p.root.1)]),
        "other",
        "the first requested CA wins"
    );
    assert_eq!(pick(&[]), "east", "no request: the first trustpoint");
    assert_eq!(pick(&[unknown]), "east", "no match: the first trustpoint");

    let east = s.trustpoint("east").unwrap();
    assert_eq!(
        east.cert_chain_der(),
        der(&[&p.spoke.1, &p.sub.1]),
        "our certificate and the sub-CA, not the root"
    );
    assert_eq!(east.issuers().len(), 2);
    // The signature our key makes verifies with our certificate, not with another.
    let hash = [0x42u8; 20];
    let sig = east.sign(&hash).unwrap();
    assert!(verify_hash_cert(east.cert(), &hash, &sig));
    assert!(!verify_hash_cert(&p.other.1, &hash, &sig));
    assert!(TrustStore::new(vec![])
        .unwrap()
        .select_own_cert(&[])
        .is_none());
}

#[test]
fn trustpoint_consistency_is_checked() {
    let p = pki();
    // Key of another certificate.
    let e = Trustpoint::new(
        "t",
        vec![p.root.1.clone()],
        p.hub.1.clone(),
        p.spoke.0.clone(),
        RevocationCheck::Crl,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    // Our certificate from a CA the trustpoint does not hold.
    let e = Trustpoint::new(
        "t",
        vec![p.other_root.1.clone()],
        p.hub.1.clone(),
        p.hub.0.clone(),
        RevocationCheck::Crl,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown CA"), "{e}");
    // Not RSA.
    let ec = PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let e = Trustpoint::new(
        "t",
        vec![p.root.1.clone()],
        p.hub.1.clone(),
        ec,
        RevocationCheck::Crl,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not an RSA key"), "{e}");
    let e = Trustpoint::new(
        "t",
        vec![],
        p.hub.1.clone(),
        p.hub.0.clone(),
        RevocationCheck::Crl,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no CA"), "{e}");
}

#[test]
fn trustpoint_from_files_and_key_never_shown() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let w = |n: &str, data: &[u8]| {
        let path = dir.path().join(n);
        std::fs::write(&path, data).unwrap();
        path
    };
    // Root PEM, sub-CA DER, our certificate PEM, our key PKCS#1 PEM; CRL file.
    let root = w("root.pem", &p.root.1.to_pem().unwrap());
    let sub = w("sub.der", &p.sub.1.to_der().unwrap());
    let cert = w("spoke.pem", &p.spoke.1.to_pem().unwrap());
    let key_pem = p.spoke.0.rsa().unwrap().private_key_to_pem().unwrap();
    let key = w("spoke.key", &key_pem);
    let cfg = TrustpointConfig {
        ca_certificates: vec![root.clone(), sub.clone()],
        certificate: cert.clone(),
        private_key: key.clone(),
        revocation: RevocationCheck::Crl,
        crl_file: Some(sub_crl().1.clone()),
        crl_url: None,
    };
    let tp = Trustpoint::load("CA1", &cfg).unwrap();
    assert_eq!(tp.ca_certs.len(), 2);
    assert_eq!(tp.revocation, RevocationCheck::Crl);
    let shown = format!("{tp:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    let key_body = String::from_utf8(key_pem.clone()).unwrap();
    let secret_line = key_body.lines().nth(3).unwrap();
    assert!(!shown.contains(secret_line), "{shown}");

    let mut cfgs = std::collections::BTreeMap::new();
    cfgs.insert("CA1".to_string(), cfg.clone());
    let s = TrustStore::load(&cfgs).unwrap();
    assert!(!format!("{s:?}").contains(secret_line));
    assert_eq!(s.crls().len(), 1, "the CRL file was read");
    let v = s
        .verify_peer(&der(&[&p.spoke.1]), SystemTime::now())
        .unwrap();
    assert_eq!(v.revocation, RevocationStatus::Checked);
    let e = s
        .verify_peer(&der(&[&p.revoked]), SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, CertError::Revoked { .. }), "{e}");

    // PKCS#8 DER key and a DER certificate work too.
    let key8 = w("k8.der", &p.spoke.0.private_key_to_pkcs8().unwrap());
    let certd = w("spoke.der", &p.spoke.1.to_der().unwrap());
    Trustpoint::load(
        "CA2",
        &TrustpointConfig {
            certificate: certd,
            private_key: key8,
            ..cfg.clone()
        },
    )
    .unwrap();

    // Errors name the trustpoint and the file.
    let garbage = w(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    );
    let missing = dir.path().join("missing.pem");
    for (c, file) in [
        (
            TrustpointConfig {
                ca_certificates: vec![root.clone(), missing.clone()],
                ..cfg.clone()
            },
            &missing,
        ),
        (
            TrustpointConfig {
                certificate: garbage.clone(),
                ..cfg.clone()
            },
            &garbage,
        ),
        (
            TrustpointConfig {
                private_key: cert.clone(),
                ..cfg.clone()
            },
            &cert,
        ),
    ] {
        let e = Trustpoint::load("CA1", &c).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("trustpoint CA1: "), "{text}");
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(matches!(e, PkiError::File { .. }));
    }
    // A bad CRL file.
    let badcrl = w("bad.crl", b"not a crl");
    let e = TrustStore::load(&std::collections::BTreeMap::from([(
        "CA1".to_string(),
        TrustpointConfig {
            crl_file: Some(badcrl.clone()),
            ..cfg
        },
    )]))
    .unwrap_err();
    assert!(e.to_string().contains(&badcrl.display().to_string()), "{e}");
}

// --- revocation ----------------------------------------------------------------------------

fn store_with_crl(mode: RevocationCheck) -> TrustStore {
    let p = pki();
    let s = store(&[&p.root.1, &p.sub.1], mode);
    s.crls()
        .insert(sub_crl_der(), CrlSource::File(sub_crl().1.clone()))
        .unwrap();
    s
}

#[test]
fn revoked_certificate_is_refused() {
    let p = pki();
    for mode in [RevocationCheck::Crl, RevocationCheck::CrlNone] {
        let s = store_with_crl(mode);
        let e = verify(&s, &[&p.revoked]).unwrap_err();
        let serial = p
            .revoked
            .serial_number()
            .to_bn()
            .unwrap()
            .to_hex_str()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            CertError::Revoked {
                serial: serial.clone(),
                subject: "CN=revoked,O=example,C=US".into()
            }
        );
        let line = inval_cert_message("10.0.0.9".parse().unwrap(), &e);
        assert!(
            line.contains("is bad: certificate revoked (serial"),
            "{line}"
        );
        let v = verify(&s, &[&p.spoke.1]).unwrap();
        assert_eq!(v.revocation, RevocationStatus::Checked);
    }
    // revocation-check none: not looked at.
    let s = store_with_crl(RevocationCheck::None);
    assert_eq!(
        verify(&s, &[&p.revoked]).unwrap().revocation,
        RevocationStatus::Skipped
    );
}

#[test]
fn without_a_crl_the_mode_decides() {
    let p = pki();
    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::Crl);
    let e = verify(&s, &[&p.spoke.1]).unwrap_err();
    assert!(
        matches!(&e, CertError::NoValidCrl { issuer } if issuer.contains("Sub CA East")),
        "{e}"
    );
    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::CrlNone);
    assert_eq!(
        verify(&s, &[&p.spoke.1]).unwrap().revocation,
        RevocationStatus::Unavailable
    );
    // A revoked certificate gets through when nothing tells it is revoked (crl none).
    assert_eq!(
        verify(&s, &[&p.revoked]).unwrap().revocation,
        RevocationStatus::Unavailable
    );
}

#[test]
fn crl_past_next_update_is_not_valid() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = gen_crl(dir.path(), "short", &p.sub, &[&p.revoked], 1);
    let t = now();
    for (mode, ok) in [
        (RevocationCheck::Crl, false),
        (RevocationCheck::CrlNone, true),
    ] {
        let mut tp = hub_tp(&[&p.root.1, &p.sub.1], mode);
        tp.crl_file = Some(path.clone());
        let s = TrustStore::new(vec![tp]).unwrap();
        // Within the hour the CRL is good.
        let e = s.verify_peer(&der(&[&p.revoked]), at(t + 60)).unwrap_err();
        assert!(matches!(e, CertError::Revoked { .. }), "{e}");
        // Two hours later it is past its nextUpdate (and the file has nothing newer).
        let r = s.verify_peer(&der(&[&p.spoke.1]), at(t + 2 * 3600));
        if ok {
            assert_eq!(r.unwrap().revocation, RevocationStatus::Unavailable);
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, CertError::NoValidCrl { .. }), "{e}");
        }
        // Due for a refresh within the margin (10% of a 1-hour CRL: 6 minutes).
        let sub_name = p.sub.1.subject_name();
        let c = s.crls();
        assert!(!c.needs_refresh(sub_name, t + 60));
        assert!(c.needs_refresh(sub_name, t + 3600 - 5 * 60));
    }
}

#[test]
fn crl_signed_by_another_key_is_ignored() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    // Same issuer name as the sub-CA, another key, and it does not list `revoked`.
    let (_, fake) = gen_crl(dir.path(), "fake", &p.fake_sub, &[], 24);
    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::Crl);
    s.crls().insert(fake, CrlSource::Memory).unwrap();
    let e = verify(&s, &[&p.revoked]).unwrap_err();
    assert!(matches!(e, CertError::NoValidCrl { .. }), "{e}");
}

#[test]
fn revoked_subordinate_ca_is_refused() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let (root_crl, _) = gen_crl(dir.path(), "root", &p.root, &[&p.sub.1], 24);
    let s = store_with_crl(RevocationCheck::CrlNone);
    verify(&s, &[&p.spoke.1, &p.sub.1]).unwrap();
    s.crls().load_file(&root_crl).unwrap();
    let e = verify(&s, &[&p.spoke.1, &p.sub.1]).unwrap_err();
    assert!(
        matches!(&e, CertError::Revoked { subject, .. } if subject.contains("Sub CA East")),
        "{e}"
    );
}

#[test]
fn crl_fetched_from_the_distribution_point() {
    let p = pki();
    // DER body with Content-Length.
    let server = serve("/crl/sub.crl", sub_crl().2.clone(), 200, true);
    let spec = |cn| Spec {
        cdp: Some(server.url.clone()),
        ..Spec::ee(cn)
    };
    let good = make(&spec("cdp-good"), &p.ee, Some((&p.sub.1, &p.sub.0)));
    assert_eq!(crl::distribution_points(&good), vec![server.url.clone()]);

    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::Crl);
    let v = verify(&s, &[&good]).unwrap();
    assert_eq!(v.revocation, RevocationStatus::Checked);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // Cached until due: no second fetch.
    verify(&s, &[&good]).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // The cached CRL knows `revoked` (no CDP in it: the CRL held for its issuer is used).
    let e = verify(&s, &[&p.revoked]).unwrap_err();
    assert!(matches!(e, CertError::Revoked { .. }), "{e}");

    // Within the refresh margin (10% of 24 h), the next use refetches it.
    let t = now();
    let sub_name = p.sub.1.subject_name();
    assert!(!s.crls().needs_refresh(sub_name, t));
    assert!(s.crls().needs_refresh(sub_name, t + 22 * 3600));
    s.verify_peer(&der(&[&good]), at(t + 22 * 3600)).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    // On demand.
    s.crls().refresh(sub_name).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 3);
    // From the timer.
    let done = s.refresh_crls(at(t + 23 * 3600));
    assert_eq!(done.len(), 1);
    assert!(done[0].1.is_ok(), "{:?}", done[0].1);
    assert_eq!(server.hits.load(Ordering::SeqCst), 4);
    assert!(s.refresh_crls(at(t)).is_empty());
}

#[test]
fn crl_url_of_the_trustpoint_pem_and_read_to_close() {
    let p = pki();
    let pem = sub_crl_der().to_pem().unwrap();
    let server = serve("/sub.pem", pem, 200, false);
    let mut tp = hub_tp(&[&p.root.1, &p.sub.1], RevocationCheck::Crl);
    tp.crl_url = Some(server.url.clone());
    let s = TrustStore::new(vec![tp]).unwrap();
    let e = verify(&s, &[&p.revoked]).unwrap_err();
    assert!(matches!(e, CertError::Revoked { .. }), "{e}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    verify(&s, &[&p.spoke.1]).unwrap();
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn failing_crl_server() {
    let p = pki();
    let server = serve("/x.crl", vec![], 500, true);
    let spec = Spec {
        cdp: Some(server.url.clone()),
        ..Spec::ee("cdp-down")
    };
    let cert = make(&spec, &p.ee, Some((&p.sub.1, &p.sub.0)));
    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::Crl);
    let e = verify(&s, &[&cert]).unwrap_err();
    assert!(matches!(e, CertError::NoValidCrl { .. }), "{e}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // Not tried again at once.
    let e = verify(&s, &[&cert]).unwrap_err();
    assert!(matches!(e, CertError::NoValidCrl { .. }), "{e}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // A minute later, it is.
    let _ = s.verify_peer(&der(&[&cert]), at(now() + 61));
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);

    let s = store(&[&p.root.1, &p.sub.1], RevocationCheck::CrlNone);
    assert_eq!(
        verify(&s, &[&cert]).unwrap().revocation,
        RevocationStatus::Unavailable
    );

    // The HTTP error names the status.
    let e = crl::http_get(&server.url, Duration::from_secs(2)).unwrap_err();
    assert!(e.to_string().contains("HTTP status 500"), "{e}");
    // 404 and a body that is not a CRL.
    let server = serve("/x.crl", b"hello".to_vec(), 200, true);
    let e = crl::http_get(&format!("{}.missing", server.url), Duration::from_secs(2)).unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    let e = crl::fetch_crl(&server.url, Duration::from_secs(2))
        .err()
        .expect("not a CRL");
    assert!(e.to_string().contains("not a DER CRL"), "{e}");
}

#[test]
fn crl_cache_basics() {
    let p = pki();
    let mut c = CrlCache::new();
    assert!(c.is_empty());
    let name = c.load_file(&sub_crl().1).unwrap();
    assert_eq!(name, "CN=Sub CA East,O=example,C=US");
    assert_eq!(c.issuers(), vec![name]);
    let t = now();
    let nu = c.next_update(p.sub.1.subject_name()).unwrap();
    assert!((nu - (t + 24 * 3600)).abs() < 600, "{nu} vs {t}");
    assert_eq!(c.due(t).len(), 0);
    assert_eq!(c.due(t + 23 * 3600).len(), 1);
    assert_eq!(
        c.status(&p.revoked, &p.sub.1, None, t),
        crl::CertStatus::Revoked {
            serial: p
                .revoked
                .serial_number()
                .to_bn()
                .unwrap()
                .to_hex_str()
                .unwrap()
                .to_string()
        }
    );
    assert_eq!(
        c.status(&p.spoke.1, &p.sub.1, None, t),
        crl::CertStatus::Good
    );
    // The root has no CRL here.
    assert_eq!(
        c.status(&p.sub.1, &p.root.1, None, t),
        crl::CertStatus::NoCrl
    );
    assert!(matches!(
        c.refresh(p.root.1.subject_name()),
        Err(CrlError::NoSource { .. })
    ));
    c.refresh(p.sub.1.subject_name()).unwrap();
    let e = c.load_file(Path::new("/nonexistent/x.crl")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.crl"), "{e}");
}

#[test]
fn a_crl_verified_once_is_still_refused_to_an_issuer_with_another_key() {
    let p = pki();
    let mut c = CrlCache::new();
    c.load_file(&sub_crl().1).unwrap();
    let t = now();
    // verified with the sub-CA's key, which is remembered; then accepted from it
    for _ in 0..2 {
        assert_eq!(
            c.status(&p.spoke.1, &p.sub.1, None, t),
            crl::CertStatus::Good
        );
    }
    // a CA of the same name and another key: the CRL is not its own
    assert_eq!(
        c.status(&p.spoke.1, &p.fake_sub.1, None, t),
        crl::CertStatus::NoCrl
    );
    assert_eq!(
        c.status(&p.spoke.1, &p.sub.1, None, t),
        crl::CertStatus::Good
    );
}

// --- identities ----------------------------------------------------------------------------

#[test]
fn peer_identity_against_its_certificate() {
    let p = pki();
    let hub = &p.hub.1;
    let ok = |c: &X509, claim: IdentityClaim| {
        check_identity(c, &claim).unwrap_or_else(|e| panic!("{claim:?}: {e}"))
    };
    let bad = |c: &X509, claim: IdentityClaim| match check_identity(c, &claim) {
        Err(e @ CertError::IdMismatch { .. }) => e,
        other => panic!("{claim:?}: {other:?}"),
    };
    ok(hub, IdentityClaim::Fqdn("hub.example.com".into()));
    ok(hub, IdentityClaim::Fqdn("HUB.Example.com.".into()));
    ok(hub, IdentityClaim::Fqdn("hub".into())); // the CN
    ok(hub, IdentityClaim::Ipv4("192.0.2.1".parse().unwrap()));
    ok(hub, IdentityClaim::Ipv6("2001:db8::1".parse().unwrap()));
    ok(hub, IdentityClaim::UserFqdn("VPN@example.com".into()));
    ok(hub, IdentityClaim::Dn(subject_der(hub)));
    // The same DN built again (another encoding of the same strings).
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_text("C", "us").unwrap();
    n.append_entry_by_text("O", "Example").unwrap();
    n.append_entry_by_text("CN", "HUB").unwrap();
    ok(hub, IdentityClaim::Dn(n.build().to_der().unwrap()));

    let e = bad(hub, IdentityClaim::Fqdn("spoke1.example.com".into()));
    assert!(
        e.to_string()
            .contains("spoke1.example.com (ID_FQDN) does not match"),
        "{e}"
    );
    assert!(e.to_string().contains("DNS:hub.example.com"), "{e}");
    assert!(e.to_string().contains("IP:192.0.2.1"), "{e}");
    let line = inval_cert_message("192.0.2.1".parse().unwrap(), &e);
    assert!(line.contains("does not match the certificate"), "{line}");
    bad(hub, IdentityClaim::Ipv4("192.0.2.2".parse().unwrap()));
    bad(hub, IdentityClaim::Ipv6("2001:db8::2".parse().unwrap()));
    bad(hub, IdentityClaim::UserFqdn("root@example.com".into()));
    bad(hub, IdentityClaim::Dn(subject_der(&p.spoke.1)));
    bad(hub, IdentityClaim::Dn(b"junk".to_vec()));
    // No address at all in the spoke's certificate.
    bad(
        &p.spoke.1,
        IdentityClaim::Ipv4("198.51.100.7".parse().unwrap()),
    );

    // An IOS-enrolled certificate: hostname in unstructuredName, address in
    // unstructuredAddress.
    ok(&p.ios, IdentityClaim::Fqdn("router1.example.com".into()));
    ok(&p.ios, IdentityClaim::Ipv4("10.1.1.1".parse().unwrap()));
    bad(&p.ios, IdentityClaim::Ipv4("10.1.1.2".parse().unwrap()));

    // Through the store.
    let s = store(&[&p.root.1], RevocationCheck::None);
    s.verify_peer_identity(
        &der(&[hub]),
        &IdentityClaim::Fqdn("hub.example.com".into()),
        SystemTime::now(),
    )
    .unwrap();
    let e = s
        .verify_peer_identity(
            &der(&[hub]),
            &IdentityClaim::Ipv4("10.9.9.9".parse().unwrap()),
            SystemTime::now(),
        )
        .unwrap_err();
    assert!(matches!(e, CertError::IdMismatch { .. }), "{e}");
}

#[test]
fn own_identity_falls_back_to_the_fqdn() {
    let p = pki();
    let a = |s: &str| s.parse::<IpAddr>().unwrap();
    // Our certificate holds our address: the address.
    assert_eq!(
        own_identity(
            &p.hub.1,
            IdentityMode::Address,
            a("192.0.2.1"),
            "hub.example.com"
        ),
        IdentityClaim::Ipv4("192.0.2.1".parse().unwrap())
    );
    assert_eq!(
        own_identity(
            &p.hub.1,
            IdentityMode::Address,
            a("2001:db8::1"),
            "hub.example.com"
        ),
        IdentityClaim::Ipv6("2001:db8::1".parse().unwrap())
    );
    // It does not (a NATed or renumbered address): the FQDN.
    assert_eq!(
        own_identity(
            &p.hub.1,
            IdentityMode::Address,
            a("203.0.113.5"),
            "hub.example.com"
        ),
        IdentityClaim::Fqdn("hub.example.com".into())
    );
    // No address at all; the configured name is not in the certificate: the certificate's.
    let id = own_identity(
        &p.spoke.1,
        IdentityMode::Address,
        a("198.51.100.7"),
        "spoke1.example.org",
    );
    assert_eq!(id, IdentityClaim::Fqdn("spoke1.example.com".into()));
    check_identity(&p.spoke.1, &id).unwrap();
    // IOS certificate: unstructuredAddress counts as an address, unstructuredName as a name.
    assert_eq!(
        own_identity(
            &p.ios,
            IdentityMode::Address,
            a("10.1.1.1"),
            "router1.example.com"
        ),
        IdentityClaim::Ipv4("10.1.1.1".parse().unwrap())
    );
    assert_eq!(
        own_identity(
            &p.ios,
            IdentityMode::Address,
            a("10.1.1.9"),
            "router1.example.com"
        ),
        IdentityClaim::Fqdn("router1.example.com".into())
    );
    assert_eq!(
        own_identity(
            &p.spoke.1,
            IdentityMode::Hostname,
            a("198.51.100.7"),
            "spoke1.example.com"
        ),
        IdentityClaim::Fqdn("spoke1.example.com".into())
    );
    let dn = own_identity(&p.spoke.1, IdentityMode::Dn, a("198.51.100.7"), "x");
    assert_eq!(dn, IdentityClaim::Dn(subject_der(&p.spoke.1)));
    assert_eq!(dn.to_string(), "CN=spoke1,O=example,C=US");
}

// --- verified chains remembered --------------------------------------------------------------

fn cached_store(cas: &[&X509], mode: RevocationCheck, cache: &Arc<ChainCache>) -> TrustStore {
    TrustStore::with_chain_cache(vec![hub_tp(cas, mode)], cache.clone()).unwrap()
}

#[test]
fn a_chain_is_checked_once_and_revocation_every_time() {
    let p = pki();
    let cache = Arc::new(ChainCache::new(16));
    let s = cached_store(&[&p.root.1, &p.sub.1], RevocationCheck::CrlNone, &cache);
    // no CRL held: the revoked certificate passes (crl none), and its chain is remembered
    let v = verify(&s, &[&p.revoked]).unwrap();
    assert_eq!(v.revocation, RevocationStatus::Unavailable);
    assert_eq!(
        cache.stats(),
        ChainCacheStats {
            entries: 1,
            hits: 0,
            misses: 1
        }
    );
    let again = verify(&s, &[&p.revoked]).unwrap();
    assert_eq!(again.cert.to_der().unwrap(), p.revoked.to_der().unwrap());
    assert_eq!(again.chain.len(), v.chain.len());
    assert_eq!(cache.stats().hits, 1);
    // the CRL arrives: the remembered chain is still checked against it
    s.crls()
        .insert(sub_crl_der(), CrlSource::File(sub_crl().1.clone()))
        .unwrap();
    let e = verify(&s, &[&p.revoked]).unwrap_err();
    assert!(matches!(e, CertError::Revoked { .. }), "{e}");
    assert_eq!(cache.stats().hits, 2, "the chain came from the cache");
    let ok = verify(&s, &[&p.spoke.1]).unwrap();
    assert_eq!(ok.revocation, RevocationStatus::Checked);
}

#[test]
fn a_remembered_chain_serves_only_its_cas_and_its_validity() {
    let p = pki();
    let cache = Arc::new(ChainCache::new(16));
    let s = cached_store(&[&p.root.1], RevocationCheck::None, &cache);
    let t = now();
    s.verify_peer(&der(&[&p.hub.1]), at(t)).unwrap();
    s.verify_peer(&der(&[&p.hub.1]), at(t + 29 * DAY)).unwrap();
    assert_eq!(cache.stats().hits, 1);
    // past the end-entity certificate's notAfter: checked again, and refused
    let e = s
        .verify_peer(&der(&[&p.hub.1]), at(t + 31 * DAY))
        .unwrap_err();
    assert!(matches!(e, CertError::Expired { .. }), "{e}");
    let e = s
        .verify_peer(&der(&[&p.hub.1]), at(t - 2 * DAY))
        .unwrap_err();
    assert!(matches!(e, CertError::NotYetValid { .. }), "{e}");
    assert_eq!(cache.stats().hits, 1);
    // another store with the same CAs finds it; one with other CAs does not, and refuses
    let same = cached_store(&[&p.root.1], RevocationCheck::None, &cache);
    verify(&same, &[&p.hub.1]).unwrap();
    assert_eq!(cache.stats().hits, 2);
    let other_tp = Trustpoint::new(
        "other",
        vec![p.other_root.1.clone()],
        p.other.1.clone(),
        p.other.0.clone(),
        RevocationCheck::None,
    )
    .unwrap();
    let other = TrustStore::with_chain_cache(vec![other_tp], cache.clone()).unwrap();
    let e = verify(&other, &[&p.hub.1]).unwrap_err();
    assert!(matches!(e, CertError::UnknownCa { .. }), "{e}");
    assert_eq!(cache.stats().hits, 2);
    // refusals are not remembered; a different chain is a different entry
    assert!(verify(&s, &[&p.unknown]).is_err());
    assert!(verify(&s, &[&p.unknown]).is_err());
    let entries = cache.stats().entries;
    verify(&s, &[&p.ios]).unwrap();
    assert_eq!(cache.stats().entries, entries + 1);
}

#[test]
fn the_cache_is_bounded_oldest_out() {
    let p = pki();
    let cache = Arc::new(ChainCache::new(2));
    let s = cached_store(&[&p.root.1], RevocationCheck::None, &cache);
    for c in [&p.hub.1, &p.ios, &p.no_dsig] {
        let _ = verify(&s, &[c]);
    }
    // no_dsig fails its key usage: not kept; hub and ios are
    assert_eq!(cache.stats().entries, 2);
    let other = make(&Spec::ee("third"), &p.ee, Some((&p.root.1, &p.root.0)));
    verify(&s, &[&other]).unwrap();
    assert_eq!(cache.stats().entries, 2);
    let hits = cache.stats().hits;
    verify(&s, &[&p.ios]).unwrap();
    assert_eq!(cache.stats().hits, hits + 1, "the newer one stays");
    verify(&s, &[&p.hub.1]).unwrap();
    assert_eq!(cache.stats().hits, hits + 1, "the oldest one left");
}
