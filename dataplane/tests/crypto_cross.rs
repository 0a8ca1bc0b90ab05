//! Backends checked against each other and against malformed input.
//!
//! - Every transform two backends share: random packets sealed by one open with the other,
//!   both ways, and a flipped bit anywhere in the authenticated bytes fails on both.
//! - Every transform: random round trips on its backends, a flipped bit fails, and the
//!   plaintext is actually changed by sealing (nothing leaves in clear).
//! - Wrong key lengths give `BadKeyLength`; a CBC payload that is not a whole number of
//!   blocks, or a packet too short for header/IV/ICV, gives `BadLength` on open and is
//!   wiped, not sent in clear, on seal. Nothing panics.
//! - The registry: names, defaults, forced backends.

use dataplane::crypto::{
    backend_by_name, backends, default_backend, Backend, CryptoError, Encryption, EspCipher,
    Integrity, Transform,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ENCRYPTIONS: [Encryption; 8] = [
    Encryption::Gcm128,
    Encryption::Gcm256,
    Encryption::AesCbc128,
    Encryption::AesCbc192,
    Encryption::AesCbc256,
    Encryption::TripleDes,
    Encryption::Des,
    Encryption::Null,
];
const INTEGRITIES: [Integrity; 4] = [
    Integrity::None,
    Integrity::Sha1,
    Integrity::Md5,
    Integrity::Sha256,
];

/// Every transform the configuration accepts.
fn valid_transforms() -> Vec<Transform> {
    let mut all = Vec::new();
    for encryption in ENCRYPTIONS {
        for integrity in INTEGRITIES {
            let t = Transform {
                encryption,
                integrity,
            };
            if t.is_valid() {
                all.push(t);
            }
        }
    }
    all
}

/// True when this CPU runs the VAES kernel (the `vaes` backend supports AES-GCM).
fn vaes_here() -> bool {
    dataplane::crypto::vaes_gcm::cpu_has_features()
}

fn supporting(t: Transform) -> Vec<&'static dyn Backend> {
    backends()
        .iter()
        .copied()
        .filter(|b| b.supports(t))
        .collect()
}

