// conv2d input gradient for GPUs (the gpu kernel family), every stride phase in one dispatch of
// large-tile implicit GEMMs. The input positions of one stride phase (rows first_y + S*my,
// columns first_x + S*mx) take only the taps k with (i + P - k*D) % S == 0: ky = k0_y + jy *
// STEP_Y (taps_y of them) and likewise across; tap (jy, jx) reads dy at (my + base_y - jy *
// DIL_Y, mx + base_x - jx * DIL_X). So each phase is a GEMM
//   dX_ph,g (Cin/g, N*count_y*count_x) = W_ph,g (Cin/g, K) x im2col(dY)_ph,g (K, ...),
//   K = Cout/g * taps_y * taps_x, ordered (tap, output channel): k = (jy * taps_x + jx) * COUT_G + co,
// and every phase's blocks run in one grid (z: phase, group, block of input channels; x/y:
// blocks of 128 of the phase's pixels, the largest phase's count; a workgroup past its phase's
// pixels returns at once). A phase no tap reaches has K = 0 and stores zeros. The weights are
// read from w itself (no transposed copy), the outputs stored straight into their positions in
// dx (no scatter); the tile, the compute and the K loop are conv2d_mm_core's (the prelude
// before this file). The phases' geometry is in the uniform parameters (`kernels::conv::mm`
// writes it, from `phases::stride_phases`).

override COUT_G: u32 = 1u;       // the conv's output channels per group (K's channels)
override STEP_Y: u32 = 1u;       // the taps of one phase: k0, k0 + STEP, ...
override STEP_X: u32 = 1u;
override DIL_Y: u32 = 1u;        // their rows (columns) in dy, DIL apart
override DIL_X: u32 = 1u;

// One stride phase: per axis (first input position, positions, first tap, taps), and (dy's
// row and column of tap 0 at the phase's position 0, K, 0, 0).
struct PhaseInfo {
    y: vec4i,
    x: vec4i,
    e: vec4i,
}

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
    phases: u32, pad0: u32, pad1: u32, pad2: u32,
    ph: array<PhaseInfo, 16>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, Cout, OH, OW)
@group(0) @binding(2) var<storage, read> wt: array<f32>;          // (Cout, Cin/groups, KH, KW)
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;    // (N, Cin, H, W)

// Per-lane constants of the loaders and the epilogue, set once in `main`.
var<private> kdim: u32;      // K of the phase
var<private> nrows: u32;     // input channels of this block inside its group
var<private> ic0: u32;       // first input channel of the block
var<private> tx: u32;        // the phase's taps across
var<private> inv_tx: f32;    // 1 / tx
var<private> k0y: u32;       // its first taps
var<private> k0x: u32;
var<private> wbase: u32;     // weight loader: w offset of (output channel g * COUT_G, input channel ic0 + wrow)
var<private> q_ok: bool;     // im2col loader: the pixel is inside the phase's map
var<private> oy0: i32;       // im2col loader: dy's row and column of tap 0 at the pixel
var<private> ox0: i32;
var<private> dbase: u32;     // im2col loader: dy offset of the pixel's image and group

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let cin_g = p.cin / p.groups;
    let blocks_g = (cin_g + BM - 1u) / BM;
    let per_phase = p.groups * blocks_g;
    let ph = p.ph[wid.z / per_phase];
    let gb = wid.z % per_phase;
    let g = gb / blocks_g;
    let count_x = u32(ph.x.y);
    let map = u32(ph.y.y) * count_x;
    let total = p.n * map;
    let p0 = (wid.x + wid.y * nwg.x) * BN;
    if (p0 >= total) {
        return;
    }
    ic0 = g * cin_g + (gb % blocks_g) * BM;
    nrows = min(BM, (g + 1u) * cin_g - ic0);
    tx = u32(ph.x.w);
    inv_tx = 1.0 / f32(max(tx, 1u));
    k0y = u32(ph.y.z);
    k0x = u32(ph.x.z);
    kdim = u32(ph.e.z);

    mm_roles(lid);
    // the weight loader's input channel, the im2col loader's pixel (n, my, mx) of the phase
    wbase = (g * COUT_G * cin_g + ic0 - g * cin_g + wrow) * KH * KW;
    let q = p0 + xcol;
    q_ok = q < total;
    let qq = min(q, total - 1u);
    let img = qq / map;
    let r = qq - img * map;
    let my = r / count_x;
    oy0 = i32(my) + ph.e.x;
    ox0 = i32(r - my * count_x) + ph.e.y;
    dbase = (img * p.cout + g * COUT_G) * p.oh * p.ow;

    mm_k_loop(0u, (u32(ph.e.z) + BK - 1u) / BK, lid);

    // epilogue: input channels m0 .. m0+3 (and m0+32 .. m0+35 for BM = 128), pixels col ..
    // col+3 and col+16 .. col+19 of the phase's map
    let m0 = mm_lane_channel();
    let col = mm_lane_pixel(p0);
    let first = vec2u(u32(ph.y.x), u32(ph.x.x));
    let atl = dx_offsets(col, total, map, count_x, first);
    let atr = dx_offsets(col + 16u, total, map, count_x, first);
    store_row(c0l, m0, atl);
    store_row(c0r, m0, atr);
    store_row(c1l, m0 + 1u, atl);
    store_row(c1r, m0 + 1u, atr);
    store_row(c2l, m0 + 2u, atl);
    store_row(c2r, m0 + 2u, atr);
    store_row(c3l, m0 + 3u, atl);
    store_row(c3r, m0 + 3u, atr);
    if (BM == 128u) {
        let m4 = m0 + 32u;
        store_row(c4l, m4, atl);
        store_row(c4r, m4, atr);
        store_row(c5l, m4 + 1u, atl);
        store_row(c5r, m4 + 1u, atr);
        store_row(c6l, m4 + 2u, atl);
        store_row(c6r, m4 + 2u, atr);
        store_row(c7l, m4 + 3u, atl);
        store_row(c7r, m4 + 3u, atr);
    }
}

