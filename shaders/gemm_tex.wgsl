// C (M, N) = A (M, K) x B (K, N) with both operands read through rgba32float textures: the
// probe of what a CPU driver's texel path can do (`convoy bench gemm`), the ceiling the conv
// suite's "% of ceiling" divides by. A's texel (k/4, m) holds A[m, k..k+4]; B's texel (n/4, k)
// holds B[k, n..n+4]. A workgroup of WG lanes owns TM rows (A fetches at the same texel in every
// lane, shared across a subgroup by the operand_share prelude's subgroup form) and WG*2 texels
// of columns; each lane a TM x 8 register tile (two vec4 per row). M a multiple of TM, N of
// WG*8, K of 4: the bench picks such sizes.

override WG: u32 = 64u;
const TM: u32 = 8u;

struct Params { m: u32, n: u32, k: u32, pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var at: texture_2d<f32>;
@group(0) @binding(2) var bt: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4f>;  // (M, N/4)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, lanes: ShareLanes) {
    let lid = lanes.index;
    let row0 = wid.y * TM;
    let own_row = row0 + min(share_row(lanes), TM - 1u);
    let col = wid.x * WG * 2u + lid;  // texel columns col and col + WG
    var lo: array<vec4f, TM>;
    var hi: array<vec4f, TM>;
    for (var k = 0u; k < p.k; k += 4u) {
        var b0: array<vec4f, 4>;
        var b1: array<vec4f, 4>;
        for (var j = 0u; j < 4u; j++) {
            b0[j] = textureLoad(bt, vec2u(col, k + j), 0);
            b1[j] = textureLoad(bt, vec2u(col + WG, k + j), 0);
        }
        let own = own_texel(at, vec2i(i32(k / 4u), i32(own_row)));
        for (var i = 0u; i < TM; i++) {
            let a = shared_texel(at, own, i, vec2i(i32(k / 4u), i32(row0 + i)));
            lo[i] = fma(vec4f(a.x), b0[0], lo[i]);
            lo[i] = fma(vec4f(a.y), b0[1], lo[i]);
            lo[i] = fma(vec4f(a.z), b0[2], lo[i]);
            lo[i] = fma(vec4f(a.w), b0[3], lo[i]);
            hi[i] = fma(vec4f(a.x), b1[0], hi[i]);
            hi[i] = fma(vec4f(a.y), b1[1], hi[i]);
            hi[i] = fma(vec4f(a.z), b1[2], hi[i]);
            hi[i] = fma(vec4f(a.w), b1[3], hi[i]);
        }
    }
    let n4 = p.n / 4u;
    for (var i = 0u; i < TM; i++) {
        c[(row0 + i) * n4 + col] = lo[i];
        c[(row0 + i) * n4 + col + WG] = hi[i];
    }
}
