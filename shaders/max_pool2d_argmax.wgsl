// max_pool2d backward, first pass: the position of each output window's maximum, chosen as
// PyTorch picks it (the first in scan order wins ties, a NaN wins; with all -inf, the first valid
// position), written as a plane offset. max_pool2d_bwd then reads one index per covering window
// instead of recomputing each window's maximum for every input it covers (9x fewer loads for
// 3x3 windows).

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
@group(0) @binding(1) var<storage, read> x: array<f32>;          // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;  // (N, C, OH, OW): iy * W + ix

// NaN by its bits: WGSL lets a compiler assume floats are never NaN, so `v != v` may fold to false
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

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
            if (v > m || is_nan(v)) {
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
    if (i >= p.nc * p.oh * p.ow) {
        return;
    }
    let ox = i % p.ow;
    let oy = (i / p.ow) % p.oh;
    idx[i] = argmax(i / (p.ow * p.oh), oy, ox);
}
