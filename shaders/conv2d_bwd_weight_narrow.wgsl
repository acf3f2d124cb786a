// conv2d backward, weight gradient, for groups with few weight columns (Cin/g * KH * KW <= 32,
// e.g. 9 for a depthwise 3x3), where conv2d_bwd_weight, which spreads the columns over its
// lanes, would leave most of them idle:
//   dw[oc, c] = sum over output pixels q of dy[oc, q] * x[column c = (ic, ky, kx) under q].
// A workgroup owns one output channel (grid y) and one chunk of the output pixels (grid x). Its
// lanes take the chunk's pixels in turn (lane l: pixels l, l + WG, ...) and each accumulates
// every column, so one dy load feeds all the columns' multiply-adds. One workgroup reduction
// sums the lanes; each chunk writes its sums to its own slice of `part`, and split_k_reduce adds
// the slices (with one chunk, `part` is dw itself).
// The geometry overrides (KH .. DW, the live taps KY0 .. KX1) come from conv2d_geometry.wgsl,
// which `kernels::shaders` puts in front of this file.

override CIN_G: u32 = 1u;  // input channels per group

const WG: u32 = 64u;
const MAX_COLS: u32 = 32u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    chunk: u32,  // output pixels per chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> x: array<f32>;           // (N, Cin, H, W)
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // (chunks, Cout, COLS)

var<workgroup> red: array<f32, 2048>;  // MAX_COLS x WG

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
    let cols = CIN_G * KH * KW;
    let oc = wid.y;
    let g = oc / (p.cout / p.groups);
    let hw = p.h * p.w;
    let plane = p.oh * p.ow;
    let q0 = wid.x * p.chunk;
    let q1 = min(q0 + p.chunk, p.n * plane);

    // this lane's first pixel as (image, row, column), and the step of WG pixels split the same
    // way, so advancing needs one carry per axis instead of divisions per pixel
    var q = q0 + lid;
    var n = q / plane;
    var oy = (q % plane) / p.ow;
    var ox = q % p.ow;
    let step_n = WG / plane;
    let step_y = (WG % plane) / p.ow;
    let step_x = WG % p.ow;

    var acc: array<f32, MAX_COLS>;
    let rounds = (q1 - q0 + WG - 1u) / WG;
    for (var r = 0u; r < rounds; r++) {
        let valid = q < q1;
        let d = dy[select(0u, (n * p.cout + oc) * plane + oy * p.ow + ox, valid)];
        let dv = select(0.0, d, valid);
        let iy0 = i32(oy * SH) - i32(PH);
        let ix0 = i32(ox * SW) - i32(PW);
        let xb = i32((n * p.cin + g * CIN_G) * hw);
        for (var ky = 0u; ky < KH; ky++) {
            let iy = iy0 + i32(ky * DH);
            // one unsigned compare per axis: a negative coordinate wraps past the bound
            let row_in = valid && u32(iy) < p.h;
            for (var kx = 0u; kx < KW; kx++) {
                let ix = ix0 + i32(kx * DW);
                let inside = row_in && u32(ix) < p.w;
                let at = xb + iy * i32(p.w) + ix;
                for (var ic = 0u; ic < CIN_G; ic++) {
                    let v = x[select(0u, u32(at + i32(ic * hw)), inside)];
                    acc[(ic * KH + ky) * KW + kx] += dv * select(0.0, v, inside);
                }
            }
        }
        q += WG;
        ox += step_x;
        let carry_x = ox >= p.ow;
        ox = select(ox, ox - p.ow, carry_x);
        oy += step_y + u32(carry_x);
        let carry_y = oy >= p.oh;
        oy = select(oy, oy - p.oh, carry_y);
        n += step_n + u32(carry_y);
    }

    for (var c = 0u; c < cols; c++) {
        red[c * WG + lid] = acc[c];
    }
    workgroupBarrier();
    if (lid < cols) {
        var s = 0.0;
        for (var l = 0u; l < WG; l++) {
            s += red[lid * WG + l];
        }
        part[(wid.x * p.cout + oc) * cols + lid] = s;
    }
}
