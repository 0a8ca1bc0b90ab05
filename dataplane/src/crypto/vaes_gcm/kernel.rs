//! The AES-GCM kernel: AES-CTR on four blocks per 512-bit register (VAES) and GHASH with
//! 512-bit carry-less multiplications (VPCLMULQDQ), aggregated over up to 16 blocks with one
//! reduction.
//!
//! Every function here is compiled with AVX-512 F/BW/VL, VAES, VPCLMULQDQ, AES-NI and
//! PCLMULQDQ enabled and must only run on a CPU that has them: [`super::cpu_has_features`] is
//! checked before any [`Keys`] is built, and the kernel is only reachable through a `Keys`
//! (see the module note of [`super`]).
//!
//! # GHASH representation
//!
//! Blocks are byte-reversed on load (`vpshufb`), so that GCM's bit order (the first bit of
//! the block is the coefficient of x^0) becomes a 128-bit integer whose bit 127 is x^0. A
//! carry-less product of two such values is then the reflected product shifted by one bit;
//! the hash key is stored multiplied by x^-1 (a left shift of the reflected value with
//! reduction) to cancel that shift, so that `reduce(clmul(a, h'))` is a * H mod P. Its powers
//! are computed with the same multiplication and stay in that form. The reduction folds the
//! low 128 bits of the 256-bit product in two steps, each a 64 x 64 multiplication by the
//! constant 0xc2000000_00000000 (x^-1's reflected low terms: x^127 + x^6 + x + 1).
//!
//! # Chunks
//!
//! GHASH runs over the sequence `S = [X, C_0 .. C_{c-1}, L]`: X the AAD (one block for ESP),
//! C the ciphertext blocks (the last one zero-padded), L the length block. The sequence is cut
//! into chunks of at most 16 blocks; a chunk's blocks are multiplied by H^t .. H^1 (t the
//! chunk's block count), summed unreduced, and reduced once; the state carried from the
//! previous chunk enters as the chunk's first block (X position), at power t too. A packet
//! with at most 14 ciphertext blocks (224 bytes) is one chunk: one reduction in all, and the
//! AAD and length products do not wait for the AES rounds.

use core::arch::x86_64::*;

/// Number of hash-key powers kept per SA: GHASH aggregates up to this many blocks per
/// reduction.
pub(super) const POWERS: usize = 16;

/// Ciphertext bytes a packet may have and still be hashed as a single chunk (14 blocks: with
/// the AAD and length blocks, 16).
pub(super) const ONE_CHUNK: usize = 16 * (POWERS - 2);

/// The expanded keys of one SA: 496 bytes, 16-byte aligned.
#[repr(C, align(16))]
pub(super) struct Keys {
    /// AES round keys 0..=NR (11 used for AES-128, 15 for AES-256).
    pub(super) rk: [[u8; 16]; 15],
    /// The hash key powers, highest first: `h[i]` holds H^(16 - i), so `h[15]` is H^1. A
    /// chunk of t blocks reads the last t entries (the end of the value), in one run.
    pub(super) h: [[u8; 16]; POWERS],
}

impl Keys {
    /// All zero (expanded in place later, so that no copy of the schedule is left behind).
    pub(super) const ZERO: Keys = Keys {
        rk: [[0; 16]; 15],
        h: [[0; 16]; POWERS],
    };
}

/// 16 bytes of a round key or hash power.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn load128(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is a reference to 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(b.as_ptr() as *const __m128i) }
}

/// The same 16 bytes in each of the four lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn load128x4(b: &[u8; 16]) -> __m512i {
    _mm512_broadcast_i32x4(load128(b))
}

/// `vpshufb` control that reverses the bytes of each 128-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn bswap128() -> __m128i {
    _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// The reduction constant: x^-1's terms other than x^127, reflected, in the high qword (the
/// low qword, 1, is used only when the key is shifted).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn gfpoly() -> __m128i {
    _mm_set_epi64x(0xc200_0000_0000_0000u64 as i64, 1)
}

// ---------------------------------------------------------------------------------------
// GHASH
// ---------------------------------------------------------------------------------------

