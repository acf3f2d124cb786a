// conv2d weight gradient for CPU drivers: conv2d_bwd_weight's split-K implicit GEMM with the
// input read through an operand texture (conv2d_pack_input: 4 channels of a group per texel,
// the zero padding included), so each lane's gather of its 4 columns is one vectorised texel
// fetch with no bounds check:
//   dW_g (Cout/g, Cin/g*KH*KW) = dY_g (Cout/g, N*OH*OW) x im2col(X)_g^T (N*OH*OW, Cin/g*KH*KW).
// A workgroup owns OCB output channels of one group (grid z), WG lanes of columns (grid x; a
// lane's 4 columns are one live tap of 4 consecutive input channels, CB such texel columns per
// lane) and one chunk of the output pixels (grid y). It walks its chunk pixel by pixel: the pixel is the same for every lane, so
// its OCB (4 or 8) dy values are OCB/4 texel fetches at one coordinate from dy's own operand
// texture (packed alike; 4 uniform storage loads per texel were 30-45% of the
// kernel's time on lavapipe), made in blocks of SHARE pixels so that the operand_share
// prelude's subgroup form can give each lane one pixel's fetches and shuffle them to the rest. With CB = 2 a lane fetches two x texels per pixel and reuses each dy
// texel for both: 64 multiply-adds for 4 fetches instead of 32 for 3, gemm_tex's ratio (the
// 8 vec4 accumulators it adds spill no worse than gemm_tex's 16). Each chunk writes its partial sums to its own slice of `part`;
// split_k_reduce adds the slices (with one chunk, `part` is dw itself). The dead taps (reading
// only padding) get zeros from the first column block. The store is conv2d_bwd_weight_store.wgsl's,
// the geometry overrides (KH .. DW, the live taps KY0 .. KX1) conv2d_geometry.wgsl's: preludes
// `kernels::shaders` puts in front of this file.

override WG: u32 = 64u;
// output channels per invocation, 4 or 8 (whole texels of dy)
override OCB: u32 = 8u;
// texel columns (4 input channels of one live tap) per invocation, 1 or 2
override CB: u32 = 1u;
// pixels per block of shared dy fetches: the subgroup width the operand_share prelude's
// subgroup form needs at least
const SHARE: u32 = 8u;
// the output map's width and size and the images per band of x's and dy's textures: pipeline
// constants, so that placing each block's pixels divides by constants (multiplies and shifts;
// a divisor from a uniform is one scalar divide per lane on lavapipe)
override OUT_W: u32 = 1u;
override OUT_PLANE: u32 = 1u;
override PER_BAND: u32 = 1u;
override DPER_BAND: u32 = 1u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    // the operand texture's layout (see conv2d_pack_input; images per band: PER_BAND)
    c4g: u32, wp: u32, hp: u32,
    // dy's texture layout (the same packing): planes of DHP x DWP texels with dy's OH x OW at
    // (DPY, DPX): no padding where this kernel's caller packed dy, the input gradient's where
    // the plan kept that packing (images per band: DPER_BAND)
    dc4g: u32, dwp: u32, dhp: u32, dpy: u32, dpx: u32,
    chunk: u32,  // output pixels per chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var dyt: texture_2d<f32>;                   // packed (N, Cout, OH, OW)
