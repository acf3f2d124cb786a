// conv2d backward, weight gradient: dw[oc, ic, ky, kx] = sum over (n, oy, ox) of
// dy[n, oc, oy, ox] * x[n, g*cin_g + ic, oy*S + ky*D - P, ox*S + kx*D - P].
// One invocation per weight element reduces over N * OH * OW.

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
@group(0) @binding(2) var<storage, read> x: array<f32>;         // (N, Cin, H, W)
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;  // (Cout, Cin/groups, KH, KW)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let cin_g = p.cin / p.groups;
    if (i >= p.cout * cin_g * KH * KW) {
        return;
    }
    let kx = i % KW;
    let ky = (i / KW) % KH;
    let ic = (i / (KW * KH)) % cin_g;
    let oc = i / (KW * KH * cin_g);
    let g = oc / (p.cout / p.groups);
    let c = g * cin_g + ic;
    var s = 0.0;
    for (var n = 0u; n < p.n; n++) {
        let dyb = (n * p.cout + oc) * p.oh;
        let xb = (n * p.cin + c) * p.h;
        for (var oy = 0u; oy < p.oh; oy++) {
            let iy = i32(oy * SH + ky * DH) - i32(PH);
            if (iy < 0 || iy >= i32(p.h)) {
                continue;
            }
            for (var ox = 0u; ox < p.ow; ox++) {
                let ix = i32(ox * SW + kx * DW) - i32(PW);
                if (ix < 0 || ix >= i32(p.w)) {
                    continue;
                }
                s += dy[(dyb + oy) * p.ow + ox] * x[(xb + u32(iy)) * p.w + u32(ix)];
            }
        }
    }
    dw[i] = s;
}
