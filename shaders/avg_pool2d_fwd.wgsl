// avg_pool2d forward with PyTorch's divisor: the window clipped to the padded input when
// COUNT_INCLUDE_PAD (the default), else the window clipped to the input itself.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override KH: u32 = 2u;
override KW: u32 = 2u;
override SH: u32 = 2u;
override SW: u32 = 2u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override COUNT_INCLUDE_PAD: bool = true;
override WG: u32 = 256u;

struct Params { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;          // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> y: array<T>;    // (N, C, OH, OW)

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
    let y0 = i32(oy * SH) - i32(PH);
    let x0 = i32(ox * SW) - i32(PW);
    let y1 = min(y0 + i32(KH), i32(p.h + PH));
    let x1 = min(x0 + i32(KW), i32(p.w + PW));
    let padded_count = (y1 - y0) * (x1 - x0);
    let ys = max(y0, 0);
    let xs = max(x0, 0);
    let ye = min(y1, i32(p.h));
    let xe = min(x1, i32(p.w));
    var s = 0.0;
    for (var iy = ys; iy < ye; iy++) {
        for (var ix = xs; ix < xe; ix++) {
            s += f32(x[(plane * p.h + u32(iy)) * p.w + u32(ix)]);
        }
    }
    var count = (ye - ys) * (xe - xs);
    if (COUNT_INCLUDE_PAD) {
        count = padded_count;
    }
    y[i] = T(s / f32(count));
}
