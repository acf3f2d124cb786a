// Depthwise conv2d weight gradient (groups = Cin = Cout) in vec4s, for both kernel families:
//   dw[c, ky, kx] = sum over (n, oy, ox) of dy[n, c, oy, ox] x[n, c, oy SH - PH + ky DH, ox SW - PW + kx DW].
// A workgroup owns one channel's chunk of output positions (split-K: grid y the chunks, x and z
// the channels; split_k_reduce adds the chunks' slices). Its invocations walk units of 4 outputs of
// a dy row as conv2d_fwd_depthwise_vec4 does: one vec4 of dy, and per tap row the NV vec4s of
// x under the unit's taps, each tap's 4 inputs taken at constant offsets; every tap keeps its
// own sum. On a GPU consecutive invocations take consecutive units (coalesced); on a CPU driver
// (CARRY) each invocation walks a run of them, a unit after another in its row taking the last
// one's vec4s SW along. The invocations' sums then add up through workgroup memory, tap by tap.
// W % 4 == 0, OW % 4 == 0 and at most 7 tap rows and 49 taps (`depthwise_vec4_fits`).

override WG: u32 = 64u;
override CARRY: bool = false;
const PX: u32 = 4u;
// where a unit's first input column sits in its first vec4, and the vec4s under its taps in one
// row: as conv2d_fwd_depthwise_vec4's
override OFF: u32 = (4u - PW % 4u) % 4u;
override NV: u32 = (OFF + 3u * SW + (KW - 1u) * DW + 4u) / 4u;
// workgroup memory for the sums: every invocation's, tap by tap
override RED: u32 = WG * KH * KW;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    chunk: u32,  // output positions per chunk, a multiple of 4
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<vec4f>;       // (N, C, OH, OW / 4)
@group(0) @binding(2) var<storage, read> x: array<vec4f>;        // (N, C, H, W / 4)
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;   // (chunks, C, KH, KW)

var<workgroup> red: array<f32, RED>;

// The vec4 of row `row` (an offset in vec4s) at input column `col` (a multiple of 4), zero
// outside the image. The load itself stays inside the row (`select` evaluates both sides).
fn segment(row: u32, col: i32) -> vec4f {
    let inside = col >= 0 && col < i32(p.w);
    return select(vec4f(0.0), x[row + u32(clamp(col, 0, i32(p.w) - 4)) / 4u], inside);
}

// Element e of the segment a, b, c, d (e < 16): a constant once the tap loops unroll.
fn pick(a: vec4f, b: vec4f, c: vec4f, d: vec4f, e: u32) -> f32 {
    let v = select(select(select(d, c, e < 12u), b, e < 8u), a, e < 4u);
    return v[e & 3u];
}

// The products of dy's unit g with the inputs of each tap of row ky, added to the tap's sum.
fn tap_row(g: vec4f, a: vec4f, b: vec4f, c: vec4f, d: vec4f, ky: u32, acc: ptr<function, array<f32, 49>>) {
    for (var kx = 0u; kx < KW; kx++) {
        let e = OFF + kx * DW;
        let v = vec4f(pick(a, b, c, d, e), pick(a, b, c, d, e + SW), pick(a, b, c, d, e + 2u * SW),
                      pick(a, b, c, d, e + 3u * SW));
        (*acc)[ky * KW + kx] += dot(g, v);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let c = wid.x + wid.z * nwg.x;
    if (c >= p.cout) {
        return;  // a spare workgroup of the folded channels, whole
    }
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let first = wid.y * p.chunk;
    let units = (min(total, first + p.chunk) - first) / PX;
    let w4 = p.w / 4u;
    var acc: array<f32, 49>;
    // with CARRY, the last unit's segments: KH rows of up to 4 vec4s
    var win: array<vec4f, 28>;
    // this invocation's units: a run (CARRY) or every WG-th
    let per = (units + WG - 1u) / WG;
    var u = select(lid, lid * per, CARRY);
    let end = select(units, min(units, u + per), CARRY);
    let step = select(WG, 1u, CARRY);
    var q = first + u * PX;
    var img = q / plane;
    var oy = (q % plane) / p.ow;
    var ox = (q % plane) % p.ow;
    var carried = false;
    for (; u < end; u += step) {
        let r = oy * p.ow + ox;
        let g = dy[((img * p.cout + c) * plane + r) / 4u];
        let col0 = i32(ox * SW) - i32(PW) - i32(OFF);
        let xplane = (img * p.cin + c) * p.h * w4;
        for (var ky = KY0; ky < KY1; ky++) {
            let iy = i32(oy * SH + ky * DH) - i32(PH);
            let row = xplane + u32(clamp(iy, 0, i32(p.h) - 1)) * w4;
            let row_in = iy >= 0 && iy < i32(p.h);
            if (CARRY) {
                let s = ky * 4u;
                for (var k = 0u; k < NV; k++) {
                    if (carried && k + SW < NV) {
                        win[s + k] = win[s + k + SW];
                    } else {
                        win[s + k] = select(vec4f(0.0), segment(row, col0 + i32(4u * k)), row_in);
                    }
                }
                tap_row(g, win[s], win[s + 1u], win[s + 2u], win[s + 3u], ky, &acc);
            } else if (row_in) {
                let s0 = segment(row, col0);
                var s1 = vec4f(0.0);
                var s2 = vec4f(0.0);
                var s3 = vec4f(0.0);
                if (NV > 1u) {
                    s1 = segment(row, col0 + 4);
                }
                if (NV > 2u) {
                    s2 = segment(row, col0 + 8);
                }
                if (NV > 3u) {
                    s3 = segment(row, col0 + 12);
                }
                tap_row(g, s0, s1, s2, s3, ky, &acc);
            }
        }
        // the next unit: along the row (its segments carried), or the next row or image; a
        // GPU's invocation jumps WG units and decodes its place again
        if (CARRY) {
            ox += PX;
            carried = ox < p.ow;
            if (!carried) {
                ox = 0u;
                oy += 1u;
                if (oy == p.oh) {
                    oy = 0u;
                    img += 1u;
                }
            }
        } else {
            q += WG * PX;
            img = q / plane;
            oy = (q % plane) / p.ow;
            ox = (q % plane) % p.ow;
        }
    }
    // the taps' sums over the invocations, in order
    let taps = KH * KW;
    for (var t = 0u; t < taps; t++) {
        red[t * WG + lid] = acc[t];
    }
    workgroupBarrier();
    for (var t = lid; t < taps; t += WG) {
        var s = 0.0;
        for (var l = 0u; l < WG; l++) {
            s += red[t * WG + l];
        }
        dw[(wid.y * p.cout + c) * taps + t] = s;
    }
}