/// Unreduced sums of products, per lane, Karatsuba style: `lo` (low x low), `hi` (high x
/// high) and `mk` ((low ^ high) x (low ^ high)), so that the middle term is
/// `mk ^ lo ^ hi` (three multiplications per block instead of four).
#[derive(Clone, Copy)]
struct Acc {
    lo: __m512i,
    mk: __m512i,
    hi: __m512i,
}

/// Each lane's two halves xored, in both halves.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn halves(a: __m512i) -> __m512i {
    _mm512_xor_si512(a, _mm512_shuffle_epi32::<0x4e>(a))
}

impl Acc {
    /// The products of `a` and `b`, lane by lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
    fn of(a: __m512i, b: __m512i) -> Acc {
        Acc {
            lo: _mm512_clmulepi64_epi128::<0x00>(a, b),
            mk: _mm512_clmulepi64_epi128::<0x00>(halves(a), halves(b)),
            hi: _mm512_clmulepi64_epi128::<0x11>(a, b),
        }
    }

    /// Nothing yet.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
    fn zero() -> Acc {
        Acc {
            lo: _mm512_setzero_si512(),
            mk: _mm512_setzero_si512(),
            hi: _mm512_setzero_si512(),
        }
    }

    /// Adds the products of `a` and `b`, lane by lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
    fn add(&mut self, a: __m512i, b: __m512i) {
        self.lo = _mm512_xor_si512(self.lo, _mm512_clmulepi64_epi128::<0x00>(a, b));
        self.hi = _mm512_xor_si512(self.hi, _mm512_clmulepi64_epi128::<0x11>(a, b));
        self.mk = _mm512_xor_si512(
            self.mk,
            _mm512_clmulepi64_epi128::<0x00>(halves(a), halves(b)),
        );
    }

    /// Reduces each lane modulo the GCM polynomial and sums the four lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
    fn reduce(self) -> __m128i {
        let poly = _mm512_broadcast_i32x4(gfpoly());
        let mi = _mm512_ternarylogic_epi64::<0x96>(self.mk, self.lo, self.hi);
        // Fold lo into mi, then mi into hi (lo.low64 * 0xc2.. and a swap of halves each).
        let t = _mm512_clmulepi64_epi128::<0x10>(self.lo, poly);
        let mi = _mm512_ternarylogic_epi64::<0x96>(mi, _mm512_shuffle_epi32::<0x4e>(self.lo), t);
        let t = _mm512_clmulepi64_epi128::<0x10>(mi, poly);
        let r = _mm512_ternarylogic_epi64::<0x96>(self.hi, _mm512_shuffle_epi32::<0x4e>(mi), t);
        let y = _mm256_xor_si256(_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64::<1>(r));
        _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y))
    }
}

/// a * b in GF(2^128), both in the kernel's representation (single blocks: key set-up and
/// AADs longer than one block).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn gmul(a: __m128i, b: __m128i) -> __m128i {
    Acc::of(_mm512_zextsi128_si512(a), _mm512_zextsi128_si512(b)).reduce()
}

// ---------------------------------------------------------------------------------------
// AES
// ---------------------------------------------------------------------------------------

/// One AES-128 key-schedule step: `prev` with its words chained, xored with `t` (the
/// broadcast word from `aeskeygenassist`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn expand_step(prev: __m128i, t: __m128i) -> __m128i {
    let mut k = prev;
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, t)
}

/// Encrypts one block (the tag mask E(K, J0), and H at key set-up).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn aes_block<const NR: usize>(keys: &Keys, b: __m128i) -> __m128i {
    let mut s = _mm_xor_si128(b, load128(&keys.rk[0]));
    for k in &keys.rk[1..NR] {
        s = _mm_aesenc_si128(s, load128(k));
    }
    _mm_aesenclast_si128(s, load128(&keys.rk[NR]))
}

