// conv2d backward, input gradient: dx[n, c, iy, ix] = sum over the output channels of c's group
// and the kernel taps (ky, kx) that map (iy, ix) onto an output pixel
// (oy*S + ky*D - P == iy) of dy[n, oc, oy, ox] * w[oc, c % cin_g, ky, kx]. One invocation per dx
// element gathers (no atomics): the transposed convolution over the flipped kernel.

override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override WG: u32 = 64u;

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
    if (i >= p.n * p.cin * p.h * p.w) {
        return;
    }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let c = (i / (p.w * p.h)) % p.cin;
    let n = i / (p.w * p.h * p.cin);
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let g = c / cin_g;
    let ic = c % cin_g;
    var s = 0.0;
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
                s += dy[((n * p.cout + oc) * p.oh + oy) * p.ow + ox] * wt[((oc * cin_g + ic) * KH + ky) * KW + kx];
            }
        }
    }
    dx[i] = s;
}