fn random_bytes(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// A random ESP packet for `t`: SPI, sequence, IV, `blocks` cipher blocks of payload and
/// trailer, and room for the ICV.
fn random_packet(rng: &mut ChaCha8Rng, t: Transform, blocks: usize) -> Vec<u8> {
    let body = 8 + t.iv_len() + blocks * t.encryption.block_len();
    let mut esp = random_bytes(rng, body);
    esp.extend(vec![0u8; t.icv_len()]);
    esp
}

fn keys(rng: &mut ChaCha8Rng, t: Transform) -> (Vec<u8>, Vec<u8>) {
    (
        random_bytes(rng, t.encryption.key_len()),
        random_bytes(rng, t.integrity.key_len()),
    )
}

fn random_esn(rng: &mut ChaCha8Rng) -> Option<u32> {
    if rng.next_u32().is_multiple_of(2) {
        None
    } else {
        Some(rng.next_u32())
    }
}

/// Seals with `a`, opens with `b`, checks the plaintext comes back; then flips one random bit
/// of the authenticated bytes (header, IV, ciphertext or ICV) and checks that `a` and `b`
/// both refuse it.
fn seal_open_flip(
    rng: &mut ChaCha8Rng,
    t: Transform,
    a: &dyn EspCipher,
    b: &dyn EspCipher,
    blocks: usize,
) {
    let esn = random_esn(rng);
    let plain = random_packet(rng, t, blocks);
    let mut esp = plain.clone();
    a.seal(&mut esp, esn);
    let payload = 8 + t.iv_len()..plain.len() - t.icv_len();
    if t.encryption != Encryption::Null && !payload.is_empty() {
        assert_ne!(
            esp[payload.clone()],
            plain[payload.clone()],
            "{t}: sealed in clear"
        );
    }
    assert_eq!(
        esp[..8 + t.iv_len()],
        plain[..8 + t.iv_len()],
        "{t}: header changed"
    );

    let sealed = esp.clone();
    b.open(&mut esp, esn)
        .unwrap_or_else(|e| panic!("{t}: open failed: {e}"));
    assert_eq!(esp[payload.clone()], plain[payload], "{t}: round trip");

    if t.icv_len() == 0 {
        return;
    }
    let bit = (rng.next_u32() as usize) % (sealed.len() * 8);
    for cipher in [a, b] {
        let mut forged = sealed.clone();
        forged[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            cipher.open(&mut forged, esn),
            Err(CryptoError::AuthFailed),
            "{t}: flipped bit {bit} accepted"
        );
    }
    // The right packet under the wrong ESN high bits fails too.
    let wrong_esn = Some(esn.map_or(1, |hi| hi.wrapping_add(1)));
    assert_eq!(
        a.open(&mut sealed.clone(), wrong_esn),
        Err(CryptoError::AuthFailed),
        "{t}: wrong ESN accepted"
    );
}

#[test]
fn shared_transforms_interoperate_both_ways() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1e5c_0001);
    let mut shared = 0;
    for t in valid_transforms() {
        let bs = supporting(t);
        for (i, x) in bs.iter().enumerate() {
            for y in &bs[i + 1..] {
                shared += 1;
                // DES is slow (and slower still in a debug build): fewer rounds for it.
                let rounds = if t.encryption.block_len() == 8 {
                    30
                } else {
                    200
                };
                for round in 0..rounds {
                    let (ek, ak) = keys(&mut rng, t);
                    let cx = x.cipher(t, &ek, &ak).unwrap();
                    let cy = y.cipher(t, &ek, &ak).unwrap();
                    // Up to about 1500 bytes of payload.
                    let max_blocks = 1500 / t.encryption.block_len();
                    let blocks = (rng.next_u32() as usize) % max_blocks + (round % 2);
                    seal_open_flip(&mut rng, t, &*cx, &*cy, blocks);
                    seal_open_flip(&mut rng, t, &*cy, &*cx, blocks);
                    // Both backends produce the same bytes for the same packet.
                    let plain = random_packet(&mut rng, t, blocks);
                    let esn = random_esn(&mut rng);
                    let (mut px, mut py) = (plain.clone(), plain);
                    cx.seal(&mut px, esn);
                    cy.seal(&mut py, esn);
                    assert_eq!(px, py, "{t}: {} and {} differ", x.name(), y.name());
                }
            }
        }
    }
    // ring and RustCrypto share esp-gcm 128 and 256, and so do intel-ipsec-mb (with the dpdk
    // feature) and the VAES kernel (on a CPU that has it): every pair of them, for both
    // sizes. OpenSSL and RustCrypto share esp-des and esp-3des with each of the three HMACs.
    let gcm = 2 + usize::from(cfg!(feature = "dpdk")) + usize::from(vaes_here());
    assert_eq!(shared, 2 * (gcm * (gcm - 1) / 2) + 6);
}

#[test]
fn every_transform_round_trips_and_rejects_forgeries() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1e5c_0002);
    for t in valid_transforms() {
        let bs = supporting(t);
        assert!(!bs.is_empty(), "{t} has no backend");
        for b in bs {
            for blocks in [0usize, 1, 2, 7, 8, 9, 16, 17, 90] {
                let (ek, ak) = keys(&mut rng, t);
                let c = b.cipher(t, &ek, &ak).unwrap();
                assert_eq!(c.transform(), t);
                seal_open_flip(&mut rng, t, &*c, &*c, blocks);
            }
        }
    }
}

