//! BLIS-style blocked sgemm over the AVX-512 microkernel of [`super::sgemm_avx512`].
//!
//! Loop nest (outer to inner): `NC` columns of `B` (the block lives in L3), `KC` steps of
//! the shared dimension (the packed `KC×NC` block of `B`), `MC` rows of `A` (each worker
//! packs its `MC×KC` block, sized for L2), then `NR`-column `B` panels, each reused by the
//! `MR`-row `A` panels that stream past it through the microkernel.
//!
//! Threads share the packed `B` block and split the `MC` row blocks (and, when there are
//! fewer row blocks than threads, groups of `B` panels). `KC` never depends on the thread
//! count and every element of `C` is summed over `p` in increasing order inside one `KC`
//! block, then added to `C` block after block, so results are bitwise the same whatever the
//! number of threads.
#![cfg(target_arch = "x86_64")]

use super::sgemm_avx512::{self as k512, Strided, MR, NR};
use rayon::prelude::*;
use std::cell::RefCell;

/// Shared-dimension block. Measured on Zen 4 (1 MiB L2): 512 beats 256 and 384 by 5–10%, the
/// `C` tile update (load, add, store every `KC` steps) costing more than the `KC×NR` panel of
/// `B` (64 KiB) outgrowing L1; L2 feeds both panels fast enough.
const KC: usize = 512;
/// Most rows of `A` per packed block: `MC×KC` floats (≈ 1 MiB at most; two workers on 1024
/// rows get 4 blocks of about 256 rows, ≈ 0.5 MiB).
const MC_MAX: usize = 36 * MR;
/// Columns of `B` per packed block: `KC×NC` floats (8 MiB) stay in L3.
const NC: usize = 4096;
/// Below this many multiply-adds one thread is faster than fanning out.
const PARALLEL_FLOPS: usize = 1 << 18;

/// A read-only strided matrix: element `(r, c)` is `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl View<'_> {
    /// Whether every element of a `rows×cols` matrix lies inside `data`.
    pub fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }

    /// The `(r, c)` corner as a raw strided view.
    ///
    /// # Safety
    /// `(r, c)` is an element of the view (its offset is inside `data`).
    unsafe fn at(&self, r: usize, c: usize) -> Strided {
        // SAFETY: the caller promises the offset is in bounds.
        Strided { ptr: unsafe { self.data.as_ptr().add(r * self.rs + c * self.cs) }, rs: self.rs, cs: self.cs }
    }
}

/// Whether this CPU can run the AVX-512 kernels (the check is cached by std).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

