//! `ipsec-ikeload`: an IKEv1 setup-rate load generator (issue 5). N spokes, each from its
//! own address, run Main Mode (rsa-sig with its own RSA-2048 certificate, AES-128, SHA-1,
//! MODP-2048) and Quick Mode (ESP AES-128 + HMAC-SHA1, tunnel, PFS group 14) toward one
//! responder, with the project's own initiator states and crypto, then prove their tunnel
//! carries traffic: each sends ESP probes, encrypted with the dataplane crate's ESP code on
//! the SA it negotiated, to a sink in the responder's LAN until one arrives.
//!
//! - [`pki`]: the CA and the responder's and spokes' certificates, cached in a directory.
//! - [`spoke`]: one spoke's exchanges and probes (sans-IO).
//! - [`net`]: the UDP sockets (IP_PKTINFO: one socket per port serves every spoke
//!   address), the raw socket of the probes, binding in another network namespace.
//! - [`sink`]: the traffic check in the responder's LAN.
//! - [`run`]: workers, readers, the concurrency window.
//! - [`report`]: the figures.
//!
//! Spoke N (1-based) uses the N-th consecutive address from `--first-address`, the ID
//! `spokeN.example.net` and the LAN [`spoke_lan`] (10.128.0.0/9 split in /24s), proxies
//! `spoke LAN <-> --responder-lan`.

pub mod net;
pub mod pki;
pub mod report;
pub mod run;
pub mod sink;
pub mod spoke;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};

use openssl::pkey::{PKey, Private};

use dataplane::crypto::{Encryption, Integrity, Transform};
use dataplane::esp::{Lifetime, Mode, Prefix, Selector};

use crate::config::IdentityMode;
use crate::credentials::GatewayCredentials;
use crate::ike::{AuthMethod, MainModeConfig, Phase1Policy, Phase2Policy, Proxies, TransformSet};
use crate::ikecrypto::{DhGroup, HashAlg, IkeCipher};
use crate::pki::{RevocationCheck, TrustStore, Trustpoint};

use pki::LabPki;
use spoke::SpokeSetup;

/// Spoke `n`'s LAN: 10.(128 + n / 256).(n % 256).0/24 (up to 32767 spokes).
pub fn spoke_lan(n: usize) -> Prefix {
    Prefix {
        addr: IpAddr::V4(Ipv4Addr::new(10, 128 + (n / 256) as u8, (n % 256) as u8, 0)),
        len: 24,
    }
}

/// The largest number of spokes [`spoke_lan`] can tell apart.
pub const MAX_SPOKES: usize = 127 * 256 + 255;

/// The proposals of the load (the issue's: RSA-2048 certificates, MODP-2048, AES + SHA,
/// PFS group 14).
pub fn phase1_policy() -> Phase1Policy {
    Phase1Policy {
        priority: 10,
        cipher: IkeCipher::Aes128,
        hash: HashAlg::Sha1,
        auth: AuthMethod::RsaSig,
        group: DhGroup::Modp2048,
        lifetime_secs: 86400,
    }
}

/// Spoke `n`'s crypto map entry: its LAN to `responder_lan`, esp-aes esp-sha-hmac, tunnel,
/// PFS group 14, 3600 s.
pub fn phase2_policy(n: usize, responder_lan: Prefix) -> Phase2Policy {
    let mut p = Phase2Policy::new(
        "ikeload",
        10,
        vec![TransformSet {
            name: "ts".into(),
            transform: Transform {
                encryption: Encryption::AesCbc128,
                integrity: Integrity::Sha1,
            },
            mode: Mode::Tunnel,
        }],
        Proxies::Static(Selector {
            source: spoke_lan(n),
            destination: responder_lan,
            protocol: 0,
            source_ports: (0, 65535),
            destination_ports: (0, 65535),
        }),
    );
    p.pfs = Some(DhGroup::Modp2048);
    p.lifetime = Lifetime::default();
    p
}

