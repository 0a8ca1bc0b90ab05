//! The VAES kernel against published vectors and against RustCrypto's `aes-gcm`.
//!
//! Every test returns early (and says so) on a CPU without the kernel's features; the draft-
//! mcgrew-gcm-test-01 ESP vectors also run on this backend through `tests/crypto_kat.rs`,
//! which checks every registered backend.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::kernel::{self, Keys};
use super::{cpu_has_features, VAES};
use crate::crypto::{Backend, CryptoError, Encryption, Integrity, Transform};

fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("test vector hex")
}

fn skip() -> bool {
    if !cpu_has_features() {
        eprintln!("vaes: this CPU lacks AVX-512/VAES/VPCLMULQDQ, test skipped");
        return true;
    }
    false
}

fn gcm_t(encryption: Encryption) -> Transform {
    Transform {
        encryption,
        integrity: Integrity::None,
    }
}

/// The kernel on its own: (ciphertext, tag) of `pt`, and a check that decryption gives `pt`
/// back with the same tag.
fn raw(key: &[u8], nonce: &[u8], aad: &[u8], pt: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut keys = Box::new(Keys::ZERO);
    let nonce = kernel::Nonce::from_bytes(nonce.try_into().unwrap());
    let aad = kernel::Aad::Bytes(aad);
    let mut data = pt.to_vec();
    // SAFETY: callers return early through skip() when the CPU lacks the kernel's features.
    let (tag, back, tag2) = unsafe {
        keys.expand(key);
        let tag = if key.len() == 16 {
            kernel::gcm::<10, false>(&keys, nonce, aad, &mut data)
        } else {
            kernel::gcm::<14, false>(&keys, nonce, aad, &mut data)
        };
        let mut back = data.clone();
        let tag2 = if key.len() == 16 {
            kernel::gcm::<10, true>(&keys, nonce, aad, &mut back)
        } else {
            kernel::gcm::<14, true>(&keys, nonce, aad, &mut back)
        };
        (tag, back, tag2)
    };
    assert_eq!(back, pt, "decryption");
    assert_eq!(tag, tag2, "tag on decryption");
    (data, tag.to_vec())
}

/// key (hex), IV, plaintext, AAD (hex), ciphertext, tag (hex).
type SpecCase = (
    &'static str,
    Vec<u8>,
    Vec<u8>,
    &'static str,
    Vec<u8>,
    &'static str,
);

/// McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B: test cases
/// 1-4 (AES-128) and 13-16 (AES-256), 96-bit IVs. Cases 4 and 16 have a 20-byte AAD (two
/// blocks), which ESP never uses but the kernel accepts.
#[test]
fn gcm_spec_test_cases() {
    if skip() {
        return;
    }
    let k0 = "00000000000000000000000000000000";
    let k = "feffe9928665731c6d6a8f9467308308";
    let iv0 = "000000000000000000000000";
    let iv = "cafebabefacedbaddecaf888";
    let p = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    let p60 = &h(p)[..60];
    let a = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    let c3 = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
              21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
    let c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
               8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    let cases: [SpecCase; 8] = [
        // 1
        (
            k0,
            h(iv0),
            vec![],
            "",
            vec![],
            "58e2fccefa7e3061367f1d57a4e7455a",
        ),
        // 2
        (
            k0,
            h(iv0),
            vec![0; 16],
            "",
            h("0388dace60b6a392f328c2b971b2fe78"),
            "ab6e47d42cec13bdf53a67b21257bddf",
        ),
        // 3
        (
            k,
            h(iv),
            h(p),
            "",
            h(c3),
            "4d5c2af327cd64a62cf35abd2ba6fab4",
        ),
        // 4
        (
            k,
            h(iv),
            p60.to_vec(),
            a,
            h(c3)[..60].to_vec(),
            "5bc94fbc3221a5db94fae95ae7121a47",
        ),
        // 13
        (
            "00000000000000000000000000000000 00000000000000000000000000000000",
            h(iv0),
            vec![],
            "",
            vec![],
            "530f8afbc74536b9a963b4f1c4cb738b",
        ),
        // 14
        (
            "00000000000000000000000000000000 00000000000000000000000000000000",
            h(iv0),
            vec![0; 16],
            "",
            h("cea7403d4d606b6e074ec5d3baf39d18"),
            "d0d1c8a799996bf0265b98b5d48ab919",
        ),
        // 15
        (
            "feffe9928665731c6d6a8f9467308308 feffe9928665731c6d6a8f9467308308",
            h(iv),
            h(p),
            "",
            h(c15),
            "b094dac5d93471bdec1a502270e3cc6c",
        ),
        // 16
        (
            "feffe9928665731c6d6a8f9467308308 feffe9928665731c6d6a8f9467308308",
            h(iv),
            p60.to_vec(),
            a,
            h(c15)[..60].to_vec(),
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ];
    for (i, (key, nonce, pt, aad, ct, tag)) in cases.iter().enumerate() {
        let (got_ct, got_tag) = raw(&h(key), nonce, &h(aad), pt);
        assert_eq!(
            hex::encode(&got_ct),
            hex::encode(ct),
            "case {i}: ciphertext"
        );
        assert_eq!(hex::encode(&got_tag), *tag, "case {i}: tag");
    }
}

/// Two of draft-mcgrew-gcm-test-01's ESP packets through the `EspCipher` (all of them run in
/// tests/crypto_kat.rs): case 2 (AES-128, 32-bit sequence) and case 9 (AES-256, ESN).
#[test]
fn esp_vectors_from_draft_mcgrew_gcm_test() {
    if skip() {
        return;
    }
    let cases = [
        (
            Encryption::Gcm128,
            "feffe9928665731c6d6a8f9467308308 cafebabe",
            "0000a5f8 0000000a",
            None,
            "facedbaddecaf888",
            "4500003e698f000080114dccc0a80102 c0a801010a980035002a2343b2d00100
             00010000000000000373697009637962 65726369747902646b00000100010001",
            "deb22cd9b07c72c16e3a65beeb8df304 a5a5897d33ae530f1ba76d5d114d2a5c
             3de81827c10e9a4f51330d0eec416642 cfbb85a5b47e48a4ec3b9ba95d918bd1
             83b70d3aa8bc6ee4c309e9d85a41ad4a",
        ),
        (
            Encryption::Gcm256,
            "abbccddef00112233445566778899aab abbccddef00112233445566778899aab 73616c74",
            "17405e67 dd0db99b",
            Some(0x156f3126),
            "616e640169766563",
            "45080028732c00004006e9f90a010612 0a01038f06b88023dd6bafbecb712602
             50101f646d540001",
            "f2d69ecdbd5a0d5b8d5ef38bad4da58d 1f278fde98ef67549d524a3018d9a57f
             f4d3a31ce673119e451626c2415771e3 b7eebca614c89b35",
        ),
    ];
    for (enc, key, head, esn_hi, iv, pt, ct_icv) in cases {
        let c = VAES.cipher(gcm_t(enc), &h(key), &[]).unwrap();
        let mut esp = [h(head), h(iv), h(pt), vec![0; 16]].concat();
        c.seal(&mut esp, esn_hi);
        assert_eq!(hex::encode(&esp[16..]), hex::encode(h(ct_icv)), "{enc:?}");
        c.open(&mut esp, esn_hi).unwrap();
        assert_eq!(hex::encode(&esp[16..esp.len() - 16]), hex::encode(h(pt)));
    }
}

/// What RustCrypto's `aes-gcm` makes of the same packet: the sealed payload and ICV.
fn reference(enc: Encryption, key: &[u8], esp: &[u8], esn_hi: Option<u32>) -> Vec<u8> {
    let mut aad = esp[..4].to_vec();
    if let Some(hi) = esn_hi {
        aad.extend(hi.to_be_bytes());
    }
    aad.extend(&esp[4..8]);
    let (aes_key, salt) = key.split_at(key.len() - 4);
    let nonce = aes_gcm::Nonce::from_slice(&[salt, &esp[8..16]].concat()).to_owned();
    let mut buf = esp[16..esp.len() - 16].to_vec();
    let tag = match enc {
        Encryption::Gcm128 => Aes128Gcm::new_from_slice(aes_key)
            .unwrap()
            .encrypt_in_place_detached(&nonce, &aad, &mut buf),
        _ => Aes256Gcm::new_from_slice(aes_key)
            .unwrap()
            .encrypt_in_place_detached(&nonce, &aad, &mut buf),
    }
    .unwrap();
    buf.extend(tag.as_slice());
    buf
}

/// Random keys, IVs, SPIs and sequence numbers, every payload length from 0 to 600 bytes and
/// a few long ones (every chunk boundary of the kernel: 224/225, 240/241, 496/497, ...):
/// seal equals aes-gcm's, open gives the plaintext back, with and without ESN.
#[test]
fn matches_aes_gcm_for_every_length() {
    if skip() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x7661_6573);
    let lengths: Vec<usize> = (0..=600)
        .chain([1420, 1421, 2048, 4096 + 5, 9000])
        .collect();
    for enc in [Encryption::Gcm128, Encryption::Gcm256] {
        let t = gcm_t(enc);
        for &len in &lengths {
            let mut key = vec![0u8; enc.key_len()];
            rng.fill_bytes(&mut key);
            let c = VAES.cipher(t, &key, &[]).unwrap();
            for esn_hi in [None, Some(rng.next_u32())] {
                let mut esp = vec![0u8; 16 + len + 16];
                rng.fill_bytes(&mut esp);
                let plain = esp.clone();
                c.seal(&mut esp, esn_hi);
                assert_eq!(esp[..16], plain[..16], "{enc:?} {len}: header changed");
                assert!(
                    esp[16..] == reference(enc, &key, &plain, esn_hi)[..],
                    "{enc:?} len {len} esn {esn_hi:?}: differs from aes-gcm"
                );
                c.open(&mut esp, esn_hi)
                    .unwrap_or_else(|e| panic!("{enc:?} len {len}: {e}"));
                assert!(
                    esp[..len + 16] == plain[..len + 16],
                    "{enc:?} len {len}: open"
                );
            }
        }
    }
}

