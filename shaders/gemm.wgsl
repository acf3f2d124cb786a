// gemm: C (M, N) = op(A) (M, K) * op(B) (K, N) [+ bias (N)], op = optional transpose.
// linear is x (N, in) * W^T with W (out, in): TRANS_B. Tiles of BM x BN are staged through
// workgroup memory, BK deep; each of the 16 x 16 invocations keeps a TM x TN register tile.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const THREADS: u32 = 256u;

struct Params { m: u32, n: u32, k: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;          // (M, K), or (K, M) with TRANS_A
@group(0) @binding(2) var<storage, read> b: array<f32>;        // (K, N), or (N, K) with TRANS_B
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // (N), unread without HAS_BIAS
@group(0) @binding(4) var<storage, read_write> c: array<T>;    // (M, N)

var<workgroup> a_tile: array<f32, 1024>;  // BK x BM, k-major
var<workgroup> b_tile: array<f32, 1024>;  // BK x BN, k-major

fn load_a(row: u32, col: u32) -> f32 {
    if (row >= p.m || col >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return f32(a[col * p.m + row]);
    }
    return f32(a[row * p.k + col]);
}

fn load_b(row: u32, col: u32) -> f32 {
    if (row >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + row];
    }
    return b[row * p.n + col];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u) {
    let tid = lid3.y * 16u + lid3.x;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var l = 0u; l < (BK * BM) / THREADS; l++) {
            let e = tid + l * THREADS;
            // Consecutive invocations walk along K when A is row-major (contiguous reads).
            var kk = e % BK;
            var mm = e / BK;
            if (TRANS_A) {
                kk = e / BM;
                mm = e % BM;
            }
            a_tile[kk * BM + mm] = load_a(row0 + mm, k0 + kk);
        }
        for (var l = 0u; l < (BK * BN) / THREADS; l++) {
            let e = tid + l * THREADS;
            var kk = e / BN;
            var nn = e % BN;
            if (TRANS_B) {
                kk = e % BK;
                nn = e / BK;
            }
            b_tile[kk * BN + nn] = load_b(k0 + kk, col0 + nn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < TM; i++) {
                av[i] = a_tile[kk * BM + lid3.y + i * 16u];
            }
            for (var j = 0u; j < TN; j++) {
                bv[j] = b_tile[kk * BN + lid3.x + j * 16u];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] += av[i] * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        let row = row0 + lid3.y + i * 16u;
        for (var j = 0u; j < TN; j++) {
            let col = col0 + lid3.x + j * 16u;
            if (row < p.m && col < p.n) {
                var v = acc[i * TN + j];
                if (HAS_BIAS) {
                    v += bias[col];
                }
                c[row * p.n + col] = T(v);
            }
        }
    }
}
