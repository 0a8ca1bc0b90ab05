//! Diffie-Hellman for IKEv1 phase 1 and Quick Mode PFS.
//!
//! MODP groups 1 and 2 are the Oakley groups of RFC 2409 section 6.1 / 6.2; groups 5, 14 and
//! 15 are from RFC 3526 sections 2, 3 and 4. All have generator 2 and safe primes
//! p = 2^n - 2^(n-64) - 1 + 2^64 * ([2^(n-130) pi] + k). The KE payload carries g^x mod p
//! left-padded with zeros to the length of the prime, and the shared secret g^xy is likewise
//! padded to the prime length before it enters the key schedule (RFC 2409 section 5: "the
//! Diffie-Hellman public value passed in a KE payload ... MUST be the length of the
//! negotiated Diffie-Hellman group enforced, if necessary, by pre-pending the value with
//! zeros").
//!
//! ECP groups 19 (P-256) and 20 (P-384) follow RFC 5903: the KE payload is x || y, each
//! coordinate the field length, without the SEC1 0x04 prefix (section 7), and the shared
//! secret is the x coordinate of the shared point only (section 9).

use std::fmt;

use openssl::bn::{BigNum, BigNumContext, MsbOption};
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use zeroize::Zeroizing;

use super::{IkeCryptoError, Result};

// The primes, in hex (RFC 2409 section 6, RFC 3526). These were generated from the RFC
// formula above (k = 149686, 129093, 741804, 124476, 1690314) with 4000-bit pi in Python's
// mpmath; the tests compare them with OpenSSL's independent built-in copies
// (BN_get_rfc2409_prime_* / BN_get_rfc3526_prime_*).
const MODP_768: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A3620FFFFFFFFFFFFFFFF",
);
const MODP_1024: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
);
const MODP_1536: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
);
const MODP_2048: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);
const MODP_3072: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// A Diffie-Hellman group by its IKE "Group Description" number (ISAKMP attribute 4;
/// IOS `group N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// Group 1, 768-bit MODP (RFC 2409 section 6.1).
    Modp768,
    /// Group 2, 1024-bit MODP (RFC 2409 section 6.2).
    Modp1024,
    /// Group 5, 1536-bit MODP (RFC 3526 section 2).
    Modp1536,
    /// Group 14, 2048-bit MODP (RFC 3526 section 3).
    Modp2048,
    /// Group 15, 3072-bit MODP (RFC 3526 section 4).
    Modp3072,
    /// Group 19, 256-bit random ECP group, NIST P-256 (RFC 5903 section 3.1).
    Ecp256,
    /// Group 20, 384-bit random ECP group, NIST P-384 (RFC 5903 section 3.2).
    Ecp384,
}

impl DhGroup {
    pub const ALL: [DhGroup; 7] = [
        DhGroup::Modp768,
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Modp3072,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
    ];

    /// From the group number (1, 2, 5, 14, 15, 19, 20).
    pub fn from_id(id: u16) -> Option<DhGroup> {
        match id {
            1 => Some(DhGroup::Modp768),
            2 => Some(DhGroup::Modp1024),
            5 => Some(DhGroup::Modp1536),
            14 => Some(DhGroup::Modp2048),
            15 => Some(DhGroup::Modp3072),
            19 => Some(DhGroup::Ecp256),
            20 => Some(DhGroup::Ecp384),
            _ => None,
        }
    }

