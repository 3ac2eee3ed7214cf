//! A tiny deterministic generator (splitmix64) for jitter. The seed is entropy passed in by
//! the caller, so the engine itself stays deterministic and replayable.

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64, tab: u64) -> Rng {
        Rng(seed ^ tab.rotate_left(32) ^ 0x6a09_e667_f3bc_c908)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..=max`.
    pub(crate) fn upto(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next()
        } else {
            self.next() % (max + 1)
        }
    }
}
