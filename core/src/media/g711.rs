//! G.711 µ-law and A-law (ITU-T G.711) decode through 256-entry tables built at compile time,
//! and encode by the standard segment search.

/// µ-law byte → 16-bit linear PCM, for every byte.
pub static ULAW_TO_LINEAR: [i16; 256] = build_ulaw();
/// A-law byte → 16-bit linear PCM, for every byte.
pub static ALAW_TO_LINEAR: [i16; 256] = build_alaw();

const fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let sample = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -sample as i16
    } else {
        sample as i16
    }
}

const fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let mut sample = (mantissa << 4) + 8;
    if exponent != 0 {
        sample = (sample + 0x100) << (exponent - 1);
    }
    // A-law: sign bit set means positive.
    if a & 0x80 != 0 {
        sample as i16
    } else {
        -sample as i16
    }
}

const fn build_ulaw() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode(i as u8);
        i += 1;
    }
    t
}

const fn build_alaw() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode(i as u8);
        i += 1;
    }
    t
}

/// 16-bit linear PCM → µ-law (bias 0x84, clip 32635).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = 31 - ((s >> 7) as u32).leading_zeros() as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// 16-bit linear PCM → A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 {
        0x80
    } else {
        s = -s - 1;
        0
    };
    let (exponent, mantissa) = if s >= 256 {
        let e = 32 - ((s >> 8) as u32).leading_zeros() as i32;
        (e, (s >> (e + 3)) & 0x0F)
    } else {
        (0, s >> 4)
    };
    ((sign | (exponent << 4) | mantissa) as u8) ^ 0x55
}

/// The G.711 law of an RTP payload type (RFC 3551: 0 PCMU, 8 PCMA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Law {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Pcmu => 0,
            Law::Pcma => 8,
        }
    }

    /// The law of a static payload type, if G.711.
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Law::Pcmu),
            8 => Some(Law::Pcma),
            _ => None,
        }
    }

    /// Decodes `bytes` into `out` (same length; extra output is left as is). No allocation.
    pub fn decode_into(self, bytes: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::Pcmu => &ULAW_TO_LINEAR,
            Law::Pcma => &ALAW_TO_LINEAR,
        };
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = table[*b as usize];
        }
    }

    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Pcmu => linear_to_ulaw(sample),
            Law::Pcma => linear_to_alaw(sample),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(ULAW_TO_LINEAR[0xFF], 0);
        assert_eq!(ULAW_TO_LINEAR[0x7F], 0);
        assert_eq!(ULAW_TO_LINEAR[0x00], -32124);
        assert_eq!(ULAW_TO_LINEAR[0x80], 32124);
        assert_eq!(ALAW_TO_LINEAR[0xD5], 8);
        assert_eq!(ALAW_TO_LINEAR[0x55], -8);
        assert_eq!(ALAW_TO_LINEAR[0xAA], 32256);
        assert_eq!(ALAW_TO_LINEAR[0x2A], -32256);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
    }

    #[test]
    fn encode_inverts_decode_for_every_code() {
        for b in 0..=255u8 {
            let u = ULAW_TO_LINEAR[b as usize];
            assert_eq!(ULAW_TO_LINEAR[linear_to_ulaw(u) as usize], u, "ulaw {b:#x}");
            let a = ALAW_TO_LINEAR[b as usize];
            assert_eq!(linear_to_alaw(a), b, "alaw {b:#x}");
        }
    }

    #[test]
    fn encoding_is_monotonic_and_close() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let u = ULAW_TO_LINEAR[linear_to_ulaw(s) as usize] as i32;
            let a = ALAW_TO_LINEAR[linear_to_alaw(s) as usize] as i32;
            let tol = (s as i32).abs() / 16 + 16;
            assert!((u - s as i32).abs() <= tol.max(140), "ulaw {s} -> {u}");
            assert!((a - s as i32).abs() <= tol.max(140), "alaw {s} -> {a}");
        }
    }
}