    /// The group number.
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp768 => 1,
            DhGroup::Modp1024 => 2,
            DhGroup::Modp1536 => 5,
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
        }
    }

    pub fn is_ecp(self) -> bool {
        matches!(self, DhGroup::Ecp256 | DhGroup::Ecp384)
    }

    /// Length in bytes of the public value in a KE payload: the prime length for MODP,
    /// twice the coordinate length for ECP.
    pub fn key_len(self) -> usize {
        match self {
            DhGroup::Modp768 => 96,
            DhGroup::Modp1024 => 128,
            DhGroup::Modp1536 => 192,
            DhGroup::Modp2048 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
        }
    }

    /// Length in bytes of the shared secret g^xy: the prime length for MODP, one
    /// coordinate for ECP.
    pub fn secret_len(self) -> usize {
        if self.is_ecp() {
            self.key_len() / 2
        } else {
            self.key_len()
        }
    }

    /// The MODP prime (None for ECP groups).
    pub fn prime(self) -> Option<BigNum> {
        let hex = match self {
            DhGroup::Modp768 => MODP_768,
            DhGroup::Modp1024 => MODP_1024,
            DhGroup::Modp1536 => MODP_1536,
            DhGroup::Modp2048 => MODP_2048,
            DhGroup::Modp3072 => MODP_3072,
            DhGroup::Ecp256 | DhGroup::Ecp384 => return None,
        };
        Some(BigNum::from_hex_str(hex).expect("MODP prime constant is valid hex"))
    }

    /// Bits of the random MODP private exponent: at least twice the group's security
    /// strength, as NIST SP 800-56A rev. 3 (5.6.1.1.1) requires for safe-prime groups (112
    /// bits for 2048-bit and 128 for 3072-bit moduli: 224 and 256 bits), rounded up to 256;
    /// RFC 7919 and OpenSSL use 225 bits for their 2048-bit group. That is safe for these
    /// safe-prime groups (the subgroup generated by 2 has prime order (p-1)/2). Each bit is a
    /// modular squaring: 256 bits instead of RFC 3526's upper estimate of 320 make every key
    /// pair and shared secret a fifth cheaper.
    fn exponent_bits(self) -> i32 {
        match self {
            DhGroup::Modp768
            | DhGroup::Modp1024
            | DhGroup::Modp1536
            | DhGroup::Modp2048
            | DhGroup::Modp3072 => 256,
            DhGroup::Ecp256 | DhGroup::Ecp384 => 0,
        }
    }

    fn curve(self) -> Option<Nid> {
        match self {
            DhGroup::Ecp256 => Some(Nid::X9_62_PRIME256V1),
            DhGroup::Ecp384 => Some(Nid::SECP384R1),
            _ => None,
        }
    }
}

impl fmt::Display for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {}", self.id())
    }
}

/// A BigNum holding a secret: cleared (BN_clear) before it is freed.
struct SecretBn(BigNum);

impl SecretBn {
    fn from_slice(bytes: &[u8]) -> Result<SecretBn> {
        let mut bn = BigNum::from_slice(bytes)?;
        bn.set_const_time();
        Ok(SecretBn(bn))
    }
}

impl Drop for SecretBn {
    fn drop(&mut self) {
        self.0.clear();
    }
}

enum Inner {
    /// The private exponent x, big-endian.
    Modp { x: Zeroizing<Vec<u8>> },
    /// OpenSSL frees EC private keys with BN_clear_free, so the scalar is wiped on drop.
    Ecp { key: PKey<Private> },
}

