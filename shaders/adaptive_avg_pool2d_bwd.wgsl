// adaptive_avg_pool2d backward: each input element gathers dy / window size from every output
// cell whose window [floor(o*H/OH), ceil((o+1)*H/OH)) holds it (windows may overlap).

override WG: u32 = 256u;

struct Params { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;  // (N, C, H, W)

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
    var s = 0.0;
    // Only cells from floor(iy*OH/H) can start at or before iy.
    for (var oy = (iy * p.oh) / p.h; oy < p.oh; oy++) {
        let ys = (oy * p.h) / p.oh;
        let ye = ((oy + 1u) * p.h + p.oh - 1u) / p.oh;
        if (ys > iy) {
            break;
        }
        if (iy >= ye) {
            continue;
        }
        for (var ox = (ix * p.ow) / p.w; ox < p.ow; ox++) {
            let xs = (ox * p.w) / p.ow;
            let xe = ((ox + 1u) * p.w + p.ow - 1u) / p.ow;
            if (xs > ix) {
                break;
            }
            if (ix >= xe) {
                continue;
            }
            s += dy[(plane * p.oh + oy) * p.ow + ox] / f32((ye - ys) * (xe - xs));
        }
    }
    dx[i] = s;
}
