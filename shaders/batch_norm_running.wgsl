// batch_norm running statistics from batch statistics computed elsewhere (synchronised batch
// norm: the mean and biased variance were averaged over all ranks on the host), the way PyTorch
// updates them: running = (1 - momentum) * running + momentum * batch, with the unbiased
// variance of the global batch. The global sample count changes per step (an uneven last batch),
// so it is read from a buffer the host writes, not baked into the uniforms.

struct Params {
    c: u32, hw: u32, momentum: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> samples: array<f32>;       // [global batch size]
@group(0) @binding(2) var<storage, read> mean: array<f32>;          // (C)
@group(0) @binding(3) var<storage, read> var_b: array<f32>;         // (C) biased
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    let c = gid.x;
    if (c >= p.c) {
        return;
    }
    let count = samples[0] * f32(p.hw);
    let unbiased = var_b[c] * count / max(count - 1.0, 1.0);
    run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * mean[c];
    run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
}
