// conv2d forward on cooperative matrices (tensor cores), for inference on f16 activations (the
// gpu family's, where the adapter runs 16x16x16 f16 x f16 -> f32 products in subgroups of 32;
// a tuner candidate beside conv2d_fwd_block, see kernels::conv::cooperative): the implicit GEMM
// of conv2d_fwd_block,
//   Y_g (Cout/g, N*OH*OW) = W_g (Cout/g, K) x im2col(X)_g (K, N*OH*OW),  K = Cin/g*KH*KW,
// with the products on 16 x 16 x 16 f16 fragments accumulated in f32. A workgroup of 128
// invocations (4 subgroups of 32) owns a 64 x 64 block of Y_g: 64 output channels of one group
// (grid z) by 64 output pixels (grid x/y); each subgroup owns a 32 x 32 quadrant, 2 x 2
// accumulator fragments. K goes in chunks of TK = 32: the workgroup converts the chunk's weights
// (f32, rounded to f16 here: the only rounding beyond f16 storage) and im2col values (f16) into
// workgroup memory with coalesced loads (lanes along K for the weights, along the pixels for x),
// then each subgroup multiplies 2 K-steps of its fragments out of it. The accumulators go
// through workgroup memory once at the end, so the epilogue (bias, residual, activation, from
// conv2d_epilogue.wgsl) stores y along the pixels, coalesced. Rows of every stage are 16-byte
// aligned (fragment loads and stores need it) and padded off a multiple of 128 bytes (banks).
// The registration prepends `enable f16; enable wgpu_cooperative_matrix;` (directives must come
// before the geometry and epilogue preludes).
//
// Measured on an H200 (BENCHMARKS.md): the loads, not the products, bound it; a version with
// the next chunk held in registers and the taps walked by increments ran 1.4x slower there.

alias T = f16;

const BM: u32 = 64u;         // output channels per workgroup
const BN: u32 = 64u;         // output pixels per workgroup
const TK: u32 = 32u;         // K per chunk: two fragment steps
const LDA: u32 = TK + 8u;    // f16 per channel row of the weight stage (80 bytes)
const LDB: u32 = BN + 8u;    // f16 per K row of the pixel stage (144 bytes)
const LDC: u32 = BN + 4u;    // f32 per channel row of the result stage (272 bytes)

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;           // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
// bindings 3 .. 5 (bias, residual, y): conv2d_epilogue

var<workgroup> sa: array<f16, 2560>;  // BM x LDA: weights [channel][k]
var<workgroup> sb: array<f16, 2304>;  // TK x LDB: im2col [k][pixel]
var<workgroup> sc: array<f32, 4352>;  // BM x LDC: the block's sums [channel][pixel]

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + BM - 1u) / BM;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * BM;
    let nrows = min(BM, (g + 1u) * cout_g - oc0);
    let taps = KH * KW;
    let kdim = cin_g * taps;
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let hw = p.h * p.w;
    let block = wid.x + wid.y * nwg.x;
    let p0 = block * BN;

    // loader of the pixel stage: column `col`, K rows krow0 + 2e
    let col = lid % BN;
    let krow0 = lid / BN;
    let q = p0 + col;
    let q_ok = q < total;
    let qq = min(q, total - 1u);
    let r = qq % plane;
    let iy0 = i32((r / p.ow) * SH) - i32(PH);
    let ix0 = i32((r % p.ow) * SW) - i32(PW);
    let xbase = ((qq / plane) * p.cin + g * cin_g) * hw;

    // this subgroup's quadrant (the policy runs this kernel where subgroups are 32 wide: 4 of them)
    let wm = (sg / 2u) * 32u;
    let wn = (sg % 2u) * 32u;
    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();

    let chunks = (kdim + TK - 1u) / TK;
    for (var c = 0u; c < chunks; c++) {
        let k0 = c * TK;
        for (var e = 0u; e < 16u; e++) {
            // weight e: channel i / TK, K column i % TK (consecutive lanes along K)
            let i = lid + 128u * e;
            let m = i / TK;
            let k = k0 + i % TK;
            let ok = m < nrows && k < kdim;
            sa[m * LDA + i % TK] = f16(select(0.0, wt[select(0u, (oc0 + m) * kdim + k, ok)], ok));
            let kr = krow0 + 2u * e;
            sb[kr * LDB + col] = load_pixel(k0 + kr, q_ok, iy0, ix0, xbase, kdim, taps, hw);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk += 16u) {
            // every offset and stride a `let` of its own (as other naga users of these
            // builtins write them, for its SPIR-V)
            let lda = LDA;
            let ldb = LDB;
            let ia0 = wm * LDA + kk;
            let ia1 = ia0 + 16u * LDA;
            let ib0 = kk * LDB + wn;
            let ib1 = ib0 + 16u;
            let a0 = coopLoadT<coop_mat16x16<f16, A>>(&sa[ia0], lda);
            let a1 = coopLoadT<coop_mat16x16<f16, A>>(&sa[ia1], lda);
            let b0 = coopLoadT<coop_mat16x16<f16, B>>(&sb[ib0], ldb);
            let b1 = coopLoadT<coop_mat16x16<f16, B>>(&sb[ib1], ldb);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
        }
        workgroupBarrier();
    }
    let ldc = LDC;
    let ic00 = wm * LDC + wn;
    let ic01 = ic00 + 16u;
    let ic10 = ic00 + 16u * LDC;
    let ic11 = ic10 + 16u;
    coopStoreT(c00, &sc[ic00], ldc);
    coopStoreT(c01, &sc[ic01], ldc);
    coopStoreT(c10, &sc[ic10], ldc);
    coopStoreT(c11, &sc[ic11], ldc);
    workgroupBarrier();

    // epilogue: consecutive lanes on consecutive pixels of one channel
    for (var e = 0u; e < 32u; e++) {
        let i = lid + 128u * e;
        let m = i / BN;
        let j = i % BN;
        let qo = p0 + j;
        if (m < nrows && qo < total) {
            let oc = oc0 + m;
            let at = ((qo / plane) * p.cout + oc) * plane + qo % plane;
            store_output(sc[m * LDC + j], oc, at);
        }
    }
}

// The im2col value of K row k for this lane's pixel: x at (channel, tap) k, zero in the padding
// or past K.
fn load_pixel(k: u32, q_ok: bool, iy0: i32, ix0: i32, xbase: u32, kdim: u32, taps: u32, hw: u32) -> f16 {
    let ic = k / taps;
    let t = k % taps;
    let iy = iy0 + i32((t / KW) * DH);
    let ix = ix0 + i32((t % KW) * DW);
    let inside = q_ok && k < kdim && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    return select(f16(0.0), x[select(0u, xbase + ic * hw + u32(iy) * p.w + u32(ix), inside)], inside);
}