// K row k as (output channel, tap row, tap column) of the phase. The tap's row divides by the
// phase's taps across, a uniform value, in f32: (tap + 0.5) / tx is at least 0.5 / tx from an
// integer and f32 carries it within 2^-12 for tap < 2^20 and tx <= 1024 (the launcher's
// bounds), so the floor is exact, in 3 instructions where a u32 division takes about 10.
fn decode(k: u32) -> vec3u {
    let tap = k / COUT_G;
    let jy = u32((f32(tap) + 0.5) * inv_tx);
    return vec3u(k - tap * COUT_G, jy, tap - jy * tx);
}

// The weight of input channel wrow + 32j of the block at K row k: w at (output channel co,
// tap (k0_y + jy * STEP_Y, k0_x + jx * STEP_X)); zero past the group's channels or K.
fn load_weight(k: u32, j: u32) -> f32 {
    let ok = wrow + 32u * j < nrows && k < kdim;
    let d = decode(k);
    let ky = k0y + d.y * STEP_Y;
    let kx = k0x + d.z * STEP_X;
    let at = wbase + (d.x * p.cin / p.groups + 32u * j) * KH * KW + ky * KW + kx;
    return select(0.0, wt[select(0u, at, ok)], ok);
}

// The im2col value of K row k at this lane's pixel: dy of output channel co at (oy0 - jy *
// DIL_Y, ox0 - jx * DIL_X), zero outside dy or past K.
fn load_pixel(k: u32) -> f32 {
    let d = decode(k);
    let oy = oy0 - i32(d.y * DIL_Y);
    let ox = ox0 - i32(d.z * DIL_X);
    let inside = q_ok && k < kdim && u32(oy) < p.oh && u32(ox) < p.ow;
    let at = dbase + (d.x * p.oh + u32(oy)) * p.ow + u32(ox);
    return select(0.0, dy[select(0u, at, inside)], inside);
}

// The dx offsets (channel 0) of the 4 pixels of the phase's map from `q` (past the map: the
// sentinel 0xffffffff, never stored).
fn dx_offsets(q: u32, total: u32, map: u32, count_x: u32, first: vec2u) -> vec4u {
    return vec4u(dx_offset(q, total, map, count_x, first), dx_offset(q + 1u, total, map, count_x, first),
                 dx_offset(q + 2u, total, map, count_x, first), dx_offset(q + 3u, total, map, count_x, first));
}

fn dx_offset(q: u32, total: u32, map: u32, count_x: u32, first: vec2u) -> u32 {
    if (q >= total) {
        return 0xffffffffu;
    }
    let img = q / map;
    let r = q - img * map;
    let my = r / count_x;
    let iy = first.x + SH * my;
    let ix = first.y + SW * (r - my * count_x);
    return img * p.cin * p.h * p.w + iy * p.w + ix;
}

// Input channel m of the block at the 4 pixels of `at` (those inside the map).
fn store_row(v: vec4f, m: u32, at: vec4u) {
    if (m >= nrows) {
        return;
    }
    let off = (ic0 + m) * p.h * p.w;
    if (at.x != 0xffffffffu) {
        dx[at.x + off] = v.x;
    }
    if (at.y != 0xffffffffu) {
        dx[at.y + off] = v.y;
    }
    if (at.z != 0xffffffffu) {
        dx[at.z + off] = v.z;
    }
    if (at.w != 0xffffffffu) {
        dx[at.w + off] = v.w;
    }
}
