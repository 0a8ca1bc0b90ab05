//! `raw-aead`: the raw cost of this project's AES-GCM, one core, no packet I/O: the
//! default backend's `EspCipher::seal` over a ring of ESP packets of each size, for a fixed
//! time. The figure `benches/crypto-ceiling.sh` sets beside DPDK's own crypto ceiling
//! (`dpdk-test-crypto-perf` with `crypto_aesni_gcm`) and beside the dataplane's throughput.
//!
//! `raw-aead [--seconds S] [--sizes 64,1420] [--key-bits 128|256]`; prints one JSON object
//! per size: {"size", "backend", "mops", "gbps", "ns_per_op"}.

use std::time::{Duration, Instant};

use dataplane::crypto::{default_backend, Encryption, Integrity, Transform};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = arg(&args, "--seconds", 2.0);
    let sizes: String = arg(&args, "--sizes", "64,1420".to_string());
    let bits: u32 = arg(&args, "--key-bits", 128);
    let t = Transform {
        encryption: if bits == 256 {
            Encryption::Gcm256
        } else {
            Encryption::Gcm128
        },
        integrity: Integrity::None,
    };
    let backend = default_backend(t).expect("a backend for AES-GCM");
    // test key material, made up here and never printed
    let cipher = backend
        .cipher(t, &vec![0x11; t.encryption.key_len()], &[])
        .expect("key expansion");
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        // what the dataplane seals for a `size`-byte inner packet in tunnel mode: the
        // packet, the ESP trailer padded to 4 bytes, the IV before and the ICV after
        let body = (size + 2).div_ceil(4) * 4;
        let len = 8 + t.iv_len() + body + t.icv_len();
        // a few packets, so that the data is not always the same cache lines
        let mut ring: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; len]).collect();
        let deadline = Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let mut ops: u64 = 0;
        while start.elapsed() < deadline {
            for p in ring.iter_mut() {
                cipher.seal(std::hint::black_box(p), None);
            }
            ops += ring.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        let mops = ops as f64 / secs / 1e6;
        println!(
            "{{\"size\": {size}, \"backend\": \"{}\", \"mops\": {mops:.3}, \"gbps\": {:.2}, \"ns_per_op\": {:.1}}}",
            backend.name(),
            mops * 1e6 * size as f64 * 8.0 / 1e9,
            1e9 * secs / ops as f64
        );
    }
}
