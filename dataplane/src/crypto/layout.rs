//! Where the parts of an ESP packet lie for a given transform, and the AES-GCM AAD.
//!
//! Every backend needs the same three offsets (start of the encrypted range, start of the
//! ICV, end) and the same AAD, so they are computed once here rather than in each backend.

use super::Transform;

/// Offsets inside the `esp` slice handed to [`super::EspCipher`]: the encrypted range is
/// `payload..icv` and the ICV is `icv..esp.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EspRanges {
    /// First byte after SPI, sequence number and IV.
    pub payload: usize,
    /// First byte of the ICV.
    pub icv: usize,
}

/// Bytes of SPI and sequence number at the front of every ESP packet.
pub(crate) const ESP_HEADER_LEN: usize = 8;

impl EspRanges {
    /// The ranges of an `esp_len`-byte packet, or `None` when it cannot even hold the header,
    /// the IV and the ICV.
    #[inline]
    pub fn of(transform: Transform, esp_len: usize) -> Option<EspRanges> {
        let payload = ESP_HEADER_LEN + transform.iv_len();
        let icv = esp_len.checked_sub(transform.icv_len())?;
        if icv < payload {
            return None;
        }
        Some(EspRanges { payload, icv })
    }

    /// Length of the encrypted range.
    #[inline]
    pub fn payload_len(&self) -> usize {
        self.icv - self.payload
    }
}

/// Writes the AES-GCM additional authenticated data into `buf` and returns its length:
/// SPI || sequence (8 bytes), or SPI || seq_hi || seq_lo with extended sequence numbers
/// (RFC 4106 section 5). `esp` must hold at least the 8-byte ESP header.
#[inline]
pub(crate) fn gcm_aad(esp: &[u8], esn_hi: Option<u32>, buf: &mut [u8; 12]) -> usize {
    buf[..4].copy_from_slice(&esp[..4]);
    match esn_hi {
        None => {
            buf[4..8].copy_from_slice(&esp[4..8]);
            8
        }
        Some(hi) => {
            buf[4..8].copy_from_slice(&hi.to_be_bytes());
            buf[8..12].copy_from_slice(&esp[4..8]);
            12
        }
    }
}

/// Overwrites the encrypted range and the ICV of a packet that `seal` could not process
/// (malformed layout), so that nothing leaves in clear and the peer drops it on its ICV.
#[inline]
pub(crate) fn fail_closed(esp: &mut [u8], transform: Transform) {
    let start = (ESP_HEADER_LEN + transform.iv_len()).min(esp.len());
    esp[start..].fill(0);
}
