// The second pass of the split-K large-tile forward (conv2d_fwd_mm with SPLIT_K): y = act(the
// sum of the K slices' raw sums [+ bias] [+ residual]), and with STATS the block statistics of
// the values stored. A workgroup of 64 owns one statistics block (STATS_BLOCK = 256 consecutive
// (image, pixel) positions) of one channel, as conv2d_fwd_depthwise_vec4's do, each invocation 4
// consecutive positions: per slice one vec4 load where the plane's size is a multiple of 4
// (VEC4: the 4 then lie in one plane, aligned), else 4 loads; consecutive invocations read
// consecutive vec4s of each slice (coalesced).
// The epilogue (bias, residual, activation) from conv2d_epilogue.wgsl, the block statistics from
// conv2d_stats.wgsl.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override VEC4: bool = false;
const WG: u32 = 64u;
const PX: u32 = 4u;             // positions per invocation (conv2d_stats' PX)
const BLOCK: u32 = 256u;        // positions per workgroup: kernels::conv::STATS_BLOCK

struct Params {
    n: u32, cout: u32, plane: u32, slices: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// the slices' raw sums (slices, N, Cout, OH * OW), as floats and as vec4s
@group(0) @binding(1) var<storage, read> split: array<f32>;
@group(0) @binding(2) var<storage, read> split4: array<vec4f>;
// bindings 3 .. 5, 7, 8 (bias, residual, y, y4, res4): conv2d_epilogue; 6 (partials):
// conv2d_stats

// How many of the block's first `left` positions invocation l holds.
fn lane_count(l: u32, left: u32) -> u32 {
    return min(PX, left - min(left, l * PX));
}

// The offset in y (and in each slice) of position q: (image, channel c, pixel).
fn offset(q: u32, c: u32) -> u32 {
    let img = q / p.plane;
    return (img * p.cout + c) * p.plane + (q - img * p.plane);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let total = p.n * p.plane;
    let blocks = (total + BLOCK - 1u) / BLOCK;
    // the blocks of channel 0, then of channel 1, ...
    let flat = wid.x + wid.y * nwg.x;
    if (flat >= blocks * p.cout) {
        return;  // a spare workgroup of the folded grid, whole
    }
    let c = flat / blocks;
    let b = flat % blocks;
    let left = min(BLOCK, total - b * BLOCK);
    let n = lane_count(lid, left);
    let q = b * BLOCK + lid * PX;
    let len = total * p.cout;
    let ok = vec4u(0u, 1u, 2u, 3u) < vec4u(n);
    var o = vec4f(0.0);
    if (VEC4) {
        // total and each plane multiples of 4: a lane holds 4 positions or none
        if (n == PX) {
            let at = offset(q, c);
            var s = vec4f(0.0);
            for (var k = 0u; k < p.slices; k++) {
                s += split4[(k * len + at) / 4u];
            }
            o = store_output4(s, c, at);
        }
    } else {
        // positions past the last held one read the last (a lane holding none: the block's
        // last), never past the output
        let last = select(min(q, total - 1u), q + n - 1u, n > 0u);
        let at = vec4u(offset(min(q, last), c), offset(min(q + 1u, last), c), offset(min(q + 2u, last), c),
                       offset(min(q + 3u, last), c));
        var s = vec4f(0.0);
        for (var k = 0u; k < p.slices; k++) {
            let base = vec4u(k * len);
            let v = vec4f(split[base.x + at.x], split[base.y + at.y], split[base.z + at.z], split[base.w + at.w]);
            s += select(vec4f(0.0), v, ok);
        }
        o = store_output_quad(s, c, at, ok);
    }
    if (STATS) {
        lane_stats4(0u, lid, o, ok, n);
        write_block_stats(lid, left, 1u, b, c, p.cout);
    }
}
