// avg_pool2d backward: each input element gathers dy / divisor from every window holding it,
// with the forward's divisor (padded window when COUNT_INCLUDE_PAD).

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
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;  // (N, C, H, W)

fn divisor(oy: u32, ox: u32) -> f32 {
    let y0 = i32(oy * SH) - i32(PH);
    let x0 = i32(ox * SW) - i32(PW);
    let y1 = min(y0 + i32(KH), i32(p.h + PH));
    let x1 = min(x0 + i32(KW), i32(p.w + PW));
    if (COUNT_INCLUDE_PAD) {
        return f32((y1 - y0) * (x1 - x0));
    }
    return f32((min(y1, i32(p.h)) - max(y0, 0)) * (min(x1, i32(p.w)) - max(x0, 0)));
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
    var s = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let ty = i32(iy + PH) - i32(ky);
        if (ty < 0 || u32(ty) % SH != 0u || u32(ty) / SH >= p.oh) {
            continue;
        }
        let oy = u32(ty) / SH;
        for (var kx = 0u; kx < KW; kx++) {
            let tx = i32(ix + PW) - i32(kx);
            if (tx < 0 || u32(tx) % SW != 0u || u32(tx) / SW >= p.ow) {
                continue;
            }
            let ox = u32(tx) / SW;
            s += dy[(plane * p.oh + oy) * p.ow + ox] / divisor(oy, ox);
        }
    }
    dx[i] = s;
}
