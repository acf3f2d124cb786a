// max_pool2d backward: each input element gathers dy from the output windows whose maximum it
// is. The maximum is recomputed as PyTorch picks it (the first in scan order wins ties, a NaN
// wins; with all -inf, the first valid position), so no index tensor is stored.

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
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (N, C, H, W)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (N, C, H, W)

// Flat index (iy * W + ix) of the maximum of window (oy, ox) in `plane`.
fn argmax(plane: u32, oy: u32, ox: u32) -> u32 {
    // -inf from a runtime bit pattern: WGSL constant expressions cannot hold infinities
    var inf_bits = 0x7f800000u;
    var m = -bitcast<f32>(inf_bits);
    var at = 0xffffffffu;
    var first = true;
    for (var ky = 0u; ky < KH; ky++) {
        let iy = i32(oy * SH + ky * DH) - i32(PH);
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        for (var kx = 0u; kx < KW; kx++) {
            let ix = i32(ox * SW + kx * DW) - i32(PW);
            if (ix < 0 || ix >= i32(p.w)) {
                continue;
            }
            let pos = u32(iy) * p.w + u32(ix);
            let v = x[plane * p.h * p.w + pos];
            if (first) {
                at = pos;
                first = false;
            }
            if (v > m || v != v) {
                m = v;
                at = pos;
            }
        }
    }
    return at;
}

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
            if (argmax(plane, oy, ox) == me) {
                s += dy[(plane * p.oh + oy) * p.ow + ox];
            }
        }
    }
    dx[i] = s;
}
