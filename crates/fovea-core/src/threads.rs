//! Running a whole computation on the thread pool instead of only its parallel loops.
//!
//! Every large kernel splits its work with rayon. Called from a thread outside the pool (the
//! program's main thread), each such split hands its job to the pool and puts the caller to
//! sleep until the job is done: two thread wake-ups per op, which dominate small models (LeNet-5
//! training, batch-1 inference; measured: a third more images/s for LeNet-5 training at batch
//! 32 with the step on the pool). Started on a pool thread, the same splits are plain
//! fork-joins between the pool's threads.

use crate::{autograd, random};

/// Runs `f` on a thread of rayon's global pool and waits for it, or runs it right here when
/// this already is a pool thread. Models call it around each training step and forward pass;
/// a program that makes many small calls (batch-1 inference in a loop) saves the hand-over per
/// call by running its whole loop inside one `on_pool`. (Making the main thread a pool
/// member instead, with rayon's `use_current_thread`, measured slower: its splits then wait
/// for a sleeping worker to steal them.) The calling thread's per-thread state that ops read — whether
/// the autograd graph is recorded (`no_grad`), the random seed sequence (`set_seed`) and the
/// [`crate::autocast`] scope — goes
/// with `f` and comes back, so results are the same as when `f` runs on the calling thread.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let (recording, sequence, low) = (autograd::is_recording(), random::sequence(), crate::autocast::autocast_dtype());
    let (result, sequence) = rayon::join(
        move || {
            let saved = (autograd::set_recording(recording), random::replace_sequence(sequence));
            let previous = crate::autocast::replace(low);
            let result = f();
            crate::autocast::replace(previous);
            let after = random::replace_sequence(saved.1);
            autograd::set_recording(saved.0);
            (result, after)
        },
        || (),
    )
    .0;
    random::replace_sequence(sequence);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{no_grad, set_seed, Device, Tensor};

    #[test]
    fn the_callers_recording_flag_and_seed_sequence_travel_with_the_work() {
        // Same seed, same draws, whether the random ops run here or on the pool.
        set_seed(7);
        let here: Vec<f32> =
            (0..3).flat_map(|_| Tensor::random_uniform([2], 0.0, 1.0, None, Device::Cpu).unwrap().to_vec::<f32>().unwrap()).collect();
        set_seed(7);
        let mut there = on_pool(|| Tensor::random_uniform([2], 0.0, 1.0, None, Device::Cpu).unwrap().to_vec::<f32>().unwrap());
        // The sequence came back advanced: the next draws continue it here.
        there.extend(on_pool(|| Tensor::random_uniform([2], 0.0, 1.0, None, Device::Cpu).unwrap().to_vec::<f32>().unwrap()));
        there.extend(Tensor::random_uniform([2], 0.0, 1.0, None, Device::Cpu).unwrap().to_vec::<f32>().unwrap());
        assert_eq!(here, there);
        // no_grad on the caller holds on the pool, and the pool thread is left recording.
        let x = Tensor::from_vec(vec![1.0f32, 2.0], [2], Device::Cpu).unwrap().with_requires_grad(true).unwrap();
        assert!(!no_grad(|| on_pool(|| x.mul_scalar(2.0).unwrap().requires_grad())));
        assert!(on_pool(|| x.mul_scalar(2.0).unwrap().requires_grad()));
        assert!(crate::autograd::is_recording());
    }
}
