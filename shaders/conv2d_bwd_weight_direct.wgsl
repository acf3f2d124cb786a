// conv2d backward, weight gradient: dw[oc, ic, ky, kx] = sum over (n, oy, ox) of
// dy[n, oc, oy, ox] * x[n, g*cin_g + ic, oy*S + ky*D - P, ox*S + kx*D - P].
// One invocation reduces over N * OH * OW for one tap (ic, ky, kx) and OCB output channels of a
// group: each x value loaded serves OCB weights, and the OCB sums are independent chains.
// Used where a group has too few weight columns (Cin/g * KH * KW, e.g. 9 for a depthwise 3x3) to
// fill the lanes of conv2d_bwd_weight, which spreads those columns over the invocations.

override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override WG: u32 = 64u;

const OCB: u32 = 4u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (N, Cin, H, W)
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;  // (Cout, Cin/groups, KH, KW)

// Smallest o >= 0 with o*stride >= lo.
fn first_out(lo: i32, stride: u32) -> u32 {
    if (lo <= 0) {
        return 0u;
    }
    return (u32(lo) + stride - 1u) / stride;
}

// One past the largest o < count with o*stride < hi.
fn end_out(hi: i32, stride: u32, count: u32) -> u32 {
    if (hi <= 0) {
        return 0u;
    }
    return min(count, (u32(hi) + stride - 1u) / stride);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let blocks_g = (cout_g + OCB - 1u) / OCB;
    if (i >= p.groups * blocks_g * cin_g * KH * KW) {
        return;
    }
    let kx = i % KW;
    let ky = (i / KW) % KH;
    let ic = (i / (KW * KH)) % cin_g;
    let blk = i / (KW * KH * cin_g);
    let g = blk / blocks_g;
    let oc0 = g * cout_g + (blk % blocks_g) * OCB;
    let noc = min(OCB, (g + 1u) * cout_g - oc0);
    let c = g * cin_g + ic;
    let plane = p.oh * p.ow;
    // lanes past noc reread the last channel; their sums are not stored
    let o1 = min(1u, noc - 1u) * plane;
    let o2 = min(2u, noc - 1u) * plane;
    let o3 = min(3u, noc - 1u) * plane;
    // The output rows/columns whose tap (ky, kx) lands inside the input, computed once so the
    // inner loops carry no bounds checks: iy = oy*SH + ky*DH - PH in [0, H).
    let oy0 = first_out(i32(PH) - i32(ky * DH), SH);
    let oy1 = end_out(i32(p.h) + i32(PH) - i32(ky * DH), SH, p.oh);
    let ox0 = first_out(i32(PW) - i32(kx * DW), SW);
    let ox1 = end_out(i32(p.w) + i32(PW) - i32(kx * DW), SW, p.ow);
    var acc = vec4f(0.0);
    for (var n = 0u; n < p.n; n++) {
        let dyb = (n * p.cout + oc0) * plane;
        let xb = (n * p.cin + c) * p.h;
        for (var oy = oy0; oy < oy1; oy++) {
            let dyr = dyb + oy * p.ow;
            let xr = (xb + oy * SH + ky * DH - PH) * p.w + kx * DW - PW;
            for (var ox = ox0; ox < ox1; ox++) {
                let d = dyr + ox;
                acc += x[xr + ox * SW] * vec4f(dy[d], dy[d + o1], dy[d + o2], dy[d + o3]);
            }
        }
    }
    let tap = (ic * KH + ky) * KW + kx;
    for (var j = 0u; j < noc; j++) {
        dw[(oc0 + j) * cin_g * KH * KW + tap] = acc[j];
    }
}
