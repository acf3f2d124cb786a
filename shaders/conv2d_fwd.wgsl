// conv2d forward, direct: each invocation computes one output pixel for up to OCB output
// channels of one group, so every input value it loads is reused OCB times.
// Geometry is specialised (override) so loops over the kernel window unroll; sizes are uniform.
// Epilogue (fusion): + bias, + residual (the skip connection), then ReLU (ACT 1) or ReLU6 (2).

override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override PH: u32 = 0u;
override PW: u32 = 0u;
override DH: u32 = 1u;
override DW: u32 = 1u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;
override ACT: u32 = 0u;
override WG: u32 = 64u;

const OCB: u32 = 4u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (N, Cin, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (Cout), unread without HAS_BIAS
@group(0) @binding(4) var<storage, read> res: array<f32>;       // like y, unread without HAS_RESIDUAL
@group(0) @binding(5) var<storage, read_write> y: array<f32>;   // (N, Cout, OH, OW)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.x + wid.y * nwg.x) * WG + lid;
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + OCB - 1u) / OCB;
    let blocks = p.groups * blocks_g;
    if (idx >= p.n * blocks * p.oh * p.ow) {
        return;
    }
    let ox = idx % p.ow;
    var r = idx / p.ow;
    let oy = r % p.oh;
    r = r / p.oh;
    let blk = r % blocks;
    let n = r / blocks;
    let g = blk / blocks_g;
    let oc0 = g * cout_g + (blk % blocks_g) * OCB;
    let noc = min(OCB, (g + 1u) * cout_g - oc0);
    let w_oc = cin_g * KH * KW;  // stride between output channels in wt
    // Clamp the channel of each accumulator so lanes past noc read valid (unused) weights.
    let o1 = min(1u, noc - 1u) * w_oc;
    let o2 = min(2u, noc - 1u) * w_oc;
    let o3 = min(3u, noc - 1u) * w_oc;

    var acc = vec4f(0.0);
    let iy0 = i32(oy * SH) - i32(PH);
    let ix0 = i32(ox * SW) - i32(PW);
    for (var ic = 0u; ic < cin_g; ic++) {
        let xc = (n * p.cin + g * cin_g + ic) * p.h;
        let wc = (oc0 * cin_g + ic) * KH * KW;
        for (var ky = 0u; ky < KH; ky++) {
            let iy = iy0 + i32(ky * DH);
            if (iy < 0 || iy >= i32(p.h)) {
                continue;
            }
            let xrow = (xc + u32(iy)) * p.w;
            for (var kx = 0u; kx < KW; kx++) {
                let ix = ix0 + i32(kx * DW);
                if (ix < 0 || ix >= i32(p.w)) {
                    continue;
                }
                let xv = x[xrow + u32(ix)];
                let wi = wc + ky * KW + kx;
                acc += xv * vec4f(wt[wi], wt[wi + o1], wt[wi + o2], wt[wi + o3]);
            }
        }
    }
    let plane = p.oh * p.ow;
    let out0 = (n * p.cout + oc0) * plane + oy * p.ow + ox;
    for (var j = 0u; j < noc; j++) {
        var v = acc[j];
        if (HAS_BIAS) {
            v += bias[oc0 + j];
        }
        if (HAS_RESIDUAL) {
            v += res[out0 + j * plane];
        }
        if (ACT == 1u) {
            v = max(v, 0.0);
        } else if (ACT == 2u) {
            v = clamp(v, 0.0, 6.0);
        }
        y[out0 + j * plane] = v;
    }
}