thread_local! {
    /// Each thread's packed `A` block, kept between calls to avoid page faults per call.
    static A_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The calling thread's packed `B` block.
    static B_PACK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a 64-byte aligned slice of `len` floats from the thread's buffer `key`. A
/// thread can re-enter while its buffer is borrowed (rayon runs stolen work while a join
/// waits); it then gets a fresh buffer.
fn with_pack<R>(key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let run = |buf: &mut Vec<f32>| {
        // 16 spare floats let the slice start on a cache line.
        if buf.len() < len + 16 {
            buf.resize(len + 16, 0.0);
        }
        let off = buf.as_ptr().align_offset(64).min(16);
        f(&mut buf[off..off + len])
    };
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

/// `C` as a raw pointer that workers share; they write disjoint tiles.
#[derive(Clone, Copy)]
struct SharedC(*mut f32);
impl SharedC {
    /// The pointer. A method rather than the field, so closures capture the `Sync` wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: workers write pairwise disjoint tiles of `C` (distinct row blocks or distinct
// column panels), and the owning `&mut [f32]` borrow outlives the parallel loop.
unsafe impl Send for SharedC {}
// SAFETY: as above.
unsafe impl Sync for SharedC {}

/// `C (+)= A·B`, `A` an `m×k` view, `B` a `k×n` view, `C` row-major with row stride `c_rs`.
///
/// The caller checked [`available`], `m, k, n > 0` and that every view fits its matrix
/// (`c` holds `(m-1)·c_rs + n` floats).
#[allow(clippy::too_many_arguments)] // mirrors the BLAS signature
pub(super) fn gemm(m: usize, k: usize, n: usize, a: View, b: View, c: &mut [f32], c_rs: usize, accumulate: bool, threads: usize) {
    assert!(available() && m > 0 && k > 0 && n > 0, "sgemm_blocked: precondition");
    assert!(a.fits(m, k) && b.fits(k, n) && c_rs >= n && c.len() >= (m - 1) * c_rs + n, "sgemm_blocked: operand too small");
    let par = threads > 1 && m * n * k >= PARALLEL_FLOPS;
    let workers = if par { threads } else { 1 };
    // Row blocks: at most MC_MAX rows, a multiple of `workers` of them when there is enough
    // work, every block a whole number of MR panels except the last.
    let m_panels = m.div_ceil(MR);
    let mut blocks = m.div_ceil(MC_MAX);
    if !blocks.is_multiple_of(workers) {
        blocks = (blocks.div_ceil(workers) * workers).min(m_panels);
    }
    // Blocks get whole MR panels, spread evenly (19, 19, 18, 18 panels for 1024 rows on two
    // workers) so no worker waits on a longer last block.
    let block_rows = |ib: usize| {
        let (p0, p1) = (ib * m_panels / blocks, (ib + 1) * m_panels / blocks);
        (p0 * MR, (p1 * MR).min(m))
    };
    let cptr = SharedC(c.as_mut_ptr());

    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        let panels = nc.div_ceil(NR);
        // Too few row blocks for the workers: also split the B panels into groups.
        let groups = if blocks < workers { workers.div_ceil(blocks).min(panels) } else { 1 };
        let per_group = panels.div_ceil(groups);
        let groups = panels.div_ceil(per_group);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let overwrite = pc == 0 && !accumulate;
            with_pack(&B_PACK, panels * kc * NR, |bpack| {
                let pack_panel = |(q, dst): (usize, &mut [f32])| {
                    let cols = NR.min(nc - q * NR);
                    // SAFETY: `(pc, jc + q·NR)` is in `B` (`pc < k`, `jc + q·NR < n`); the panel
                    // reads `kc` rows from there and `cols` columns, all inside `k×n`, and
                    // `dst` is one `kc·NR` chunk of the pack.
                    unsafe {
                        let src = b.at(pc, jc + q * NR);
                        k512::pack_b_panel(kc, cols, src.ptr, src.rs, src.cs, dst.as_mut_ptr());
                    }
                };
                if par {
                    bpack.par_chunks_mut(kc * NR).enumerate().for_each(pack_panel);
                } else {
                    bpack.chunks_mut(kc * NR).enumerate().for_each(pack_panel);
                }
                let bpack = &*bpack;
                let work = |item: usize| {
                    let (ib, g) = (item / groups, item % groups);
                    let (i0, i1) = block_rows(ib);
                    let rows = i1 - i0;
                    let (q0, q1) = (g * per_group, ((g + 1) * per_group).min(panels));
                    let a_panels = rows.div_ceil(MR);
                    with_pack(&A_PACK, a_panels * kc * MR, |apack| {
                        // SAFETY: rows `i0..i0 + rows` and columns `pc..pc + kc` lie in `A`,
                        // and `apack` holds `a_panels·kc·MR` floats.
                        unsafe { k512::pack_a(rows, kc, a.at(i0, pc), apack.as_mut_ptr()) };
                        for q in q0..q1 {
                            let j = jc + q * NR;
                            let cols = NR.min(n - j);
                            for r in 0..a_panels {
                                let i = i0 + r * MR;
                                // SAFETY: the A panel `r` and B panel `q` are whole chunks of
                                // their packs (`kc·MR` and `kc·NR` floats). The C tile starts at
                                // `(i, j)` with `i + MR.min(m - i) ≤ m` rows and `cols` columns, so
                                // its last element `(m-1)·c_rs + n - 1` at most is inside `c`;
                                // no other worker owns this (row block, panel group) tile.
                                unsafe {
                                    k512::kernel(
                                        kc,
                                        apack.as_ptr().add(r * kc * MR),
                                        bpack.as_ptr().add(q * kc * NR),
                                        cptr.get().add(i * c_rs + j),
                                        c_rs,
                                        MR.min(m - i),
                                        cols,
                                        overwrite,
                                    )
                                };
                            }
                        }
                    });
                };
                if par {
                    (0..blocks * groups).into_par_iter().for_each(work);
                } else {
                    (0..blocks * groups).for_each(work);
                }
            });
        }
    }
}
