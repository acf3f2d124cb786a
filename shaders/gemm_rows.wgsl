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
    var acc: array<vec4f, 8>;
    for (var kk = 0u; kk < p.k; kk++) {
        let bv = vec4f(b[b0 + kk * p.n4]);
        for (var r = 0u; r < RB; r++) {
            // rows past nrows reread the last row of A; they are not stored
            let row = row0 + min(r, nrows - 1u);
            var ai = row * p.k + kk;
            if (TRANS_A) {
                ai = kk * p.m + row;
            }
            acc[r] += a[ai] * bv;
        }
    }
    if (!inside) {
        return;
    }
    for (var r = 0u; r < nrows; r++) {
        let i = (z * p.m + row0 + r) * p.n4 + col;
        var v = acc[r];
        if (HAS_BIAS) {
            v += bias[row0 + r];
        }
        if (HAS_RESIDUAL) {
            v += vec4f(res[i]);
        }
        c[i] = vec4<T>(act4(v));
    }
}
