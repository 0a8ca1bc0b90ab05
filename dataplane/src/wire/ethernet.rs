//! Ethernet II frames (no VLAN tags: the runtime drops tagged frames it was not set up for).

use super::{get_u16, set_u16, Error, Result};

pub const HEADER_LEN: usize = 14;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// A MAC address.
pub type Address = [u8; 6];
pub const BROADCAST: Address = [0xff; 6];

/// A view of an Ethernet II frame.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Frame { buffer })
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn dst(&self) -> Address {
        self.buffer.as_ref()[0..6].try_into().unwrap()
    }
    pub fn src(&self) -> Address {
        self.buffer.as_ref()[6..12].try_into().unwrap()
    }
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 12)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst(&mut self, a: Address) {
        self.buffer.as_mut()[0..6].copy_from_slice(&a);
    }
    pub fn set_src(&mut self, a: Address) {
        self.buffer.as_mut()[6..12].copy_from_slice(&a);
    }
    pub fn set_ethertype(&mut self, t: u16) {
        set_u16(self.buffer.as_mut(), 12, t);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// Writes an Ethernet header at the start of `buf` (which must hold at least 14 bytes).
pub fn write_header(buf: &mut [u8], dst: Address, src: Address, ethertype: u16) {
    buf[0..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    set_u16(buf, 12, ethertype);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_truncation() {
        let mut b = [0u8; 20];
        write_header(&mut b, BROADCAST, [2, 0, 0, 0, 0, 1], ETHERTYPE_ARP);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.dst(), BROADCAST);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), ETHERTYPE_ARP);
        assert_eq!(f.payload().len(), 6);
        assert_eq!(Frame::new_checked(&b[..13]).unwrap_err(), Error::Truncated);
    }
}
