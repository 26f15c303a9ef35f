//! Seeded random numbers: a small, fast generator (xoshiro256++ seeded by SplitMix64) and the
//! global seed behind `set_seed`.
//!
//! Fovea owns its generator instead of depending on `rand` so that the stream for a given seed
//! never changes under a dependency upgrade: same seed, same weights, in every release.

use std::cell::Cell;

thread_local! {
    /// The seed sequence of this thread: `(seed, draws so far)`, or `None` before the first use.
    /// Per thread, so concurrent programs (and test threads) never perturb each other's streams;
    /// models are built and fitted on the thread that seeded them.
    static SEQUENCE: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// Sets the seed (like `tf.random.set_seed` / `torch.manual_seed`) of the calling thread:
/// every random op called there without its own seed afterwards draws a deterministic sequence
/// of seeds from it.
pub fn set_seed(seed: u64) {
    SEQUENCE.with(|s| s.set(Some((seed, 0))));
}

/// This thread's seed sequence, to carry it to another thread ([`crate::threads::on_pool`]).
pub(crate) fn sequence() -> Option<(u64, u64)> {
    SEQUENCE.with(Cell::get)
}

/// Replaces this thread's seed sequence, returning the previous one.
pub(crate) fn replace_sequence(sequence: Option<(u64, u64)>) -> Option<(u64, u64)> {
    SEQUENCE.with(|s| s.replace(sequence))
}

/// The next seed from this thread's sequence: deterministic after [`set_seed`], otherwise
/// derived from the clock the first time it is needed.
pub fn next_seed() -> u64 {
    SEQUENCE.with(|s| {
        let (seed, n) = s.get().unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0x5eed);
            (t, 0)
        });
        s.set(Some((seed, n + 1)));
        splitmix64(&mut (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` f32 samples of `dist` from a generator seeded with `seed`: the host backends' random
/// fill, so the same seed gives the same tensor on `cpu` and `reference`.
pub fn sample(dist: crate::backend::RandomDist, n: usize, seed: u64) -> Vec<f32> {
    use crate::backend::RandomDist;
    let mut rng = Rng::new(seed);
    match dist {
        RandomDist::Uniform { low, high } => (0..n).map(|_| (low + (high - low) * rng.uniform()) as f32).collect(),
        RandomDist::Normal { mean, std } => (0..n).map(|_| (mean + std * rng.normal()) as f32).collect(),
        RandomDist::TruncatedNormal { mean, std } => (0..n).map(|_| (mean + std * rng.truncated_normal()) as f32).collect(),
    }
}

/// A seeded pseudo-random generator (xoshiro256++).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator whose stream is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Rng { s, spare_normal: None }
    }

    /// A generator seeded from the global sequence (see [`set_seed`]).
    pub fn from_global() -> Self {
        Rng::new(next_seed())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3])).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Standard normal (Box–Muller, both values used).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // in (0, 1], so ln is finite
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// Standard normal truncated to `[-2, 2]` by redrawing, as `tf.random.truncated_normal`.
    pub fn truncated_normal(&mut self) -> f64 {
        loop {
            let z = self.normal();
            if z.abs() <= 2.0 {
                return z;
            }
        }
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_moments_are_right() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f64> = (0..20000).map(|_| a.normal()).collect();
        let ys: Vec<f64> = (0..20000).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        assert_ne!(Rng::new(8).next_u64(), Rng::new(7).next_u64());
    }

    #[test]
    fn truncated_normal_stays_within_two_sigma() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..10000).map(|_| r.truncated_normal()).collect();
        assert!(xs.iter().all(|x| x.abs() <= 2.0));
        // The std of N(0,1) truncated at ±2 is 0.8796.
        let var = xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64;
        assert!((var.sqrt() - 0.8796).abs() < 0.02, "std {}", var.sqrt());
    }
}
