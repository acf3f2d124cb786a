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

// The sum and the max are two functions, not one with a flag: a `select` between subgroupAdd
// and subgroupMax evaluates both (each a run of shuffles) on every call.
fn workgroup_sum4(v: vec4f, lanes: Lanes) -> vec4f {
    let own = subgroupAdd(v);
    if (lanes.lane == 0u) {
        reduce_scratch[lanes.group] = own;
    }
    workgroupBarrier();
    // every subgroup folds the partials: lane l takes partials l, l + width, ...
    var t = vec4f(0.0);
    for (var i = lanes.lane; i < lanes.groups; i += lanes.width) {
        t += reduce_scratch[i];
    }
    let r = subgroupAdd(t);
    workgroupBarrier();  // the scratch is free for the next reduction
    return r;
}

fn workgroup_max4(v: vec4f, lanes: Lanes) -> vec4f {
    let own = subgroupMax(v);
    if (lanes.lane == 0u) {
        reduce_scratch[lanes.group] = own;
    }
    workgroupBarrier();
    var t = reduce_scratch[0];
    for (var i = lanes.lane; i < lanes.groups; i += lanes.width) {
        t = max(t, reduce_scratch[i]);
    }
    let r = subgroupMax(t);
    workgroupBarrier();
    return r;
}

fn workgroup_sum(v: f32, lanes: Lanes) -> f32 {
    return workgroup_sum4(vec4f(v, 0.0, 0.0, 0.0), lanes).x;
}

fn workgroup_max(v: f32, lanes: Lanes) -> f32 {
    return workgroup_max4(vec4f(v, 0.0, 0.0, 0.0), lanes).x;
}
