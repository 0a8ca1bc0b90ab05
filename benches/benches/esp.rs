//! ESP encapsulation and decapsulation cost per packet, beside the raw cost of the same
//! backend's cipher on the same bytes, in the same run: the ratio of the two is the
//! per-packet overhead of our ESP code over raw crypto (DESIGN.md "Performance method").
//!
//! Sizes are inner IP packet sizes: 64, 512 and 1420 bytes. Transforms: esp-gcm 128 and
//! esp-aes 128 esp-sha-hmac, tunnel mode over IPv4.
//!
//! `cargo bench -p benches --bench esp`

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::crypto::{default_backend, Encryption, Integrity, Transform};
use dataplane::esp::{Direction, Keys, Lifetime, Mode, Prefix, Sa, SaParams, Selector};
use dataplane::packet::{PacketBuf, VecPacket};
use dataplane::wire::{ipv4, proto};

const SIZES: [usize; 3] = [64, 512, 1420];

/// Packets per burst for encap and decap (the worker's burst is 32).
const BURST: usize = 32;

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

/// Time of `iters` bursts, per packet: every buffer of `bufs` reset to `bytes`, then `op`
/// on each.
fn bursts(
    iters: u64,
    bufs: &mut [VecPacket],
    bytes: &[u8],
    mut op: impl FnMut(&mut VecPacket),
) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        for buf in bufs.iter_mut() {
            buf.reset(bytes);
        }
        for buf in bufs.iter_mut() {
            op(buf);
        }
    }
    t.elapsed() / bufs.len() as u32
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

            // Encap: a burst of buffers reset to the plaintext, then each encapsulated; per
            // packet. The dataplane meets frames that way: received (the NIC's DMA, or the
            // PMD's copy on receive) a whole burst before they are encapsulated. A buffer
            // reset just before its own encap would make the cipher's load of the payload
            // wait for the reset's stores to reach the cache, which no frame of the
            // dataplane does.
            let mut bufs: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new(&pkt)).collect();
            g.bench_with_input(BenchmarkId::new("encap", size), &size, |b, _| {
                b.iter_custom(|iters| {
                    bursts(iters, &mut bufs, &pkt, |buf| {
                        out.encap(black_box(buf), 9000).unwrap();
                    })
                })
            });

            // Decap: a burst of buffers reset to one ESP frame, then each decapsulated (replay
            // window off); per packet.
            let mut inb = Sa::new(&params(t, Direction::Inbound), 1, backend, 0).unwrap();
            let mut frame = vec![0u8; 14];
            frame[12] = 0x08;
            frame.extend_from_slice(p.data());
            let mut bufs: Vec<VecPacket> = (0..BURST).map(|_| VecPacket::new(&frame)).collect();
            g.bench_with_input(BenchmarkId::new("decap", size), &size, |b, _| {
                b.iter_custom(|iters| {
                    bursts(iters, &mut bufs, &frame, |buf| {
                        inb.decap(black_box(buf), 14, 34).unwrap();
                    })
                })
            });
            // The resets alone, per packet, to subtract from both.
            g.bench_with_input(BenchmarkId::new("reset-only", size), &size, |b, _| {
                b.iter_custom(|iters| bursts(iters, &mut bufs, black_box(&frame), |_| {}))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
