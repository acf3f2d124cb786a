// conv2d forward for CPU drivers: the implicit GEMM of conv2d_fwd with the input read through
// an operand texture (conv2d_pack_input: 4 channels of a group per texel, the zero padding
// included). Lavapipe turns a storage-buffer load whose address differs per lane into a loop
// over the lanes and fetches texels vectorised, so each gather here is one vector operation,
// with no bounds checks, feeding 4 input channels to OCB output channels.
// A workgroup owns OCB output channels of one group (grid z) and WG*PX output pixels (grid x/y);
// lane l takes pixels l, l+WG, ... of its block. The weights come packed alike (Cout images of
// Cin/groups channels, KH x KW each): one fetch gives the 4 weights of a texel of x, where 4
// storage loads would each be a loop over the lanes; every lane needs the same OCB weight texels
// per step, shared across a subgroup where the operand_share prelude's subgroup form runs. The epilogue (bias, residual, activation) and the training statistics (STATS,
// blocks of WG*PX = 256 pixels) come from conv2d_epilogue.wgsl and conv2d_stats.wgsl, the
// geometry overrides (KH .. DW, the live taps KY0 .. KX1) from conv2d_geometry.wgsl: preludes
// `kernels::shaders` puts in front of this file.

alias T = f32;

override WG: u32 = 64u;
// output channels per invocation, 1..=8 (the register tile's rows)
override OCB: u32 = 8u;
// output pixels per invocation: 4 or 8 (the register tile's columns)
override PX: u32 = 4u;
// the output map's width and size and the images per band of x's texture: pipeline constants,
// so that placing each of an invocation's PX pixels divides by constants (multiplies and
// shifts; a divisor from a uniform is one scalar divide per lane on lavapipe)
override OUT_W: u32 = 1u;
override OUT_PLANE: u32 = 1u;
override PER_BAND: u32 = 1u;
// where the output map's pixels go: pixel (oy, ox) of each plane at (FIRST_Y + STEP_Y*oy,
// FIRST_X + STEP_X*ox) of a plane DST_PLANE long, DST_W wide (a strided conv's input-gradient
// phase stores straight into dx; a forward's own map is dense: steps 1, the output's sizes)
override DST_W: u32 = 1u;
override DST_PLANE: u32 = 1u;
override FIRST_Y: u32 = 0u;
override FIRST_X: u32 = 0u;
override STEP_Y: u32 = 1u;
override STEP_X: u32 = 1u;
// where this conv's padded input starts in the packed planes it reads: a packing with more
// padding than this conv's own (one packing of dy for all the stride phases of an input
// gradient) is read from its origin on
override IN_Y0: u32 = 0u;
override IN_X0: u32 = 0u;
// The maps' sizes and places above, and the strides (SH, SW of conv2d_geometry), read from the
// Params instead, so that one pipeline serves every conv with the same taps, tile, epilogue
// and statistics (`KernelPolicy::shape_in_params`: a CPU driver, which builds each distinct
// pipeline for tens of milliseconds); the pixels are then placed by `div_shape`'s exact
// reciprocal division, which needs fewer than 2^22 output positions (the launcher checks).
// The taps (KH, KW, DH, DW, KY0 .. KX1) stay constants: as loop bounds from the Params they
// cost a 1x1 conv's forward ~30% on lavapipe (BENCHMARKS.md).
override SHAPE_IN_PARAMS: bool = false;
// Whether the epilogue has a bias and a residual, read from the Params too (with
// SHAPE_IN_PARAMS, by the same policy): a fused conv then shares its pipeline with every conv
// of the same taps, tile and activation. The activation stays a constant: a switch on a
// uniform code per output costs a CPU driver, which runs every case under a lane mask, up to
// 2x on a 1x1 conv (BENCHMARKS.md).
override EPILOGUE_IN_PARAMS: bool = false;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    // the operand texture's layout (see conv2d_pack_input; images per band: PER_BAND)
    c4g: u32, wp: u32, hp: u32,
    // output channels per band of the packed weights
    w_per_band: u32,
    // with SHAPE_IN_PARAMS, what the override constants of the same names hold
    sh: u32, sw: u32, out_w: u32, out_plane: u32,
    per_band: u32, dst_w: u32, dst_plane: u32, first_y: u32,
    first_x: u32, step_y: u32, step_x: u32, in_y0: u32,
    in_x0: u32,
    // 1 / out_w, 1 / out_plane, 1 / per_band, rounded to f32 (`div_shape`)
    rcp_out_w: f32, rcp_out_plane: f32, rcp_per_band: f32,
    // with EPILOGUE_IN_PARAMS, what HAS_BIAS and HAS_RESIDUAL hold
    has_bias: u32, has_residual: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var xt: texture_2d<f32>;                  // packed (N, Cin, H, W)
