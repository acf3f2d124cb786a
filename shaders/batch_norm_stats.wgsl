// batch_norm training statistics: one workgroup per channel reduces over (N, H, W) in two passes
// (mean, then the mean squared deviation: stabler than E[x^2] - E[x]^2), saves the batch mean and
// biased variance for normalisation and backward, and updates the running statistics the way
// PyTorch does: running = (1 - momentum) * running + momentum * batch, with the unbiased variance.

override WG: u32 = 256u;

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

struct Params {
    n: u32, c: u32, hw: u32, momentum: f32,
    update_running: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;                // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;     // (C) batch mean
@group(0) @binding(3) var<storage, read_write> var_b: array<f32>;    // (C) biased batch variance
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>; // (C)
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;  // (C)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, lanes: Lanes) {
    let lid = lanes.index;
    let c = wid.x;
    let count = p.n * p.hw;
    var s = 0.0;
    for (var i = lid; i < count; i += WG) {
        let ni = i / p.hw;
        s += f32(x[(ni * p.c + c) * p.hw + i % p.hw]);
    }
    let m = workgroup_sum(s, lanes) / f32(count);
    var q = 0.0;
    for (var i = lid; i < count; i += WG) {
        let ni = i / p.hw;
        let d = f32(x[(ni * p.c + c) * p.hw + i % p.hw]) - m;
        q += d * d;
    }
    let v = workgroup_sum(q, lanes) / f32(count);
    if (lid == 0u) {
        mean[c] = m;
        var_b[c] = v;
        if (p.update_running != 0u) {
            let unbiased = v * f32(count) / f32(max(count, 2u) - 1u);
            run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * m;
            run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
        }
    }
}
