// batch_norm training statistics from the per-block partials a conv wrote with STATS (its
// blocks of `block` consecutive (n, pixel) positions, each with a channel's mean and sum of
// squared deviations), merged with Chan's formula (no catastrophic cancellation, unlike sum and
// sum of squares); then the batch mean and biased variance are saved and the running statistics
// updated as batch_norm_stats does. Without TREE (the cpu family) one invocation per channel
// merges its blocks in order; with TREE (the gpu family) one workgroup per channel: each lane
// merges every WG-th block, then the lanes' results merge pairwise in workgroup memory, so a
// stem's thousands of blocks are not one lane's serial walk.

const WG: u32 = 64u;
override TREE: bool = false;

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

// (count, mean, sum of squared deviations) of a set of values
struct Moments { n: f32, m: f32, m2: f32 }

// Chan's merge of two disjoint sets' moments (either may be empty)
fn merge(a: Moments, b: Moments) -> Moments {
    let n = a.n + b.n;
    if (b.n == 0.0) {
        return a;
    }
    if (a.n == 0.0) {
        return b;
    }
    let d = b.m - a.m;
    return Moments(n, a.m + d * (b.n / n), a.m2 + b.m2 + d * d * (a.n * b.n / n));
}

// Channel c's blocks first, first + step, ... merged in order
fn walk(c: u32, first: u32, step: u32) -> Moments {
    let blocks = (p.total + p.block - 1u) / p.block;
    var acc = Moments(0.0, 0.0, 0.0);
    for (var b = first; b < blocks; b += step) {
        let at = (b * p.c + c) * 2u;
        let nb = f32(min(p.block, p.total - b * p.block));
        acc = merge(acc, Moments(nb, partials[at], partials[at + 1u]));
    }
    return acc;
}

fn finish(c: u32, s: Moments) {
    let v = s.m2 / s.n;
    mean[c] = s.m;
    var_b[c] = v;
    if (p.update_running != 0u) {
        let unbiased = v * s.n / f32(max(p.total, 2u) - 1u);
        run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * s.m;
        run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
    }
}

var<workgroup> lanes: array<Moments, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    if (!TREE) {
        if (gid.x < p.c) {
            finish(gid.x, walk(gid.x, 0u, 1u));
        }
        return;
    }
    let c = wid.x;
    lanes[lid] = walk(c, lid, WG);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            lanes[lid] = merge(lanes[lid], lanes[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        finish(c, lanes[0]);
    }
}
