// conv2d backward, weight gradient, as a split-K implicit GEMM:
//   dW_g (Cout/g, Cin/g*KH*KW) = dY_g (Cout/g, N*OH*OW) x im2col(X)_g^T (N*OH*OW, Cin/g*KH*KW).
// A workgroup owns OCB output channels of one group (grid z), WG*4 weight columns (grid x; a
// column is one (ic, ky, kx)) and one chunk of the output pixels (grid y). It walks its chunk
// pixel by pixel: the pixel is the same for every lane, so the OCB dy loads are uniform, and each
// lane gathers the x value under each of its 4 columns, feeding OCB multiply-adds per gather.
// A lane's 4 columns are one tap of 4 consecutive input channels, so one bounds check per pixel
// serves all 4 gathers.
// Each chunk writes its partial sums to its own slice of `part`; split_k_reduce adds the slices
// (with one chunk, `part` is dw itself): the store is conv2d_bwd_weight_store.wgsl's.
// Only the taps some output pixel reaches inside the image ([KY0, KY1) x [KX0, KX1)) are
// columns of the GEMM; the others read only padding, so their gradient is zero: the
// workgroups of the first column block write those zeros.
// The geometry overrides (KH .. DW, the live taps KY0 .. KX1) come from conv2d_geometry.wgsl;
// `kernels::shaders` puts both preludes in front of this file.

override WG: u32 = 64u;
// output channels per invocation, 1..=8
override OCB: u32 = 8u;

const KC: u32 = 4u;  // weight columns per invocation

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    chunk: u32,  // output pixels per chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> x: array<f32>;           // (N, Cin, H, W)
// binding 3 (the partial sums): conv2d_bwd_weight_store

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let taps = KH * KW;
    let cols = cin_g * taps;
    // the live taps: a window of WKH x WKW; a GEMM column is (ic, tap of the window)
    // (divisors at least 1: a conv whose every tap reads padding has an empty window)
    let wkw = max(KX1 - KX0, 1u);
    let wtaps = max((KY1 - KY0) * (KX1 - KX0), 1u);
    let wcols = cin_g * (KY1 - KY0) * (KX1 - KX0);
    let blocks_g = (cout_g + OCB - 1u) / OCB;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * OCB;
    let noc = min(OCB, (g + 1u) * cout_g - oc0);
    let hw = p.h * p.w;
    let oplane = p.oh * p.ow;

    // this invocation's columns: one live tap (its shift sy, sx) of the input channels
    // KC*quad .. KC*quad+KC-1 (the last quad's channels past cin_g reread the last channel and
    // are not stored); the offset of the first within (n, group g) of x, and each one's column
    // in dw
    let quads = (cin_g + KC - 1u) / KC;
    let units = quads * (KY1 - KY0) * (KX1 - KX0);  // (quad, live tap) pairs
    let unit = wid.x * WG + lid;
    let live = unit < units;
    let u = min(unit, max(units, 1u) - 1u);
    let ky = KY0 + (u % wtaps) / wkw;
    let kx = KX0 + u % wkw;
    let sy = i32(ky * DH);
    let sx = i32(kx * DW);
    let quad = u / wtaps;
    let xoff = sy * i32(p.w) + sx;
    var xch: array<i32, KC>;  // offset of the column's channel plane
    var ok: array<bool, KC>;
    var col: array<u32, KC>;
    for (var j = 0u; j < KC; j++) {
        let ic = quad * KC + j;
        ok[j] = live && ic < cin_g;
        xch[j] = i32(min(ic, cin_g - 1u) * hw);
        col[j] = ic * taps + ky * KW + kx;
    }

    let total = p.n * oplane;
    let q0 = wid.y * p.chunk;
    let q1 = min(q0 + p.chunk, total);
    var n = q0 / oplane;
    var oy = (q0 % oplane) / p.ow;
    var ox = q0 % p.ow;
    // rows past noc reread the last channel of dy; they are not stored
    let last = noc - 1u;
    var acc: array<vec4f, 8>;
    for (var q = q0; q < q1; q++) {
        let iy = i32(oy * SH) - i32(PH);
        let ix = i32(ox * SW) - i32(PW);
        let xb = i32((n * p.cin + g * cin_g) * hw) + iy * i32(p.w) + ix + xoff;
        // one unsigned compare per axis: a negative coordinate wraps past the bound
        let inside = live && u32(iy + sy) < p.h && u32(ix + sx) < p.w;
        var xv: vec4f;
        for (var j = 0u; j < KC; j++) {
            let v = x[select(0u, u32(xb + xch[j]), inside)];
            xv[j] = select(0.0, v, inside);
        }
        let d0 = (n * p.cout + oc0) * oplane + oy * p.ow + ox;
        for (var o = 0u; o < OCB; o++) {
            acc[o] += dy[d0 + min(o, last) * oplane] * xv;
        }
        ox += 1u;
        if (ox == p.ow) {
            ox = 0u;
            oy += 1u;
            if (oy == p.oh) {
                oy = 0u;
                n += 1u;
            }
        }
    }

    // dead taps: columns reading only padding; their zeros come from the first column block
    store_columns(acc, ok, col, wid.y, oc0, noc, p.cout, cols, wid.x == 0u && wcols < cols, lid);
}
