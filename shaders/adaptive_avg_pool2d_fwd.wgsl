// adaptive_avg_pool2d forward: output cell (oy, ox) averages rows floor(oy*H/OH) ..
// ceil((oy+1)*H/OH) and the same for columns, as PyTorch does, for any output size.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

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
    let ys = (oy * p.h) / p.oh;
    let ye = ((oy + 1u) * p.h + p.oh - 1u) / p.oh;
    let xs = (ox * p.w) / p.ow;
    let xe = ((ox + 1u) * p.w + p.ow - 1u) / p.ow;
    var s = 0.0;
    for (var iy = ys; iy < ye; iy++) {
        for (var ix = xs; ix < xe; ix++) {
            s += f32(x[(plane * p.h + iy) * p.w + ix]);
        }
    }
    y[i] = T(s / f32((ye - ys) * (xe - xs)));
}
