// Reductions over a workgroup of WG invocations (the kernel's constant), every lane getting the
// result: a tree through workgroup memory, log2(WG) barriers. On an adapter with subgroups the
// kernel is built with workgroup_sum_subgroup.wgsl in this file's place
// (kernels::shaders::reduction_variant): same functions, same `Lanes`, the entry point unchanged.
// `Lanes` holds the entry point's invocation builtins (the subgroup form needs more of them).

struct Lanes {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> reduce_scratch: array<vec4f, WG>;

// The tree: lane i adds lane i + s for s = WG/2, WG/4, ..., 1 (`is_max`: max instead of sum).
fn workgroup_reduce(v: vec4f, lanes: Lanes, is_max: bool) -> vec4f {
    let lid = lanes.index;
    reduce_scratch[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            let a = reduce_scratch[lid];
            let b = reduce_scratch[lid + s];
            reduce_scratch[lid] = select(a + b, max(a, b), is_max);
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[0];
    workgroupBarrier();  // the scratch is free for the next reduction
    return r;
}

fn workgroup_sum4(v: vec4f, lanes: Lanes) -> vec4f {
    return workgroup_reduce(v, lanes, false);
}

fn workgroup_sum(v: f32, lanes: Lanes) -> f32 {
    return workgroup_reduce(vec4f(v, 0.0, 0.0, 0.0), lanes, false).x;
}

fn workgroup_max(v: f32, lanes: Lanes) -> f32 {
    return workgroup_reduce(vec4f(v, 0.0, 0.0, 0.0), lanes, true).x;
}
