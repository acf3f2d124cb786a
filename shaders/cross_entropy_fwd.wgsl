// Softmax cross-entropy with label smoothing, mean over the batch, in one workgroup:
// loss_i = -(1 - eps) * log p[label_i] - eps * mean_j log p[j], log p = x - logsumexp(x).
// A label outside [0, K) makes the loss NaN (the host checks labels it uploads).

const WG: u32 = 256u;

struct Params { n: u32, k: u32, smoothing: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;     // (N, K)
@group(0) @binding(2) var<storage, read> labels: array<i32>;     // (N)
@group(0) @binding(3) var<storage, read_write> loss: array<f32>; // (1)

@compute @workgroup_size(WG)
fn main(lanes: Lanes) {
    let lid = lanes.index;
    var s = 0.0;
    for (var r = lid; r < p.n; r += WG) {
        let base = r * p.k;
        var mx = logits[base];
        var total = 0.0;
        for (var j = 0u; j < p.k; j++) {
            mx = max(mx, logits[base + j]);
            total += logits[base + j];
        }
        var e = 0.0;
        for (var j = 0u; j < p.k; j++) {
            e += exp(logits[base + j] - mx);
        }
        let lse = mx + log(e);
        let label = labels[r];
        // NaN for a bad label, from a runtime bit pattern: WGSL constant expressions cannot hold
        // NaN or infinity (browsers reject the shader)
        var nan_bits = 0x7fc00000u;
        var nll = bitcast<f32>(nan_bits);
        if (label >= 0 && u32(label) < p.k) {
            nll = lse - logits[base + u32(label)];
        }
        let smoothed = lse - total / f32(p.k);
        s += (1.0 - p.smoothing) * nll + p.smoothing * smoothed;
    }
    let total = workgroup_sum(s, lanes);
    if (lid == 0u) {
        loss[0] = total / f32(p.n);
    }
}
