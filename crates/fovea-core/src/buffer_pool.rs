//! A small cache of large `f32` buffers released by dropped tensors, handed out again to the
//! kernels that produce new ones.
//!
//! Training allocates the same large activations and gradients every step and drops them at
//! its end. Through the system allocator each such buffer is fresh memory: the allocator
//! gives multi-megabyte blocks back to the kernel when they are freed, and every page of the
//! next one is faulted in and zeroed again (measured on a ResNet 3×3 convolution's forward
//! and backward pass: a third of the time in page faults). Keeping the buffers here turns that
//! into reuse of memory the process already owns.
//!
//! Only buffers of at least [`MIN_BYTES`] are kept, at most [`MAX_BUFFERS`] of them and
//! [`MAX_BYTES`] in all (the oldest go first), so the cache never holds more than a bounded
//! amount beyond what the program had in use at its peak. A request takes the smallest kept
//! buffer that is large enough without wasting more than a quarter of it.

use std::sync::Mutex;

/// Buffers smaller than this go back to the allocator, which serves them from its own bins.
pub const MIN_BYTES: usize = 1 << 16;

/// At most this many buffers are kept: enough for a ResNet training step's activations and
/// gradients; not every released buffer is asked for again (some come from allocations outside
/// the pool), and 1,024 kept LeNet-5 training at 200 MiB where 256 keeps it under 60.
pub const MAX_BUFFERS: usize = 256;

/// At most this many bytes are kept in all.
pub const MAX_BYTES: usize = 1 << 28;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

fn bytes(v: &Vec<f32>) -> usize {
    v.capacity() * std::mem::size_of::<f32>()
}

/// A kept buffer whose capacity fits `len` (at most a quarter unused), if any.
fn take(len: usize) -> Option<Vec<f32>> {
    if len * std::mem::size_of::<f32>() < MIN_BYTES {
        return None;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let best = pool
        .iter()
        .enumerate()
        .filter(|(_, v)| v.capacity() >= len && v.capacity() - len <= len / 4)
        .min_by_key(|(_, v)| v.capacity())
        .map(|(i, _)| i)?;
    Some(pool.remove(best))
}

/// A buffer of `len` zeros.
pub fn zeroed(len: usize) -> Vec<f32> {
    match take(len) {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// A buffer of `len` floats with unspecified (but initialised) values, for a kernel that
/// writes every element. Debug builds (the tests) fill it with NaN, so a kernel that misses an
/// element fails its comparison with the reference instead of passing on a lucky zero.
pub fn for_overwrite(len: usize) -> Vec<f32> {
    let mut v = match take(len) {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    };
    if cfg!(debug_assertions) {
        v.fill(f32::NAN);
    }
    v
}

/// Keeps `v` for a later request when it is large enough and there is room.
pub fn recycle(v: Vec<f32>) {
    if bytes(&v) < MIN_BYTES || bytes(&v) > MAX_BYTES {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.push(v);
    let mut total: usize = pool.iter().map(bytes).sum();
    while pool.len() > MAX_BUFFERS || total > MAX_BYTES {
        total -= bytes(&pool.remove(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test owns the global pool's observable behaviour, so parallel tests cannot race it.
    #[test]
    fn recycled_buffers_come_back_zeroed_or_sized_and_small_ones_do_not() {
        let len = MIN_BYTES; // MIN_BYTES floats: four times the threshold
        let mut v = vec![7.0f32; len];
        let ptr = v.as_mut_ptr();
        recycle(v);
        // Another test may take it first; when we get it back it must be zeroed.
        let z = zeroed(len);
        assert_eq!(z.len(), len);
        assert!(z.iter().all(|&x| x == 0.0));
        let reused = std::ptr::eq(z.as_ptr(), ptr);
        recycle(z);
        let o = for_overwrite(len - 10);
        assert_eq!(o.len(), len - 10);
        if reused {
            // A quarter of slack is allowed: the same allocation serves a slightly smaller request.
            assert!(o.capacity() >= len);
        }
        recycle(o);
        // Far smaller requests do not take a big buffer (at most a quarter may be wasted).
        let small = for_overwrite(len / 2);
        assert!(small.capacity() >= len / 2 && small.capacity() <= len / 2 + len / 8);
        // Buffers below the threshold are not kept.
        let tiny = vec![1.0f32; 16];
        recycle(tiny);
        assert!(take(16).is_none());
    }
}
