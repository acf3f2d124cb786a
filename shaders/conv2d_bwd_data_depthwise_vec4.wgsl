// Depthwise conv2d input gradient (groups = Cin = Cout) for strides across that divide 4 (the
// stride-1 convs whose padding the flipped forward cannot take, and above all stride 2), for
// both kernel families:
//   dx[n, c, iy, ix] = sum over the taps (ky, kx) whose (iy + PH - ky DH) / SH = oy and
//   (ix + PW - kx DW) / SW = ox divide exactly and land in dy, of w[c, ky, kx] dy[n, c, oy, ox].
// Each invocation stores 4 consecutive dx values of a row (a unit; W % 4 == 0). Its first
// column is a multiple of 4, so a multiple of SW: whether output j takes tap kx, and which dy
// column relative to the unit's first (ix0 / SW) it reads, are fixed by the geometry. Per tap
// row that reaches dy the unit loads the E dy values its taps read (columns ix0 / SW + EMIN ..
// + EMAX, zero outside dy) and takes each tap's from them at constant places. Workgroups and
// lanes as conv2d_fwd_depthwise_vec4's: a workgroup per 256 positions of one channel, a unit a
// lane on a GPU, runs of units on a CPU driver (CARRY), each taking the last unit's dy values
// 4 / SW along and the channel's taps held in registers.

override WG: u32 = 64u;
const PX: u32 = 4u;
const BLOCK: u32 = 256u;
const UNITS: u32 = BLOCK / PX;
override RUN: u32 = UNITS / WG;
// the dy columns a unit reads, relative to ix0 / SW: (j + PW - kx DW) / SW over the outputs j
// and taps kx that divide (a floor division: the numerator may be negative)
override EMIN: i32 = -((i32(KW) - 1) * i32(DW) - i32(PW) + i32(SW) - 1) / i32(SW);
override EMAX: i32 = (3 + i32(PW)) / i32(SW);
override E: u32 = u32(EMAX - EMIN + 1);   // at most 8 (the host checks)

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read> wt: array<f32>;          // (C, 1, KH, KW)
@group(0) @binding(3) var<storage, read_write> dx: array<vec4f>;  // (N, C, H, W / 4)

// dy at column `col` of the row from `row`, zero outside it.
fn dy_at(row: u32, col: i32) -> f32 {
    let inside = col >= 0 && col < i32(p.ow);
    return select(0.0, dy[row + u32(clamp(col, 0, i32(p.ow) - 1))], inside);
}

// Tap kx's dy value for output j: its place in the unit's window, or -1 where the tap's column
// does not divide by SW (the tap skips that output).
fn place(j: u32, kx: u32) -> i32 {
    let num = i32(j + PW) - i32(kx * DW);
    if (num % i32(SW) != 0) {
        return -1;
    }
    return num / i32(SW) - EMIN;
}

// The window's value at place e (e < 8): a constant once the loops unroll.
fn pick(a: vec4f, b: vec4f, e: i32) -> f32 {
    let v = select(b, a, e < 4);
    return v[u32(e) & 3u];
}

// Tap row ky's contributions to the unit's 4 outputs from its window a, b (values EMIN ..
// EMAX), the weights in storage (`taps`) or in `tw` (RUN > 1).
fn tap_row(a: vec4f, b: vec4f, taps: u32, tw: ptr<function, array<f32, 49>>, ky: u32) -> vec4f {
    var acc = vec4f(0.0);
    for (var kx = 0u; kx < KW; kx++) {
        var w = 0.0;
        if (RUN > 1u) {
            w = (*tw)[ky * KW + kx];
        } else {
            w = wt[taps + ky * KW + kx];
        }
        let e = vec4i(place(0u, kx), place(1u, kx), place(2u, kx), place(3u, kx));
        let v = vec4f(pick(a, b, e.x), pick(a, b, e.y), pick(a, b, e.z), pick(a, b, e.w));
        acc += select(vec4f(0.0), w * v, e >= vec4i(0));
    }
    return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let plane = p.h * p.w;
    let total = p.n * plane;
    let blocks = (total + BLOCK - 1u) / BLOCK;
    let flat = wid.x + wid.y * nwg.x;
    if (flat >= blocks * p.cin) {
        return;
    }
    let c = flat / blocks;
    let b = flat % blocks;
    let left = min(BLOCK, total - b * BLOCK);
    let taps = c * KH * KW;
    // with RUN > 1: the last unit's dy windows, KH rows of 8 values as two vec4s each, and the
    // channel's taps
    var win: array<vec4f, 14>;
    var tw: array<f32, 49>;
    if (RUN > 1u) {
        for (var t = 0u; t < KH * KW; t++) {
            tw[t] = wt[taps + t];
        }
    }
    let q0 = b * BLOCK + lid * RUN * PX;
    var img = q0 / plane;
    var iy = (q0 % plane) / p.w;
    var ix = (q0 % plane) % p.w;
    let shift = i32(PX / SW);  // how far a unit's window moves along the row
    for (var i = 0u; i < RUN; i++) {
        if ((lid * RUN + i) * PX >= left) {
            break;
        }
        if (i > 0u) {
            ix += PX;
            if (ix == p.w) {
                ix = 0u;
                iy += 1u;
                if (iy == p.h) {
                    iy = 0u;
                    img += 1u;
                }
            }
        }
        let carried = RUN > 1u && i > 0u && ix > 0u;
        let col0 = i32(ix / SW) + EMIN;
        let dplane = (img * p.cout + c) * p.oh * p.ow;
        var acc = vec4f(0.0);
        for (var ky = 0u; ky < KH; ky++) {
            let ny = i32(iy + PH) - i32(ky * DH);
            let oy = ny / i32(SH);
            // a tap row whose dy row is not whole or outside dy adds nothing
            let live = ny >= 0 && ny % i32(SH) == 0 && oy < i32(p.oh);
            let row = dplane + u32(clamp(oy, 0, i32(p.oh) - 1)) * p.ow;
            var a = vec4f(0.0);
            var bb = vec4f(0.0);
            if (RUN > 1u) {
                // the window moves `shift` values along: keep the ones it still covers
                let s = ky * 2u;
                var old = array<f32, 8>(win[s].x, win[s].y, win[s].z, win[s].w, win[s + 1u].x,
                                        win[s + 1u].y, win[s + 1u].z, win[s + 1u].w);
                var v: array<f32, 8>;
                for (var k = 0u; k < E; k++) {
                    if (carried && i32(k) + shift < i32(E)) {
                        v[k] = old[i32(k) + shift];
                    } else {
                        v[k] = select(0.0, dy_at(row, col0 + i32(k)), live);
                    }
                }
                a = vec4f(v[0], v[1], v[2], v[3]);
                bb = vec4f(v[4], v[5], v[6], v[7]);
                win[s] = a;
                win[s + 1u] = bb;
                acc += tap_row(a, bb, taps, &tw, ky);
            } else if (live) {
                a = vec4f(dy_at(row, col0), select(0.0, dy_at(row, col0 + 1), E > 1u),
                          select(0.0, dy_at(row, col0 + 2), E > 2u), select(0.0, dy_at(row, col0 + 3), E > 3u));
                if (E > 4u) {
                    bb = vec4f(dy_at(row, col0 + 4), select(0.0, dy_at(row, col0 + 5), E > 5u),
                               select(0.0, dy_at(row, col0 + 6), E > 6u), select(0.0, dy_at(row, col0 + 7), E > 7u));
                }
                acc += tap_row(a, bb, taps, &tw, ky);
            }
        }
        dx[((img * p.cin + c) * plane + iy * p.w + ix) / 4u] = acc;
    }
}
