// Softmax cross-entropy backward (mean reduction, label smoothing eps, K classes):
// dlogits[i, j] = (softmax(x_i)[j] - (1 - eps) * [j == label_i] - eps / K) / N.
// One invocation per row. With SCALED, times the loss scale of a mixed-precision step (the
// scaler's first value, `kernels::loss_scale`).

override WG: u32 = 64u;
override SCALED: bool = false;

struct Params { n: u32, k: u32, smoothing: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // (N, K)
@group(0) @binding(2) var<storage, read> labels: array<i32>;      // (N)
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>; // (N, K)
@group(0) @binding(4) var<storage, read> scaler: array<f32>;        // unread without SCALED

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let r = (wid.x + wid.y * nwg.x) * WG + lid;
    if (r >= p.n) {
        return;
    }
    let base = r * p.k;
    var mx = logits[base];
    for (var j = 1u; j < p.k; j++) {
        mx = max(mx, logits[base + j]);
    }
    var e = 0.0;
    for (var j = 0u; j < p.k; j++) {
        e += exp(logits[base + j] - mx);
    }
    let label = labels[r];
    var inv_n = 1.0 / f32(p.n);
    if (SCALED) {
        inv_n = inv_n * scaler[0];
    }
    for (var j = 0u; j < p.k; j++) {
        var t = p.smoothing / f32(p.k);
        if (i32(j) == label) {
            t += 1.0 - p.smoothing;
        }
        dlogits[base + j] = (exp(logits[base + j] - mx) / e - t) * inv_n;
    }
}