/// One side's Diffie-Hellman private value and its public value. The private part is
/// zeroized on drop and never printed.
pub struct DhPrivate {
    group: DhGroup,
    inner: Inner,
    public: Vec<u8>,
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhPrivate")
            .field("group", &self.group)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl DhPrivate {
    /// A fresh random private value for `group` and the public value to send in the KE
    /// payload (exactly [`DhGroup::key_len`] bytes).
    pub fn generate(group: DhGroup) -> Result<(DhPrivate, Vec<u8>)> {
        let this = match group.curve() {
            None => {
                let mut x = BigNum::new()?;
                // Top bit set: exactly exponent_bits() bits, so 1 < x < p - 1.
                x.rand(group.exponent_bits(), MsbOption::ONE, false)?;
                let x = SecretBn(x);
                let bytes = Zeroizing::new(x.0.to_vec());
                Self::modp(group, bytes)?
            }
            Some(nid) => {
                let ec_group = EcGroup::from_curve_name(nid)?;
                let key = EcKey::generate(&ec_group)?;
                Self::ecp(group, &ec_group, key)?
            }
        };
        let public = this.public.clone();
        Ok((this, public))
    }

    /// A private value given as big-endian bytes: the MODP exponent x (1 < x < p - 1) or the
    /// ECP scalar (0 < d < n, exactly the coordinate length). For known-answer tests and
    /// deterministic replays; normal operation uses [`DhPrivate::generate`].
    pub fn from_private(group: DhGroup, private: &[u8]) -> Result<DhPrivate> {
        match group.curve() {
            None => {
                let p = group.prime().expect("MODP group has a prime");
                let x = SecretBn::from_slice(private)?;
                let one = BigNum::from_u32(1)?;
                let mut pm1 = BigNum::new()?;
                pm1.checked_sub(&p, &one)?;
                if x.0 <= one || x.0 >= pm1 {
                    return Err(IkeCryptoError::InvalidPrivateValue("not in 1 < x < p-1"));
                }
                Self::modp(group, Zeroizing::new(x.0.to_vec()))
            }
            Some(nid) => {
                if private.len() != group.secret_len() {
                    return Err(IkeCryptoError::BadLength {
                        what: "ECP private scalar",
                        expected: group.secret_len(),
                        got: private.len(),
                    });
                }
                let ec_group = EcGroup::from_curve_name(nid)?;
                let mut ctx = BigNumContext::new()?;
                let mut order = BigNum::new()?;
                ec_group.order(&mut order, &mut ctx)?;
                let d = SecretBn::from_slice(private)?;
                if d.0.num_bits() == 0 || d.0 >= order {
                    return Err(IkeCryptoError::InvalidPrivateValue("not in 0 < d < n"));
                }
                let mut public = EcPoint::new(&ec_group)?;
                public.mul_generator2(&ec_group, &d.0, &mut ctx)?;
                let key = EcKey::from_private_components(&ec_group, &d.0, &public)?;
                Self::ecp(group, &ec_group, key)
            }
        }
    }

    fn modp(group: DhGroup, x: Zeroizing<Vec<u8>>) -> Result<DhPrivate> {
        let p = group.prime().expect("MODP group has a prime");
        let g = BigNum::from_u32(2)?;
        let xb = SecretBn::from_slice(&x)?;
        let mut ctx = BigNumContext::new()?;
        let mut y = BigNum::new()?;
        y.mod_exp(&g, &xb.0, &p, &mut ctx)?;
        let public = y.to_vec_padded(group.key_len() as i32)?;
        Ok(DhPrivate {
            group,
            inner: Inner::Modp { x },
            public,
        })
    }

    fn ecp(group: DhGroup, ec_group: &EcGroup, key: EcKey<Private>) -> Result<DhPrivate> {
        let mut ctx = BigNumContext::new()?;
        let sec1 =
            key.public_key()
                .to_bytes(ec_group, PointConversionForm::UNCOMPRESSED, &mut ctx)?;
        debug_assert_eq!(sec1.len(), 1 + group.key_len());
        let public = sec1[1..].to_vec();
        Ok(DhPrivate {
            group,
            inner: Inner::Ecp {
                key: PKey::from_ec_key(key)?,
            },
            public,
        })
    }

    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value as sent in the KE payload.
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret g^xy from the peer's KE payload data, after validating it
    /// ([`DhGroup::peer_public`]). MODP secrets are left-padded to the prime length; ECP
    /// secrets are the x coordinate, [`DhGroup::secret_len`] bytes.
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.shared_secret_with(&self.group.peer_public(peer_public)?)
    }

