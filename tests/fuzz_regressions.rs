//! Replays the kept fuzz corpus — the seeds and every finding of the `cargo fuzz` runs
//! (`fuzz/regressions/<target>/`) — through the fuzz entry points of `outdial::fuzzing`, on
//! the stable toolchain: a finding fixed once stays fixed. Then each target gets a bounded
//! run of inputs mutated from its corpus (a fixed seed, so a failure reproduces).

use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_target_has_a_corpus_and_survives_it() {
    for (name, f) in outdial::fuzzing::TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "no corpus for {name}");
        for (path, data) in inputs {
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{name} panicked on {path}");
        }
    }
}

/// SplitMix64: a small fixed-seed generator for the mutations.
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_corpus_never_panics() {
    const PER_TARGET: usize = 2_000;
    const INTERESTING: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b";",
        b",",
        b":",
        b"<",
        b">",
        b"\"",
        b"\xff",
        b"\0",
        b"4294967296",
        b"18446744073709551615",
        b"-1",
        b"1e-300",
        b"NaN",
        b"99999999999999999999999",
    ];
    let mut rng = Mix(20_261_202);
    for (name, f) in outdial::fuzzing::TARGETS {
        let seeds = corpus(name);
        for i in 0..PER_TARGET {
            let mut data = seeds[i % seeds.len()].1.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(data.len() + 1);
                match rng.below(4) {
                    0 if !data.is_empty() => {
                        let end = (at + 1 + rng.below(16)).min(data.len());
                        data.drain(at.min(end)..end);
                    }
                    1 => {
                        let s = INTERESTING[rng.below(INTERESTING.len())];
                        data.splice(at..at, s.iter().copied());
                    }
                    2 if !data.is_empty() => {
                        let j = at.min(data.len() - 1);
                        data[j] = rng.next() as u8;
                    }
                    _ => {
                        // Repeat a slice (long headers, many list entries).
                        let end = (at + rng.below(40)).min(data.len());
                        let piece = data[at..end].to_vec();
                        for _ in 0..rng.below(50) {
                            data.splice(at..at, piece.iter().copied());
                        }
                    }
                }
            }
            let r = std::panic::catch_unwind(|| f(&data));
            if r.is_err() {
                let path = std::env::temp_dir().join(format!("outdial-fuzz-{name}-{i}"));
                std::fs::write(&path, &data).unwrap();
                panic!(
                    "{name} panicked on a mutated input, kept at {}",
                    path.display()
                );
            }
        }
    }
}
