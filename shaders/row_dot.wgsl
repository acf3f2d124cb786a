// out[r] = sum_j a[r, j] * b[r, j] over rows of `len` contiguous values: the scale gradient of
// mul_channels (rows = (image, channel), a = dy, b = x). One workgroup per row, lanes striding
// the row (coalesced), then one workgroup reduction (workgroup_sum.wgsl).

const WG: u32 = 64u;

struct Params { rows: u32, len: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        lanes: Lanes) {
    let lid = lanes.index;
    let r = wid.x + wid.y * nwg.x;
    // rows past the end (the folded grid's last line) still reach every barrier
    let live = r < p.rows;
    let base = min(r, p.rows - 1u) * p.len;
    var acc = 0.0;
    for (var j = lid; j < p.len; j += WG) {
        acc += a[base + j] * b[base + j];
    }
    let total = workgroup_sum(acc, lanes);
    if (lid == 0u && live) {
        out[r] = total;
    }
}
