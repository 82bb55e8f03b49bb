//! Decoding and encoding the WAV files of prompts and labelled AMD clips, in memory: 8 kHz
//! mono, 16-bit PCM (through `hound`) or G.711 µ-law / A-law (WAVE format tags 7 and 6,
//! which `hound` does not read: their RIFF chunks are parsed here). Reading and writing the
//! files is the shell crate's `media::wav`.

use anyhow::bail;

use super::g711::Law;

/// A WAV file's bytes as 16-bit samples. Errors: not RIFF/WAVE, not 8 kHz mono, or an
/// encoding other than 16-bit PCM, µ-law or A-law.
pub fn decode_8k_mono(bytes: &[u8]) -> anyhow::Result<Vec<i16>> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        bail!("not a RIFF/WAVE file");
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into()?) as usize;
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                fmt = Some((
                    u16::from_le_bytes([body[0], body[1]]),
                    u16::from_le_bytes([body[2], body[3]]),
                    u32::from_le_bytes(body[4..8].try_into()?),
                    u16::from_le_bytes([body[14], body[15]]),
                ));
            }
            b"data" => {
                let Some((tag, channels, rate, bits)) = fmt else {
                    bail!("data chunk before fmt chunk");
                };
                if channels != 1 || rate != 8000 {
                    bail!("need 8000 Hz mono, got {rate} Hz with {channels} channels");
                }
                let law = match (tag, bits) {
                    (7, 8) => Some(Law::Pcmu),
                    (6, 8) => Some(Law::Pcma),
                    _ => None,
                };
                if let Some(law) = law {
                    let mut out = vec![0i16; body.len()];
                    law.decode_into(body, &mut out);
                    return Ok(out);
                }
                let reader = hound::WavReader::new(std::io::Cursor::new(bytes))?;
                let spec = reader.spec();
                if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
                    bail!(
                        "unsupported encoding (format tag {tag}, {bits} bits): use 16-bit PCM, µ-law or A-law"
                    );
                }
                return reader
                    .into_samples::<i16>()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(Into::into);
            }
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    bail!("no data chunk")
}

/// An 8 kHz mono 16-bit PCM WAV file in memory.
pub fn pcm16_wav_bytes(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut out, spec).expect("a header into memory");
        for s in samples {
            w.write_sample(*s).expect("a sample into memory");
        }
        w.finalize().expect("a WAV into memory");
    }
    out.into_inner()
}

/// An 8 kHz mono G.711 WAV file in memory (WAVE format tag 7 for µ-law, 6 for A-law), with
/// the `fact` chunk non-PCM formats carry.
pub fn g711_wav_bytes(law: Law, data: &[u8]) -> Vec<u8> {
    let tag: u16 = match law {
        Law::Pcmu => 7,
        Law::Pcma => 6,
    };
    let mut v = Vec::with_capacity(58 + data.len());
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&((4 + 26 + 12 + 8 + data.len()) as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&18u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8u16.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(b"fact");
    v.extend_from_slice(&4u32.to_le_bytes());
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ulaw_alaw_and_pcm() {
        let u = decode_8k_mono(&g711_wav_bytes(Law::Pcmu, &[0xFF, 0x80])).unwrap();
        assert_eq!(u, vec![0, 32124]);
        let a = decode_8k_mono(&g711_wav_bytes(Law::Pcma, &[0xD5])).unwrap();
        assert_eq!(a, vec![8]);
        assert_eq!(
            decode_8k_mono(&pcm16_wav_bytes(&[1, -2, 3])).unwrap(),
            vec![1, -2, 3]
        );
        assert!(decode_8k_mono(b"RIFFxxxxWAVE").is_err());
        let data: Vec<u8> = [0i16, 32124, -32124]
            .iter()
            .map(|s| Law::Pcmu.encode(*s))
            .collect();
        assert_eq!(
            decode_8k_mono(&g711_wav_bytes(Law::Pcmu, &data)).unwrap(),
            vec![0, 32124, -32124]
        );
    }
}
