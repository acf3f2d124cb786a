// relu / relu6 backward: dx = dy where the output y is strictly between 0 and MAX, else 0
// (the same mask as PyTorch's, which tests the input: y < MAX exactly when x < MAX).

override WG: u32 = 256u;
override MAX: f32 = 0x1.fffffep+127f;  // f32::MAX (browsers reject a decimal that rounds past it)

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < p.total) {
        dx[i] = select(0.0, dy[i], y[i] > 0.0 && y[i] < MAX);
    }
}