@group(0) @binding(2) var wt: texture_2d<f32>;                  // packed (Cout, Cin/groups, KH, KW)
// bindings 3 .. 6 (bias, residual, y, the block statistics): conv2d_epilogue and conv2d_stats

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, lanes: ShareLanes) {
    let lid = lanes.index;
    let cout_g = p.cout / p.groups;
    let cin_g = p.cin / p.groups;
    let blocks_g = (cout_g + OCB - 1u) / OCB;
    let g = wid.z / blocks_g;
    let oc0 = g * cout_g + (wid.z % blocks_g) * OCB;
    let noc = min(OCB, (g + 1u) * cout_g - oc0);
    let last = noc - 1u;      // rows past noc reread the last channel's weights, unstored
    // where each row's output channel starts in the packed weights (the texel of tap 0, block
    // 0), and the row this lane fetches for its subgroup
    var worigin: array<vec2i, 8>;
    for (var o = 0u; o < OCB; o++) {
        worigin[o] = weight_origin(oc0 + min(o, last));
    }
    let own_origin = weight_origin(oc0 + min(min(share_row(lanes), OCB - 1u), last));

    let plane = shape(OUT_PLANE, p.out_plane);
    let out_w = shape(OUT_W, p.out_w);
    let per_band = shape(PER_BAND, p.per_band);
    let total = p.n * plane;
    let block = wid.x + wid.y * nwg.x;
    let band_rows = p.groups * p.c4g * p.hp;
    var tx: array<i32, 8>;    // texel of the pixel's window origin in the group's first block
    var ty: array<i32, 8>;
    var yb: array<u32, 8>;    // offset of (n, oc0, the pixel's place) in y
    var ok: array<bool, 8>;
    for (var j = 0u; j < PX; j++) {
        let q = block * WG * PX + lid + j * WG;
        ok[j] = q < total;
        let qq = min(q, total - 1u);  // spare lanes read a valid texel, store nothing
        let n = div_shape(qq, OUT_PLANE, p.out_plane, p.rcp_out_plane);
        let r = qq - n * plane;
        let band = div_shape(n, PER_BAND, p.per_band, p.rcp_per_band);
        let oy = div_shape(r, OUT_W, p.out_w, p.rcp_out_w);
        let ox = r - oy * out_w;
        tx[j] = i32((n - band * per_band) * p.wp + shape(IN_X0, p.in_x0) + ox * shape(SW, p.sw));
        ty[j] = i32(band * band_rows + g * p.c4g * p.hp + shape(IN_Y0, p.in_y0) + oy * shape(SH, p.sh));
        let at = (shape(FIRST_Y, p.first_y) + shape(STEP_Y, p.step_y) * oy) * shape(DST_W, p.dst_w)
            + shape(FIRST_X, p.first_x) + shape(STEP_X, p.step_x) * ox;
        yb[j] = (n * p.cout + oc0) * shape(DST_PLANE, p.dst_plane) + at;
    }

    var acc: array<vec4f, 8>;   // pixels 0..3 of each row
    var acc2: array<vec4f, 8>;  // pixels 4..7 (PX 8)
    for (var ky = KY0; ky < KY1; ky++) {
        for (var kx = KX0; kx < KX1; kx++) {
            let dx = i32(kx * DW);
            let dy = i32(ky * DH);
            for (var cb = 0u; cb < p.c4g; cb++) {
                let row = dy + i32(cb * p.hp);
                let lo = mat4x4f(
                    textureLoad(xt, vec2i(tx[0] + dx, ty[0] + row), 0),
                    textureLoad(xt, vec2i(tx[1] + dx, ty[1] + row), 0),
                    textureLoad(xt, vec2i(tx[2] + dx, ty[2] + row), 0),
                    textureLoad(xt, vec2i(tx[3] + dx, ty[3] + row), 0));
                var hi: mat4x4f;
                if (PX == 8u) {
                    hi = mat4x4f(
                        textureLoad(xt, vec2i(tx[4] + dx, ty[4] + row), 0),
                        textureLoad(xt, vec2i(tx[5] + dx, ty[5] + row), 0),
                        textureLoad(xt, vec2i(tx[6] + dx, ty[6] + row), 0),
                        textureLoad(xt, vec2i(tx[7] + dx, ty[7] + row), 0));
                }
                // the 4 channels of block cb (zero past cin_g, in x and in the weights)
                let wtap = vec2i(i32(kx), i32(cb * KH + ky));
                let own = own_texel(wt, own_origin + wtap);
                for (var o = 0u; o < OCB; o++) {
                    let wv = shared_texel(wt, own, o, worigin[o] + wtap);
                    // row vector x matrix: component j is dot(wv, pixel j's 4 channels)
                    acc[o] += wv * lo;
                    if (PX == 8u) {
                        acc2[o] += wv * hi;
                    }
                }
            }
        }
    }

    // rows x pixels of the tile in one array per row: what the store and the statistics take
    var vals: array<array<f32, 8>, 8>;
    for (var o = 0u; o < OCB; o++) {
        for (var j = 0u; j < PX; j++) {
            vals[o][j] = select(acc2[o][j % 4u], acc[o][j % 4u], j < 4u);
        }
    }
    for (var j = 0u; j < PX; j++) {
        if (!ok[j]) {
            continue;
        }
        for (var o = 0u; o < noc; o++) {
            vals[o][j] = store_epilogue(vals[o][j], oc0 + o, yb[j] + o * shape(DST_PLANE, p.dst_plane));
        }
    }

    if (STATS) {
        let start = block * WG * PX;
        let left = max(total, start) - start;  // valid pixels of this block (<= WG * PX)
        let mine = lane_count(lid, left);
        for (var o = 0u; o < OCB; o++) {
            lane_stats(o, lid, vals[o], ok, mine);
        }
        write_block_stats(lid, left, noc, block, oc0, p.cout);
    }
}