#[test]
fn a_different_key_does_not_open() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1e5c_0003);
    for t in valid_transforms() {
        if t.icv_len() == 0 {
            continue;
        }
        for b in supporting(t) {
            let (ek, ak) = keys(&mut rng, t);
            let (ek2, ak2) = keys(&mut rng, t);
            let c = b.cipher(t, &ek, &ak).unwrap();
            let other = b.cipher(t, &ek2, &ak2).unwrap();
            let mut esp = random_packet(&mut rng, t, 5);
            c.seal(&mut esp, None);
            assert_eq!(
                other.open(&mut esp, None),
                Err(CryptoError::AuthFailed),
                "{t}"
            );
        }
    }
}

#[test]
fn wrong_key_lengths_are_refused() {
    for t in valid_transforms() {
        for b in supporting(t) {
            let ek = vec![7u8; t.encryption.key_len()];
            let ak = vec![9u8; t.integrity.key_len()];
            assert!(b.cipher(t, &ek, &ak).is_ok(), "{} {t}", b.name());
            for bad in [
                t.encryption.key_len() + 1,
                t.encryption.key_len().saturating_sub(1),
            ] {
                if bad == t.encryption.key_len() {
                    continue;
                }
                let err = b.cipher(t, &vec![7u8; bad], &ak).err();
                assert_eq!(
                    err,
                    Some(CryptoError::BadKeyLength {
                        want: t.encryption.key_len(),
                        got: bad
                    }),
                    "{} {t} enc key {bad}",
                    b.name()
                );
            }
            for bad in [
                t.integrity.key_len() + 1,
                t.integrity.key_len().saturating_sub(1),
            ] {
                if bad == t.integrity.key_len() {
                    continue;
                }
                let err = b.cipher(t, &ek, &vec![9u8; bad]).err();
                assert_eq!(
                    err,
                    Some(CryptoError::BadKeyLength {
                        want: t.integrity.key_len(),
                        got: bad
                    }),
                    "{} {t} auth key {bad}",
                    b.name()
                );
            }
        }
    }
}

#[test]
fn malformed_lengths_give_bad_length_and_never_leak() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1e5c_0004);
    for t in valid_transforms() {
        for b in supporting(t) {
            let (ek, ak) = keys(&mut rng, t);
            let c = b.cipher(t, &ek, &ak).unwrap();
            // Too short for header, IV and ICV.
            for len in 0..8 + t.iv_len() + t.icv_len() {
                let mut esp = random_bytes(&mut rng, len);
                assert_eq!(
                    c.open(&mut esp, None),
                    Err(CryptoError::BadLength),
                    "{t} {len}"
                );
                let mut esp = vec![0xa5u8; len];
                c.seal(&mut esp, None);
                let start = (8 + t.iv_len()).min(len);
                assert!(
                    esp[start..].iter().all(|&x| x == 0),
                    "{t}: short seal left data"
                );
            }
            // A CBC payload that is not a whole number of blocks.
            let block = t.encryption.block_len();
            if matches!(
                t.encryption,
                Encryption::AesCbc128
                    | Encryption::AesCbc192
                    | Encryption::AesCbc256
                    | Encryption::TripleDes
                    | Encryption::Des
            ) {
                for extra in 1..block {
                    let len = 8 + t.iv_len() + 2 * block + extra + t.icv_len();
                    let mut esp = random_bytes(&mut rng, len);
                    assert_eq!(c.open(&mut esp, None), Err(CryptoError::BadLength), "{t}");
                    let mut esp = vec![0xa5u8; len];
                    c.seal(&mut esp, None);
                    assert!(
                        esp[8 + t.iv_len()..].iter().all(|&x| x == 0),
                        "{t}: ragged payload sealed in clear"
                    );
                }
            }
        }
    }
}

