//! The fast-path rule "no heap allocation per packet", checked: a counting global allocator
//! watches `seal` and `open` of every transform on every backend, including failed opens
//! and malformed packets.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use dataplane::crypto::{backends, Encryption, Integrity, Transform};

/// Counts allocations made by this thread while `COUNTING` is set.
struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged; the only addition is a relaxed counter increment, which allocates nothing.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's (`layout` has non-zero size).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System.alloc` with this `layout` (alloc above).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn seal_and_open_never_allocate() {
    let encryptions = [
        Encryption::Gcm128,
        Encryption::Gcm256,
        Encryption::AesCbc128,
        Encryption::AesCbc192,
        Encryption::AesCbc256,
        Encryption::TripleDes,
        Encryption::Des,
        Encryption::Null,
    ];
    let integrities = [
        Integrity::None,
        Integrity::Sha1,
        Integrity::Md5,
        Integrity::Sha256,
    ];
    let mut checked = 0;
    for encryption in encryptions {
        for integrity in integrities {
            let t = Transform {
                encryption,
                integrity,
            };
            if !t.is_valid() {
                continue;
            }
            for b in backends().iter().filter(|b| b.supports(t)) {
                let cipher = b
                    .cipher(
                        t,
                        &vec![3; encryption.key_len()],
                        &vec![4; integrity.key_len()],
                    )
                    .unwrap();
                let len = 8 + t.iv_len() + 96 + t.icv_len();
                let mut esp = vec![0x42u8; len];
                let mut short = vec![0x42u8; 8 + t.iv_len() + t.icv_len() - 1];
                let mut ragged = vec![0x42u8; len + 1];
                let n = allocations_in(|| {
                    cipher.seal(&mut esp, Some(7));
                    cipher.open(&mut esp, Some(7)).unwrap();
                    cipher.seal(&mut esp, None);
                    esp[20] ^= 1;
                    let _ = cipher.open(&mut esp, None);
                    cipher.seal(&mut short, None);
                    let _ = cipher.open(&mut short, None);
                    cipher.seal(&mut ragged, None);
                    let _ = cipher.open(&mut ragged, None);
                });
                assert_eq!(n, 0, "{} {t}: {n} allocations", b.name());
                checked += 1;
            }
        }
    }
    // 2 GCM x 2 backends + 5 CBC ciphers x 3 HMACs + 2 DES ciphers x 3 HMACs on OpenSSL
    // + esp-null x 4, + 2 GCM on intel-ipsec-mb with the dpdk feature, + 2 GCM on the VAES
    // kernel on a CPU that has it.
    let vaes = if dataplane::crypto::vaes_gcm::cpu_has_features() {
        2
    } else {
        0
    };
    assert_eq!(checked, vaes + if cfg!(feature = "dpdk") { 31 } else { 29 });
    // The counter does count: building a cipher allocates its box.
    let t = Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::None,
    };
    assert!(allocations_in(|| drop(backends()[0].cipher(t, &[0; 20], &[]))) > 0);
}
