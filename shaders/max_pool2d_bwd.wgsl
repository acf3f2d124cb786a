// max_pool2d backward: each input element gathers dy from the output windows whose maximum it
// is, by the window maxima's positions that max_pool2d_argmax wrote to a scratch buffer (so the
// graph stores no index tensor: the positions are recomputed from x in the backward).

override KH: u32 = 2u;
override KW: u32 = 2u;
override SH: u32 = 2u;
override SW: u32 = 2u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override WG: u32 = 256u;

struct Params { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read> idx: array<u32>;       // (N, C, OH, OW), from max_pool2d_argmax
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (N, C, H, W)

// Flat index (iy * W + ix) of the maximum of window (oy, ox) in `plane`.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.nc * p.h * p.w) {
        return;
    }
    let ix = i % p.w;
    let iy = (i / p.w) % p.h;
    let plane = i / (p.w * p.h);
    let me = iy * p.w + ix;
    var s = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let ty = i32(iy + PH) - i32(ky * DH);
        if (ty < 0 || u32(ty) % SH != 0u || u32(ty) / SH >= p.oh) {
            continue;
        }
        let oy = u32(ty) / SH;
        for (var kx = 0u; kx < KW; kx++) {
            let tx = i32(ix + PW) - i32(kx * DW);
            if (tx < 0 || u32(tx) % SW != 0u || u32(tx) / SW >= p.ow) {
                continue;
            }
            let ox = u32(tx) / SW;
            let o = (plane * p.oh + oy) * p.ow + ox;
            s += select(0.0, dy[o], idx[o] == me);
        }
    }
    dx[i] = s;
}
