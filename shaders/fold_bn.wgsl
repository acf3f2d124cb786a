// Inference fusion: fold an eval-mode batch norm into the conv before it.
// s = gamma / sqrt(running_var + eps);  w' = w * s[oc];  b' = (b - running_mean) * s + beta.
// Each workgroup takes a run of one output channel's row of weights, so the scale is one
// value per workgroup (no division or gather per element); a lane takes PACK consecutive
// weights (elementwise_lanes: vec4s where a row is whole vec4s). The first lane of a channel's
// first run also writes its bias.

override WG: u32 = 256u;
override HAS_BIAS: bool = false;

// cout channels, rows of `per` lane values (per_channel / PACK), `runs` workgroups per row
struct Params { cout: u32, per: u32, runs: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<FV>;           // (Cout, per_channel)
@group(0) @binding(2) var<storage, read> b: array<f32>;          // (Cout), unread without HAS_BIAS
@group(0) @binding(3) var<storage, read> gamma: array<f32>;      // (Cout)
@group(0) @binding(4) var<storage, read> beta: array<f32>;       // (Cout)
@group(0) @binding(5) var<storage, read> run_mean: array<f32>;   // (Cout)
@group(0) @binding(6) var<storage, read> run_var: array<f32>;    // (Cout)
@group(0) @binding(7) var<storage, read_write> w_out: array<FV>;
@group(0) @binding(8) var<storage, read_write> b_out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let g = wid.x + wid.y * nwg.x;
    let oc = g / p.runs;
    if (oc >= p.cout) {
        return;
    }
    let run = g - oc * p.runs;
    let s = gamma[oc] / sqrt(run_var[oc] + p.eps);
    let i = run * WG + lid;
    if (i < p.per) {
        let at = oc * p.per + i;
        w_out[at] = w[at] * s;
    }
    if (run == 0u && lid == 0u) {
        var bias = 0.0;
        if (HAS_BIAS) {
            bias = b[oc];
        }
        b_out[oc] = (bias - run_mean[oc]) * s + beta[oc];
    }
}
