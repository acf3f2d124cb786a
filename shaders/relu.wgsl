// relu and relu6: y = min(max(x, 0), MAX); MAX = 6 for relu6, the largest f32 for relu.

// Activation storage: f32, or f16 in the variant `kernels::shaders::variant` builds.
alias T = f32;

override WG: u32 = 256u;
override MAX: f32 = 0x1.fffffep+127f;  // f32::MAX (browsers reject a decimal that rounds past it)

struct Params { total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> y: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < p.total) {
        y[i] = T(min(max(f32(x[i]), 0.0), MAX));
    }
}