    /// The shared secret g^xy from a peer value already validated for this group.
    pub fn shared_secret_with(&self, peer: &PeerPublic) -> Result<Zeroizing<Vec<u8>>> {
        let group = self.group;
        match (&self.inner, &peer.value) {
            (Inner::Modp { x }, PeerValue::Modp(y)) if peer.group == group => {
                let p = group.prime().expect("MODP group has a prime");
                let xb = SecretBn::from_slice(x)?;
                let mut ctx = BigNumContext::new()?;
                let mut z = SecretBn(BigNum::new()?);
                z.0.mod_exp(y, &xb.0, &p, &mut ctx)?;
                Ok(Zeroizing::new(
                    z.0.to_vec_padded(group.secret_len() as i32)?,
                ))
            }
            (Inner::Ecp { key }, PeerValue::Ecp(peer_key)) if peer.group == group => {
                let peer = PKey::from_ec_key(peer_key.clone())?;
                let mut deriver = Deriver::new(key)?;
                deriver.set_peer(&peer)?;
                let secret = Zeroizing::new(deriver.derive_to_vec()?);
                let want = group.secret_len();
                if secret.len() == want {
                    Ok(secret)
                } else if secret.len() < want {
                    let mut padded = Zeroizing::new(vec![0u8; want]);
                    padded[want - secret.len()..].copy_from_slice(&secret);
                    Ok(padded)
                } else {
                    Err(IkeCryptoError::BadLength {
                        what: "ECDH shared secret",
                        expected: want,
                        got: secret.len(),
                    })
                }
            }
            _ => Err(IkeCryptoError::InvalidPublicValue("of another group")),
        }
    }
}

/// A peer's public value that passed its group's checks ([`DhGroup::peer_public`]).
pub struct PeerPublic {
    group: DhGroup,
    value: PeerValue,
}

enum PeerValue {
    Modp(BigNum),
    Ecp(EcKey<Public>),
}

impl DhGroup {
    /// Validates a peer's KE payload data: exactly [`DhGroup::key_len`] bytes; for MODP
    /// 1 < y < p - 1 (which rules out the small-subgroup values 0, 1 and p - 1 of these
    /// safe-prime groups); for ECP a point of the curve's prime-order group. Needs no key
    /// pair: an exchange validates before it takes one from the pool, so that a peer sending
    /// bad values cannot use up precomputed key pairs, and hands the result to
    /// [`DhPrivate::shared_secret_with`], which does not check again.
    pub fn peer_public(self, peer_public: &[u8]) -> Result<PeerPublic> {
        check_peer_length(self, peer_public)?;
        let value = match self.prime() {
            Some(p) => PeerValue::Modp(modp_peer_value(&p, peer_public)?),
            None => PeerValue::Ecp(ecp_peer_key(self, peer_public)?),
        };
        Ok(PeerPublic { group: self, value })
    }
}

fn check_peer_length(group: DhGroup, peer_public: &[u8]) -> Result<()> {
    if peer_public.len() == group.key_len() {
        Ok(())
    } else {
        Err(IkeCryptoError::BadLength {
            what: "peer Diffie-Hellman public value",
            expected: group.key_len(),
            got: peer_public.len(),
        })
    }
}

/// The peer's MODP value y, refused unless 1 < y < p - 1 (the small-subgroup values).
fn modp_peer_value(p: &BigNum, peer_public: &[u8]) -> Result<BigNum> {
    let y = BigNum::from_slice(peer_public)?;
    let one = BigNum::from_u32(1)?;
    let mut pm1 = BigNum::new()?;
    pm1.checked_sub(p, &one)?;
    if y <= one || y >= pm1 {
        return Err(IkeCryptoError::InvalidPublicValue("not in 1 < y < p-1"));
    }
    Ok(y)
}

