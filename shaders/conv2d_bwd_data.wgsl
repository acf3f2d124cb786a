// conv2d backward, input gradient: dx[n, c, iy, ix] = sum over the output channels of c's group
// and the kernel taps (ky, kx) that map (iy, ix) onto an output pixel
// (oy*S + ky*D - P == iy) of dy[n, oc, oy, ox] * w[oc, c % cin_g, ky, kx]. Each invocation
// gathers (no atomics) one input pixel for ICB input channels of a group: every dy value loaded
// serves ICB sums, which are independent chains. The transposed convolution over the flipped
// kernel.

override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override WG: u32 = 64u;

const ICB: u32 = 4u;

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
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let blocks_g = (cin_g + ICB - 1u) / ICB;
    let blocks = p.groups * blocks_g;
    if (i >= p.n * blocks * p.h * p.w) {
        return;
    }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let blk = (i / (p.w * p.h)) % blocks;
    let n = i / (p.w * p.h * blocks);
    let g = blk / blocks_g;
    let ic0 = (blk % blocks_g) * ICB;
    let nic = min(ICB, cin_g - ic0);
    let taps = KH * KW;
    // lanes past nic reread the last channel's weights; their sums are not stored
    let o1 = min(1u, nic - 1u) * taps;
    let o2 = min(2u, nic - 1u) * taps;
    let o3 = min(3u, nic - 1u) * taps;
    var acc = vec4f(0.0);
    for (var ky = 0u; ky < KH; ky++) {
        let ty = i32(iy + PH) - i32(ky * DH);  // = oy * SH when a tap lands here
        if (ty < 0 || u32(ty) % SH != 0u) {
            continue;
        }
        let oy = u32(ty) / SH;
        if (oy >= p.oh) {
            continue;
        }
        for (var kx = 0u; kx < KW; kx++) {
            let tx = i32(ix + PW) - i32(kx * DW);
            if (tx < 0 || u32(tx) % SW != 0u) {
                continue;
            }
            let ox = u32(tx) / SW;
            if (ox >= p.ow) {
                continue;
            }
            for (var j = 0u; j < cout_g; j++) {
                let oc = g * cout_g + j;
                let d = dy[((n * p.cout + oc) * p.oh + oy) * p.ow + ox];
                let wi = (oc * cin_g + ic0) * taps + ky * KW + kx;
                acc += d * vec4f(wt[wi], wt[wi + o1], wt[wi + o2], wt[wi + o3]);
            }
        }
    }
    let plane = p.h * p.w;
    let out0 = (n * p.cin + g * cin_g + ic0) * plane + iy * p.w + ix;
    for (var j = 0u; j < nic; j++) {
        dx[out0 + j * plane] = acc[j];
    }
}
