// Softmax over the last axis of x (rows, K), one workgroup per row: lanes stride the row
// (coalesced), the row's max and sum of exp(x - max) reduce over the workgroup (workgroup_sum.wgsl). BACKWARD: the
// input gradient from the output y and dy, dx = y * (dy - sum_j dy_j y_j), with the same
// reduction for the sum.

const WG: u32 = 64u;
override BACKWARD: bool = false;

struct Params { rows: u32, k: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;        // x, or y with BACKWARD
@group(0) @binding(2) var<storage, read> dy: array<f32>;       // unread without BACKWARD
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // y, or dx with BACKWARD

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        lanes: Lanes) {
    let lid = lanes.index;
    let r = wid.x + wid.y * nwg.x;
    let live = r < p.rows;
    let base = min(r, p.rows - 1u) * p.k;
    if (BACKWARD) {
        var s = 0.0;
        for (var j = lid; j < p.k; j += WG) {
            s += dy[base + j] * a[base + j];
        }
        let dot = workgroup_sum(s, lanes);
        for (var j = lid; j < p.k && live; j += WG) {
            out[base + j] = a[base + j] * (dy[base + j] - dot);
        }
        return;
    }
    var m = a[base];
    for (var j = lid; j < p.k; j += WG) {
        m = max(m, a[base + j]);
    }
    let mx = workgroup_max(m, lanes);
    var s = 0.0;
    for (var j = lid; j < p.k; j += WG) {
        s += exp(a[base + j] - mx);
    }
    let inv = 1.0 / workgroup_sum(s, lanes);
    for (var j = lid; j < p.k && live; j += WG) {
        out[base + j] = exp(a[base + j] - mx) * inv;
    }
}
