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
    var db: array<u32, PX>;   // offset of (n, first output channel of group g) in dy
    var xo: array<u32, PX>;   // offset of (n, first input channel of the block, iy, ix) in dx
    var ty0: array<i32, PX>;  // iy + PH: oy*SH + ky*DH for a tap that lands here
    var tx0: array<i32, PX>;
    var ok: array<bool, PX>;
    for (var j = 0u; j < PX; j++) {
        let q = block * WG * PX + lid + j * WG;
        ok[j] = q < total;
        let qq = min(q, total - 1u);
        let n = qq / (ph * pw);
        let r = qq % (ph * pw);
        let iy = y_start + SH * (r / pw);
        let ix = x_start + SW * (r % pw);
        ty0[j] = i32(iy + PH);
        tx0[j] = i32(ix + PW);
        db[j] = (n * p.cout + g * cout_g) * oplane;
        xo[j] = (n * p.cin + g * cin_g + ic0) * plane + iy * p.w + ix;
    }

    // Taps outside, output channels inside: a pixel's dy offset for a tap is the same in
    // every output channel, so the index arithmetic and bounds checks run once per tap and
    // the inner loop is loads and multiply-adds only.
    var acc: array<vec4f, 8>;
    for (var ky = KY0; ky < KY1; ky++) {
        if ((ky * DH) % SH != RY) {
            continue;  // this tap never lands on this phase (removed at specialisation)
        }
        for (var kx = KX0; kx < KX1; kx++) {
            if ((kx * DW) % SW != RX) {
                continue;
            }
            var off: array<u32, PX>;  // offset of (n, first channel of group g, oy, ox) in dy
            var hit: array<bool, PX>;
            for (var j = 0u; j < PX; j++) {
                let ty = ty0[j] - i32(ky * DH);
                let tx = tx0[j] - i32(kx * DW);
                let oy = ty / i32(SH);
                let ox = tx / i32(SW);
                hit[j] = ok[j] && ty >= 0 && oy < i32(p.oh) && tx >= 0 && ox < i32(p.ow);
                off[j] = select(0u, db[j] + u32(oy) * p.ow + u32(ox), hit[j]);
            }
            let wtap = (g * cout_g * cin_g + ic0) * taps + ky * KW + kx;
            for (var oc = 0u; oc < cout_g; oc++) {
                let dc = oc * oplane;
                var dv: vec4f;
                for (var j = 0u; j < PX; j++) {
                    dv[j] = select(0.0, dy[off[j] + dc], hit[j]);
                }
                let wi = wtap + oc * cin_g * taps;
                for (var o = 0u; o < ICB; o++) {
                    acc[o] += wt[wi + min(o, nic - 1u) * taps] * dv;
                }
            }
        }
    }

    for (var j = 0u; j < PX; j++) {
        if (!ok[j]) {
            continue;
        }
        for (var o = 0u; o < nic; o++) {
            dx[xo[j] + o * plane] = acc[o][j];
        }
    }
}