/// Makes the Diffie-Hellman key pairs `count` spokes will use (one for Main Mode, one for
/// PFS) ahead of the run, on `threads` threads, in the process's pool that the spokes'
/// exchanges take from; returns how many were made.
pub fn precompute(count: usize, threads: usize) -> Result<usize, String> {
    let mut targets: Vec<(DhGroup, usize)> = vec![(phase1_policy().group, count)];
    let any = Prefix {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    };
    if let Some(g) = phase2_policy(1, any).pfs {
        match targets.iter_mut().find(|(t, _)| *t == g) {
            Some((_, n)) => *n += count,
            None => targets.push((g, count)),
        }
    }
    let pool = crate::ikecrypto::dh_pool::process_pool();
    pool.set_targets(&targets);
    pool.fill(threads)
        .map_err(|e| format!("precomputing Diffie-Hellman key pairs: {e}"))
}

/// Signs once with every key from two threads alive at the same time, on `threads` pairs
/// of threads, so that the set-up OpenSSL does at an RSA key's first signature (the
/// Montgomery constants of p, q and n; the blinding values, a modular inverse) is done now,
/// before the timed start, rather than in a spoke's Main Mode. OpenSSL keeps one blinding
/// for the thread that made it and another for all other threads (the load's workers),
/// hence the two signers, whose thread ids differ because both are alive.
pub fn warm_up_rsa(keys: &[PKey<Private>], threads: usize) -> Result<(), String> {
    let pairs = threads.clamp(1, keys.len().max(1));
    let chunk = keys.len().div_ceil(pairs).max(1);
    let first_done = Barrier::new(2 * pairs);
    let all_done = Barrier::new(2 * pairs);
    // what the signatures sign does not matter: a SHA-1 sized HASH_I
    let hash = [0x5au8; 20];
    let sign_all = |part: &[PKey<Private>]| -> Result<(), String> {
        for k in part {
            crate::pki::sign_hash(k, &hash).map_err(|e| format!("RSA key warm-up: {e}"))?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for second in [false, true] {
            for part in keys
                .chunks(chunk)
                .chain(std::iter::repeat(&[][..]))
                .take(pairs)
            {
                let (first_done, all_done, sign_all) = (&first_done, &all_done, &sign_all);
                handles.push(scope.spawn(move || {
                    if second {
                        first_done.wait();
                    }
                    let r = sign_all(part);
                    if !second {
                        first_done.wait();
                    }
                    all_done.wait();
                    r
                }));
            }
        }
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("an RSA warm-up thread panicked"))
    })
}

/// Spokes 1..=count from the PKI directory (their certificates must exist: see
/// [`LabPki::ensure_spokes`]): credentials (own certificate and key, the CA to check the
/// responder's certificate, no revocation check), policies and addresses; the keys warmed
/// up ([`warm_up_rsa`]) on `threads` pairs of threads.
pub fn spokes(
    pki: &LabPki,
    count: usize,
    first_address: Ipv4Addr,
    responder_lan: Prefix,
    sink: Ipv4Addr,
    threads: usize,
) -> Result<Vec<SpokeSetup>, String> {
    if count == 0 || count > MAX_SPOKES {
        return Err(format!("the number of spokes must be 1..={MAX_SPOKES}"));
    }
    let ca = pki.ca()?;
    let mut keys = Vec::with_capacity(count);
    let setups = (1..=count)
        .map(|n| {
            let own = pki.spoke(n)?;
            // the same key object: what the trustpoint signs with later
            keys.push(own.key.clone());
            let address = Ipv4Addr::from(u32::from(first_address) + (n - 1) as u32);
            let tp = Trustpoint::new(
                "IKELOAD",
                vec![ca.cert.clone()],
                own.cert,
                own.key,
                RevocationCheck::None,
            )
            .map_err(|e| format!("spoke {n}: {e}"))?;
            let store = TrustStore::new(vec![tp]).map_err(|e| format!("spoke {n}: {e}"))?;
            let creds = GatewayCredentials {
                store,
                keys: Vec::new(),
                identity: IdentityMode::Hostname,
                local: IpAddr::V4(address),
                fqdn: pki::spoke_fqdn(n),
            };
            Ok(SpokeSetup {
                number: n,
                address,
                main_mode: Arc::new(MainModeConfig::new(vec![phase1_policy()], Arc::new(creds))),
                quick_mode: Arc::new(phase2_policy(n, responder_lan)),
                sink,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    warm_up_rsa(&keys, threads)?;
    Ok(setups)
}
