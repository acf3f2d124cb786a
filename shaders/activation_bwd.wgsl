// dx = dy * act'(saved) elementwise. `saved` is the forward's output y where the activation's
// derivative follows from it (FROM_OUTPUT: relu, relu6, leaky_relu, sigmoid, hardsigmoid),
// else its input x (silu, hardswish, gelu).

override WG: u32 = 256u;
override FROM_OUTPUT: bool = true;

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < p.total) {
        let s = saved[i];
        let d = select(act_grad(s), act_grad_from_output(s), FROM_OUTPUT);
        // a zero derivative zeroes the gradient even where dy is inf or NaN, as a mask would
        dx[i] = select(dy[i] * d, 0.0, d == 0.0);
    }
}
