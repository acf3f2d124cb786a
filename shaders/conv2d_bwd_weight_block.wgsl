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
    // lid / 8 + 32
    let pix = lid % TP;
    let row = lid / TP;
    var col_ok: array<bool, 2>;
    var col_off: array<u32, 2>;   // the column's channel plane offset in x
    var col_dy: array<i32, 2>;    // its tap's offsets from the pixel's window origin
    var col_dx: array<i32, 2>;
    for (var e = 0u; e < 2u; e++) {
        let k = k0 + row + 32u * e;
        col_ok[e] = k < kdim;
        let kk = min(k, kdim - 1u);
        let t = kk % taps;
        col_off[e] = (g * cin_g + kk / taps) * hw;
        col_dy[e] = i32((t / KW) * DH);
        col_dx[e] = i32((t % KW) * DW);
    }

    // compute role: channels ty*4 .. ty*4+3, columns tx*4 .. tx*4+3
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<vec4f, 4>;

    let steps = (q1 - min(q0, q1) + TP - 1u) / TP;
    var ra: array<f32, 2>;
    var rb: array<f32, 2>;
    load_step(q0, q1, pix, row, oc0, nrows, col_ok, col_off, col_dy, col_dx, &ra, &rb);
    store_stage(0u, pix, row, ra, rb);
    workgroupBarrier();
    for (var s = 0u; s < steps; s++) {
        let st = s % 2u;
        let more = s + 1u < steps;
        if (more) {
            load_step(q0 + (s + 1u) * TP, q1, pix, row, oc0, nrows, col_ok, col_off, col_dy, col_dx, &ra, &rb);
        }
        let a0 = st * TP * SV + ty;
        let b0 = st * TP * SV + tx;
        for (var j = 0u; j < TP; j++) {
            let a = da[a0 + j * SV];
            let b = xb[b0 + j * SV];
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
        if (more) {
            store_stage(1u - st, pix, row, ra, rb);
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let m = ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let k = k0 + tx * 4u + j;
            if (m < nrows && k < kdim) {
                part[(wid.y * p.cout + oc0 + m) * kdim + k] = acc[i][j];
            }
        }
    }
}

// The step of pixels from q: for pixel q + pix, dy of channels row and row + 32 and the x values
// under columns row and row + 32 (zero past q1, the group's channels or K, and in the padding).
fn load_step(q: u32, q1: u32, pix: u32, row: u32, oc0: u32, nrows: u32, col_ok: array<bool, 2>,
             col_off: array<u32, 2>, col_dy: array<i32, 2>, col_dx: array<i32, 2>,
             ra: ptr<function, array<f32, 2>>, rb: ptr<function, array<f32, 2>>) {
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
    var ok = col_ok;
    var off = col_off;
    var ty = col_dy;
    var tx = col_dx;
    for (var e = 0u; e < 2u; e++) {
        let m = row + 32u * e;
        let d_ok = q_ok && m < nrows;
        (*ra)[e] = select(0.0, dy[select(0u, (n * p.cout + oc0 + m) * plane + r, d_ok)], d_ok);
        let iy = iy0 + ty[e];
        let ix = ix0 + tx[e];
        let inside = q_ok && ok[e] && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
        (*rb)[e] = select(0.0, x[select(0u, xn + off[e] + u32(iy) * p.w + u32(ix), inside)], inside);
    }
}

// This lane's share of a step into stage `s`.
fn store_stage(s: u32, pix: u32, row: u32, ra: array<f32, 2>, rb: array<f32, 2>) {
    for (var e = 0u; e < 2u; e++) {
        let m = row + 32u * e;
        let at = (s * TP + pix) * SV + m / 4u;
        da[at][m % 4u] = ra[e];
        xb[at][m % 4u] = rb[e];
    }
}
