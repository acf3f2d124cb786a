// Depthwise conv2d forward (groups = Cin = Cout) in vec4s, for both kernel families, with the
// training statistics: a workgroup owns one statistics block (STATS_BLOCK = 256 consecutive
// (image, pixel) positions) of one channel, and each invocation 4 consecutive outputs of a row
// at a time (a unit; W % 4 == 0 and OW % 4 == 0, so a unit never leaves its row and its input
// segments are whole vec4s). Per tap row a unit loads the NV vec4s under its 4 outputs once
// (the segment from the first input column it reaches, rounded down to a vec4) and takes every
// tap's 4 inputs out of them at constant offsets: 3 vec4 loads per tap row of a 3x3, where a
// scalar kernel makes 6-9 loads. On a GPU consecutive invocations hold consecutive units
// (coalesced); a CPU driver runs one SIMD vector of them (`KernelPolicy::run_lanes`), each
// walking a run of units (`RUN`).
// The epilogue (bias, residual, activation) from conv2d_epilogue.wgsl, the geometry overrides
// from conv2d_geometry.wgsl, the block statistics from conv2d_stats.wgsl, the segments from
// conv2d_depthwise_rows.wgsl.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override WG: u32 = 64u;
// the kernel flipped (tap t read as KH KW - 1 - t): the input gradient of a stride-1 conv as the
// forward of dy, with no transposed copy of the weights
override FLIP: bool = false;
const PX: u32 = 4u;             // outputs per unit (conv2d_stats' PX)
const BLOCK: u32 = 256u;        // positions per workgroup: kernels::conv::STATS_BLOCK
const UNITS: u32 = BLOCK / PX;
struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<T>>;     // (N, C, H, W / 4)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (C, 1, KH, KW)
// bindings 3 .. 5, 7, 8 (bias, residual, y, y4, res4): conv2d_epilogue; 6 (partials):
// conv2d_stats

// Units per invocation, consecutive: 1 on a GPU (64 lanes, a unit each), a run of them on a
// CPU driver (one SIMD vector of lanes), where a unit after another in the same row takes the
// previous one's vec4s SW along instead of reloading them (`carried`).
override RUN: u32 = UNITS / WG;

// How many of the block's first `left` positions (a multiple of 4) invocation l holds: units
// l RUN .. l RUN + RUN - 1 below left / 4.
fn lane_count(l: u32, left: u32) -> u32 {
    let units = left / PX;
    return PX * min(units - min(units, l * RUN), RUN);
}

// Where tap t's weight sits in the channel's KH x KW.
fn tap(t: u32) -> u32 {
    return select(t, KH * KW - 1u - t, FLIP);
}

// The weighted taps of tap row ky over a unit's 4 outputs, from its segment and the row's
// weights in storage (`taps`, a GPU's path) or in `tw` (a CPU driver's: loaded once per
// invocation, where a storage load at an address every lane shares still costs a gather).
fn tap_row(seg: Segment, taps: u32, tw: ptr<function, array<f32, 49>>, ky: u32) -> vec4f {
    var acc = vec4f(0.0);
    for (var kx = 0u; kx < KW; kx++) {
        let v = tap_inputs(seg, kx);
        if (RUN > 1u) {
            acc += (*tw)[ky * KW + kx] * v;
        } else {
            acc += wt[taps + tap(ky * KW + kx)] * v;
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let plane = p.oh * p.ow;
    let total = p.n * plane;
    let blocks = (total + BLOCK - 1u) / BLOCK;
    // the blocks of channel 0, then of channel 1, ...: neighbouring workgroups read neighbouring
    // memory
    let flat = wid.x + wid.y * nwg.x;
    if (flat >= blocks * p.cout) {
        return;  // a spare workgroup of the folded grid, whole
    }
    let c = flat / blocks;
    let b = flat % blocks;
    let left = min(BLOCK, total - b * BLOCK);
    let w4 = p.w / 4u;
    let taps = c * KH * KW;
    // this invocation's moments over its units: the sums of their distances from `shift`
    var count = 0.0;
    var shift = 0.0;
    var sum = 0.0;
    var squares = 0.0;
    // with RUN > 1: the last unit's segments, KH rows of up to 4 vec4s (a CPU driver keeps a
    // private array in memory it indexes freely; a GPU, RUN = 1, never declares it live)
    var win: array<vec4f, 28>;
    var tw: array<f32, 49>;
    if (RUN > 1u) {
        for (var t = 0u; t < KH * KW; t++) {
            tw[t] = wt[taps + tap(t)];
        }
    }
    // the first unit's place, decoded once; the next units step along the rows
    let q0 = b * BLOCK + lid * RUN * PX;
    var img = q0 / plane;
    var oy = (q0 % plane) / p.ow;
    var ox = (q0 % plane) % p.ow;
    for (var i = 0u; i < RUN; i++) {
        if ((lid * RUN + i) * PX >= left) {
            break;
        }
        if (i > 0u) {
            ox += PX;
            if (ox == p.ow) {
                ox = 0u;
                oy += 1u;
                if (oy == p.oh) {
                    oy = 0u;
                    img += 1u;
                }
            }
        }
        let r = oy * p.ow + ox;
        let col0 = i32(ox * SW) - i32(PW) - i32(OFF);
        let xplane = (img * p.cin + c) * p.h * w4;
        let at = (img * p.cout + c) * plane + r;
        // the unit right of the last one in its row: its segments start SW vec4s along
        let carried = RUN > 1u && i > 0u && ox > 0u;
        var acc = vec4f(0.0);
        for (var ky = KY0; ky < KY1; ky++) {
            let iy = i32(oy * SH + ky * DH) - i32(PH);
            let row = xplane + u32(clamp(iy, 0, i32(p.h) - 1)) * w4;
            let row_in = iy >= 0 && iy < i32(p.h);
            if (RUN > 1u) {
                acc += tap_row(carry_segment(&win, ky * 4u, row, col0, row_in, carried), taps, &tw, ky);
            } else if (row_in) {
                acc += tap_row(load_segment(row, col0), taps, &tw, ky);
            }
        }
        let o = store_output4(acc, c, at);
        if (STATS) {
            // sums of the values' distances from the first unit's mean (close to the lane's, so
            // the shifted sums lose little to cancellation), with no division per unit
            if (i == 0u) {
                shift = ((o.x + o.y) + (o.z + o.w)) * 0.25;
            }
            let d = o - shift;
            sum += (d.x + d.y) + (d.z + d.w);
            squares += dot(d, d);
            count += 4.0;
        }
    }
    if (STATS) {
        let d = sum / max(count, 1.0);
        red_mean[lid] = shift + d;
        red_m2[lid] = max(squares - sum * d, 0.0);
        write_block_stats(lid, left, 1u, b, c, p.cout);
    }
}
