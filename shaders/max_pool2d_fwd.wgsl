// max_pool2d forward: padding counts as -inf; a NaN in the window wins, as in PyTorch.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

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
@group(0) @binding(1) var<storage, read> x: array<T>;          // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> y: array<T>;    // (N, C, OH, OW)

// NaN by its bits: WGSL lets a compiler assume floats are never NaN, so `v != v` may fold to false
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
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
    let plane = i / (p.ow * p.oh);
    // -inf from a runtime bit pattern: WGSL constant expressions cannot hold infinities
    var inf_bits = 0x7f800000u;
    var m = -bitcast<f32>(inf_bits);
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
            let v = f32(x[(plane * p.h + u32(iy)) * p.w + u32(ix)]);
            if (v > m || is_nan(v)) {
                m = v;
            }
        }
    }
    y[i] = T(m);
}
