//! Messages protected by an established ISAKMP SA (Quick Mode and informational exchanges,
//! RFC 2409 sections 5.5 and 5.7): encrypted with the phase 1 cipher and key, their IV chain
//! starting at `phase2_iv(M-ID)`, and led by a HASH payload computed over the rest.

use std::net::IpAddr;

use zeroize::Zeroizing;

use super::main_mode::Phase1Sa;
use super::Error;
use crate::ikecrypto::IvChain;
use crate::isakmp::header::{self, ExchangeType, Flags, HEADER_LEN};
use crate::isakmp::message::{self, Payload};
use crate::isakmp::payload::RawChain;
use crate::isakmp::{hash as hashp, PayloadType};

/// A random message ID, never 0.
pub(crate) fn random_message_id() -> Result<u32, String> {
    loop {
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).map_err(|e| format!("random bytes: {e}"))?;
        let v = u32::from_be_bytes(b);
        if v != 0 {
            return Ok(v);
        }
    }
}

/// Random bytes from OpenSSL.
pub(crate) fn random_bytes(n: usize) -> Result<Vec<u8>, String> {
    let mut v = vec![0u8; n];
    openssl::rand::rand_bytes(&mut v).map_err(|e| format!("random bytes: {e}"))?;
    Ok(v)
}

/// `rest` preceded by a HASH payload whose value `hash` computes from the bytes of `rest`
/// as emitted (everything after the HASH payload).
pub(crate) fn with_hash(
    rest: Vec<Payload>,
    hash: impl FnOnce(&[u8]) -> Vec<u8>,
) -> Result<Vec<Payload>, String> {
    let after = message::payloads_to_bytes(&rest).map_err(|e| format!("building: {e}"))?;
    let mut v = Vec::with_capacity(rest.len() + 1);
    v.push(Payload::Hash(hashp::Repr { data: hash(&after) }));
    v.extend(rest);
    Ok(v)
}

/// Encrypts `payloads` under the SA with the chain's IV (which then advances) into a
/// message of `exchange` with `message_id`.
pub(crate) fn seal(
    sa: &Phase1Sa,
    exchange: ExchangeType,
    message_id: u32,
    payloads: &[Payload],
    iv: &mut IvChain,
) -> Result<Vec<u8>, String> {
    let pt = Zeroizing::new(
        message::payloads_to_bytes(payloads).map_err(|e| format!("building the message: {e}"))?,
    );
    let ct = iv
        .encrypt(sa.policy.cipher, sa.keys.enc_key(), &pt)
        .map_err(|e| format!("encryption: {e}"))?;
    let len = HEADER_LEN + ct.len();
    let mut out = vec![0u8; len];
    header::Repr {
        initiator_cookie: sa.cookie_i,
        responder_cookie: sa.cookie_r,
        next_payload: message::first_kind(payloads),
        exchange_type: exchange,
        flags: Flags::default().with_encryption(true),
        message_id,
        length: len as u32,
    }
    .emit(&mut out);
    out[HEADER_LEN..].copy_from_slice(&ct);
    Ok(out)
}

/// A decrypted protected message.
pub(crate) struct Opened<'a> {
    pub header: header::Repr,
    /// The ciphertext (to advance an IV chain once the message is accepted).
    pub ciphertext: &'a [u8],
    pub plaintext: Zeroizing<Vec<u8>>,
}

pub(crate) fn malformed(peer: IpAddr, reason: impl std::fmt::Display) -> Error {
    Error::Malformed {
        peer,
        reason: reason.to_string(),
    }
}

/// Checks the header of a protected message of `exchange` (cookies of `sa`, flag E,
/// `message_id` if given, nonzero otherwise) and decrypts it with `iv` (not advanced).
pub(crate) fn open<'a>(
    sa: &Phase1Sa,
    data: &'a [u8],
    exchange: ExchangeType,
    message_id: Option<u32>,
    iv: &IvChain,
) -> Result<Opened<'a>, Error> {
    let peer = sa.remote.ip();
    let (h, body) = message::parse_header(data).map_err(|e| malformed(peer, e))?;
    if h.initiator_cookie != sa.cookie_i || h.responder_cookie != sa.cookie_r {
        return Err(Error::UnknownCookies { peer });
    }
    if h.exchange_type != exchange {
        return Err(Error::UnexpectedExchange {
            peer,
            exchange: h.exchange_type,
        });
    }
    match message_id {
        Some(m) if m != h.message_id => {
            return Err(malformed(
                peer,
                format_args!("message ID {:#x}, expected {m:#x}", h.message_id),
            ))
        }
        None if h.message_id == 0 => return Err(malformed(peer, "message ID 0")),
        _ => {}
    }
    if !h.flags.encryption() {
        return Err(malformed(
            peer,
            "cleartext where an encrypted message is expected",
        ));
    }
    let block = sa.policy.cipher.block_size();
    if body.is_empty() || !body.len().is_multiple_of(block) {
        return Err(malformed(
            peer,
            format_args!(
                "{} encrypted bytes, not a multiple of the {block}-byte block",
                body.len()
            ),
        ));
    }
    let plaintext = Zeroizing::new(
        sa.policy
            .cipher
            .decrypt(sa.keys.enc_key(), iv.iv(), body)
            .map_err(|e| malformed(peer, format_args!("decryption: {e}")))?,
    );
    Ok(Opened {
        header: h,
        ciphertext: body,
        plaintext,
    })
}

/// Walks a decrypted body whose first payload must be HASH; returns the chain and the
/// received hash. A body that does not walk (wrong keys, tampering) is a hash failure.
pub(crate) fn hashed_chain<'a>(
    peer: IpAddr,
    h: &header::Repr,
    plaintext: &'a [u8],
    what: &'static str,
) -> Result<(RawChain<'a>, Vec<u8>), Error> {
    let bad = || Error::BadHash {
        peer,
        what,
        message_id: h.message_id,
    };
    let chain = message::walk_body(h.next_payload, plaintext, true).map_err(|_| bad())?;
    let first = chain.payloads.first().ok_or_else(bad)?;
    if first.kind != PayloadType::HASH {
        return Err(bad());
    }
    let Ok(Payload::Hash(hp)) = Payload::parse(first.kind, first.bytes) else {
        return Err(bad());
    };
    Ok((chain, hp.data))
}

/// Constant-time comparison of a received hash with the expected one.
pub(crate) fn hash_ok(got: &[u8], expected: &[u8]) -> bool {
    got.len() == expected.len() && openssl::memcmp::eq(got, expected)
}

/// Parses every payload of a chain but the first (the HASH).
pub(crate) fn payloads_after_hash(
    peer: IpAddr,
    chain: &RawChain<'_>,
) -> Result<Vec<Payload>, Error> {
    chain.payloads[1..]
        .iter()
        .map(|p| Payload::parse(p.kind, p.bytes))
        .collect::<crate::isakmp::Result<Vec<_>>>()
        .map_err(|e| malformed(peer, e))
}
