//! Deterministic damage to valid inputs, for the bounded mutation tests of every reader of
//! outside data (IDX, npy, TFRecord, model files, specs, PNG): each damaged copy must give
//! `Ok` or a clean `Err`, never a panic. The budget is fixed so they run in every `cargo test`.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// SplitMix64: deterministic, so a failure names a reproducible case.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The `case`-th damaged copy of `valid`: one to three of random bytes, flipped bits, size
/// fields set huge (`ff`) or zero, truncation, repeated chunks and removed bytes; for `text`
/// inputs (JSON) also digits inserted next to digits, which turns sizes into huge ones.
pub fn mutate(valid: &[u8], case: u64, text: bool) -> Vec<u8> {
    let mut rng = Rng(case.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ valid.len() as u64);
    let mut v = valid.to_vec();
    for _ in 0..1 + rng.below(3) {
        if v.is_empty() {
            break;
        }
        let at = rng.below(v.len());
        match rng.below(if text { 8 } else { 7 }) {
            0 => v[at] = rng.next_u64() as u8,
            1 => v[at] ^= 1 << rng.below(8),
            2 => {
                let end = (at + 4).min(v.len());
                v[at..end].fill(0xff);
            }
            3 => {
                let end = (at + 4).min(v.len());
                v[at..end].fill(0);
            }
            4 => v.truncate(at),
            5 => {
                let from = rng.below(v.len());
                let chunk: Vec<u8> = v[from..(from + 1 + rng.below(16)).min(v.len())].to_vec();
                v.splice(at..at, chunk);
            }
            6 => {
                v.remove(at);
            }
            _ => {
                if let Some(d) = v[at..].iter().position(u8::is_ascii_digit) {
                    let digits: Vec<u8> = (0..1 + rng.below(12)).map(|_| b'0' + rng.below(10) as u8).collect();
                    v.splice(at + d..at + d, digits);
                }
            }
        }
    }
    v
}

/// Runs `read` on `valid` and on `budget` mutations of it; a panic fails the test naming the
/// format, the case and the damaged bytes (as text for `text` inputs).
///
/// # Panics
/// When `read` panics on any of them: that is the failure this test exists to report.
pub fn no_panics(format: &str, valid: &[u8], budget: u64, text: bool, read: impl Fn(&[u8])) {
    read(valid);
    for case in 0..budget {
        let bytes = mutate(valid, case, text);
        if catch_unwind(AssertUnwindSafe(|| read(&bytes))).is_err() {
            let shown = &bytes[..bytes.len().min(200)];
            let shown = if text { format!("{:?}", String::from_utf8_lossy(shown)) } else { format!("{shown:02x?}") };
            panic!("{format}: mutation case {case} panicked ({} bytes: {shown})", bytes.len());
        }
    }
}
