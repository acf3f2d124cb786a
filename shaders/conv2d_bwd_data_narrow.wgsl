// conv2d backward, input gradient, for groups with few output channels (depthwise: one, or a
// small depth multiplier), where conv2d_bwd_data's output-channel loop would be too short to
// pay for its per-pixel index work. A direct transposed convolution over cells:
//   dx[n, c, iy, ix] = sum over the group's output channels oc and the taps (ky, kx) with
//   oy*S + ky*D - P == iy (and the same along x) of dy[n, oc, oy, ox] * w[oc, c, ky, kx].
// Writing iy + PH = S*cy + ry (cell row cy, row phase ry < S), tap ky lands on row phase
// ry = (ky*DH) % S of every cell and reads dy row oy = cy - (ky*DH) / S: each tap lands exactly
// once per cell of S x S input pixels. An invocation owns CELLS cells side by side in one cell
// row of one input channel; per output channel and tap row, the dy values under all its cells
// are one segment, loaded once for every tap of that row and every column phase. A workgroup
// owns one input channel (grid z: every weight load is uniform) and WG*CELLS cells of
// (image, cell row, cell column) (grid x, y). Every input pixel is written once; no atomics.
// The geometry overrides (KH .. DW, the live taps KY0 .. KX1) come from conv2d_geometry.wgsl,
// which `kernels::shaders` puts in front of this file.

// cells per invocation (SW * CELLS <= ACC_MAX)
override CELLS: u32 = 4u;
// load each tap row's dy columns as one segment (it fits SEG_MAX); else tap by tap (a large
// dilation, whose taps share no columns)
override SEGMENT: bool = true;

const WG: u32 = 64u;
const ACC_MAX: u32 = 32u;
const SEG_MAX: u32 = 32u;

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (Cout, Cin/groups, KH, KW)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;  // (N, Cin, H, W)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cin_g = p.cin / p.groups;
    let cout_g = p.cout / p.groups;
    let c = wid.z;  // this workgroup's input channel
    let g = c / cin_g;
    let taps = KH * KW;

    // cells: rows cy with S*cy - PH + ry inside [0, H) for some ry, likewise columns
    let cell_rows = (p.h - 1u + PH) / SH + 1u;
    let cell_cols = (p.w - 1u + PW) / SW + 1u;
    let blocks = (cell_cols + CELLS - 1u) / CELLS;  // runs of CELLS cells per cell row
    let total = p.n * cell_rows * blocks;
    let q = (wid.x + wid.y * nwg.x) * WG + lid;
    let valid = q < total;
    let qq = min(q, total - 1u);
    let n = qq / (cell_rows * blocks);
    let r = qq % (cell_rows * blocks);
    let cy = r / blocks;
    let cx0 = (r % blocks) * CELLS;

    // tap kx of cell j reads dy column cx0 + j - kx*DW/SW: the columns under all cells and taps
    // are the segment from col0 = cx0 - reach (the last tap's), entry j + reach - kx*DW/SW
    let reach = ((max(KX1, 1u) - 1u) * DW) / SW;
    let seg_len = select(0u, CELLS + reach - (KX0 * DW) / SW, SEGMENT);
    let col0 = i32(cx0) - i32(reach);
    let dy_n = n * p.cout * p.oh * p.ow;
    let wbase = (g * cout_g * cin_g + c % cin_g) * taps;

    for (var ry = 0u; ry < SH; ry++) {
        let iy = i32(SH * cy + ry) - i32(PH);
        // the row's column phases x cells
        var acc: array<f32, ACC_MAX>;
        for (var oc = 0u; oc < cout_g; oc++) {
            let dy_c = dy_n + (g * cout_g + oc) * p.oh * p.ow;
            let w_c = wbase + oc * cin_g * taps;
            for (var ky = KY0; ky < KY1; ky++) {
                if ((ky * DH) % SH != ry) {
                    continue;  // lands on another row phase (removed at specialisation)
                }
                let oy = i32(cy) - i32((ky * DH) / SH);
                // one unsigned compare per axis: a negative coordinate wraps past the bound
                let row_in = valid && u32(oy) < p.oh;
                let at = i32(dy_c) + oy * i32(p.ow) + col0;
                var seg: array<f32, SEG_MAX>;
                for (var i = 0u; i < seg_len; i++) {
                    let inside = row_in && u32(col0 + i32(i)) < p.ow;
                    seg[i] = select(0.0, dy[select(0u, u32(at + i32(i)), inside)], inside);
                }
                for (var kx = KX0; kx < KX1; kx++) {
                    let wv = wt[w_c + ky * KW + kx];
                    let rx = (kx * DW) % SW;
                    let e = reach - (kx * DW) / SW;
                    for (var j = 0u; j < CELLS; j++) {
                        var v = seg[min(j + e, SEG_MAX - 1u)];
                        if (!SEGMENT) {
                            let inside = row_in && u32(col0 + i32(j + e)) < p.ow;
                            v = select(0.0, dy[select(0u, u32(at + i32(j + e)), inside)], inside);
                        }
                        acc[rx * CELLS + j] += wv * v;
                    }
                }
            }
        }
        // store the row's pixels inside the image (phases no tap reaches store zero)
        let row_ok = valid && u32(iy) < p.h;
        let out_row = i32(((n * p.cin + c) * p.h) * p.w) + iy * i32(p.w);
        for (var rx = 0u; rx < SW; rx++) {
            for (var j = 0u; j < CELLS; j++) {
                let ix = i32(SW * (cx0 + j) + rx) - i32(PW);
                if (row_ok && u32(ix) < p.w) {
                    dx[u32(out_row + ix)] = acc[rx * CELLS + j];
                }
            }
        }
    }
}