impl Keys {
    /// Expands `key` (16 or 32 bytes) into round keys and hash-key powers, in place.
    ///
    /// Panics on another key length (the caller checks it first).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
    pub(super) fn expand(&mut self, key: &[u8]) {
        let rk = &mut self.rk;
        let store = |rk: &mut [[u8; 16]; 15], i: usize, v: __m128i| {
            // SAFETY: rk[i] is 16 writable bytes; storeu has no alignment requirement.
            unsafe { _mm_storeu_si128(rk[i].as_mut_ptr() as *mut __m128i, v) }
        };
        macro_rules! assist {
            ($k:expr, $rcon:literal, $sel:literal) => {
                _mm_shuffle_epi32::<$sel>(_mm_aeskeygenassist_si128::<$rcon>($k))
            };
        }
        match key.len() {
            16 => {
                let mut k = load128(key.try_into().expect("16 bytes"));
                store(rk, 0, k);
                macro_rules! round {
                    ($i:literal, $rcon:literal) => {
                        k = expand_step(k, assist!(k, $rcon, 0xff));
                        store(rk, $i, k);
                    };
                }
                round!(1, 0x01);
                round!(2, 0x02);
                round!(3, 0x04);
                round!(4, 0x08);
                round!(5, 0x10);
                round!(6, 0x20);
                round!(7, 0x40);
                round!(8, 0x80);
                round!(9, 0x1b);
                round!(10, 0x36);
            }
            32 => {
                let mut a = load128(key[..16].try_into().expect("16 bytes"));
                let mut b = load128(key[16..].try_into().expect("16 bytes"));
                store(rk, 0, a);
                store(rk, 1, b);
                macro_rules! round {
                    ($i:literal, $rcon:literal) => {
                        a = expand_step(a, assist!(b, $rcon, 0xff));
                        store(rk, $i, a);
                        if $i < 14 {
                            b = expand_step(b, assist!(a, 0x00, 0xaa));
                            store(rk, $i + 1, b);
                        }
                    };
                }
                round!(2, 0x01);
                round!(4, 0x02);
                round!(6, 0x04);
                round!(8, 0x08);
                round!(10, 0x10);
                round!(12, 0x20);
                round!(14, 0x40);
            }
            n => panic!("AES key of {n} bytes"),
        }
        let h = if key.len() == 16 {
            aes_block::<10>(self, _mm_setzero_si128())
        } else {
            aes_block::<14>(self, _mm_setzero_si128())
        };
        // H byte-reversed, then times x^-1: shift the reflected value left by one bit and,
        // if x^0's coefficient (bit 127) fell off, add x^-1 = x^127 + x^6 + x + 1.
        let h = _mm_shuffle_epi8(h, bswap128());
        let mut hv = [0u8; 16];
        // SAFETY: hv is 16 writable bytes; storeu has no alignment requirement.
        unsafe { _mm_storeu_si128(hv.as_mut_ptr() as *mut __m128i, h) };
        let v = u128::from_le_bytes(hv);
        let carry = v >> 127;
        let shifted = (v << 1) ^ (carry.wrapping_neg() & 0xc200_0000_0000_0000_0000_0000_0000_0001);
        hv.fill(0);
        let h1 = load128(&shifted.to_le_bytes());
        let mut p = h1;
        for i in (0..POWERS).rev() {
            store_h(&mut self.h[i], p);
            p = gmul(p, h1);
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn store_h(dst: &mut [u8; 16], v: __m128i) {
    // SAFETY: dst is 16 writable bytes; storeu has no alignment requirement.
    unsafe { _mm_storeu_si128(dst.as_mut_ptr() as *mut __m128i, v) }
}

// ---------------------------------------------------------------------------------------
// GCM
// ---------------------------------------------------------------------------------------

/// GCM's 96-bit nonce as words: the little-endian values of its bytes 0..4 (ESP's salt) and
/// 4..12 (the IV).
///
/// The kernel builds the first counter block from these in registers. Copying the bytes into
/// an array and loading it as one 16-byte block would stall on store-to-load forwarding
/// (a load over several smaller, recent stores waits until they reach the cache): sealing
/// 64 bytes took about 20 ns longer that way.
#[derive(Clone, Copy, Debug)]
pub(super) struct Nonce {
    pub(super) salt: u32,
    pub(super) iv: u64,
}

impl Nonce {
    /// The nonce held in 12 bytes (the test vectors' form).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn from_bytes(n: &[u8; 12]) -> Nonce {
        let (salt, iv) = n.split_at(4);
        Nonce {
            salt: u32::from_le_bytes(salt.try_into().expect("4 bytes")),
            iv: u64::from_le_bytes(iv.try_into().expect("8 bytes")),
        }
    }

    /// J0, the first counter block: the nonce and a 32-bit big-endian 1.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
    fn j0(self) -> __m128i {
        let lo = self.salt as u64 | (self.iv << 32);
        let hi = (self.iv >> 32) | (0x0100_0000u64 << 32);
        _mm_set_epi64x(hi as i64, lo as i64)
    }
}

/// The additional authenticated data.
#[derive(Clone, Copy, Debug)]
pub(super) enum Aad<'a> {
    /// Up to 16 bytes as words (the little-endian values of bytes 0..8 and 8..16, zero past
    /// `len`): ESP's SPI and sequence number, without building them in memory (see
    /// [`Nonce`]).
    Words { lo: u64, hi: u64, len: u8 },
    /// Any length: the test vectors' AADs of 0 to 90 bytes (ESP's are always words).
    #[cfg_attr(not(test), allow(dead_code))]
    Bytes(&'a [u8]),
}

impl Aad<'_> {
    fn len(&self) -> usize {
        match self {
            Aad::Words { len, .. } => *len as usize,
            Aad::Bytes(b) => b.len(),
        }
    }
}

/// Encrypts (`DEC == false`) or decrypts `data` in place with AES-GCM (96-bit `nonce`) and
/// returns the tag: on encryption the ICV to send, on decryption the one to compare with the
/// received ICV.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
pub(super) fn gcm<const NR: usize, const DEC: bool>(
    keys: &Keys,
    nonce: Nonce,
    aad: Aad<'_>,
    data: &mut [u8],
) -> [u8; 16] {
    let bs = bswap128();
    let j0 = nonce.j0();
    let ej0 = aes_block::<NR>(keys, j0);
    // Counter blocks byte-reversed, so that the 32-bit counter is each lane's low dword:
    // lanes 0..3 hold counters 2..5 (the first four data blocks).
    let ctr = _mm512_add_epi32(
        _mm512_shuffle_epi8(_mm512_broadcast_i32x4(j0), _mm512_broadcast_i32x4(bs)),
        _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1),
    );
    let x = aad_block(keys, aad);
    let aad_len = aad.len();
    let len = data.len();
    let lblk = _mm_set_epi64x((aad_len as u64 * 8) as i64, (len as u64 * 8) as i64);

