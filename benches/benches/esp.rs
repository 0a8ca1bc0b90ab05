//! ESP encapsulation and decapsulation cost per packet, beside the raw cost of the same
//! backend's cipher on the same bytes, in the same run: the ratio of the two is the
//! per-packet overhead of our ESP code over raw crypto (DESIGN.md "Performance method").
//!
//! Sizes are inner IP packet sizes: 64, 512 and 1420 bytes. Transforms: esp-gcm 128 and
//! esp-aes 128 esp-sha-hmac, tunnel mode over IPv4.
//!
//! `cargo bench -p benches --bench esp`

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::crypto::{default_backend, Encryption, Integrity, Transform};
use dataplane::esp::{Direction, Keys, Lifetime, Mode, Prefix, Sa, SaParams, Selector};
use dataplane::packet::{PacketBuf, VecPacket};
use dataplane::wire::{ipv4, proto};

const SIZES: [usize; 3] = [64, 512, 1420];

fn params(t: Transform, dir: Direction) -> SaParams {
    let any = Prefix {
        addr: "0.0.0.0".parse().unwrap(),
        len: 0,
    };
    SaParams {
        spi: 0x1001,
        direction: dir,
        transform: t,
        keys: Keys {
            encryption: vec![0x11; t.encryption.key_len()],
            authentication: vec![0x22; t.integrity.key_len()],
        },
        mode: Mode::Tunnel,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        selectors: vec![Selector {
            source: any,
            destination: any,
            protocol: 0,
            source_ports: (0, 65535),
            destination_ports: (0, 65535),
        }],
        lifetime: Lifetime {
            seconds: 0,
            kilobytes: 0,
            soft_percent: 90,
        },
        // The bench replays one captured packet many times: no replay window.
        replay_window: 0,
        esn: false,
        udp_encap: None,
        crypto_map: "bench".into(),
        crypto_map_seq: 1,
    }
}

fn inner(len: usize) -> Vec<u8> {
    let mut b = vec![0xabu8; len];
    ipv4::Repr {
        src: "10.1.0.1".parse().unwrap(),
        dst: "10.2.0.1".parse().unwrap(),
        protocol: proto::UDP,
        payload_len: len - 20,
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: false,
    }
    .emit(&mut b);
    b[20..24].copy_from_slice(&[0x04, 0xd2, 0x16, 0x2e]);
    b
}

fn transforms() -> [Transform; 2] {
    [
        Transform {
            encryption: Encryption::Gcm128,
            integrity: Integrity::None,
        },
        Transform {
            encryption: Encryption::AesCbc128,
            integrity: Integrity::Sha1,
        },
    ]
}

fn bench(c: &mut Criterion) {
    for t in transforms() {
        let name = t.to_string().replace(' ', "_");
        let backend = default_backend(t).unwrap();
        let mut g = c.benchmark_group(format!("esp/{name}"));
        g.sample_size(30)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let pkt = inner(size);

            // Raw: the backend's seal over the ESP bytes this packet becomes.
            let mut out = Sa::new(&params(t, Direction::Outbound), 1, backend, 0).unwrap();
            let mut p = VecPacket::new(&pkt);
            out.encap(&mut p, 9000).unwrap();
            let esp_len = p.len() - 20;
            let cipher = backend
                .cipher(
                    t,
                    &vec![0x11; t.encryption.key_len()],
                    &vec![0x22; t.integrity.key_len()],
                )
                .unwrap();
            let mut raw = p.data()[20..].to_vec();
            g.bench_with_input(BenchmarkId::new("raw-seal", size), &size, |b, _| {
                b.iter(|| cipher.seal(black_box(&mut raw[..esp_len]), None))
            });

            // Encap: reset a buffer to the plaintext, encapsulate.
            let mut buf = VecPacket::new(&pkt);
            g.bench_with_input(BenchmarkId::new("encap", size), &size, |b, _| {
                b.iter(|| {
                    buf.reset(&pkt);
                    out.encap(black_box(&mut buf), 9000).unwrap();
                })
            });

            // Decap: reset a buffer to one ESP frame, decapsulate (replay window off).
            let mut inb = Sa::new(&params(t, Direction::Inbound), 1, backend, 0).unwrap();
            let mut frame = vec![0u8; 14];
            frame[12] = 0x08;
            frame.extend_from_slice(p.data());
            let mut buf = VecPacket::new(&frame);
            g.bench_with_input(BenchmarkId::new("decap", size), &size, |b, _| {
                b.iter(|| {
                    buf.reset(&frame);
                    inb.decap(black_box(&mut buf), 14, 34).unwrap();
                })
            });
            // A memcpy of the same bytes, to subtract the cost of `reset` from both.
            g.bench_with_input(BenchmarkId::new("reset-only", size), &size, |b, _| {
                b.iter(|| buf.reset(black_box(&frame)))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
