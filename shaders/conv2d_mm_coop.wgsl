// The cooperative-matrix compute form of the large-tile implicit GEMMs whose K runs over input
// channels x taps (conv2d_fwd_mm, conv2d_bwd_data_mm): in their cooperative variants it stands
// where conv2d_mm_core (the f32 form) stands, after conv2d_coop_tile; the loaders are
// conv2d_mm_load's, and so is the K loop, which runs the tile's steps (`tile_begin`, `tile_step`,
// `tile_end`). Each chunk's registers (conv2d_mm_load's ra*, rb*) go into the
// tile's stages as f16: weights at [channel][k] (8 consecutive lanes along K), im2col values at
// [k][pixel] (consecutive lanes along the pixels).

// This lane's share of the chunk in registers into stage `s`: weights at channels wrow + 32j, K
// rows wk and wk + 8; im2col values at K rows xk * 8 + e, pixel xcol.
fn store_stage(s: u32) {
    let a = s * A_STAGE + wrow * LDA + wk;
    sa[a] = f16(ra0);
    sa[a + 8u] = f16(ra4);
    sa[a + 32u * LDA] = f16(ra1);
    sa[a + 32u * LDA + 8u] = f16(ra5);
    if (BM == 128u) {
        sa[a + 64u * LDA] = f16(ra2);
        sa[a + 64u * LDA + 8u] = f16(ra6);
        sa[a + 96u * LDA] = f16(ra3);
        sa[a + 96u * LDA + 8u] = f16(ra7);
    }
    let b = s * BK * LDB + xk * 8u * LDB + xcol;
    sb[b] = f16(rb0);
    sb[b + LDB] = f16(rb1);
    sb[b + 2u * LDB] = f16(rb2);
    sb[b + 3u * LDB] = f16(rb3);
    sb[b + 4u * LDB] = f16(rb4);
    sb[b + 5u * LDB] = f16(rb5);
    sb[b + 6u * LDB] = f16(rb6);
    sb[b + 7u * LDB] = f16(rb7);
}

// The statistics' exchange of conv2d_fwd_mm through the result areas (free after the hand-off's
// last barrier): vec4 `j` (< 2) of lane `lid`.
fn stats_put(lid: u32, j: u32, v: vec4f) {
    let at = (lid * 2u + j) * 4u;
    sc[at] = v.x;
    sc[at + 1u] = v.y;
    sc[at + 2u] = v.z;
    sc[at + 3u] = v.w;
}

fn stats_get(lid: u32, j: u32) -> vec4f {
    let at = (lid * 2u + j) * 4u;
    return vec4f(sc[at], sc[at + 1u], sc[at + 2u], sc[at + 3u]);
}