    // SAFETY (every chunk call below): gcm has the kernel's target features, so they are
    // present on this CPU, which is what chunk and chunk_any require.
    let y = if len <= ONE_CHUNK {
        // SAFETY: see above.
        unsafe { chunk_any::<NR, DEC>(keys, data, ctr, x, 1, Some(lblk)) }
    } else {
        // First chunk: AAD and 15 ciphertext blocks, then 16 blocks at a time, and the last
        // 0..=15 blocks with the length block (241..=255 bytes left make a 16-block chunk
        // with a partial last block, and the length block goes alone after it).
        let first = len.min(240);
        let (head, mut rest) = data.split_at_mut(first);
        // SAFETY: see above.
        let mut y = unsafe { chunk_any::<NR, DEC>(keys, head, ctr, x, 1, None) };
        let mut ctr = _mm512_add_epi32(ctr, _mm512_maskz_set1_epi32(0x1111, 15));
        while rest.len() > 240 {
            let (c, r) = rest.split_at_mut(rest.len().min(256));
            // SAFETY: see above.
            y = unsafe { chunk::<NR, 4, DEC>(keys, c, ctr, y, 0, None) };
            ctr = _mm512_add_epi32(ctr, _mm512_maskz_set1_epi32(0x1111, 16));
            rest = r;
        }
        // SAFETY: see above.
        unsafe { chunk_any::<NR, DEC>(keys, rest, ctr, y, 0, Some(lblk)) }
    };
    let tag = _mm_xor_si128(_mm_shuffle_epi8(y, bs), ej0);
    let mut out = [0u8; 16];
    // SAFETY: out is 16 writable bytes; storeu has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, tag) };
    out
}