// conv2d_epilogue's `store_output`, or with EPILOGUE_IN_PARAMS the same with whether it adds
// the bias and the residual from the Params.
fn store_epilogue(v: f32, oc: u32, at: u32) -> f32 {
    if (!EPILOGUE_IN_PARAMS) {
        return store_output(v, oc, at);
    }
    var o = v;
    if (p.has_bias != 0u) {
        o += bias[oc];
    }
    if (p.has_residual != 0u) {
        o += f32(res[at]);
    }
    o = act(o);
    y[at] = T(o);
    return o;
}

// The texel of output channel oc's tap 0, channel block 0 in the packed weights.
fn weight_origin(oc: u32) -> vec2i {
    return vec2i(i32((oc % p.w_per_band) * KW), i32((oc / p.w_per_band) * p.c4g * KH));
}

// A geometry value: the override constant, or with SHAPE_IN_PARAMS the Params' (the select
// folds away either way).
fn shape(constant: u32, param: u32) -> u32 {
    return select(constant, param, SHAPE_IN_PARAMS);
}

// x / d: by the constant (a multiply and shifts), or with SHAPE_IN_PARAMS from the Params'
// divisor and its f32 reciprocal: for x < 2^22 the product is within 1/2 of x / d, so its
// truncation is the quotient or one off, which one comparison mends; vector operations where
// lavapipe divides by a uniform one lane at a time.
fn div_shape(x: u32, constant: u32, d: u32, rcp: f32) -> u32 {
    if (!SHAPE_IN_PARAMS) {
        return x / constant;
    }
    let q = u32(f32(x) * rcp);
    let back = q * d;
    let over = back > x;
    let under = !over && x - back >= d;
    return q - u32(over) + u32(under);
}

// How many of the block's first `left` pixels invocation `l` holds (pixels l, l + WG, ...).
fn lane_count(l: u32, left: u32) -> u32 {
    return select(0u, min(PX, (left - l - 1u) / WG + 1u), l < left);
}
