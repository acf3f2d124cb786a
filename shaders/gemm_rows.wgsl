// C_z (M, N) = A (M, K) x B_z (K, N) for each batch item z, N a multiple of 4: the plain GEMM
// behind 1x1 convolutions (A = the weights, B_z = one image's channels x pixels) and the
// GEMM-ceiling benchmark. A workgroup owns RB rows of C (grid z, so every A load is uniform:
// one scalar load broadcast to all lanes); each invocation keeps an RB x 4 register tile and reads
// B as vec4, so one vector load feeds 4*RB multiply-adds.
// Epilogue (fusion): + bias (per row, i.e. per output channel), + residual (like C), then the
// activation `act4` of the `activation` prelude.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override WG: u32 = 64u;
override RB: u32 = 8u;  // rows per invocation, 1..=8
// A stored transposed, (K, M): the input gradient of a 1x1 conv, W^T x dY (still uniform loads)
override TRANS_A: bool = false;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params { m: u32, n4: u32, k: u32, row_blocks: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // (M, K), or (K, M) with TRANS_A
@group(0) @binding(2) var<storage, read> b: array<vec4<T>>;     // (batch, K, N/4)
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // (M), unread without HAS_BIAS
@group(0) @binding(4) var<storage, read> res: array<vec4<T>>;   // like c, unread without HAS_RESIDUAL
@group(0) @binding(5) var<storage, read_write> c: array<vec4<T>>;// (batch, M, N/4)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let z = wid.z / p.row_blocks;
    let row0 = (wid.z % p.row_blocks) * RB;
    let nrows = min(RB, p.m - row0);
    let col = (wid.x + wid.y * nwg.x) * WG + lid;  // in vec4 units
    let inside = col < p.n4;
    let colc = min(col, p.n4 - 1u);
    let b0 = z * p.k * p.n4 + colc;
    // acc[r]: row row0 + r. Indexed by constants only (the loops over the rows are written
    // out): a private array indexed by a loop variable may be kept in indexable memory
    // (NVIDIA's local memory).
    var acc: array<vec4f, 8>;
    for (var kk = 0u; kk < p.k; kk++) {
        mac_rows(&acc, row0, nrows, kk, vec4f(b[b0 + kk * p.n4]));
    }
    if (!inside) {
        return;
    }
    let i = (z * p.m + row0) * p.n4 + col;  // row row0's output vec4
    store_row(acc[0], row0, i);
    if (RB > 1u && nrows > 1u) {
        store_row(acc[1], row0 + 1u, i + p.n4);
    }
    if (RB > 2u && nrows > 2u) {
        store_row(acc[2], row0 + 2u, i + 2u * p.n4);
    }
    if (RB > 3u && nrows > 3u) {
        store_row(acc[3], row0 + 3u, i + 3u * p.n4);
    }
    if (RB > 4u && nrows > 4u) {
        store_row(acc[4], row0 + 4u, i + 4u * p.n4);
    }
    if (RB > 5u && nrows > 5u) {
        store_row(acc[5], row0 + 5u, i + 5u * p.n4);
    }
    if (RB > 6u && nrows > 6u) {
        store_row(acc[6], row0 + 6u, i + 6u * p.n4);
    }
    if (RB > 7u && nrows > 7u) {
        store_row(acc[7], row0 + 7u, i + 7u * p.n4);
    }
}

// A's element for row `row` at K index kk.
fn a_at(row: u32, kk: u32) -> f32 {
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

// The RB rows += A's (row, kk) x bv; rows past nrows reread the last row of A (not stored).
fn mac_rows(acc: ptr<function, array<vec4f, 8>>, row0: u32, nrows: u32, kk: u32, bv: vec4f) {
    (*acc)[0] += a_at(row0, kk) * bv;
    if (RB > 1u) {
        (*acc)[1] += a_at(row0 + min(1u, nrows - 1u), kk) * bv;
    }
    if (RB > 2u) {
        (*acc)[2] += a_at(row0 + min(2u, nrows - 1u), kk) * bv;
    }
    if (RB > 3u) {
        (*acc)[3] += a_at(row0 + min(3u, nrows - 1u), kk) * bv;
    }
    if (RB > 4u) {
        (*acc)[4] += a_at(row0 + min(4u, nrows - 1u), kk) * bv;
    }
    if (RB > 5u) {
        (*acc)[5] += a_at(row0 + min(5u, nrows - 1u), kk) * bv;
    }
    if (RB > 6u) {
        (*acc)[6] += a_at(row0 + min(6u, nrows - 1u), kk) * bv;
    }
    if (RB > 7u) {
        (*acc)[7] += a_at(row0 + min(7u, nrows - 1u), kk) * bv;
    }
}

// Row `row`'s 4 sums through the epilogue into c[i].
fn store_row(acc: vec4f, row: u32, i: u32) {
    var v = acc;
    if (HAS_BIAS) {
        v += bias[row];
    }
    if (HAS_RESIDUAL) {
        v += vec4f(res[i]);
    }
    c[i] = vec4<T>(act4(v));
}
