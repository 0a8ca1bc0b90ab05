//! Raw cost of the ESP crypto backends: `EspCipher::seal` on one packet, per backend and
//! transform, at 64, 512 and 1420 bytes of payload. This is what `crypto::default_backend`'s
//! ranking is based on, and the "raw crypto" figure the ESP benchmarks compare against.
//!
//! `cargo bench -p benches --bench crypto` (add `-- gcm` to filter).

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::crypto::{backends, Encryption, Integrity, Transform};

const SIZES: [usize; 3] = [64, 512, 1420];

fn transforms() -> Vec<Transform> {
    use Encryption::*;
    use Integrity::*;
    [
        (Gcm128, None),
        (Gcm256, None),
        (AesCbc128, Sha1),
        (AesCbc256, Sha1),
        (AesCbc128, Sha256),
        (AesCbc256, Sha256),
        (AesCbc128, Md5),
        (TripleDes, Md5),
        (TripleDes, Sha1),
        (Des, Md5),
        (Null, Sha1),
    ]
    .into_iter()
    .map(|(encryption, integrity)| Transform {
        encryption,
        integrity,
    })
    .collect()
}

/// An ESP packet whose encrypted range holds `payload` bytes rounded up to the block.
fn packet(t: Transform, payload: usize) -> Vec<u8> {
    let block = t.encryption.block_len();
    let body = payload.div_ceil(block) * block;
    let mut esp = vec![0x5au8; 8 + t.iv_len() + body + t.icv_len()];
    esp[..8].copy_from_slice(&[0, 0, 0x10, 0x01, 0, 0, 0, 1]);
    esp
}

fn seal(c: &mut Criterion) {
    for t in transforms() {
        let mut group = c.benchmark_group(format!("seal/{}", t.to_string().replace(' ', "_")));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1200));
        for backend in backends().iter().filter(|b| b.supports(t)) {
            let cipher = backend
                .cipher(
                    t,
                    &vec![0x11; t.encryption.key_len()],
                    &vec![0x22; t.integrity.key_len()],
                )
                .expect("cipher");
            for size in SIZES {
                let mut esp = packet(t, size);
                group.throughput(Throughput::Bytes(size as u64));
                group.bench_with_input(BenchmarkId::new(backend.name(), size), &size, |b, _| {
                    b.iter(|| cipher.seal(black_box(&mut esp), None))
                });
            }
        }
        group.finish();
    }
}

/// Open of a valid packet (ICV check + decryption) for the two transforms the ESP
/// benchmarks use.
fn open(c: &mut Criterion) {
    let picks = [
        Transform {
            encryption: Encryption::Gcm128,
            integrity: Integrity::None,
        },
        Transform {
            encryption: Encryption::AesCbc128,
            integrity: Integrity::Sha1,
        },
    ];
    for t in picks {
        let mut group = c.benchmark_group(format!("open/{}", t.to_string().replace(' ', "_")));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1200));
        for backend in backends().iter().filter(|b| b.supports(t)) {
            let cipher = backend
                .cipher(
                    t,
                    &vec![0x11; t.encryption.key_len()],
                    &vec![0x22; t.integrity.key_len()],
                )
                .expect("cipher");
            for size in SIZES {
                let mut sealed = packet(t, size);
                cipher.seal(&mut sealed, None);
                let mut esp = sealed.clone();
                group.throughput(Throughput::Bytes(size as u64));
                group.bench_with_input(BenchmarkId::new(backend.name(), size), &size, |b, _| {
                    b.iter(|| {
                        // Restore the sealed bytes (a memcpy, also counted) and open them.
                        esp.copy_from_slice(&sealed);
                        cipher.open(black_box(&mut esp), None).expect("open")
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, seal, open);
criterion_main!(benches);
