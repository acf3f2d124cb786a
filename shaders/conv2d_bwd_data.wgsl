// conv2d backward, input gradient, as an implicit GEMM over the flipped kernel (the transposed
// convolution): dx[n, c, iy, ix] = sum over the output channels oc of c's group and the taps
// (ky, kx) with oy*S + ky*D - P == iy (and the same for x) of dy[n, oc, oy, ox] * w[oc, c, ky, kx].
// Laid out like conv2d_fwd: a workgroup owns ICB input channels of one group (grid z, so every
// weight load is uniform) and WG*4 input pixels; each invocation keeps an ICB x 4 register tile
// and gathers dy once per (tap, output channel, pixel) for ICB sums. No atomics.
// With stride S > 1 only 1 in S*S taps lands on a given input pixel, so the pixels are split by
// phase ((iy + P) % S, (ix + P) % S), one dispatch per phase with the phase as override
// constants RY, RX: the taps that cannot land are removed when the pipeline is specialised.
// Taps outside, output channels inside: groups with few output channels (depthwise) run
// conv2d_bwd_data_narrow instead.
// The geometry overrides (KH .. DW, the live taps KY0 .. KX1) come from conv2d_geometry.wgsl,
// which `kernels::shaders` puts in front of this file.

override WG: u32 = 64u;
// input channels per invocation, 1..=8
override ICB: u32 = 8u;
// the stride phase of this dispatch's pixels: (iy + PH) % SH == RY, (ix + PW) % SW == RX
override RY: u32 = 0u;
override RX: u32 = 0u;

const PX: u32 = 4u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (N, Cin, H, W)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let blocks_g = (cin_g + ICB - 1u) / ICB;
    let blk = wid.z;
    let g = blk / blocks_g;
    let ic0 = (blk % blocks_g) * ICB;  // within the group
    let nic = min(ICB, cin_g - ic0);
    let taps = KH * KW;

    let plane = p.h * p.w;
    let oplane = p.oh * p.ow;
    // the input pixels of this phase: rows iy = y_start + SH * t, columns likewise
    let y_start = (RY + SH - PH % SH) % SH;
    let x_start = (RX + SW - PW % SW) % SW;
    let ph = (p.h + SH - 1u - y_start) / SH;
    let pw = (p.w + SW - 1u - x_start) / SW;
    let total = p.n * ph * pw;
    if (total == 0u) {
        return;  // a phase with no pixels (input smaller than the stride)
    }
    let block = wid.x + wid.y * nwg.x;
    // this invocation's pixels, component j of each vector: pixel j. Every private value below
    // is a vector or an array indexed by constants only (the loops over the pixels and the
    // tile's rows are written out): a private array indexed by a loop variable may be kept in
    // indexable memory (NVIDIA's local memory).
    let q = block * WG * PX + lid + vec4u(0u, 1u, 2u, 3u) * WG;
    let ok = q < vec4u(total);
    let qq = min(q, vec4u(total - 1u));
    let n = qq / (ph * pw);
    let r = qq % (ph * pw);
    let iy = y_start + SH * (r / pw);
    let ix = x_start + SW * (r % pw);
    let ty0 = vec4i(iy + PH);  // iy + PH: oy*SH + ky*DH for a tap that lands here
    let tx0 = vec4i(ix + PW);
    let db = (n * p.cout + g * cout_g) * oplane;  // offset of (n, first output channel of group g) in dy
    let xo = (n * p.cin + g * cin_g + ic0) * plane + iy * p.w + ix;  // of (n, ic0, iy, ix) in dx

    // Taps outside, output channels inside: a pixel's dy offset for a tap is the same in
    // every output channel, so the index arithmetic and bounds checks run once per tap and
    // the inner loop is loads and multiply-adds only.
    var acc: array<vec4f, 8>;  // acc[o]: input channel ic0 + o at the 4 pixels
    for (var ky = KY0; ky < KY1; ky++) {
        if ((ky * DH) % SH != RY) {
            continue;  // this tap never lands on this phase (removed at specialisation)
        }
        for (var kx = KX0; kx < KX1; kx++) {
            if ((kx * DW) % SW != RX) {
                continue;
            }
            let ty = ty0 - i32(ky * DH);
            let tx = tx0 - i32(kx * DW);
            let oy = ty / i32(SH);
            let ox = tx / i32(SW);
            let hit = ok & (ty >= vec4i(0)) & (oy < vec4i(i32(p.oh))) & (tx >= vec4i(0)) & (ox < vec4i(i32(p.ow)));
            // offset of (n, first channel of group g, oy, ox) in dy
            let off = select(vec4u(0u), db + vec4u(oy) * p.ow + vec4u(ox), hit);
            let wtap = (g * cout_g * cin_g + ic0) * taps + ky * KW + kx;
            for (var oc = 0u; oc < cout_g; oc++) {
                let dc = oc * oplane;
                let dv = vec4f(dy[off.x + dc], dy[off.y + dc], dy[off.z + dc], dy[off.w + dc]);
                mac_rows(&acc, wtap + oc * cin_g * taps, taps, nic, select(vec4f(0.0), dv, hit));
            }
        }
    }

    store4(acc[0], xo, ok);
    if (ICB > 1u && nic > 1u) {
        store4(acc[1], xo + plane, ok);
    }
    if (ICB > 2u && nic > 2u) {
        store4(acc[2], xo + 2u * plane, ok);
    }
    if (ICB > 3u && nic > 3u) {
        store4(acc[3], xo + 3u * plane, ok);
    }
    if (ICB > 4u && nic > 4u) {
        store4(acc[4], xo + 4u * plane, ok);
    }
    if (ICB > 5u && nic > 5u) {
        store4(acc[5], xo + 5u * plane, ok);
    }
    if (ICB > 6u && nic > 6u) {
        store4(acc[6], xo + 6u * plane, ok);
    }
    if (ICB > 7u && nic > 7u) {
        store4(acc[7], xo + 7u * plane, ok);
    }
}

// The tile's ICB rows += each row's weight at `wi` (rows `stride` apart) x the 4 pixels v. Rows
// past nic reread the last channel's weights; they are not stored.
fn mac_rows(acc: ptr<function, array<vec4f, 8>>, wi: u32, stride: u32, nic: u32, v: vec4f) {
    (*acc)[0] += wt[wi] * v;
    if (ICB > 1u) {
        (*acc)[1] += wt[wi + min(1u, nic - 1u) * stride] * v;
    }
    if (ICB > 2u) {
        (*acc)[2] += wt[wi + min(2u, nic - 1u) * stride] * v;
    }
    if (ICB > 3u) {
        (*acc)[3] += wt[wi + min(3u, nic - 1u) * stride] * v;
    }
    if (ICB > 4u) {
        (*acc)[4] += wt[wi + min(4u, nic - 1u) * stride] * v;
    }
    if (ICB > 5u) {
        (*acc)[5] += wt[wi + min(5u, nic - 1u) * stride] * v;
    }
    if (ICB > 6u) {
        (*acc)[6] += wt[wi + min(6u, nic - 1u) * stride] * v;
    }
    if (ICB > 7u) {
        (*acc)[7] += wt[wi + min(7u, nic - 1u) * stride] * v;
    }
}

// One row's 4 values v into dx at `at` where `ok`.
fn store4(v: vec4f, at: vec4u, ok: vec4<bool>) {
    if (ok.x) {
        dx[at.x] = v.x;
    }
    if (ok.y) {
        dx[at.y] = v.y;
    }
    if (ok.z) {
        dx[at.z] = v.z;
    }
    if (ok.w) {
        dx[at.w] = v.w;
    }
}
