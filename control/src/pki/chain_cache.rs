//! Peer certificate chains already verified, so that the same certificates are parsed and
//! checked up to a trusted CA once rather than at every phase 1 (issue 5, "IKE setup
//! rate"): a hub checks its spokes' certificates again at every re-authentication, and
//! ipsec-ikeload's thousand spokes all check the one hub certificate. Parsing alone (OpenSSL
//! 3 sets up a decoder for every certificate's public key) cost more than the chain check.
//!
//! What is kept is the verified path (end-entity certificate first, up to the trust anchor),
//! keyed by the SHA-256 of the trusted CAs' DER (a [`CaFingerprint`] of the trust store)
//! and of the peer's certificates' DER, so that one cache serves trust stores of different
//! CAs without mixing their verdicts (the process has one, [`process_cache`]). A path is
//! reused only while the check time lies inside every one of its certificates' validity
//! periods: besides the certificates and the CAs, that is all the chain check depends on.
//! Revocation is not part of it: the trust store checks the CRLs on every use. Only chains
//! that passed are kept, at most [`CAPACITY`], the oldest leaving first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use openssl::sha::Sha256;
use openssl::x509::X509;

use super::asn1_unix;

/// Chains kept at most: a hub's spokes' certificates, a few KB each in memory.
pub const CAPACITY: usize = 4096;

/// SHA-256 over the DER of a trust store's CAs (anchors and configured helpers, in order).
pub type CaFingerprint = [u8; 32];

/// The fingerprint of these CA certificates.
pub fn ca_fingerprint<'a>(cas: impl IntoIterator<Item = &'a X509>) -> CaFingerprint {
    let mut h = Sha256::new();
    for c in cas {
        // a certificate that cannot be encoded contributes its absence: it is never an
        // anchor OpenSSL could use either
        let der = c.to_der().unwrap_or_default();
        h.update(&(der.len() as u64).to_be_bytes());
        h.update(&der);
    }
    h.finish()
}

type Key = [u8; 32];

struct Entry {
    path: Vec<X509>,
    /// The latest notBefore and the earliest notAfter of the path (Unix seconds).
    valid_from: i64,
    valid_until: i64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
    hits: u64,
    misses: u64,
}

/// Verified chains (see the module's documentation).
pub struct ChainCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

/// What a cache did: for tests and the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainCacheStats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
}

impl ChainCache {
    pub fn new(capacity: usize) -> ChainCache {
        ChainCache {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// The key of a peer's chain (its DER certificates as received) under a CA set.
    pub fn key(cas: &CaFingerprint, chain: &[Vec<u8>]) -> Key {
        let mut h = Sha256::new();
        h.update(cas);
        for der in chain {
            h.update(&(der.len() as u64).to_be_bytes());
            h.update(der);
        }
        h.finish()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // every update under the lock is complete before anything can panic
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The path verified for `key`, if it is known and `now` (Unix seconds) lies inside the
    /// validity of all of its certificates.
    pub fn get(&self, key: &Key, now: i64) -> Option<Vec<X509>> {
        let mut inner = self.lock();
        let found = inner
            .entries
            .get(key)
            // OpenSSL's own test: notBefore <= now < notAfter
            .filter(|e| e.valid_from <= now && now < e.valid_until)
            .map(|e| e.path.clone());
        match found {
            Some(_) => inner.hits += 1,
            None => inner.misses += 1,
        }
        found
    }

    /// Remembers a path that passed the chain check. A path whose validity dates cannot be
    /// read is not kept (it would never be reused safely).
    pub fn insert(&self, key: Key, path: &[X509]) {
        let mut valid_from = i64::MIN;
        let mut valid_until = i64::MAX;
        for c in path {
            match (asn1_unix(c.not_before()), asn1_unix(c.not_after())) {
                (Some(from), Some(until)) => {
                    valid_from = valid_from.max(from);
                    valid_until = valid_until.min(until);
                }
                _ => return,
            }
        }
        let mut inner = self.lock();
        let entry = Entry {
            path: path.to_vec(),
            valid_from,
            valid_until,
        };
        if inner.entries.insert(key, entry).is_none() {
            inner.order.push_back(key);
        }
        while inner.entries.len() > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            inner.entries.remove(&old);
        }
    }

    pub fn stats(&self) -> ChainCacheStats {
        let inner = self.lock();
        ChainCacheStats {
            entries: inner.entries.len(),
            hits: inner.hits,
            misses: inner.misses,
        }
    }
}

/// The process's cache: what [`super::TrustStore::new`] gives its stores.
pub fn process_cache() -> Arc<ChainCache> {
    static CACHE: OnceLock<Arc<ChainCache>> = OnceLock::new();
    CACHE
        .get_or_init(|| Arc::new(ChainCache::new(CAPACITY)))
        .clone()
}
