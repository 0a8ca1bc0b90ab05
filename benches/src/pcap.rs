//! A classic libpcap file writer (microsecond timestamps, Ethernet link type), enough for
//! DPDK-Pktgen's `-s P:file.pcap`, tcpdump, tshark and scapy.

use std::io::{self, Write};

/// LINKTYPE_ETHERNET
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65535;

/// Writes frames to `W` as a pcap file.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame with the given timestamp in microseconds.
    pub fn write(&mut self, ts_micros: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_micros / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_micros % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&len.min(SNAPLEN).to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..len.min(SNAPLEN) as usize])
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_header_and_records() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(1_500_000, &[0xaa; 60]).unwrap();
        w.write(2_000_001, &[0xbb; 3]).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian magic");
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 4);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        // first record: 1 s 500000 us, 60 bytes captured and on the wire
        let r = &b[24..40];
        assert_eq!(u32::from_le_bytes(r[0..4].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(r[4..8].try_into().unwrap()), 500_000);
        assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), 60);
        assert_eq!(u32::from_le_bytes(r[12..16].try_into().unwrap()), 60);
        assert!(b[40..100].iter().all(|x| *x == 0xaa));
        let r2 = &b[100..116];
        assert_eq!(u32::from_le_bytes(r2[0..4].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(r2[4..8].try_into().unwrap()), 1);
        assert_eq!(&b[116..], &[0xbb; 3]);
    }
}
