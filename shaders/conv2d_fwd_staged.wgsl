// conv2d forward as an implicit GEMM staged through workgroup memory (the layout of GPU GEMMs):
//   Y_g (Cout/g, N*OH*OW) = W_g (Cout/g, K) x im2col(X)_g (K, N*OH*OW), K = Cin/g*KH*KW.
// A workgroup of 64 invocations owns a TM x 64 tile of Y_g: TM output channels of one group
// (grid z) and 64 output pixels (grid x/y). It walks K in chunks of 16: the weight chunk
// (TM x 16, read along K) and the im2col chunk (16 x 64, gathered from x with zero padding: each
// invocation gathers one pixel's column, its window decoded once) are loaded cooperatively into
// workgroup memory; then each invocation (8 x 8 of them) accumulates a TM/8 x 8 register tile
// from there, so every value is fetched from memory once per workgroup and reused by 8
// invocations from workgroup memory. The tuner times it beside conv2d_fwd (register tiles
// with uniform weight loads, which win on CPU drivers) and keeps the faster per shape.
// The epilogue (bias, residual, activation) comes from conv2d_epilogue.wgsl, the geometry
// overrides (KH .. DW, the live taps KY0 .. KX1) from conv2d_geometry.wgsl: preludes
// `kernels::shaders` puts in front of this file.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

// output channels per workgroup: 16, 32 or 64 (TM / 8 per invocation)
override TM: u32 = 32u;

const TN: u32 = 64u;  // output pixels per workgroup
const TK: u32 = 16u;  // reduction chunk
const RN: u32 = 8u;   // pixels per invocation

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;           // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
// bindings 3 .. 5 (bias, residual, y): conv2d_epilogue

var<workgroup> wtile: array<f32, 1024>;  // [TK][TM]
var<workgroup> xtile: array<f32, 1024>;  // [TK][TN]

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + TM - 1u) / TM;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * TM;
    let nrows = min(TM, (g + 1u) * cout_g - oc0);
    let taps = KH * KW;
    let kdim = cin_g * taps;
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let hw = p.h * p.w;
    let p0 = (wid.x + wid.y * nwg.x) * TN;

    // the pixel whose im2col column this invocation gathers
    let q = p0 + lid;
    let q_ok = q < total;
    let qq = min(q, total - 1u);
    let r = qq % plane;
    let iy0 = i32((r / p.ow) * SH) - i32(PH);
    let ix0 = i32((r % p.ow) * SW) - i32(PW);
    let xbase = ((qq / plane) * p.cin + g * cin_g) * hw;

    // this invocation's register tile: channels ty*RM.., pixels tx*8..
    let rm = TM / 8u;
    let tx = lid % 8u;
    let ty = lid / 8u;
    var acc: array<vec4f, 16>;  // row i: acc[2i] pixels 0..3, acc[2i + 1] pixels 4..7

    for (var k0 = 0u; k0 < kdim; k0 += TK) {
        // weights: TM x TK, consecutive invocations along K (contiguous in memory)
        for (var e = lid; e < TM * TK; e += 64u) {
            let m = e / TK;
            let kk = e % TK;
            let k = k0 + kk;
            let ok = m < nrows && k < kdim;
            let v = wt[select(0u, (oc0 + m) * kdim + k, ok)];
            wtile[kk * TM + m] = select(0.0, v, ok);
        }
        // im2col: one column (pixel) per invocation, TK rows; (ic, ky, kx) is uniform
        for (var kk = 0u; kk < TK; kk++) {
            let k = k0 + kk;
            let ic = k / taps;
            let t = k % taps;
            let iy = iy0 + i32((t / KW) * DH);
            let ix = ix0 + i32((t % KW) * DW);
            let inside = q_ok && k < kdim && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
            let v = f32(x[select(0u, xbase + ic * hw + u32(iy) * p.w + u32(ix), inside)]);
            xtile[kk * TN + lid] = select(0.0, v, inside);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let xb = kk * TN + tx * RN;
            let b0 = vec4f(xtile[xb], xtile[xb + 1u], xtile[xb + 2u], xtile[xb + 3u]);
            let b1 = vec4f(xtile[xb + 4u], xtile[xb + 5u], xtile[xb + 6u], xtile[xb + 7u]);
            for (var i = 0u; i < rm; i++) {
                let a = wtile[kk * TM + ty * rm + i];
                acc[2u * i] += a * b0;
                acc[2u * i + 1u] += a * b1;
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < rm; i++) {
        let m = ty * rm + i;
        if (m >= nrows) {
            continue;
        }
        let oc = oc0 + m;
        for (var j = 0u; j < RN; j++) {
            let qo = p0 + tx * RN + j;
            if (qo >= total) {
                continue;
            }
            let at = ((qo / plane) * p.cout + oc) * plane + qo % plane;
            store_output(acc[2u * i + j / 4u][j % 4u], oc, at);
        }
    }
}
