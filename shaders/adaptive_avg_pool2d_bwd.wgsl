// adaptive_avg_pool2d backward: each input element gathers dy / window size from every output
// cell whose window [floor(o*H/OH), ceil((o+1)*H/OH)) holds it (windows may overlap).

override WG: u32 = 256u;
// the maps' sizes: pipeline constants, so that the index arithmetic divides by constants
// (multiplies and shifts; a divisor from a uniform is one scalar divide per lane on lavapipe)
override H: u32 = 1u;
override W: u32 = 1u;
override OH: u32 = 1u;
override OW: u32 = 1u;

struct Params { nc: u32, h: u32, w: u32, oh: u32, ow: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;  // (N, C, H, W)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.nc * H * W) {
        return;
    }
    let ix = i % W;
    let iy = (i / W) % H;
    let plane = i / (W * H);
    var s = 0.0;
    // Only cells from floor(iy*OH/H) can start at or before iy.
    for (var oy = (iy * OH) / H; oy < OH; oy++) {
        let ys = (oy * H) / OH;
        let ye = ((oy + 1u) * H + OH - 1u) / OH;
        if (ys > iy) {
            break;
        }
        if (iy >= ye) {
            continue;
        }
        for (var ox = (ix * OW) / W; ox < OW; ox++) {
            let xs = (ox * W) / OW;
            let xe = ((ox + 1u) * W + OW - 1u) / OW;
            if (xs > ix) {
                break;
            }
            if (ix >= xe) {
                continue;
            }
            s += dy[(plane * OH + oy) * OW + ox] / f32((ye - ys) * (xe - xs));
        }
    }
    dx[i] = s;
}
