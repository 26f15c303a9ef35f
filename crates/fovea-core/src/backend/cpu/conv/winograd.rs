//! Winograd convolutions for 3×3, stride-1, undilated kernels with many channels (the bulk
//! of a ResNet): F(4×4, 3×3) for the forward pass and the input gradient up to 32 × 32
//! channels (4× fewer multiplications than a direct convolution), F(2×2, 3×3) beyond that
//! and for the filter gradient (2.25×).
//!
//! The output is cut into m×m tiles, each read from an α×α input window `d` (α = m + 2).
//! With the transforms `V = Bᵀ d B` (input), `U = G g Gᵀ` (filter) and `Y = Aᵀ M A`
//! (output), a tile is `Y = Aᵀ [U ⊙ V] A` per channel pair; summed over input channels, the
//! α² positions of the transform domain become α² independent matrix products
//! `M[pos] = V[pos] · U[pos]` (`tiles × c_in` times `c_in × c_out`). Then
//! - forward: transform a block of tiles, α² register-blocked products, transform back;
//! - filter gradient: `dU[pos] = V[pos]ᵀ · dM[pos]` with `dM = A dY Aᵀ`, summed over every
//!   tile, then `dg = Gᵀ dU G` (the adjoint of each transform, in reverse order);
//! - input gradient: a forward convolution of `dy` with the rotated filter.
//!
//! Work is split into blocks of whole tile rows, sized so that a block's `V` and `M` stay in
//! L2 cache; blocks cover contiguous output rows, so the forward pass writes disjoint slices.
//! `V` and `M` are tile-major (a tile's positions adjacent), so each transform reads and
//! writes one contiguous run. Filter-gradient partials are per chunk of blocks (the chunking
//! depends only on the shape) and are added in chunk order: results do not depend on the
//! thread count.
//!
//! Rounding: F(2×2)'s coefficients are 0, ±½, ±1 and its error stays within a few ulps of
//! the direct sum; F(4×4)'s (up to 8 and 1/24) cost about one more decimal digit, still
//! within 1e-4 relative of the reference on every tested shape for the forward pass and the
//! input gradient. Transforms and products use AVX-512F, detected at run time; without it
//! [`applies`] is false and the caller keeps its other paths.

mod by_position;

use super::common::{avx512, input_grad_spec, rotated_filter, with_thread_buffer};
use crate::backend::Conv2dSpec;
use rayon::prelude::*;
use std::cell::RefCell;

