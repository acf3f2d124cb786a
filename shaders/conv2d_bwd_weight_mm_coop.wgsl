// The cooperative-matrix compute form of the large-tile weight gradient (conv2d_bwd_weight_mm):
// in its cooperative variant it stands where conv2d_bwd_weight_mm_core (the f32 form) stands,
// after conv2d_coop_tile; the loaders and the loop are the kernel's, unchanged. A = dy (BM channels by the
// chunk's 16 output pixels), B = im2col(x)^T (16 pixels by 128 weight columns): each chunk's
// registers go into the tile's stages as f16, the loader's pixel r as K row r.

// This lane's share of the chunk in registers into stage `s` at K row (pixel) r: dy at channels
// lch .. lch + 7 (lch .. lch + 3 for BM = 64), x under columns lcb * 8 .. + 7.
fn store_stage(s: u32, r: u32) {
    let a = s * A_STAGE + lch * LDA + r;
    sa[a] = f16(ra.x);
    sa[a + LDA] = f16(ra.y);
    sa[a + 2u * LDA] = f16(ra.z);
    sa[a + 3u * LDA] = f16(ra.w);
    if (BM == 128u) {
        sa[a + 4u * LDA] = f16(rb.x);
        sa[a + 5u * LDA] = f16(rb.y);
        sa[a + 6u * LDA] = f16(rb.z);
        sa[a + 7u * LDA] = f16(rb.w);
    }
    let b = s * BK * LDB + r * LDB + lcb * 8u;
    sb[b] = f16(xa.x);
    sb[b + 1u] = f16(xa.y);
    sb[b + 2u] = f16(xa.z);
    sb[b + 3u] = f16(xa.w);
    sb[b + 4u] = f16(xc.x);
    sb[b + 5u] = f16(xc.y);
    sb[b + 6u] = f16(xc.z);
    sb[b + 7u] = f16(xc.w);
}
