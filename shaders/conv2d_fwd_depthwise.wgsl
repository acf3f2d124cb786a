// Depthwise conv2d forward (groups = Cin = Cout) as a direct convolution staged through
// workgroup memory, shaped for GPUs: a workgroup of TILE x TILE invocations owns a TILE x TILE
// tile of one (image, channel) output plane. It first copies the input window of the whole tile
// (the tile's reach plus the kernel's halo, zero outside the image) into workgroup memory with
// consecutive lanes on consecutive columns (coalesced), and the plane's KH x KW weights beside
// it; after one barrier every invocation computes its output from workgroup memory alone. Each
// input value is then read from global memory once per tile instead of once per tap and output
// (up to KH*KW times). The epilogue (bias, residual, activation) comes from conv2d_epilogue.wgsl,
// the geometry overrides (KH .. DW) from conv2d_geometry.wgsl.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

const TILE: u32 = 16u;            // output tile side; TILE * TILE invocations
// input window values this pipeline stages (its rows x cols, set by the host; at most 4096,
// 16 KiB): the workgroup array is sized per pipeline, so a 3x3 tile holds 1.3 KiB, not 16
override HALO: u32 = 4096u;
const TAPS_MAX: u32 = 64u;        // KH * KW at most

struct Params {
    n: u32, cin: u32, h: u32, w: u32,
    cout: u32, oh: u32, ow: u32, groups: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;           // (N, C, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;        // (C, 1, KH, KW)

var<workgroup> window: array<f32, HALO>;
var<workgroup> taps: array<f32, TAPS_MAX>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    // workgroups: the tiles of one plane, then the planes (n, c), folded over x and y
    let tiles_x = (p.ow + TILE - 1u) / TILE;
    let tiles = tiles_x * ((p.oh + TILE - 1u) / TILE);
    let flat = wid.x + wid.y * nwg.x;
    let plane = flat / tiles;
    // past the last plane (the folded grid's spare workgroups): every lane still reaches the
    // barrier, nothing is stored
    let live = plane < p.n * p.cout;
    let pl = min(plane, p.n * p.cout - 1u);
    let c = pl % p.cout;
    let oy0 = ((flat % tiles) / tiles_x) * TILE;
    let ox0 = ((flat % tiles) % tiles_x) * TILE;
    // the input window: rows iy0 .. iy0 + rows, columns ix0 .. ix0 + cols (may start in the padding)
    let rows = (TILE - 1u) * SH + (KH - 1u) * DH + 1u;
    let cols = (TILE - 1u) * SW + (KW - 1u) * DW + 1u;
    let iy0 = i32(oy0 * SH) - i32(PH);
    let ix0 = i32(ox0 * SW) - i32(PW);
    let base = pl * p.h * p.w;
    for (var i = lid; i < rows * cols; i += TILE * TILE) {
        let iy = iy0 + i32(i / cols);
        let ix = ix0 + i32(i % cols);
        let inside = iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
        let at = base + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w + u32(clamp(ix, 0, i32(p.w) - 1));
        window[i] = select(0.0, f32(x[at]), inside);
    }
    for (var t = lid; t < KH * KW; t += TILE * TILE) {
        taps[t] = wt[c * KH * KW + t];
    }
    workgroupBarrier();
    let ty = lid / TILE;
    let tx = lid % TILE;
    let oy = oy0 + ty;
    let ox = ox0 + tx;
    if (!live || oy >= p.oh || ox >= p.ow) {
        return;
    }
    var acc = 0.0;
    for (var ky = 0u; ky < KH; ky++) {
        let row = (ty * SH + ky * DH) * cols + tx * SW;
        for (var kx = 0u; kx < KW; kx++) {
            acc += window[row + kx * DW] * taps[ky * KW + kx];
        }
    }
    store_output(acc, c, (pl * p.oh + oy) * p.ow + ox);
}
