// add: y = a + b, elementwise over equal shapes (the residual connection, and gradients that
// meet). A lane takes PACK consecutive elements (the elementwise_lanes prelude: 4 in vec4s
// where the total is a multiple of 4).

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;
alias TV = T;

override WG: u32 = 256u;

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<TV>;
@group(0) @binding(2) var<storage, read> b: array<TV>;
@group(0) @binding(3) var<storage, read_write> y: array<TV>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < p.total / PACK) {
        y[i] = TV(FV(a[i]) + FV(b[i]));
    }
}
