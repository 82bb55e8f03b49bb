//! The RTP relay of a bridged call (B2BUA media): a packet received on one leg is sent out on
//! the other, rewritten only as far as the two legs' SDP answers differ.
//!
//! * Same G.711 law on both legs: passthrough — the packet goes out as received, with the
//!   payload type set to the other leg's (the sender's SSRC, sequence numbers and timestamps
//!   are kept, as a media relay does; RFC 3550 §8.2 lets the receiver follow an SSRC change).
//! * PCMU on one leg, PCMA on the other: the payload is transcoded byte for byte through a
//!   256-entry table (G.711 µ-law ↔ A-law via linear PCM, as G.711 Annex A tables do), no
//!   resampling, no buffering.
//! * RFC 4733 telephone-event: the payload type is mapped to the other leg's; dropped when the
//!   other leg did not accept telephone-event.
//! * Comfort noise (PT 13) passes; anything else (a codec neither leg agreed on) is dropped.

use std::sync::LazyLock;

use super::g711::{ALAW_TO_LINEAR, Law, ULAW_TO_LINEAR, linear_to_alaw, linear_to_ulaw};

/// What one leg negotiated: its G.711 law and telephone-event payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodec {
    /// The law in the leg's SDP answer.
    pub law: Law,
    /// Its telephone-event payload type, if any.
    pub telephone_event: Option<u8>,
}

static ULAW_TO_ALAW: LazyLock<[u8; 256]> = LazyLock::new(|| {
    let mut t = [0u8; 256];
    for (i, o) in t.iter_mut().enumerate() {
        *o = linear_to_alaw(ULAW_TO_LINEAR[i]);
    }
    t
});

static ALAW_TO_ULAW: LazyLock<[u8; 256]> = LazyLock::new(|| {
    let mut t = [0u8; 256];
    for (i, o) in t.iter_mut().enumerate() {
        *o = linear_to_ulaw(ALAW_TO_LINEAR[i]);
    }
    t
});

/// Length of the RTP header (fixed part, CSRCs, extension), or `None` when `pkt` is not a
/// well-formed RTP version 2 packet.
fn header_len(pkt: &[u8]) -> Option<usize> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (len <= pkt.len()).then_some(len)
}

/// The RTP timestamp and G.711 payload of `pkt` when it is a well-formed RTP packet of
/// `law`'s payload type (padding removed); `None` for anything else (telephone-event, CN,
/// not RTP).
pub fn audio_payload(pkt: &[u8], law: Law) -> Option<(u32, &[u8])> {
    let hlen = header_len(pkt)?;
    if pkt[1] & 0x7f != law.payload_type() {
        return None;
    }
    let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
    Some((ts, &pkt[hlen..payload_end(pkt, hlen)]))
}

/// Where the payload of a packet with an `hlen`-byte header ends: before its padding when
/// the P bit is set (RFC 3550 §5.1: the last byte counts the padding).
fn payload_end(pkt: &[u8], hlen: usize) -> usize {
    if pkt[0] & 0x20 != 0 {
        pkt.len() - usize::from(*pkt.last().unwrap_or(&0)).min(pkt.len() - hlen)
    } else {
        pkt.len()
    }
}

/// Rewrites a packet received on a leg with codec `from` for the leg with codec `to`, into
/// `out` (cleared first). Returns `false` (and leaves `out` empty) when the packet must not be
/// relayed: not RTP, or a payload type the other leg cannot take.
pub fn relay_packet(pkt: &[u8], from: LegCodec, to: LegCodec, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(hlen) = header_len(pkt) else {
        return false;
    };
    let pt = pkt[1] & 0x7f;
    let marker = pkt[1] & 0x80;
    let new_pt = if pt == from.law.payload_type() {
        to.law.payload_type()
    } else if Some(pt) == from.telephone_event {
        match to.telephone_event {
            Some(t) => t,
            None => return false,
        }
    } else if pt == 13 {
        13
    } else {
        return false;
    };
    out.extend_from_slice(pkt);
    out[1] = marker | new_pt;
    if pt == from.law.payload_type() && from.law != to.law {
        // Padding (P bit) is rare on G.711; transcoding it would corrupt the count byte.
        let end = payload_end(pkt, hlen);
        let table: &[u8; 256] = match from.law {
            Law::Pcmu => &ULAW_TO_ALAW,
            Law::Pcma => &ALAW_TO_ULAW,
        };
        for b in &mut out[hlen..end] {
            *b = table[usize::from(*b)];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::session::rtp_packet;

    const PCMU: LegCodec = LegCodec {
        law: Law::Pcmu,
        telephone_event: Some(101),
    };
    const PCMA: LegCodec = LegCodec {
        law: Law::Pcma,
        telephone_event: Some(96),
    };

    #[test]
    fn passthrough_keeps_the_packet() {
        let p = rtp_packet(0, 7, 160, 42, true, &[1, 2, 3]);
        let mut out = Vec::new();
        assert!(relay_packet(&p, PCMU, PCMU, &mut out));
        assert_eq!(out, p);
    }

    #[test]
    fn ulaw_to_alaw_transcodes_the_payload_and_keeps_level() {
        let payload: Vec<u8> = (0..160)
            .map(|i| linear_to_ulaw(((i as f64 / 8.0).sin() * 8000.0) as i16))
            .collect();
        let p = rtp_packet(0, 7, 160, 42, false, &payload);
        let mut out = Vec::new();
        assert!(relay_packet(&p, PCMU, PCMA, &mut out));
        assert_eq!(out[1] & 0x7f, 8);
        assert_eq!(&out[2..12], &p[2..12]);
        for (u, a) in payload.iter().zip(&out[12..]) {
            let (x, y) = (
                ULAW_TO_LINEAR[*u as usize] as i32,
                ALAW_TO_LINEAR[*a as usize] as i32,
            );
            assert!((x - y).abs() <= x.abs() / 16 + 16, "{x} vs {y}");
        }
        // And back.
        let mut back = Vec::new();
        assert!(relay_packet(&out, PCMA, PCMU, &mut back));
        assert_eq!(back[1] & 0x7f, 0);
    }

    #[test]
    fn telephone_event_is_mapped_or_dropped() {
        let p = rtp_packet(101, 1, 0, 9, true, &[5, 0x80, 0, 160]);
        let mut out = Vec::new();
        assert!(relay_packet(&p, PCMU, PCMA, &mut out));
        assert_eq!(out[1], 0x80 | 96);
        assert_eq!(&out[12..], &[5, 0x80, 0, 160]);
        let none = LegCodec {
            law: Law::Pcma,
            telephone_event: None,
        };
        assert!(!relay_packet(&p, PCMU, none, &mut out));
        assert!(out.is_empty());
        // Unknown payload type, or not RTP at all.
        assert!(!relay_packet(
            &rtp_packet(18, 1, 0, 9, false, &[0; 10]),
            PCMU,
            PCMU,
            &mut out
        ));
        assert!(!relay_packet(&[0x80, 0], PCMU, PCMU, &mut out));
    }
}
