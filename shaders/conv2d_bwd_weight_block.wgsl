// conv2d weight gradient for GPUs (the gpu kernel family): a split-K implicit GEMM in block
// tiles staged through workgroup memory,
//   dW_g (Cout/g, K) = dY_g (Cout/g, N*OH*OW) x im2col(X)_g^T (N*OH*OW, K),  K = Cin/g*KH*KW.
// A workgroup of 256 invocations owns a 64 x 64 block of dW_g (64 output channels of a group,
// grid z; 64 weight columns, grid x) and one chunk of the output pixels (grid y): the split-K
// that `kernels::conv` sizes to fill the device. It walks its chunk 8 pixels at a time,
// double-buffered like conv2d_fwd_block: the dY slice (64 channels x 8 pixels) and the im2col
// slice (8 pixels x 64 columns) are loaded with consecutive lanes along the pixels (contiguous
// in dy, and in x for a stride-1 row), each lane's two columns decoded once and its pixel once
// per step; each invocation keeps a 4 x 4 register tile (4 channels x 4 consecutive columns).
// Each chunk writes its partial sums to its own slice of `part` (with one chunk, `part` is dw),
// which split_k_reduce adds.

const BM: u32 = 64u;        // output channels per workgroup
const BN: u32 = 64u;        // weight columns per workgroup
const TP: u32 = 8u;         // pixels per step
const SV: u32 = 17u;        // vec4s per pixel row of a stage: 16 + 1 of padding, so the 8
                            // pixel rows one warp stores land in different banks

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    chunk: u32,  // output pixels per chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> x: array<f32>;           // (N, Cin, H, W)
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // (chunks, Cout, K)

var<workgroup> da: array<vec4f, 272>;  // 2 stages x TP x SV: dy [pixel][channel]
var<workgroup> xb: array<vec4f, 272>;  // 2 stages x TP x SV: im2col [pixel][column]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let taps = KH * KW;
    let kdim = cin_g * taps;
    let blocks_g = (cout_g + BM - 1u) / BM;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * BM;
    let nrows = min(BM, (g + 1u) * cout_g - oc0);
    let k0 = wid.x * BN;
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let hw = p.h * p.w;
    let q0 = wid.y * p.chunk;
    let q1 = min(q0 + p.chunk, total);

    // loader role: pixel `pix` of each step; rows (channel for dy, column for x) lid / 8 and
    // lid / 8 + 32, the components x and y of the vectors below. Every private value of this
    // kernel is a vector or matrix indexed by constants only: a private array indexed by a
    // loop variable may be kept in indexable memory (NVIDIA's local memory).
    let pix = lid % TP;
    let row = lid / TP;
    let k = vec2u(k0 + row) + vec2u(0u, 32u);
    let col_ok = k < vec2u(kdim);
    let kk = min(k, vec2u(kdim - 1u));
    let t = kk % taps;
    let col_off = (g * cin_g + kk / taps) * hw;  // the columns' channel plane offsets in x
    let col_dy = vec2i((t / KW) * DH);           // their taps' offsets from the pixel's window origin
    let col_dx = vec2i((t % KW) * DW);

    // compute role: channels ty*4 .. ty*4+3, columns tx*4 .. tx*4+3
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc = mat4x4f();  // acc[i]: channel ty*4+i at the 4 columns

    let steps = (q1 - min(q0, q1) + TP - 1u) / TP;
    var r = load_step(q0, q1, pix, row, oc0, nrows, col_ok, col_off, col_dy, col_dx);
    store_stage(0u, pix, row, r);
    workgroupBarrier();
    for (var s = 0u; s < steps; s++) {
        let st = s % 2u;
        let more = s + 1u < steps;
        if (more) {
            r = load_step(q0 + (s + 1u) * TP, q1, pix, row, oc0, nrows, col_ok, col_off, col_dy, col_dx);
        }
        let a0 = st * TP * SV + ty;
        let b0 = st * TP * SV + tx;
        for (var j = 0u; j < TP; j++) {
            let a = da[a0 + j * SV];
            let b = xb[b0 + j * SV];
            acc = mat4x4f(acc[0] + a.x * b, acc[1] + a.y * b, acc[2] + a.z * b, acc[3] + a.w * b);
        }
        if (more) {
            store_stage(1u - st, pix, row, r);
        }
        workgroupBarrier();
    }

    // the lane's 4 channels at its 4 consecutive columns (those inside K)
    let kc = k0 + tx * 4u;
    let ok = vec4u(kc) + vec4u(0u, 1u, 2u, 3u) < vec4u(kdim);
    let m = ty * 4u;
    let at = (wid.y * p.cout + oc0 + m) * kdim + kc;
    if (m < nrows) {
        store_row(acc[0], at, ok);
    }
    if (m + 1u < nrows) {
        store_row(acc[1], at + kdim, ok);
    }
    if (m + 2u < nrows) {
        store_row(acc[2], at + 2u * kdim, ok);
    }
    if (m + 3u < nrows) {
        store_row(acc[3], at + 3u * kdim, ok);
    }
}

