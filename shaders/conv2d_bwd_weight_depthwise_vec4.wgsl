// Depthwise conv2d weight gradient (groups = Cin = Cout) in vec4s, for both kernel families:
//   dw[c, ky, kx] = sum over (n, oy, ox) of dy[n, c, oy, ox] x[n, c, oy SH - PH + ky DH, ox SW - PW + kx DW].
// A workgroup owns one channel's chunk of output positions (split-K: grid y the chunks, x and z
// the channels; split_k_reduce adds the chunks' slices). Its invocations walk units of 4 outputs of
// a dy row as conv2d_fwd_depthwise_vec4 does: one vec4 of dy, and per tap row the NV vec4s of
// x under the unit's taps, each tap's 4 inputs taken at constant offsets; every tap keeps its
// own sum. On a GPU consecutive invocations take consecutive units (coalesced); on a CPU driver
// (CARRY) each invocation walks a run of them, a unit after another in its row taking the last
// one's vec4s SW along. The invocations' sums then add up through workgroup memory, tap by tap.
// W % 4 == 0, OW % 4 == 0 and at most 7 tap rows and 49 taps (`depthwise_vec4_fits`). The
// segments from conv2d_depthwise_rows.wgsl.

override WG: u32 = 64u;
override CARRY: bool = false;
const PX: u32 = 4u;
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

// The products of dy's unit g with the inputs of each tap of row ky (from the unit's segment),
// added to the tap's sum.
fn tap_row(g: vec4f, seg: Segment, ky: u32, acc: ptr<function, array<f32, 49>>) {
    for (var kx = 0u; kx < KW; kx++) {
        (*acc)[ky * KW + kx] += dot(g, tap_inputs(seg, kx));
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
                tap_row(g, carry_segment(&win, ky * 4u, row, col0, row_in, carried), ky, &acc);
            } else if (row_in) {
                tap_row(g, load_segment(row, col0), ky, &acc);
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