#[test]
fn registry_names_defaults_and_refusals() {
    let names: Vec<&str> = backends().iter().map(|b| b.name()).collect();
    if cfg!(feature = "dpdk") {
        assert_eq!(names, ["ipsec-mb", "vaes", "ring", "openssl", "rustcrypto"]);
        assert_eq!(
            backend_by_name("ipsec-mb").map(|b| b.name()),
            Some("ipsec-mb")
        );
    } else {
        assert_eq!(names, ["vaes", "ring", "openssl", "rustcrypto"]);
    }
    assert_eq!(backend_by_name("vaes").map(|b| b.name()), Some("vaes"));
    assert_eq!(backend_by_name("ring").map(|b| b.name()), Some("ring"));
    assert_eq!(
        backend_by_name("openssl").map(|b| b.name()),
        Some("openssl")
    );
    assert_eq!(
        backend_by_name("rustcrypto").map(|b| b.name()),
        Some("rustcrypto")
    );
    assert!(backend_by_name("openssl-that-is-not-built").is_none());

    for t in valid_transforms() {
        let d = default_backend(t).unwrap_or_else(|| panic!("no default for {t}"));
        assert!(d.supports(t));
        let expected = match t.encryption {
            Encryption::Gcm128 | Encryption::Gcm256 if cfg!(feature = "dpdk") => "ipsec-mb",
            Encryption::Gcm128 | Encryption::Gcm256 if vaes_here() => "vaes",
            Encryption::Gcm128 | Encryption::Gcm256 => "ring",
            Encryption::Des | Encryption::TripleDes => "openssl",
            _ => "rustcrypto",
        };
        assert_eq!(d.name(), expected, "default for {t}");
    }

    // ring refuses what it does not implement, with the reason.
    let cbc = Transform {
        encryption: Encryption::AesCbc128,
        integrity: Integrity::Sha1,
    };
    let ring = backend_by_name("ring").unwrap();
    assert!(!ring.supports(cbc));
    assert_eq!(
        ring.cipher(cbc, &[0; 16], &[0; 20]).err(),
        Some(CryptoError::Unsupported(cbc, "ring"))
    );
    // AES-GCM with a separate HMAC is not a transform.
    let gcm_hmac = Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::Sha1,
    };
    assert!(default_backend(gcm_hmac).is_none());
    for b in backends() {
        assert!(matches!(
            b.cipher(gcm_hmac, &[0; 20], &[0; 20]),
            Err(CryptoError::Unsupported(..))
        ));
    }
}

#[test]
fn debug_output_never_shows_keys() {
    let icv = dataplane::crypto::rustcrypto::HmacIcv::new(Integrity::Sha1, &[0x5a; 20]).unwrap();
    let shown = format!("{icv:?}");
    assert!(!shown.to_lowercase().contains("5a"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
fn gcm_backends_agree_on_both_sides_of_the_small_packet_threshold() {
    // The ipsec-mb cipher hands payloads of up to 224 bytes to the VAES kernel and longer
    // ones to the library: the bytes must not change at the switch. Payloads of 208 to 240
    // bytes (ESP pads GCM to 4 bytes), against every other GCM backend.
    let mut rng = ChaCha8Rng::seed_from_u64(0x1e5c_0004);
    for t in valid_transforms()
        .into_iter()
        .filter(|t| t.encryption.is_aead())
    {
        let bs = supporting(t);
        assert!(bs.len() >= 2, "{t}: fewer than two GCM backends to compare");
        for blocks in 52..=60 {
            let (ek, ak) = keys(&mut rng, t);
            let ciphers: Vec<_> = bs.iter().map(|b| b.cipher(t, &ek, &ak).unwrap()).collect();
            let plain = random_packet(&mut rng, t, blocks);
            let esn = random_esn(&mut rng);
            let mut first = plain.clone();
            ciphers[0].seal(&mut first, esn);
            for (b, c) in bs.iter().zip(&ciphers).skip(1) {
                let mut sealed = plain.clone();
                c.seal(&mut sealed, esn);
                assert_eq!(
                    sealed,
                    first,
                    "{t}, {} bytes: {} differs",
                    blocks * 4,
                    b.name()
                );
                c.open(&mut sealed, esn).unwrap();
                assert_eq!(sealed[..plain.len() - 16], plain[..plain.len() - 16]);
            }
        }
    }
}
