//! The forward pass for layers with few tiles and a large transformed filter — ResNet-50's
//! 28×28×128 and 14×14×256 layers at batch 1. The blocked forward pass streams the whole of
//! `U` (`α² · c_in · c_out` floats, 4 MiB at 256 × 256 channels) through the cache once per
//! block of tiles, and with few tiles a block that stream costs more than the products it
//! feeds: such layers ran faster through im2col + gemm. Here every tile's `V` is made first,
//! then the α² products are split across threads by position, each reading its `U[pos]` once,
//! into a position-major `M`; then every tile is transformed back. Each position's product is
//! one thread's, so results do not depend on the thread count.

use super::{avx, products, tile_at, transform_block_input, transform_filter, Tiling};
use crate::backend::Conv2dSpec;
use rayon::prelude::*;

/// Most floats of `V` and `M` together for this path (16 MiB): it keeps every tile's `V`
/// and `M` at once, and beyond this the blocked pass, whose blocks stay in L2, is the better
/// trade even when it streams `U` many times.
const MAX_TILE_FLOATS: usize = 1 << 22;

/// Whether `s` runs by position: the blocked pass would read `U` more often than this pass
/// reads and writes all of `V` and `M` (with both bounded by [`MAX_TILE_FLOATS`]).
pub(super) fn preferred(s: &Conv2dSpec, t: &Tiling) -> bool {
    let (vt, mt) = t.strides(s);
    let tiles = t.total_rows(s) * t.tw;
    let tile_floats = tiles * (vt + mt);
    let u_floats = t.pos * s.c_in * t.cop;
    tile_floats <= MAX_TILE_FLOATS && (t.blocks(s) - 1) * u_floats > 2 * tile_floats
}

/// Forward convolution by position; call only when Winograd applies and [`preferred`].
pub(super) fn forward(x: &[f32], w: &[f32], s: &Conv2dSpec, t: &Tiling) -> Vec<f32> {
    let (vt, _) = t.strides(s);
    let u = transform_filter(w, s, t);
    let (rows, tiles, cop) = (t.total_rows(s), t.total_rows(s) * t.tw, t.cop);
    // V, tile-major as in the blocked pass; only each tile's α²·c_in floats are written and read.
    let mut v = crate::buffer_pool::for_overwrite(tiles * vt);
    v.par_chunks_mut(t.tw * vt).enumerate().for_each(|(gr, v_row)| {
        let mut strip = vec![0f32; t.alpha * t.strip_width() * s.c_in];
        transform_block_input(x, s, t, &(gr..gr + 1), v_row, &mut strip);
    });
    // M[pos][tile][cop] = V[tile][pos] · U[pos]: every position one task.
    let mut m = crate::buffer_pool::for_overwrite(t.pos * tiles * cop);
    m.par_chunks_mut(tiles * cop).enumerate().for_each(|(pos, m_pos)| {
        products(tiles, s.c_in, cop, (&v[pos * s.c_in..], vt, 1), (&u[pos * s.c_in * cop..], cop), (m_pos, cop), false);
    });
    let row_len = s.out_w * s.c_out;
    // Every output is written by exactly one tile.
    let mut y = crate::buffer_pool::for_overwrite(s.n * s.out_h * row_len);
    // Tile row `gr` owns output rows out_row(gr)..out_row(gr + 1) of the flattened images.
    let mut parts = Vec::with_capacity(rows);
    let mut rest = y.as_mut_slice();
    for gr in 0..rows {
        let end = if gr + 1 == rows { s.n * s.out_h } else { t.out_row(s, gr + 1) };
        let (mine, tail) = rest.split_at_mut((end - t.out_row(s, gr)) * row_len);
        parts.push((gr, mine));
        rest = tail;
    }
    let m_ref = &m;
    parts.into_par_iter().for_each(|(gr, y_rows)| {
        for tx in 0..t.tw {
            let at = tile_at(s, t, gr, tx);
            let live = t.live(s, at.out_row, at.out_col);
            let y_off = at.out_col * s.c_out;
            assert!(y_off + ((live.0 - 1) * s.out_w + live.1) * s.c_out <= y_rows.len());
            let tile = gr * t.tw + tx;
            assert!((t.pos - 1) * tiles * cop + (tile + 1) * cop <= m_ref.len());
            // SAFETY: position p of this tile is `m[p·tiles·cop + tile·cop ..][.. cop]`, in
            // bounds as asserted; the live outputs end inside `y_rows` as asserted; Winograd
            // runs only where `applies` checked AVX-512F.
            unsafe {
                avx::output_tile(
                    t.tile,
                    m_ref.as_ptr().add(tile * cop),
                    tiles * cop,
                    y_rows.as_mut_ptr().add(y_off),
                    (row_len, s.c_out),
                    live,
                )
            };
        }
    });
    // The scratch goes back to the pool: the next call of this layer asks for the same sizes,
    // and fresh buffers would be zeroed or faulted in again.
    for scratch in [u, v, m] {
        crate::buffer_pool::recycle(scratch);
    }
    y
}
