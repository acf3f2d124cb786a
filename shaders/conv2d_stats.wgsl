// Training fusion (STATS): the block statistics a conv2d forward writes for the training batch
// norm after it, so that no pass reads y again; prepended to the register and texture forward
// kernels by `kernels::shaders`. A block is one workgroup's WG*PX pixels (`kernels::conv::
// STATS_BLOCK`); batch_norm_merge combines the blocks. The kernel defines WG, OCB, PX and
// `lane_count(l, left)`: how many of the block's first `left` pixels invocation l holds.
override STATS: bool = false;

// (blocks, Cout, 2): each block's channel mean and sum of squared deviations from it;
// unwritten without STATS
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;

// each invocation's mean and M2 per channel row (OCB x WG; statistics need WG <= 64)
var<workgroup> red_mean: array<f32, 512>;
var<workgroup> red_m2: array<f32, 512>;

// Invocation `lid`'s (mean, M2) of channel row `o` over the values it stored (`vals[j]` where
// `ok[j]`, `count` of them), into workgroup memory.
fn lane_stats(o: u32, lid: u32, values: array<f32, 8>, valid: array<bool, 8>, count: u32) {
    // locals: a value array takes constant indices only
    var vals = values;
    var ok = valid;
    var sum = 0.0;
    for (var j = 0u; j < PX; j++) {
        sum += select(0.0, vals[j], ok[j]);
    }
    let mean = sum / max(f32(count), 1.0);
    var m2 = 0.0;
    for (var j = 0u; j < PX; j++) {
        let d = vals[j] - mean;
        m2 += select(0.0, d * d, ok[j]);
    }
    red_mean[o * WG + lid] = mean;
    red_m2[o * WG + lid] = m2;
}

// `lane_stats` for 4 values in a vector (`v.j` where `ok.j`, `count` of them), with constant
// indices only; summed in the same order.
fn lane_stats4(o: u32, lid: u32, v: vec4f, ok: vec4<bool>, count: u32) {
    let z = vec4f(0.0);
    let s = select(z, v, ok);
    let mean = (((s.x + s.y) + s.z) + s.w) / max(f32(count), 1.0);
    let d = select(z, v - mean, ok);
    let m2 = ((d.x * d.x + d.y * d.y) + d.z * d.z) + d.w * d.w;
    red_mean[o * WG + lid] = mean;
    red_m2[o * WG + lid] = m2;
}

// After every invocation's `lane_stats`: one invocation per channel merges the WG of them in
// order with Chan's formula and writes the block's (mean, M2) of channels oc0 .. oc0+noc. One
// barrier: a CPU driver pays for every barrier with a switch of all invocations. Called by the
// whole workgroup.
fn write_block_stats(lid: u32, left: u32, noc: u32, block: u32, oc0: u32, cout: u32) {
    workgroupBarrier();
    if (lid < noc && left > 0u) {
        var n = 0.0;
        var mean = 0.0;
        var m2 = 0.0;
        for (var l = 0u; l < WG; l++) {
            let nb = f32(lane_count(l, left));
            let nn = max(n + nb, 1.0);
            let d = red_mean[lid * WG + l] - mean;
            mean += d * (nb / nn);
            m2 += red_m2[lid * WG + l] + d * d * (n * nb / nn);
            n += nb;
        }
        let at = (block * cout + oc0 + lid) * 2u;
        partials[at] = mean;
        partials[at + 1u] = m2;
    }
}
