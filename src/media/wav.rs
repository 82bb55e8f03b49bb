//! WAV files on disk: the core crate's in-memory decoding and encoding
//! (`outdial_core::media::wav`), read from and written to files.

use std::path::Path;

use anyhow::Context;

pub use outdial_core::media::wav::*;

use crate::media::g711::Law;

/// Reads a WAV file as 16-bit samples. Errors: unreadable file, not RIFF/WAVE, not 8 kHz
/// mono, or an encoding other than 16-bit PCM, µ-law or A-law.
pub fn read_8k_mono(path: &Path) -> anyhow::Result<Vec<i16>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    decode_8k_mono(&bytes).with_context(|| format!("decoding {}", path.display()))
}

/// Writes 8 kHz mono 16-bit PCM. Errors: the file cannot be written.
pub fn write_pcm16(path: &Path, samples: &[i16]) -> anyhow::Result<()> {
    std::fs::write(path, pcm16_wav_bytes(samples))
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes 8 kHz mono G.711 µ-law, the form SIPp's `rtp_stream` plays.
/// Errors: the file cannot be written.
pub fn write_ulaw(path: &Path, samples: &[i16]) -> anyhow::Result<()> {
    write_g711(path, Law::Pcmu, samples)
}

/// Writes 8 kHz mono G.711 in either law (WAVE format tag 7 for µ-law, 6 for A-law).
/// Errors: the file cannot be written.
pub fn write_g711(path: &Path, law: Law, samples: &[i16]) -> anyhow::Result<()> {
    let data: Vec<u8> = samples.iter().map(|s| law.encode(*s)).collect();
    std::fs::write(path, g711_wav_bytes(law, &data))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        write_pcm16(&p, &[1, -2, 3]).unwrap();
        assert_eq!(read_8k_mono(&p).unwrap(), vec![1, -2, 3]);
        let u = dir.path().join("u.wav");
        write_ulaw(&u, &[0, 32124, -32124]).unwrap();
        assert_eq!(read_8k_mono(&u).unwrap(), vec![0, 32124, -32124]);
        assert!(read_8k_mono(&dir.path().join("missing.wav")).is_err());
    }
}
