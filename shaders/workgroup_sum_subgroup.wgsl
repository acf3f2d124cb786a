// Reductions over a workgroup of WG invocations, every lane getting the result, through
// subgroup operations: each subgroup reduces its lanes in registers (subgroupAdd/Max), its
// first lane stores the partial, and after one barrier every subgroup reduces the partials
// again. Two barriers instead of log2(WG); the order of the additions is fixed for a device, so
// results repeat run to run. Replaces workgroup_sum.wgsl in a kernel's subgroup variant
// (kernels::shaders::reduction_variant).

struct Lanes {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) width: u32,
    @builtin(subgroup_id) group: u32,
    @builtin(num_subgroups) groups: u32,
}

// one partial per subgroup (at most WG subgroups, of one lane each)
var<workgroup> reduce_scratch: array<vec4f, WG>;

fn workgroup_reduce(v: vec4f, lanes: Lanes, is_max: bool) -> vec4f {
    let own = select(subgroupAdd(v), subgroupMax(v), is_max);
    if (lanes.lane == 0u) {
        reduce_scratch[lanes.group] = own;
    }
    workgroupBarrier();
    // every subgroup folds the partials: lane l takes partials l, l + width, ...
    var t = select(vec4f(0.0), reduce_scratch[0], is_max);
    for (var i = lanes.lane; i < lanes.groups; i += lanes.width) {
        let q = reduce_scratch[i];
        t = select(t + q, max(t, q), is_max);
    }
    let r = select(subgroupAdd(t), subgroupMax(t), is_max);
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