// 4 consecutive columns of one row of the partial sums, where `ok`.
fn store_row(v: vec4f, at: u32, ok: vec4<bool>) {
    if (ok.x) {
        part[at] = v.x;
    }
    if (ok.y) {
        part[at + 1u] = v.y;
    }
    if (ok.z) {
        part[at + 2u] = v.z;
    }
    if (ok.w) {
        part[at + 3u] = v.w;
    }
}

// A lane's values of one step: dy of channels row and row + 32 (a), the x values under columns
// row and row + 32 (b).
struct Step {
    a: vec2f,
    b: vec2f,
}

// The step of pixels from q: for pixel q + pix, dy of channels row and row + 32 and the x values
// under columns row and row + 32 (zero past q1, the group's channels or K, and in the padding).
fn load_step(q: u32, q1: u32, pix: u32, row: u32, oc0: u32, nrows: u32, col_ok: vec2<bool>,
             col_off: vec2u, col_dy: vec2i, col_dx: vec2i) -> Step {
    let qi = q + pix;
    let q_ok = qi < q1;
    let qq = select(0u, qi, q_ok);
    let plane = p.oh * p.ow;
    let n = qq / plane;
    let r = qq % plane;
    let oy = r / p.ow;
    let ox = r % p.ow;
    let iy0 = i32(oy * SH) - i32(PH);
    let ix0 = i32(ox * SW) - i32(PW);
    let xn = n * p.cin * p.h * p.w;
    let m = vec2u(row) + vec2u(0u, 32u);
    let d_ok = vec2<bool>(q_ok) & (m < vec2u(nrows));
    let d_at = select(vec2u(0u), (n * p.cout + oc0 + m) * plane + r, d_ok);
    let iy = iy0 + col_dy;
    let ix = ix0 + col_dx;
    let inside = vec2<bool>(q_ok) & col_ok & (iy >= vec2i(0)) & (iy < vec2i(i32(p.h))) & (ix >= vec2i(0))
        & (ix < vec2i(i32(p.w)));
    let x_at = select(vec2u(0u), xn + col_off + vec2u(iy) * p.w + vec2u(ix), inside);
    return Step(select(vec2f(0.0), vec2f(dy[d_at.x], dy[d_at.y]), d_ok),
                select(vec2f(0.0), vec2f(x[x_at.x], x[x_at.y]), inside));
}

// This lane's share of a step into stage `s`: rows row and row + 32 (8 vec4s further).
fn store_stage(s: u32, pix: u32, row: u32, r: Step) {
    let at = (s * TP + pix) * SV + row / 4u;
    da[at][row % 4u] = r.a.x;
    xb[at][row % 4u] = r.b.x;
    da[at + 8u][row % 4u] = r.a.y;
    xb[at + 8u][row % 4u] = r.b.y;
}