@group(0) @binding(2) var xt: texture_2d<f32>;                    // packed (N, Cin, H, W)
// binding 3 (the partial sums): conv2d_bwd_weight_store

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, lanes: ShareLanes) {
    let lid = lanes.index;
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let taps = KH * KW;
    let cols = cin_g * taps;
    let wkw = max(KX1 - KX0, 1u);
    let wtaps = max((KY1 - KY0) * (KX1 - KX0), 1u);
    let wcols = cin_g * (KY1 - KY0) * (KX1 - KX0);
    let blocks_g = (cout_g + OCB - 1u) / OCB;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * OCB;
    let noc = min(OCB, (g + 1u) * cout_g - oc0);
    let oplane = OUT_PLANE;

    // this invocation's columns: CB live taps of channel blocks `quad` (4 channels; those past
    // cin_g are zero texels and are not stored); their texel offsets from the pixel's origin
    let units = p.c4g * (KY1 - KY0) * (KX1 - KX0);  // (block, live tap) pairs
    var off: array<vec2i, 2>;
    var ok: array<array<bool, 4>, 2>;  // [texel column][channel]: stored
    var col: array<array<u32, 4>, 2>;  // [texel column][channel]: dw column
    for (var c = 0u; c < CB; c++) {
        let unit = (wid.x * WG + lid) * CB + c;
        let u = min(unit, max(units, 1u) - 1u);
        let ky = KY0 + (u % wtaps) / wkw;
        let kx = KX0 + u % wkw;
        let quad = u / wtaps;
        off[c] = vec2i(i32(kx * DW), i32((g * p.c4g + quad) * p.hp + ky * DH));
        for (var j = 0u; j < 4u; j++) {
            let ic = quad * 4u + j;
            ok[c][j] = unit < units && ic < cin_g;
            col[c][j] = ic * taps + ky * KW + kx;
        }
    }

    let band_rows = p.groups * p.c4g * p.hp;
    let total = p.n * oplane;
    let q0 = wid.y * p.chunk;
    let q1 = min(q0 + p.chunk, total);
    var n = q0 / oplane;
    var oy = (q0 % oplane) / OUT_W;
    var ox = q0 % OUT_W;
    // the pixel's window origin in the texture (uniform), stepped with the pixel
    var bx = i32((n % PER_BAND) * p.wp + ox * SW);
    var by = i32((n / PER_BAND) * band_rows + oy * SH);
    var acc: array<vec4f, 8>;   // acc[o]: output channel oc0+o at the first texel's 4 columns
    var acc2: array<vec4f, 8>;  // the same at the second texel's (CB = 2)
    // the workgroup's output channels start a texel of dy (OCB is 4 or 8 on this kernel)
    let dblock = g * p.dc4g + (oc0 - g * cout_g) / 4u;
    let dband_rows = p.groups * p.dc4g * p.dhp;
    let dstep = vec2i(0, i32(p.dhp));  // from one texel of 4 output channels to the next
    for (var qb = q0; qb < q1; qb += SHARE) {
        // this lane's pixel of the block for the shared fetches (the subgroup form's; the
        // other form fetches at each pixel's own texel below)
        let own_q = min(qb + share_row(lanes), q1 - 1u);
        let own_at = dy_texel(own_q, dblock, dband_rows);
        let own_origin = x_origin(own_q, band_rows);
        var own: array<vec4f, 2>;
        for (var t = 0u; t < OCB / 4u; t++) {
            own[t] = own_texel(dyt, own_at + i32(t) * dstep);
        }
        let left = q1 - qb;  // the same in every lane: the shuffles see whole subgroups
        for (var j = 0u; j < SHARE; j++) {
            if (j >= left) {
                break;
            }
            // the pixel's window origin: stepped here, or (subgroup form) worked out by lane j
            let origin = shared_coord(own_origin, j, vec2i(bx, by));
            let xv = textureLoad(xt, origin + off[0], 0);
            var xv2 = vec4f(0.0);
            if (CB == 2u) {
                xv2 = textureLoad(xt, origin + off[1], 0);
            }
            let dxy = vec2i(i32((n % DPER_BAND) * p.dwp + p.dpx + ox), i32((n / DPER_BAND) * dband_rows + dblock * p.dhp + p.dpy + oy));
            for (var t = 0u; t < OCB / 4u; t++) {
                let dv = shared_texel(dyt, own[t], j, dxy + i32(t) * dstep);
                acc[4u * t] += dv.x * xv;
                acc[4u * t + 1u] += dv.y * xv;
                acc[4u * t + 2u] += dv.z * xv;
                acc[4u * t + 3u] += dv.w * xv;
                if (CB == 2u) {
                    acc2[4u * t] += dv.x * xv2;
                    acc2[4u * t + 1u] += dv.y * xv2;
                    acc2[4u * t + 2u] += dv.z * xv2;
                    acc2[4u * t + 3u] += dv.w * xv2;
                }
            }
            ox += 1u;
            bx += i32(SW);
            if (ox == OUT_W) {
                ox = 0u;
                oy += 1u;
                if (oy == p.oh) {
                    oy = 0u;
                    n += 1u;
                }
                bx = i32((n % PER_BAND) * p.wp);
                by = i32((n / PER_BAND) * band_rows + oy * SH);
            }
        }
    }

    // dead taps: columns reading only padding; their zeros come from the first column block
    store_columns(acc, ok[0], col[0], wid.y, oc0, noc, p.cout, cols, wid.x == 0u && wcols < cols, lid);
    if (CB == 2u) {
        store_columns(acc2, ok[1], col[1], wid.y, oc0, noc, p.cout, cols, false, lid);
    }
}

// dy's texel of output pixel q (image, row, column) in the workgroup's first block of 4 output
// channels.
fn dy_texel(q: u32, dblock: u32, dband_rows: u32) -> vec2i {
    let oplane = OUT_PLANE;
    let n = q / oplane;
    let r = q % oplane;
    return vec2i(i32((n % DPER_BAND) * p.dwp + p.dpx + r % OUT_W), i32((n / DPER_BAND) * dband_rows + dblock * p.dhp + p.dpy + r / OUT_W));
}

// The texel of output pixel q's window origin (tap 0, channel block 0 of group 0) in x's texture.
fn x_origin(q: u32, band_rows: u32) -> vec2i {
    let oplane = OUT_PLANE;
    let n = q / oplane;
    let r = q % oplane;
    return vec2i(i32((n % PER_BAND) * p.wp + (r % OUT_W) * SW), i32((n / PER_BAND) * band_rows + (r / OUT_W) * SH));
}
