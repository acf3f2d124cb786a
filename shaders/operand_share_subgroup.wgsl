// operand_share.wgsl's subgroup form (kernels::shaders::operand_variant): lane l of a subgroup
// fetches row l's texel (own_texel, at its own coordinate), and row r's texel reaches every lane
// as a shuffle from lane r: one fetch per lane and step where each lane fetched every row's.
// Needs subgroups at least as wide as the rows, workgroups of whole subgroups, and every lane
// of the subgroup at the call (uniform control flow).

struct ShareLanes {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) lane: u32,
}

fn share_row(lanes: ShareLanes) -> u32 {
    return lanes.lane;
}

fn own_texel(t: texture_2d<f32>, at: vec2i) -> vec4f {
    return textureLoad(t, at, 0);
}

fn shared_texel(t: texture_2d<f32>, own: vec4f, row: u32, at: vec2i) -> vec4f {
    return subgroupShuffle(own, row);
}

fn shared_coord(own: vec2i, row: u32, at: vec2i) -> vec2i {
    return subgroupShuffle(own, row);
}