/// A flipped bit in the payload, the ICV, the SPI or the sequence number (or the wrong ESN
/// high half) fails with AuthFailed and leaves the payload wiped.
#[test]
fn tampering_fails_and_wipes() {
    if skip() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for enc in [Encryption::Gcm128, Encryption::Gcm256] {
        let mut key = vec![0u8; enc.key_len()];
        rng.fill_bytes(&mut key);
        let c = VAES.cipher(gcm_t(enc), &key, &[]).unwrap();
        for len in [1, 64, 100, 300, 1420] {
            for esn_hi in [None, Some(7)] {
                let mut esp = vec![0u8; 16 + len + 16];
                rng.fill_bytes(&mut esp);
                c.seal(&mut esp, esn_hi);
                let n = esp.len();
                let spots = [
                    ("payload", 16 + len / 2, 0x10u8),
                    ("payload end", n - 17, 0x80),
                    ("icv", n - 16, 0x01),
                    ("icv end", n - 1, 0x80),
                    ("spi", 0, 0x80),
                    ("seq", 7, 0x01),
                    ("iv", 12, 0x04),
                ];
                for (what, at, bit) in spots {
                    let mut bad = esp.clone();
                    bad[at] ^= bit;
                    assert_eq!(
                        c.open(&mut bad, esn_hi),
                        Err(CryptoError::AuthFailed),
                        "{enc:?} {len} {what}"
                    );
                    assert!(
                        bad[16..n - 16].iter().all(|&b| b == 0),
                        "{enc:?} {len} {what}: payload not wiped"
                    );
                }
                let mut bad = esp.clone();
                let other = Some(esn_hi.map_or(1, |h| h ^ 1));
                assert_eq!(c.open(&mut bad, other), Err(CryptoError::AuthFailed));
                assert!(bad[16..n - 16].iter().all(|&b| b == 0));
                c.open(&mut esp, esn_hi).unwrap();
            }
        }
    }
}

#[test]
fn refuses_wrong_key_lengths_and_other_transforms() {
    if skip() {
        assert!(!VAES.supports(gcm_t(Encryption::Gcm128)));
        return;
    }
    for enc in [Encryption::Gcm128, Encryption::Gcm256] {
        let t = gcm_t(enc);
        assert!(VAES.supports(t));
        for bad in [0, 4, 16, 19, 21, 24, 28, 32, 35, 37, 40] {
            if bad == enc.key_len() {
                continue;
            }
            assert_eq!(
                VAES.cipher(t, &vec![1; bad], &[]).err(),
                Some(CryptoError::BadKeyLength {
                    want: enc.key_len(),
                    got: bad
                }),
                "{enc:?} with {bad} bytes"
            );
        }
        assert!(matches!(
            VAES.cipher(t, &vec![1; enc.key_len()], &[1; 20]).err(),
            Some(CryptoError::BadKeyLength { want: 0, got: 20 })
        ));
    }
    let cbc = Transform {
        encryption: Encryption::AesCbc128,
        integrity: Integrity::Sha1,
    };
    assert!(!VAES.supports(cbc));
    assert_eq!(
        VAES.cipher(cbc, &[0; 16], &[0; 20]).err(),
        Some(CryptoError::Unsupported(cbc, "vaes"))
    );
}

#[test]
fn short_packets_are_refused_or_wiped() {
    if skip() {
        return;
    }
    let c = VAES
        .cipher(gcm_t(Encryption::Gcm128), &[9; 20], &[])
        .unwrap();
    for len in 0..32 {
        let mut esp = vec![0xa5u8; len];
        assert_eq!(c.open(&mut esp, None), Err(CryptoError::BadLength));
        c.seal(&mut esp, None);
        assert!(esp[16.min(len)..].iter().all(|&b| b == 0));
    }
    // The smallest packet: header, IV and ICV, no payload.
    let mut esp = vec![0x5au8; 32];
    c.seal(&mut esp, None);
    c.open(&mut esp, None).unwrap();
}