/// The AAD's contribution as the first block of the GHASH sequence: the AAD itself when it
/// is one block or less (ESP's 8 or 12 bytes), else the Horner sum of its blocks but for the
/// last multiplication by H.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq")]
fn aad_block(keys: &Keys, aad: Aad<'_>) -> __m128i {
    let bs = bswap128();
    let aad = match aad {
        Aad::Words { lo, hi, .. } => {
            return _mm_shuffle_epi8(_mm_set_epi64x(hi as i64, lo as i64), bs);
        }
        Aad::Bytes(b) => b,
    };
    let load_part = |p: &[u8]| -> __m128i {
        debug_assert!(p.len() <= 16);
        let m: __mmask16 = ((1u32 << p.len()) - 1) as __mmask16;
        // SAFETY: the mask selects the first p.len() <= 16 bytes, all inside `p`; the
        // masked-off bytes are neither read nor faulted on (AVX-512 fault suppression).
        let v = unsafe { _mm_maskz_loadu_epi8(m, p.as_ptr() as *const i8) };
        _mm_shuffle_epi8(v, bs)
    };
    if aad.len() <= 16 {
        return load_part(aad);
    }
    let h1 = load128(&keys.h[POWERS - 1]);
    let mut blocks = aad.chunks(16);
    let last = blocks
        .next_back()
        .map(load_part)
        .unwrap_or(_mm_setzero_si128());
    let mut y = _mm_setzero_si128();
    for b in blocks {
        y = gmul(_mm_xor_si128(y, load_part(b)), h1);
    }
    _mm_xor_si128(y, last)
}

/// [`chunk`] for 0..=256 bytes of data, by the number of 64-byte registers it needs.
///
/// # Safety
/// The CPU has the kernel's features (this is only called from [`gcm`]). Not a
/// `#[target_feature]` function so that it can be `#[inline(always)]`: LLVM does not inline a
/// chunk of this size on its own, and a call costs more than the whole small-packet path
/// saves (vectors cross calls through memory).
#[inline(always)]
unsafe fn chunk_any<const NR: usize, const DEC: bool>(
    keys: &Keys,
    data: &mut [u8],
    ctr: __m512i,
    x: __m128i,
    pre: usize,
    l: Option<__m128i>,
) -> __m128i {
    match data.len().div_ceil(64) {
        0 => chunk::<NR, 0, DEC>(keys, data, ctr, x, pre, l),
        1 => chunk::<NR, 1, DEC>(keys, data, ctr, x, pre, l),
        2 => chunk::<NR, 2, DEC>(keys, data, ctr, x, pre, l),
        3 => chunk::<NR, 3, DEC>(keys, data, ctr, x, pre, l),
        _ => chunk::<NR, 4, DEC>(keys, data, ctr, x, pre, l),
    }
}

