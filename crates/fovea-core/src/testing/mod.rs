//! Test support shared by Fovea's crates: closeness assertions, a finite-difference gradient
//! checker, and a macro that runs one test body on every backend.

use crate::{no_grad, Device, Result, Tensor};

pub mod arena;
pub mod mutation;

/// Asserts `|a - b| <= atol + rtol·|b|` element-wise, naming the first offender.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], rtol: f32, atol: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: {} values, expected {}", actual.len(), expected.len());
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ok = (a - e).abs() <= atol + rtol * e.abs() || (a.is_nan() && e.is_nan()) || a == e;
        assert!(ok, "{what}: element {i} is {a}, expected {e} (rtol {rtol}, atol {atol})");
    }
}

/// Asserts two tensors have the same shape and close f32 values.
pub fn assert_tensor_close(what: &str, actual: &Tensor, expected: &Tensor, rtol: f32, atol: f32) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    assert_close(what, &actual.to_vec::<f32>().expect("f32"), &expected.to_vec::<f32>().expect("f32"), rtol, atol);
}

/// A deterministic f32 tensor with values spread in `[lo, hi)`.
pub fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64, device: Device) -> Tensor {
    Tensor::random_uniform(shape.to_vec(), lo, hi, Some(seed), device).expect("valid range")
}

/// Checks the analytic gradients of `f` at `inputs` against central finite differences.
///
/// The target is `L = Σ r ⊙ f(x)` for a fixed random `r`, so every output element matters.
/// Tensors are f32, so differences are taken with step `eps` and accumulated in f64; run it on
/// the reference backend, whose kernels compute in f64 and round once. Each analytic entry must
/// satisfy `|analytic − numeric| <= tol·(1 + |numeric|)`.
///
/// # Errors
/// Propagates errors from `f` or the backward pass; mismatches panic with the input index,
/// element and both values.
pub fn gradcheck(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], eps: f64, tol: f64) -> Result<()> {
    let watched: Vec<Tensor> = inputs.iter().map(|t| t.with_requires_grad(t.dtype().is_float())).collect::<Result<_>>()?;
    let y = f(&watched)?;
    let r = rand(y.dims(), -1.0, 1.0, 12345, y.device());
    let r_vals: Vec<f64> = r.to_vec::<f32>()?.iter().map(|&v| v as f64).collect();
    let loss = y.mul(&r)?.sum_all()?;
    let grads = loss.backward()?;
    let objective = |xs: &[Tensor]| -> Result<f64> {
        let y = no_grad(|| f(xs))?;
        Ok(y.to_vec::<f32>()?.iter().zip(&r_vals).map(|(&a, &b)| a as f64 * b).sum())
    };
    for (i, x) in watched.iter().enumerate() {
        if !x.dtype().is_float() {
            continue;
        }
        let analytic = match grads.get(x) {
            Some(g) => g.to_vec::<f32>()?,
            None => vec![0.0; x.numel()],
        };
        let base = x.to_vec::<f32>()?;
        for j in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[j] = (base[j] as f64 + delta) as f32;
                let mut xs: Vec<Tensor> = watched.iter().map(|t| t.detach()).collect();
                xs[i] = Tensor::from_vec(v, x.shape().clone(), x.device())?;
                objective(&xs)
            };
            let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps);
            let a = analytic[j] as f64;
            assert!(
                (a - numeric).abs() <= tol * (1.0 + numeric.abs()),
                "gradcheck: input {i}, element {j}: analytic {a}, numeric {numeric} (eps {eps}, tol {tol})"
            );
        }
    }
    Ok(())
}

/// Defines one test per backend from a single body: `backend_test!(name, |dev| { ... });`
/// expands to a module `name` with a test `reference`, a test `cpu` and a test `arena` (the
/// backend outside host memory, [`arena`], on `Device::Custom(0)`).
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$dev:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($dev: $crate::Device) $body
            #[test]
            fn reference() {
                run($crate::Device::Reference)
            }
            #[test]
            fn cpu() {
                run($crate::Device::Cpu)
            }
            #[test]
            fn arena() {
                run($crate::testing::arena::device(0))
            }
        }
    };
}

/// A global allocator for test binaries that measures how much memory a piece of code takes:
/// it forwards to the system allocator and keeps, per thread, the bytes live and their high
/// water mark, so tests running in parallel threads do not see each other's allocations.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: fovea_core::testing::PeakAlloc = fovea_core::testing::PeakAlloc;
///
/// let (result, peak) = fovea_core::testing::PeakAlloc::peak_during(|| read_hostile_file());
/// assert!(peak < 16 << 20, "took {peak} bytes");
/// ```
pub struct PeakAlloc;

thread_local! {
    // (live bytes, peak live bytes) of this thread; const-initialised, so touching them never
    // allocates.
    static ALLOC_STATS: std::cell::Cell<(isize, isize)> = const { std::cell::Cell::new((0, 0)) };
}

fn alloc_stats(delta: isize) {
    // `try_with`: allocations during thread teardown are simply not counted.
    let _ = ALLOC_STATS.try_with(|s| {
        let (live, peak) = s.get();
        let live = live + delta;
        s.set((live, peak.max(live)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator, whose contract the
// callers uphold; the bookkeeping touches only a thread-local `Cell` and never allocates.
unsafe impl std::alloc::GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        alloc_stats(layout.size() as isize);
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        alloc_stats(layout.size() as isize);
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        alloc_stats(-(layout.size() as isize));
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        alloc_stats(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

impl PeakAlloc {
    /// Runs `f` and returns its result with the most bytes that were live at once on this
    /// thread during it, beyond those live when it started. Meaningful only in a binary whose
    /// `#[global_allocator]` is [`PeakAlloc`] (else it reports 0), and only for work `f` does on
    /// its own thread.
    pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
        let start = ALLOC_STATS.with(|s| {
            let (live, _) = s.get();
            s.set((live, live));
            live
        });
        let out = f();
        let peak = ALLOC_STATS.with(|s| s.get().1);
        (out, (peak - start).max(0) as u64)
    }
}
