// batch_norm training statistics from the per-block partials a conv wrote with STATS (its
// blocks of `block` consecutive (n, pixel) positions, each with a channel's mean and sum of
// squared deviations): one invocation per channel merges the blocks in order with Chan's
// formula (no catastrophic cancellation, unlike sum and sum of squares), then saves the batch
// mean and biased variance and updates the running statistics as batch_norm_stats does.

const WG: u32 = 64u;

struct Params {
    c: u32, total: u32, block: u32, momentum: f32,
    update_running: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;       // (blocks, C, 2)
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;     // (C) batch mean
@group(0) @binding(3) var<storage, read_write> var_b: array<f32>;    // (C) biased batch variance
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>; // (C)
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;  // (C)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    let c = gid.x;
    if (c >= p.c) {
        return;
    }
    let blocks = (p.total + p.block - 1u) / p.block;
    var n = 0.0;
    var m = 0.0;
    var m2 = 0.0;
    for (var b = 0u; b < blocks; b++) {
        let nb = f32(min(p.block, p.total - b * p.block));
        let at = (b * p.c + c) * 2u;
        let d = partials[at] - m;
        let nn = n + nb;
        m += d * (nb / nn);
        m2 += partials[at + 1u] + d * d * (n * nb / nn);
        n = nn;
    }
    let v = m2 / n;
    mean[c] = m;
    var_b[c] = v;
    if (p.update_running != 0u) {
        let unbiased = v * n / f32(max(p.total, 2u) - 1u);
        run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * m;
        run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
    }
}
