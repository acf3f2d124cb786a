// How many consecutive elements of a per-channel elementwise kernel (over planes of HW, its
// constant) one lane takes: one here. The vec4 form (elementwise_lanes_vec4.wgsl,
// `kernels::shaders::vec4_variant`) takes 4, with one vector load or store for each 4
// elements. FV is the lane's f32 values; `TV`, which a kernel declares as `alias TV = T;`,
// its stored values. STRADDLE (the vec4 form only): HW is not a multiple of 4, so a lane's 4
// elements may reach into the next plane (at most one more: HW >= 4).
const PACK: u32 = 1u;
alias FV = f32;
override STRADDLE: bool = false;

// Per element of the lane: whether it lies in the plane after the first element's.
fn in_next_plane(e: u32) -> bool {
    return false;
}

fn lane_sum(v: FV) -> f32 {
    return v;
}

fn act_v(v: FV) -> FV {
    return act(v);
}

fn act_grad_v(v: FV) -> FV {
    return act_grad(v);
}

fn act_grad_from_output_v(v: FV) -> FV {
    return act_grad_from_output(v);
}