/// `G` of F(2×2, 3×3): the filter transform, points 0, ±1, ∞.
const G2: [[f32; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// `G` of F(4×4, 3×3): points 0, ±1, ±2, ∞ (Lavin and Gray, 2016).
const G4: [[f32; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The output tile: F(m×m, 3×3) reads `(m + 2)²` windows and has `(m + 2)²` positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tile {
    /// 2×2 outputs, 16 positions: 2.25× fewer multiplications than direct.
    F2,
    /// 4×4 outputs, 36 positions: 4× fewer multiplications, larger transforms.
    F4,
}

impl Tile {
    fn m(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Window side `m + 2`.
    fn alpha(self) -> usize {
        self.m() + 2
    }

    fn positions(self) -> usize {
        self.alpha() * self.alpha()
    }

    /// The filter transform's rows.
    fn g(self) -> &'static [[f32; 3]] {
        match self {
            Tile::F2 => &G2,
            Tile::F4 => &G4,
        }
    }
}

/// Input and output channels below which the direct kernels win: the transforms cost about
/// as much per channel as a 16-lane product, so the saving needs channels to amortise them.
const MIN_CHANNELS: usize = 16;

/// Largest `c_in · c_out` handled here. Each block of tiles streams the whole transformed
/// filter `U` (`α² · c_in · c_out` floats) through the cache, which the blocks' tiles must
/// amortise: up to 256 × 256 channels the forward pass still ran 2.3–2.5× faster than the
/// im2col + gemm path (Fashion-MNIST CNN and ResNet-50 shapes), at 512 × 512 (16 MB of `U`)
/// twice slower.
const MAX_CHANNEL_PAIRS: usize = 256 * 256;

/// Output pixels (batch × height × width) a layer wider than 64 × 64 channels needs to run
/// here: with fewer (ResNet-50 at batch 1: 14 × 14 × 256 channels) the few blocks
/// measured slower than im2col + gemm.
const MIN_WIDE_OUTPUTS: usize = 1024;

/// Largest `c_in · c_out` whose filter gradient runs here: each chunk of blocks sums its own
/// `dU` partial (`α² · c_in · c_out` floats), which past this size costs more than it saves.
const MAX_FILTER_GRAD_CHANNEL_PAIRS: usize = 128 * 128;

/// Largest `c_in · c_out` that uses F(4×4, 3×3) for the forward pass: its `U` is 2.25 times
/// F(2×2)'s, and at 64 × 64 channels (590 KB) measured slower than F(2×2) (280 against 370
/// GFLOP/s on 8×8×64 images), at 16 × 16 much faster (260 against 200).
const MAX_F4_CHANNEL_PAIRS: usize = 32 * 32;

/// Floats of `V` and `M` per block, about 256 KiB: half of a Zen 4 / Skylake-SP L2.
const BLOCK_FLOATS: usize = 1 << 16;

/// `len` floats rounded up to an odd number of cache lines: the distance between tiles in
/// `V`, `M` and `dM`. A power-of-two distance (16 positions × 64 channels = 4 KiB) would
/// put the rows a product kernel reads at once into one L1 set, evicting each other.
fn odd_lines(len: usize) -> usize {
    (len.div_ceil(16) | 1) * 16
}

/// Whether the Winograd kernels run the forward pass and filter gradient of `s`.
pub(super) fn applies(s: &Conv2dSpec) -> bool {
    applies_blocked(s) || (shape_fits(s) && by_position::preferred(s, &Tiling::new(s, forward_tile(s))))
}

/// The kernel shape, channel and AVX-512 conditions every Winograd pass needs.
fn shape_fits(s: &Conv2dSpec) -> bool {
    s.groups == 1
        && (s.kh, s.kw) == (3, 3)
        && s.stride == (1, 1)
        && s.dilation == (1, 1)
        && s.c_in >= MIN_CHANNELS
        && s.c_out >= MIN_CHANNELS
        && s.c_in * s.c_out <= MAX_CHANNEL_PAIRS
        && s.n * s.out_h * s.out_w > 0
        && avx512()
}

/// Whether the blocked passes run `s`: wide layers need enough output pixels to amortise
/// streaming `U` once per block.
fn applies_blocked(s: &Conv2dSpec) -> bool {
    shape_fits(s) && (s.c_in * s.c_out <= 64 * 64 || s.n * s.out_h * s.out_w >= MIN_WIDE_OUTPUTS)
}

/// The forward pass's tile: F(4×4) for narrow layers, F(2×2) for the rest.
fn forward_tile(s: &Conv2dSpec) -> Tile {
    if s.c_in * s.c_out <= MAX_F4_CHANNEL_PAIRS {
        Tile::F4
    } else {
        Tile::F2
    }
}

/// Whether the filter gradient of `s` runs here: the blocked passes, for fewer channel pairs.
pub(super) fn applies_grad_filter(s: &Conv2dSpec) -> bool {
    applies_blocked(s) && s.c_in * s.c_out <= MAX_FILTER_GRAD_CHANNEL_PAIRS
}

/// Whether the input gradient of `s` runs as a Winograd forward convolution of `dy` with the
/// rotated filter: as [`applies`], with no side padded by more than 2 (the rotated padding
/// `2 − pad` would be negative).
pub(super) fn applies_grad_input(s: &Conv2dSpec) -> bool {
    let (pt, pb, pl, pr) = s.pad;
    (s.kh, s.kw) == (3, 3) && s.dilation == (1, 1) && pt.max(pb).max(pl).max(pr) <= 2 && s.h * s.w > 0 && applies(&input_grad_spec(s))
}

thread_local! {
    /// Each thread's `V` / `M` buffer, kept between calls to avoid page faults per block.
    static BLOCK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// How the output is tiled and blocked.
struct Tiling {
    tile: Tile,
    /// Outputs per tile side, window side, and transform positions.
    m: usize,
    alpha: usize,
    pos: usize,
    /// Tile rows and columns per image.
    th: usize,
    tw: usize,
    /// Output channels rounded up to whole 16-lane blocks (`U`, `M` and `dU` rows).
    cop: usize,
    /// Tile rows per block (blocks never need to respect image boundaries).
    rows_per_block: usize,
}

impl Tiling {
    fn new(s: &Conv2dSpec, tile: Tile) -> Self {
        let (m, alpha, pos) = (tile.m(), tile.alpha(), tile.positions());
        let (th, tw) = (s.out_h.div_ceil(m), s.out_w.div_ceil(m));
        let cop = s.c_out.div_ceil(16) * 16;
        let tiles = (BLOCK_FLOATS / (pos * (s.c_in + cop))).max(8);
        Tiling { tile, m, alpha, pos, th, tw, cop, rows_per_block: (tiles / tw).max(1) }
    }

    fn total_rows(&self, s: &Conv2dSpec) -> usize {
        s.n * self.th
    }

    fn blocks(&self, s: &Conv2dSpec) -> usize {
        self.total_rows(s).div_ceil(self.rows_per_block)
    }

    /// Global tile rows `(image, tile row)` of block `b`.
    fn rows(&self, s: &Conv2dSpec, b: usize) -> std::ops::Range<usize> {
        b * self.rows_per_block..((b + 1) * self.rows_per_block).min(self.total_rows(s))
    }

    /// The first global output row (`image · out_h + row`) of global tile row `gr`.
    fn out_row(&self, s: &Conv2dSpec, gr: usize) -> usize {
        (gr / self.th) * s.out_h + self.m * (gr % self.th)
    }

    /// The tile strides of `V` and of `M` (or `dM`): every position's `c_in` (`cop`) floats,
    /// rounded to an odd number of cache lines.
    fn strides(&self, s: &Conv2dSpec) -> (usize, usize) {
        (odd_lines(self.pos * s.c_in), odd_lines(self.pos * self.cop))
    }

    /// Columns of a tile row's padded input strip: the windows of every tile in the row.
    fn strip_width(&self) -> usize {
        self.m * self.tw + 2
    }

    /// Scratch floats for a block of `tiles` tiles: `V`, `M` (or `dM`) and the input strip.
    fn scratch(&self, s: &Conv2dSpec, tiles: usize) -> usize {
        let (vt, mt) = self.strides(s);
        tiles * (vt + mt) + self.alpha * self.strip_width() * s.c_in
    }

    /// The live outputs `(rows, columns)` of a tile whose first output is `(row, col)`.
    fn live(&self, s: &Conv2dSpec, row: usize, col: usize) -> (usize, usize) {
        ((s.out_h - row).min(self.m), (s.out_w - col).min(self.m))
    }
}

/// The coefficients `G[p][i] · G[q][j]` of tap `(i, j)` at position `(p, q)`, nonzero ones
/// only: `U[p, q] = Σ G[p][i] g[i][j] G[q][j]` as a list of scaled row additions.
fn filter_terms(t: &Tiling) -> Vec<(usize, usize, f32)> {
    let g = t.tile.g();
    let mut terms = Vec::new();
    for (p, gp) in g.iter().enumerate() {
        for (q, gq) in g.iter().enumerate() {
            for (i, gpi) in gp.iter().enumerate() {
                for (j, gqj) in gq.iter().enumerate() {
                    if gpi * gqj != 0.0 {
                        terms.push((p * t.alpha + q, i * 3 + j, gpi * gqj));
                    }
                }
            }
        }
    }
    terms
}

/// `U = G g Gᵀ` for every channel pair: `[pos][c_in][cop]`, zero beyond `c_out`.
///
/// Input channels are split across threads; a channel's α² rows are made one after another
/// from its 9 tap rows, which stay in L1, so the filter is read once and `U` written once (a
/// pass over `U` per term measured as costly as the whole convolution at batch 1).
fn transform_filter(w: &[f32], s: &Conv2dSpec, t: &Tiling) -> Vec<f32> {
    let (ci_n, co_n, cop) = (s.c_in, s.c_out, t.cop);
    let mut taps_of: Vec<Vec<(usize, f32)>> = vec![Vec::new(); t.pos];
    for (pos, tap, k) in filter_terms(t) {
        taps_of[pos].push((tap, k));
    }
    assert!(w.len() >= 9 * ci_n * co_n);
    let mut u = crate::buffer_pool::for_overwrite(t.pos * ci_n * cop);
    let rows = RowWriter(u.as_mut_ptr());
    let channel = |ci: usize| {
        for (pos, taps) in taps_of.iter().enumerate() {
            // SAFETY: row (pos, ci) of `u` (`cop` floats inside its `pos·ci_n·cop`) is written
            // by this call only; no other reference to `u` exists until the loop ends.
            let row = unsafe { rows.row((pos * ci_n + ci) * cop, cop) };
            let (dst, pad) = row.split_at_mut(co_n);
            pad.fill(0.0);
            // At most 9 taps per position: no allocation per row.
            let mut tap_rows: [(&[f32], f32); 9] = [(&[], 0.0); 9];
            for (slot, &(tap, k)) in tap_rows.iter_mut().zip(taps) {
                *slot = (&w[(tap * ci_n + ci) * co_n..][..co_n], k);
            }
            // SAFETY: Winograd runs only where `applies` checked AVX-512F.
            unsafe { avx::weighted_sum(dst, &tap_rows[..taps.len()]) };
        }
    };
    if u.len() >= PARALLEL_FILTER_FLOATS {
        (0..ci_n).into_par_iter().for_each(channel);
    } else {
        // Small filters (a ResNet-20's, rows of 16–64 channels): one pass over `U` per term,
        // on one thread, measured 30% faster than the per-channel calls and their tasks.
        u.fill(0.0);
        for (pos, tap, k) in filter_terms(t) {
            for ci in 0..ci_n {
                let src = &w[(tap * ci_n + ci) * co_n..][..co_n];
                let dst = &mut u[(pos * ci_n + ci) * cop..][..co_n];
                dst.iter_mut().zip(src).for_each(|(d, g)| *d += k * g);
            }
        }
    }
    u
}

/// Transformed filters at least this large (floats) are made on every thread.
const PARALLEL_FILTER_FLOATS: usize = 1 << 18;

/// A buffer whose disjoint rows tasks write through a raw pointer (each task its own rows).
struct RowWriter(*mut f32);

// SAFETY: the pointer is only used to make slices of rows that no two tasks share.
unsafe impl Sync for RowWriter {}

impl RowWriter {
    /// # Safety
    /// `start..start + len` is inside the buffer, and no other live slice overlaps it.
    #[allow(clippy::mut_from_ref)] // disjoint rows per task, as the caller promises
    unsafe fn row(&self, start: usize, len: usize) -> &mut [f32] {
        // SAFETY: forwarded from the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}

/// `dg = Gᵀ dU G` for every channel pair: the HWIO filter gradient from `dU`
/// `[pos][c_in][cop]` (the transpose of [`transform_filter`]'s sums).
fn untransform_filter_grad(du: &[f32], s: &Conv2dSpec, t: &Tiling) -> Vec<f32> {
    let (ci_n, co_n, cop) = (s.c_in, s.c_out, t.cop);
    let mut dw = vec![0f32; 9 * ci_n * co_n];
    for (pos, tap, k) in filter_terms(t) {
        for ci in 0..ci_n {
            let src = &du[(pos * ci_n + ci) * cop..][..co_n];
            let dst = &mut dw[(tap * ci_n + ci) * co_n..][..co_n];
            dst.iter_mut().zip(src).for_each(|(d, g)| *d += k * g);
        }
    }
    dw
}

/// Where a block's tiles read and write: global tile row `gr`, column `tx` → image, the
/// input window's top-left corner (possibly in the padding) and the output row in the image.
struct TileAt {
    image: usize,
    in_row: isize,
    out_row: usize,
    out_col: usize,
}

fn tile_at(s: &Conv2dSpec, t: &Tiling, gr: usize, tx: usize) -> TileAt {
    let (image, ty) = (gr / t.th, gr % t.th);
    TileAt { image, in_row: (t.m * ty) as isize - s.pad.0 as isize, out_row: t.m * ty, out_col: t.m * tx }
}

/// Fills `v` (tile-major: tile `i`, position `p`, channel `c` at `i·vt + p·c_in + c`) with
/// the transformed input windows of the block's tiles. Each tile row's four input rows are
/// first copied into `strip` with their zero padding: sequential copies the prefetcher
/// follows, after which every window is an in-bounds read at fixed offsets.
fn transform_block_input(x: &[f32], s: &Conv2dSpec, t: &Tiling, rows: &std::ops::Range<usize>, v: &mut [f32], strip: &mut [f32]) {
    let (vt, _) = t.strides(s);
    let (c, wp) = (s.c_in, t.strip_width());
    let img_len = s.h * s.w * c;
    assert!(v.len() >= rows.len() * t.tw * vt && x.len() >= s.n * img_len && strip.len() >= t.alpha * wp * c);
    // Strip column `j` holds input column `j − pad_left`.
    let (first, last) = (s.pad.2.min(wp), (s.pad.2 + s.w).min(wp));
    for (k, gr) in rows.clone().enumerate() {
        let at = tile_at(s, t, gr, 0);
        let img = &x[at.image * img_len..][..img_len];
        if gr + 1 < t.total_rows(s) {
            // The next tile row's input rows start loading while this one is worked on.
            let next = tile_at(s, t, gr + 1, 0);
            let first_row = next.in_row.clamp(0, s.h as isize) as usize;
            let end_row = (next.in_row + t.alpha as isize).clamp(0, s.h as isize) as usize;
            prefetch(&x[(next.image * s.h + first_row) * s.w * c..(next.image * s.h + end_row) * s.w * c]);
        }
        for (i, line) in strip[..t.alpha * wp * c].chunks_exact_mut(wp * c).enumerate() {
            let ih = at.in_row + i as isize;
            if ih < 0 || ih as usize >= s.h || first >= last {
                line.fill(0.0);
                continue;
            }
            line[..first * c].fill(0.0);
            line[first * c..last * c].copy_from_slice(&img[(ih as usize * s.w + first - s.pad.2) * c..][..(last - first) * c]);
            line[last * c..].fill(0.0);
        }
        for tx in 0..t.tw {
            // SAFETY: the window (α rows of `wp·c`, columns m·tx..m·tx + α ≤ wp) is inside
            // `strip`; writes land in tile `k·tw + tx`'s `vt` floats (≥ α²·c_in) of `v`, as
            // asserted above.
            unsafe { avx::input_tile(t.tile, strip.as_ptr().add(t.m * tx * c), (wp * c, c), v.as_mut_ptr().add((k * t.tw + tx) * vt)) };
        }
    }
}

/// Forward convolution; call only when [`applies`].
pub(super) fn forward(x: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    let t = Tiling::new(s, forward_tile(s));
    if by_position::preferred(s, &t) {
        return by_position::forward(x, w, s, &t);
    }
    let (vt, mt) = t.strides(s);
    let u = transform_filter(w, s, &t);
    let row_len = s.out_w * s.c_out;
    // Every output is written by exactly one tile.
    let mut y = crate::buffer_pool::for_overwrite(s.n * s.out_h * row_len);
    // Each block owns the output rows of its tile rows: split `y` into those slices.
    let mut parts = Vec::with_capacity(t.blocks(s));
    let mut rest = y.as_mut_slice();
    for b in 0..t.blocks(s) {
        let rows = t.rows(s, b);
        let (first, end) = (t.out_row(s, rows.start), t.out_row(s, rows.end));
        let (mine, tail) = rest.split_at_mut((end - first) * row_len);
        parts.push((rows, first, mine));
        rest = tail;
    }
    parts.into_par_iter().for_each(|(rows, first_row, y_block)| {
        with_thread_buffer(&BLOCK, |buf| {
            let tiles = rows.len() * t.tw;
            buf.resize(buf.len().max(t.scratch(s, tiles)), 0.0);
            let (v, rest) = buf.split_at_mut(tiles * vt);
            let (m, strip) = rest.split_at_mut(tiles * mt);
            transform_block_input(x, s, &t, &rows, v, strip);
            for pos in 0..t.pos {
                // M[·][pos] = V[·][pos] · U[pos].
                products(
                    tiles,
                    s.c_in,
                    t.cop,
                    (&v[pos * s.c_in..], vt, 1),
                    (&u[pos * s.c_in * t.cop..], t.cop),
                    (&mut m[pos * t.cop..], mt),
                    false,
                );
            }
            // Output row `r` of the block's slice is global output row `first_row + r`.
            for (k, gr) in rows.clone().enumerate() {
                if gr + 1 < rows.end {
                    let next_end = if gr + 2 == t.total_rows(s) { s.n * s.out_h } else { t.out_row(s, gr + 2) };
                    prefetch(&y_block[(t.out_row(s, gr + 1) - first_row) * row_len..(next_end - first_row) * row_len]);
                }
                for tx in 0..t.tw {
                    let at = tile_at(s, &t, gr, tx);
                    let live = t.live(s, at.out_row, at.out_col);
                    let row0 = at.image * s.out_h + at.out_row - first_row;
                    let y_off = (row0 * s.out_w + at.out_col) * s.c_out;
                    assert!(y_off + ((live.0 - 1) * s.out_w + live.1) * s.c_out <= y_block.len());
                    // SAFETY: `M` reads stay inside tile `k·tw + tx`'s `mt` floats (≥ α²·cop)
                    // of `m`; the live outputs end inside `y_block` as asserted; `applies`
                    // checked AVX-512F.
                    unsafe {
                        avx::output_tile(
                            t.tile,
                            m.as_ptr().add((k * t.tw + tx) * mt),
                            t.cop,
                            y_block.as_mut_ptr().add(y_off),
                            (s.out_w * s.c_out, s.c_out),
                            live,
                        )
                    };
                }
            }
        })
    });
    crate::buffer_pool::recycle(u);
    y
}

/// Input gradient; call only when [`applies_grad_input`].
pub(super) fn grad_input(dy: &[f32], w: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    forward(dy, &rotated_filter(w, s), &input_grad_spec(s))
}

/// Filter gradient (HWIO); call only when [`applies_grad_filter`].
pub(super) fn grad_filter(x: &[f32], dy: &[f32], s: &Conv2dSpec) -> Vec<f32> {
    // F(2×2, 3×3): the filter gradient sums every tile's product, and F(4×4)'s larger
    // transform coefficients (up to 8 in `A`, 1/24 in `G`) amplify the rounding of that long
    // sum past 1e-4 relative where the small tile stays within a few ulps of the direct sum.
    let t = Tiling::new(s, Tile::F2);
    let (vt, mt) = t.strides(s);
    let blocks = t.blocks(s);
    // At most 8 chunks, fixed by the shape: enough to keep threads busy, few enough that
    // zeroing and adding the α²·c_in·cop partials stays cheap (16 measured 10% slower at
    // 64 channels).
    let per_chunk = blocks.div_ceil(8).max(1);
    let chunks = blocks.div_ceil(per_chunk);
    let du_len = t.pos * s.c_in * t.cop;
    let partial = |c: usize, buf: &mut Vec<f32>| {
        let mut du = vec![0f32; du_len];
        for b in c * per_chunk..((c + 1) * per_chunk).min(blocks) {
            let rows = t.rows(s, b);
            let tiles = rows.len() * t.tw;
            buf.resize(buf.len().max(t.scratch(s, tiles)), 0.0);
            let (v, rest) = buf.split_at_mut(tiles * vt);
            let (dm, strip) = rest.split_at_mut(tiles * mt);
            transform_block_input(x, s, &t, &rows, v, strip);
            let row_len = s.out_w * s.c_out;
            for (k, gr) in rows.clone().enumerate() {
                if gr + 2 <= t.total_rows(s) {
                    let next_end = if gr + 2 == t.total_rows(s) { s.n * s.out_h } else { t.out_row(s, gr + 2) };
                    prefetch(&dy[t.out_row(s, gr + 1) * row_len..next_end * row_len]);
                }
                for tx in 0..t.tw {
                    let at = tile_at(s, &t, gr, tx);
                    let live = t.live(s, at.out_row, at.out_col);
                    let dy_off = ((at.image * s.out_h + at.out_row) * s.out_w + at.out_col) * s.c_out;
                    assert!(dy_off + ((live.0 - 1) * s.out_w + live.1) * s.c_out <= dy.len());
                    // SAFETY: reads of the live outputs end inside `dy` as asserted; writes
                    // land in tile `k·tw + tx`'s `mt` floats (≥ α²·cop) of `dm`.
                    unsafe {
                        avx::output_grad_tile(
                            t.tile,
                            dy.as_ptr().add(dy_off),
                            (s.out_w * s.c_out, s.c_out),
                            live,
                            dm.as_mut_ptr().add((k * t.tw + tx) * mt),
                            t.cop,
                        )
                    };
                }
            }
            for pos in 0..t.pos {
                // dU[pos] (c_in × cop) += V[·][pos]ᵀ · dM[·][pos]: V read transposed.
                products(
                    s.c_in,
                    tiles,
                    t.cop,
                    (&v[pos * s.c_in..], 1, vt),
                    (&dm[pos * t.cop..], mt),
                    (&mut du[pos * s.c_in * t.cop..], t.cop),
                    true,
                );
            }
        }
        du
    };
    // All chunks at once, scheduled by work stealing (waves of one chunk per thread stall on
    // the slowest chunk of each wave when a core is busy elsewhere), then added in order.
    let parts: Vec<Vec<f32>> = (0..chunks).into_par_iter().map(|c| with_thread_buffer(&BLOCK, |buf| partial(c, buf))).collect();
    let mut parts = parts.into_iter();
    let mut du = parts.next().unwrap_or_else(|| vec![0.0; du_len]);
    for p in parts {
        du.iter_mut().zip(&p).for_each(|(d, v)| *d += v);
    }
    untransform_filter_grad(&du, s, &t)
}

/// Starts loading `data` into the cache: a whole tile row ahead, so the transforms' first
/// reads of it do not each wait on memory (they are too scattered for the hardware
/// prefetcher: measured, the filter gradient's reads of `dy` took 28% of its time).
fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(16) {
        // SAFETY: a prefetch is only a hint and never faults; the address is inside `data`.
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_mm_prefetch(line.as_ptr().cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Register blocks: the most rows per pass for `nb` 16-lane column blocks, keeping `R·nb`
/// accumulators plus the `nb` row vectors of `B` within the 32 vector registers.
const MAX_R: [usize; 4] = [24, 12, 8, 6];

/// [`products`] writing through a raw `C`, for callers whose tasks own disjoint column
/// ranges of shared rows (which no `&mut` slice can describe): the convolutions' own gemm.
///
/// # Safety
/// AVX-512F must be available; `a` and `b` must hold the named elements (as [`products`]
/// asserts); `c[i·c_rs + q]` for `i < m`, `q < n` must be valid for writes and written by no
/// one else during the call.
#[allow(clippy::too_many_arguments)] // the BLAS-like view triple
pub(super) unsafe fn products_raw(
    m: usize,
    k: usize,
    n: usize,
    a: (&[f32], usize, usize),
    b: (&[f32], usize),
    c: *mut f32,
    c_rs: usize,
    accumulate: bool,
) {
    let ((a, a_rs, a_ks), (b, b_rs)) = (a, b);
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    assert!(n.is_multiple_of(16) && (k - 1) * b_rs + n <= b.len() && (m - 1) * a_rs + (k - 1) * a_ks < a.len());
    for cb in (0..n).step_by(16 * MAX_R.len()) {
        let nb = ((n - cb) / 16).min(MAX_R.len());
        let count = m.div_ceil(MAX_R[nb - 1]);
        let max_r = m.div_ceil(count);
        for r0 in (0..m).step_by(max_r) {
            let r = max_r.min(m - r0);
            // SAFETY: A and B in bounds by the assert; C by the caller's promise.
            unsafe {
                avx::product_block(
                    r,
                    nb,
                    k,
                    (a.as_ptr().add(r0 * a_rs), a_rs, a_ks),
                    (b.as_ptr().add(cb), b_rs),
                    (c.add(r0 * c_rs + cb), c_rs),
                    accumulate,
                )
            };
        }
    }
}

/// `C (+)= A · B` for `A` an `m × k` view `(data, row stride, column stride)`, `B` a `k × n`
/// view `(data, row stride)` and `C` an `m × n` view `(data, row stride)`, `n` a multiple
/// of 16 (unit column strides).
fn products(m: usize, k: usize, n: usize, a: (&[f32], usize, usize), b: (&[f32], usize), c: (&mut [f32], usize), accumulate: bool) {
    let (c, c_rs) = c;
    if m == 0 || k == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * c_rs + n <= c.len());
    // SAFETY: every written element of C is inside the exclusive borrow `c` (asserted above);
    // `products_raw` checks A and B; Winograd runs only where `applies` checked AVX-512F.
    unsafe { products_raw(m, k, n, a, b, c.as_mut_ptr(), c_rs, accumulate) }
}

#[cfg(target_arch = "x86_64")]
mod avx;

#[cfg(not(target_arch = "x86_64"))]
mod avx {
    use super::Tile;
    pub(super) unsafe fn input_tile(_: Tile, _: *const f32, _: (usize, usize), _: *mut f32) {
        unreachable!("Winograd convolution needs AVX-512F")
    }
    pub(super) unsafe fn output_tile(_: Tile, _: *const f32, _: usize, _: *mut f32, _: (usize, usize), _: (usize, usize)) {
        unreachable!("Winograd convolution needs AVX-512F")
    }
    pub(super) unsafe fn output_grad_tile(_: Tile, _: *const f32, _: (usize, usize), _: (usize, usize), _: *mut f32, _: usize) {
        unreachable!("Winograd convolution needs AVX-512F")
    }
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn product_block(
        _: usize,
        _: usize,
        _: usize,
        _: (*const f32, usize, usize),
        _: (*const f32, usize),
        _: (*mut f32, usize),
        _: bool,
    ) {
        unreachable!("Winograd convolution needs AVX-512F")
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::cpu::conv;
    use crate::backend::{reference, Conv2dSpec};
    use crate::ops::padding::{resolve_axis, Padding};
    use crate::testing::{assert_close, rand};
    use crate::{Device, HostData};

    /// `[n, h, w, c_in]`, `c_out`, padding (3×3 kernels, stride 1).
    type Case = ([usize; 4], usize, Padding);

    fn spec((dims, c_out, p): &Case) -> Conv2dSpec {
        let ay = resolve_axis("t", p, 0, dims[1], 3, 1, 1).unwrap();
        let ax = resolve_axis("t", p, 1, dims[2], 3, 1, 1).unwrap();
        Conv2dSpec {
            n: dims[0],
            h: dims[1],
            w: dims[2],
            c_in: dims[3],
            kh: 3,
            kw: 3,
            c_out: *c_out,
            groups: 1,
            stride: (1, 1),
            dilation: (1, 1),
            pad: (ay.pad_before, ay.pad_after, ax.pad_before, ax.pad_after),
            out_h: ay.out,
            out_w: ax.out,
        }
    }

    /// Odd and even sizes (partial tiles), channel counts off the 16-lane grid, every padding
    /// the rotated input gradient can meet, and blocks that span several images.
    fn cases() -> Vec<Case> {
        vec![
            ([2, 8, 8, 16], 16, Padding::Same),
            ([2, 7, 9, 17], 24, Padding::Same),
            ([1, 6, 5, 16], 33, Padding::Valid),
            ([2, 9, 6, 20], 16, Padding::Explicit(vec![(2, 0), (1, 2)])),
            ([3, 4, 4, 64], 64, Padding::Same),
            ([1, 3, 3, 16], 80, Padding::Valid),
            ([2, 1, 1, 16], 16, Padding::Same),
            ([40, 8, 8, 32], 32, Padding::Same),
            // Wide layers: 80 × 64 with many tiles runs the blocked passes; the others have
            // few tiles for their `U` and run the forward pass (and the input gradient) by
            // position, 128 × 128 the blocked filter gradient, the wider ones none.
            ([1, 48, 48, 80], 64, Padding::Same),
            ([4, 16, 16, 128], 128, Padding::Same),
            ([1, 32, 32, 160], 112, Padding::Same),
            ([1, 12, 12, 192], 160, Padding::Same),
            ([2, 6, 7, 256], 144, Padding::Same),
            ([2, 5, 11, 16], 16, Padding::Explicit(vec![(3, 1), (0, 0)])),
        ]
    }

    fn f32s(s: HostData) -> Vec<f32> {
        s.as_f32("test").unwrap().to_vec()
    }

    #[test]
    fn winograd_matches_reference() {
        if !super::avx512() {
            eprintln!("skipping: no AVX-512F, the Winograd kernels never run here");
            return;
        }
        for (seed, case) in cases().iter().enumerate() {
            let s = spec(case);
            assert!(super::applies(&s), "{case:?}");
            // Wide layers with few tiles run by position; the other wide one is blocked.
            let t = super::Tiling::new(&s, super::forward_tile(&s));
            assert_eq!(super::by_position::preferred(&s, &t), case.0[3] >= 128, "{case:?}");
            // Only the last case pads a side by more than 2.
            assert_eq!(super::applies_grad_input(&s), seed + 1 != cases().len(), "{case:?}");
            let seed = 10 * seed as u64;
            let x = rand(&[s.n, s.h, s.w, s.c_in], -1.0, 1.0, seed, Device::Cpu);
            let w = rand(&[3, 3, s.c_in, s.c_out], -1.0, 1.0, seed + 1, Device::Cpu);
            let dy = rand(&[s.n, s.out_h, s.out_w, s.c_out], -1.0, 1.0, seed + 2, Device::Cpu);
            let (x, w, dy) = (x.host_storage(), w.host_storage(), dy.host_storage());
            let what = |pass: &str| format!("{pass} {case:?}");
            let want = f32s(reference::conv::conv2d(x, w, &s).unwrap());
            assert_close(&what("forward"), &f32s(conv::conv2d(x, w, &s).unwrap()), &want, 1e-4, 1e-4);
            let want = f32s(reference::conv::conv2d_grad_filter(x, dy, &s).unwrap());
            assert_close(&what("grad_filter"), &f32s(conv::conv2d_grad_filter(x, dy, &s).unwrap()), &want, 1e-4, 1e-4);
            let want = f32s(reference::conv::conv2d_grad_input(dy, w, &s).unwrap());
            assert_close(&what("grad_input"), &f32s(conv::conv2d_grad_input(dy, w, &s).unwrap()), &want, 1e-4, 1e-4);
        }
    }

    #[test]
    fn winograd_leaves_other_convolutions_to_other_kernels() {
        let base = spec(&([2, 8, 8, 16], 16, Padding::Same));
        let others = [
            Conv2dSpec { c_in: 8, ..base.clone() },
            Conv2dSpec { c_out: 8, ..base.clone() },
            Conv2dSpec { stride: (2, 2), out_h: 4, out_w: 4, ..base.clone() },
            Conv2dSpec { dilation: (2, 1), ..base.clone() },
            Conv2dSpec { kh: 5, kw: 5, ..base.clone() },
            Conv2dSpec { groups: 2, ..base.clone() },
        ];
        for s in &others {
            assert!(!super::applies(s), "{s:?}");
        }
        assert_eq!(super::applies(&base), super::avx512());
        let wide = |c_in, c_out, n| Conv2dSpec { c_in, c_out, n, ..base.clone() };
        assert!(!super::applies(&wide(512, 512, 64)));
        // 2 × 8 × 8 output pixels are too few for the blocked passes of a wide layer, 16 × 8 × 8
        // enough; the few tiles run the forward pass by position instead.
        let few = wide(256, 256, 2);
        assert!(!super::applies_blocked(&few) && !super::applies_grad_filter(&few));
        assert_eq!(super::applies(&few), super::avx512());
        assert!(super::by_position::preferred(&few, &super::Tiling::new(&few, super::Tile::F2)));
        assert_eq!((super::applies(&wide(256, 256, 16)), super::applies_grad_filter(&wide(256, 256, 16))), (super::avx512(), false));
        // Many tiles keep the blocked pass even where it streams `U` often.
        let many = wide(128, 128, 64);
        assert!(!super::by_position::preferred(&many, &super::Tiling::new(&many, super::Tile::F2)));
    }

    #[test]
    fn winograd_is_independent_of_thread_count() {
        if !super::avx512() {
            return;
        }
        let run = |threads: usize, s: &Conv2dSpec, x: &HostData, w: &HostData, dy: &HostData| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                (
                    f32s(conv::conv2d(x, w, s).unwrap()),
                    f32s(conv::conv2d_grad_filter(x, dy, s).unwrap()),
                    f32s(conv::conv2d_grad_input(dy, w, s).unwrap()),
                )
            })
        };
        for case in &cases() {
            let s = spec(case);
            let x = rand(&[s.n, s.h, s.w, s.c_in], -1.0, 1.0, 1, Device::Cpu);
            let w = rand(&[3, 3, s.c_in, s.c_out], -1.0, 1.0, 2, Device::Cpu);
            let dy = rand(&[s.n, s.out_h, s.out_w, s.c_out], -1.0, 1.0, 3, Device::Cpu);
            let one = run(1, &s, x.host_storage(), w.host_storage(), dy.host_storage());
            let three = run(3, &s, x.host_storage(), w.host_storage(), dy.host_storage());
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one.0), bits(&three.0), "forward {case:?}");
            assert_eq!(bits(&one.1), bits(&three.1), "grad_filter {case:?}");
            assert_eq!(bits(&one.2), bits(&three.2), "grad_input {case:?}");
        }
    }
}