/// One chunk: CTR-encrypts or -decrypts `data` (at most `NZ` * 64 bytes, more than
/// (`NZ` - 1) * 64) with counter lanes `ctr` (+4 per register), and returns the GHASH state
/// after `x` (at the top power), the chunk's ciphertext blocks and, if given, the length
/// block `l` (at H^1). `pre` is 1 when `x` is a block of the sequence (the AAD) and 0 when it
/// is the state carried from the previous chunk.
///
/// # Safety
/// As [`chunk_any`].
#[inline(always)]
unsafe fn chunk<const NR: usize, const NZ: usize, const DEC: bool>(
    keys: &Keys,
    data: &mut [u8],
    ctr: __m512i,
    x: __m128i,
    pre: usize,
    l: Option<__m128i>,
) -> __m128i {
    let n = data.len();
    debug_assert!(n.div_ceil(64) == NZ && NZ <= 4);
    let q = n.div_ceil(16);
    // Power of the first ciphertext block, and of x.
    let top = q + l.is_some() as usize;
    let px = top + pre;
    assert!((1..=POWERS).contains(&px));
    let bs = _mm512_broadcast_i32x4(bswap128());

    // The carried state has the first ciphertext block's power: it is added to that block.
    let fold = pre == 0 && NZ > 0;
    let mut acc = if fold {
        match l {
            Some(l) => Acc::of(
                _mm512_zextsi128_si512(l),
                _mm512_zextsi128_si512(load128(&keys.h[POWERS - 1])),
            ),
            None => Acc::zero(),
        }
    } else {
        // x and the length block, with their powers, as lanes 0 and 1 of one register.
        let xl =
            _mm512_inserti32x4::<1>(_mm512_zextsi128_si512(x), l.unwrap_or(_mm_setzero_si128()));
        let hxl = _mm512_inserti32x4::<1>(
            _mm512_zextsi128_si512(load128(&keys.h[POWERS - px])),
            load128(&keys.h[POWERS - 1]),
        );
        Acc::of(xl, hxl)
    };

    // Keystream.
    let mut ks = [_mm512_setzero_si512(); NZ];
    let rk0 = load128x4(&keys.rk[0]);
    for (r, k) in ks.iter_mut().enumerate() {
        let c = _mm512_add_epi32(ctr, _mm512_maskz_set1_epi32(0x1111, 4 * r as i32));
        *k = _mm512_xor_si512(_mm512_shuffle_epi8(c, bs), rk0);
    }
    for rk in &keys.rk[1..NR] {
        let rk = load128x4(rk);
        for k in ks.iter_mut() {
            *k = _mm512_aesenc_epi128(*k, rk);
        }
    }
    let rkl = load128x4(&keys.rk[NR]);
    for k in ks.iter_mut() {
        *k = _mm512_aesenclast_epi128(*k, rkl);
    }

    let p = data.as_mut_ptr();
    for (r, k) in ks.iter().enumerate() {
        let off = 64 * r;
        let bytes = (n - off).min(64);
        // Only a partial register needs masked loads and stores (which cost more).
        let last = bytes < 64;
        let m: __mmask64 = if bytes == 64 { !0 } else { (1u64 << bytes) - 1 };
        // SAFETY: off + bytes <= n: a full register is read and written only when 64 bytes
        // remain from `off`, otherwise the mask selects exactly the `bytes` that do, and the
        // masked-off bytes are neither read, written nor faulted on (AVX-512 masking).
        let (input, output) = unsafe {
            let at = p.add(off) as *mut i8;
            let input = if last {
                _mm512_maskz_loadu_epi8(m, at)
            } else {
                _mm512_loadu_si512(at as *const __m512i)
            };
            let output = _mm512_xor_si512(input, *k);
            if last {
                _mm512_mask_storeu_epi8(at, m, output);
            } else {
                _mm512_storeu_si512(at as *mut __m512i, output);
            }
            (input, output)
        };
        // The ciphertext, zero past its end (GCM pads the last block with zeros).
        let ct = if DEC {
            input
        } else if last {
            _mm512_maskz_mov_epi8(m, output)
        } else {
            output
        };
        // Its blocks' powers: H^(top - 4r) .. H^(top - 4r - 3), i.e. h[16 - top + 4r ..].
        let blocks = (q - 4 * r).min(4);
        let first = POWERS - top + 4 * r;
        // SAFETY: `first` + `blocks` <= POWERS (the last block of the chunk has power >= 1),
        // and the qword mask selects only those `blocks` entries (2 qwords each) of `keys.h`;
        // masked-off entries past the array are neither read nor faulted on. A full register
        // is read unmasked only when its 4 entries are all inside the array.
        let hp = unsafe {
            let at = keys.h.as_ptr().add(first) as *const i64;
            if blocks == 4 {
                _mm512_loadu_si512(at as *const __m512i)
            } else {
                _mm512_maskz_loadu_epi64(((1u32 << (2 * blocks)) - 1) as __mmask8, at)
            }
        };
        let mut ct = _mm512_shuffle_epi8(ct, bs);
        if fold && r == 0 {
            ct = _mm512_xor_si512(ct, _mm512_zextsi128_si512(x));
        }
        acc.add(ct, hp);
    }
    acc.reduce()
}
