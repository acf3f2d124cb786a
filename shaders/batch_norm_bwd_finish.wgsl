// batch_norm training backward, the second step of a split reduction: per channel, the partial
// sums that batch_norm_bwd_reduce's workgroups wrote (dbeta's and dgamma's, `splits` of each),
// added in order into dbeta and dgamma. One invocation per channel: a few dozen values each.

const WG: u32 = 64u;

struct Params { c: u32, splits: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;     // (C, splits, 2)
@group(0) @binding(2) var<storage, read_write> dgamma: array<f32>; // (C)
@group(0) @binding(3) var<storage, read_write> dbeta: array<f32>;  // (C)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
    let c = gid.x;
    if (c >= p.c) {
        return;
    }
    var sa = 0.0;
    var sb = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        let at = (c * p.splits + s) * 2u;
        sa += partials[at];
        sb += partials[at + 1u];
    }
    dbeta[c] = sa;
    dgamma[c] = sb;
}
