// Inference fusion: fold an eval-mode batch norm into the conv before it.
// s = gamma / sqrt(running_var + eps);  w' = w * s[oc];  b' = (b - running_mean) * s + beta.
// One invocation per weight element; the first Cout invocations also write the bias.

override WG: u32 = 256u;
override HAS_BIAS: bool = false;

struct Params { cout: u32, per_channel: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;          // (Cout, per_channel)
@group(0) @binding(2) var<storage, read> b: array<f32>;          // (Cout), unread without HAS_BIAS
@group(0) @binding(3) var<storage, read> gamma: array<f32>;      // (Cout)
@group(0) @binding(4) var<storage, read> beta: array<f32>;       // (Cout)
@group(0) @binding(5) var<storage, read> run_mean: array<f32>;   // (Cout)
@group(0) @binding(6) var<storage, read> run_var: array<f32>;    // (Cout)
@group(0) @binding(7) var<storage, read_write> w_out: array<f32>;
@group(0) @binding(8) var<storage, read_write> b_out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.cout * p.per_channel) {
        return;
    }
    let oc = i / p.per_channel;
    let s = gamma[oc] / sqrt(run_var[oc] + p.eps);
    w_out[i] = w[i] * s;
    if (i < p.cout) {
        var bias = 0.0;
        if (HAS_BIAS) {
            bias = b[i];
        }
        let si = gamma[i] / sqrt(run_var[i] + p.eps);
        b_out[i] = (bias - run_mean[i]) * si + beta[i];
    }
}
