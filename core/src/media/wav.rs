//! Reading and writing the WAV files of prompts and labelled AMD clips: 8 kHz mono, 16-bit
//! PCM (through `hound`) or G.711 µ-law / A-law (WAVE format tags 7 and 6, which `hound`
//! does not read: their RIFF chunks are parsed here).

use std::path::Path;

use anyhow::{Context, bail};

use super::g711::Law;

/// Reads a WAV file as 16-bit samples. Errors: unreadable file, not RIFF/WAVE, not 8 kHz
/// mono, or an encoding other than 16-bit PCM, µ-law or A-law.
pub fn read_8k_mono(path: &Path) -> anyhow::Result<Vec<i16>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode_8k_mono(&bytes).with_context(|| format!("decoding {}", path.display()))
}

/// [`read_8k_mono`] on bytes in memory.
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

/// Writes 8 kHz mono 16-bit PCM.
pub fn write_pcm16(path: &Path, samples: &[i16]) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in samples {
        w.write_sample(*s)?;
    }
    w.finalize()?;
    Ok(())
}

/// An 8 kHz mono G.711 WAV file in memory (WAVE format tag 7 for µ-law, 6 for A-law), with
/// the `fact` chunk non-PCM formats carry.
fn g711_wav_bytes(law: Law, data: &[u8]) -> Vec<u8> {
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

/// Writes 8 kHz mono G.711 µ-law, the form SIPp's `rtp_stream` plays.
pub fn write_ulaw(path: &Path, samples: &[i16]) -> anyhow::Result<()> {
    write_g711(path, Law::Pcmu, samples)
}

/// Writes 8 kHz mono G.711 in either law (WAVE format tag 7 for µ-law, 6 for A-law).
pub fn write_g711(path: &Path, law: Law, samples: &[i16]) -> anyhow::Result<()> {
    let data: Vec<u8> = samples.iter().map(|s| law.encode(*s)).collect();
    std::fs::write(path, g711_wav_bytes(law, &data))
        .with_context(|| format!("writing {}", path.display()))
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
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        write_pcm16(&p, &[1, -2, 3]).unwrap();
        assert_eq!(read_8k_mono(&p).unwrap(), vec![1, -2, 3]);
        assert!(decode_8k_mono(b"RIFFxxxxWAVE").is_err());
        let u = dir.path().join("u.wav");
        write_ulaw(&u, &[0, 32124, -32124]).unwrap();
        assert_eq!(read_8k_mono(&u).unwrap(), vec![0, 32124, -32124]);
    }
}
