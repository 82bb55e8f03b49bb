//! The three-way mix of a merged warm transfer (a conference of N legs) as a sans-IO state
//! machine: each leg's received audio, decoded to 8 kHz PCM, goes into a short jitter queue;
//! every 20 ms [`Mixer::mix`] takes one frame per leg (silence when a leg has none) and gives
//! each leg the sum of the *others* (N−1 mixing: nobody hears themselves), saturated to
//! 16 bits, ready to be encoded in that leg's law.

use std::collections::VecDeque;

/// Samples per frame: 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// Frames a leg may be ahead before its oldest is dropped (60 ms: jitter, not latency).
const MAX_QUEUED: usize = 3;

/// One 20 ms frame of 8 kHz PCM.
pub type Frame = [i16; FRAME];

/// A conference of `n` legs. See the module documentation.
#[derive(Debug)]
pub struct Mixer {
    queues: Vec<VecDeque<Frame>>,
    /// A partial frame per leg (packets of other than 20 ms).
    partial: Vec<Vec<i16>>,
    sum: [i32; FRAME],
    current: Vec<Frame>,
    /// Frames dropped because a leg ran ahead.
    pub overflows: u64,
}

impl Mixer {
    /// A mixer of `n` legs (2 or more), every queue empty.
    pub fn new(n: usize) -> Self {
        Self {
            queues: vec![VecDeque::with_capacity(MAX_QUEUED + 1); n],
            partial: vec![Vec::with_capacity(FRAME); n],
            sum: [0; FRAME],
            current: vec![[0; FRAME]; n],
            overflows: 0,
        }
    }

    /// Number of legs.
    pub fn legs(&self) -> usize {
        self.queues.len()
    }

    /// Audio received from leg `i` (any length; cut into 20 ms frames).
    pub fn push(&mut self, i: usize, samples: &[i16]) {
        let Some(p) = self.partial.get_mut(i) else {
            return;
        };
        for s in samples {
            p.push(*s);
            if p.len() == FRAME {
                let mut f = [0; FRAME];
                f.copy_from_slice(p);
                p.clear();
                let q = &mut self.queues[i];
                if q.len() == MAX_QUEUED {
                    q.pop_front();
                    self.overflows += 1;
                }
                q.push_back(f);
            }
        }
    }

    /// One 20 ms tick: returns, for each leg, the frame it must hear (the others' audio
    /// summed and saturated). A leg with nothing queued contributes silence.
    pub fn mix(&mut self) -> &[Frame] {
        self.sum = [0; FRAME];
        for (i, q) in self.queues.iter_mut().enumerate() {
            self.current[i] = q.pop_front().unwrap_or([0; FRAME]);
            for (s, x) in self.sum.iter_mut().zip(&self.current[i]) {
                *s += i32::from(*x);
            }
        }
        for f in &mut self.current {
            for (o, s) in f.iter_mut().zip(&self.sum) {
                // The others: the whole sum less this leg's own audio.
                *o = (s - i32::from(*o)).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
        }
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_leg_hears_the_others_not_itself() {
        let mut m = Mixer::new(3);
        m.push(0, &[100; FRAME]);
        m.push(1, &[20; FRAME]);
        m.push(2, &[3; FRAME]);
        let out = m.mix();
        assert_eq!((out[0][0], out[1][0], out[2][0]), (23, 103, 120));
        // Nothing queued: silence from everyone.
        assert!(m.mix().iter().all(|f| f.iter().all(|s| *s == 0)));
    }

    #[test]
    fn sums_saturate_and_odd_packet_sizes_are_framed() {
        let mut m = Mixer::new(3);
        m.push(0, &[30_000; 100]);
        m.push(0, &[30_000; 60]);
        m.push(1, &[30_000; FRAME]);
        let out = m.mix();
        assert_eq!(out[2][FRAME - 1], i16::MAX);
        assert_eq!(out[0][0], 30_000);
        // A leg running ahead loses its oldest frames, not the others'.
        for _ in 0..5 {
            m.push(1, &[7; FRAME]);
        }
        assert_eq!(m.overflows, 2);
        assert_eq!(m.mix()[0][0], 7);
    }
}