/// The peer's ECP point (x || y), refused unless it is a valid point of the group.
fn ecp_peer_key(group: DhGroup, peer_public: &[u8]) -> Result<EcKey<Public>> {
    let nid = group.curve().expect("ECP group has a curve");
    let ec_group = EcGroup::from_curve_name(nid)?;
    let mut ctx = BigNumContext::new()?;
    let mut sec1 = Vec::with_capacity(1 + peer_public.len());
    sec1.push(0x04);
    sec1.extend_from_slice(peer_public);
    // EC_POINT_oct2point refuses coordinates off the curve; check_key repeats that and also
    // rejects the point at infinity and points outside the prime-order group.
    let point = EcPoint::from_bytes(&ec_group, &sec1, &mut ctx)
        .map_err(|_| IkeCryptoError::InvalidPublicValue("not a point on the curve"))?;
    let peer = EcKey::from_public_key(&ec_group, &point)?;
    peer.check_key()
        .map_err(|_| IkeCryptoError::InvalidPublicValue("not a valid curve point"))?;
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn ids_lengths_and_unknown_groups() {
        for g in DhGroup::ALL {
            assert_eq!(DhGroup::from_id(g.id()), Some(g));
        }
        for id in [0u16, 3, 4, 16, 17, 18, 21, 24, 31] {
            assert_eq!(DhGroup::from_id(id), None, "{id}");
        }
        assert_eq!(DhGroup::Ecp256.key_len(), 64);
        assert_eq!(DhGroup::Ecp256.secret_len(), 32);
        assert_eq!(DhGroup::Ecp384.key_len(), 96);
        assert_eq!(DhGroup::Ecp384.secret_len(), 48);
        assert_eq!(DhGroup::Modp2048.secret_len(), 256);
        assert_eq!(DhGroup::Modp3072.to_string(), "group 15");
    }

    #[test]
    fn modp_primes_have_the_right_size_and_match_openssl() {
        let want = [
            (
                DhGroup::Modp768,
                768,
                BigNum::get_rfc2409_prime_768().unwrap(),
            ),
            (
                DhGroup::Modp1024,
                1024,
                BigNum::get_rfc2409_prime_1024().unwrap(),
            ),
            (
                DhGroup::Modp1536,
                1536,
                BigNum::get_rfc3526_prime_1536().unwrap(),
            ),
            (
                DhGroup::Modp2048,
                2048,
                BigNum::get_rfc3526_prime_2048().unwrap(),
            ),
            (
                DhGroup::Modp3072,
                3072,
                BigNum::get_rfc3526_prime_3072().unwrap(),
            ),
        ];
        for (g, bits, openssl_copy) in want {
            let p = g.prime().unwrap();
            assert_eq!(p.num_bits(), bits, "{g}");
            assert_eq!(p.num_bytes() as usize, g.key_len(), "{g}");
            assert_eq!(p, openssl_copy, "{g}");
        }
        assert!(DhGroup::Ecp256.prime().is_none());
        // The two smallest are cheap enough to check for (safe) primality here.
        let mut ctx = BigNumContext::new().unwrap();
        for g in [DhGroup::Modp768, DhGroup::Modp1024] {
            let p = g.prime().unwrap();
            assert!(p.is_prime(20, &mut ctx).unwrap());
            let mut q = BigNum::new().unwrap();
            q.rshift1(&p).unwrap();
            assert!(q.is_prime(20, &mut ctx).unwrap());
        }
    }

    #[test]
    fn every_group_round_trips() {
        for g in DhGroup::ALL {
            let (a, a_pub) = DhPrivate::generate(g).unwrap();
            let (b, b_pub) = DhPrivate::generate(g).unwrap();
            assert_eq!(a_pub.len(), g.key_len(), "{g}");
            assert_eq!(b_pub.len(), g.key_len(), "{g}");
            assert_eq!(a.public_value(), &a_pub[..]);
            assert_eq!(a.group(), g);
            assert_ne!(a_pub, b_pub);
            let s1 = a.shared_secret(&b_pub).unwrap();
            let s2 = b.shared_secret(&a_pub).unwrap();
            assert_eq!(s1.len(), g.secret_len(), "{g}");
            assert_eq!(*s1, *s2, "{g}");
        }
    }

    #[test]
    fn modp_private_exponents_are_256_bits_at_least_twice_the_strength() {
        // SP 800-56A: at least 2 * 112 bits for 2048-bit groups, 2 * 128 for 3072-bit ones
        for g in DhGroup::ALL.into_iter().filter(|g| !g.is_ecp()) {
            for _ in 0..8 {
                let (k, _) = DhPrivate::generate(g).unwrap();
                let Inner::Modp { x } = &k.inner else {
                    panic!("{g}: not a MODP key")
                };
                let bits = BigNum::from_slice(x).unwrap().num_bits();
                assert_eq!(bits, 256, "{g}");
            }
        }
    }

    #[test]
    fn checking_a_peer_value_needs_no_key_pair_and_agrees_with_the_secret() {
        for g in DhGroup::ALL {
            let (a, _) = DhPrivate::generate(g).unwrap();
            let (_, good) = DhPrivate::generate(g).unwrap();
            assert!(g.peer_public(&good).is_ok(), "{g}");
            let mut bad = vec![0u8; g.key_len()];
            if let Some(last) = bad.last_mut() {
                *last = 1; // 1 for MODP; (0, ..., 1) is no curve point
            }
            for v in [&bad[..], &good[1..], &[0u8; 3][..]] {
                assert!(g.peer_public(v).is_err(), "{g}: {}", v.len());
                assert!(a.shared_secret(v).is_err(), "{g}: {}", v.len());
            }
        }
    }

    #[test]
    fn modp_from_private_is_deterministic_and_padded() {
        // x = 1 is refused; x = 2 gives g^x = 4, which must arrive left-padded.
        let g = DhGroup::Modp1024;
        assert!(DhPrivate::from_private(g, &[1]).is_err());
        assert!(DhPrivate::from_private(g, &[0]).is_err());
        let a = DhPrivate::from_private(g, &[2]).unwrap();
        let mut four = vec![0u8; 128];
        four[127] = 4;
        assert_eq!(a.public_value(), &four[..]);
        // Peer y = 2 (i.e. peer exponent 1): secret 2^2 = 4, padded.
        let mut two = vec![0u8; 128];
        two[127] = 2;
        assert_eq!(*a.shared_secret(&two).unwrap(), four);
        // Two fixed exponents agree.
        let x = DhPrivate::from_private(g, &[0x12; 40]).unwrap();
        let y = DhPrivate::from_private(g, &[0x34; 40]).unwrap();
        assert_eq!(
            *x.shared_secret(y.public_value()).unwrap(),
            *y.shared_secret(x.public_value()).unwrap()
        );
        let p = g.prime().unwrap().to_vec();
        assert!(DhPrivate::from_private(g, &p).is_err());
    }

    #[test]
    fn modp_rejects_degenerate_peer_values() {
        for g in DhGroup::ALL.into_iter().filter(|g| !g.is_ecp()) {
            let (a, _) = DhPrivate::generate(g).unwrap();
            let n = g.key_len() as i32;
            let p = g.prime().unwrap();
            let mut pm1 = BigNum::new().unwrap();
            pm1.checked_sub(&p, &BigNum::from_u32(1).unwrap()).unwrap();
            for bad in [
                BigNum::from_u32(0).unwrap(),
                BigNum::from_u32(1).unwrap(),
                pm1,
                p,
            ] {
                let v = bad.to_vec_padded(n).unwrap();
                assert!(
                    matches!(
                        a.shared_secret(&v),
                        Err(IkeCryptoError::InvalidPublicValue(_))
                    ),
                    "{g}: {bad:?}"
                );
            }
            // Wrong lengths: one byte short (an unpadded value) and one byte long.
            let (_, other) = DhPrivate::generate(g).unwrap();
            assert!(matches!(
                a.shared_secret(&other[1..]),
                Err(IkeCryptoError::BadLength { .. })
            ));
            let mut long = vec![0u8];
            long.extend_from_slice(&other);
            assert!(matches!(
                a.shared_secret(&long),
                Err(IkeCryptoError::BadLength { .. })
            ));
            // The smallest and largest accepted values.
            let two = BigNum::from_u32(2).unwrap().to_vec_padded(n).unwrap();
            assert!(a.shared_secret(&two).is_ok());
        }
    }

    /// RFC 5903 section 8.1, 256-bit random ECP group.
    #[test]
    fn rfc5903_group19_vector() {
        let i = unhex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
        let gi = unhex(concat!(
            "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180",
            "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3"
        ));
        let r = unhex("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53");
        let gr = unhex(concat!(
            "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63",
            "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB"
        ));
        let gir = unhex("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE");
        check_ecp_vector(DhGroup::Ecp256, &i, &gi, &r, &gr, &gir);
    }

    /// RFC 5903 section 8.2, 384-bit random ECP group.
    #[test]
    fn rfc5903_group20_vector() {
        let i = unhex(concat!(
            "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655",
            "E35B538041E649EE3FAEF896783AB194"
        ));
        let gi = unhex(concat!(
            "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6",
            "DE3AC808ACB4BDB4C88732AEE95F41AA",
            "9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38E",
            "EB9FCFF3C2C947DAE69B4C634573A81C"
        ));
        let r = unhex(concat!(
            "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942",
            "E0308312916B8ED2960E4BD55A7448FC"
        ));
        let gr = unhex(concat!(
            "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D",
            "0D1AC43A0336DEF96FDA41D0774A3571",
            "DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF",
            "F83FA40142209DFF5EAAD96DB9E6386C"
        ));
        let gir = unhex(concat!(
            "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4",
            "D603135569B9E9D09CF5D4A270F59746"
        ));
        check_ecp_vector(DhGroup::Ecp384, &i, &gi, &r, &gr, &gir);
    }

    fn check_ecp_vector(g: DhGroup, i: &[u8], gi: &[u8], r: &[u8], gr: &[u8], gir: &[u8]) {
        let pi = DhPrivate::from_private(g, i).unwrap();
        let pr = DhPrivate::from_private(g, r).unwrap();
        assert_eq!(pi.public_value(), gi);
        assert_eq!(pr.public_value(), gr);
        assert_eq!(&pi.shared_secret(gr).unwrap()[..], gir);
        assert_eq!(&pr.shared_secret(gi).unwrap()[..], gir);
        // A point off the curve: flip the last bit of y.
        let mut bad = gr.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            pi.shared_secret(&bad),
            Err(IkeCryptoError::InvalidPublicValue(_))
        ));
        // All zeros is not on the curve either; nor is a truncated value accepted.
        assert!(pi.shared_secret(&vec![0u8; g.key_len()]).is_err());
        assert!(matches!(
            pi.shared_secret(&gr[1..]),
            Err(IkeCryptoError::BadLength { .. })
        ));
        // Private scalars: zero, wrong length.
        assert!(DhPrivate::from_private(g, &vec![0u8; g.secret_len()]).is_err());
        assert!(DhPrivate::from_private(g, &i[1..]).is_err());
    }

    #[test]
    fn ecp_order_is_refused_as_private_scalar() {
        let ec_group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = BigNumContext::new().unwrap();
        let mut order = BigNum::new().unwrap();
        ec_group.order(&mut order, &mut ctx).unwrap();
        assert!(DhPrivate::from_private(DhGroup::Ecp256, &order.to_vec()).is_err());
    }

    #[test]
    fn debug_does_not_print_the_private_value() {
        let a = DhPrivate::from_private(DhGroup::Modp768, &[0xab; 32]).unwrap();
        let s = format!("{a:?}");
        assert!(s.contains("<redacted>"), "{s}");
        assert!(!s.to_lowercase().contains("abab"), "{s}");
        assert!(!s.contains("171"), "{s}");
    }
}
