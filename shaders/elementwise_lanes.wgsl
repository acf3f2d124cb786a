// How many consecutive elements of an elementwise kernel one lane takes: one here. The vec4
// form (elementwise_lanes_vec4.wgsl, `kernels::shaders::vec4_variant`) takes 4, with one vector
// load or store for each 4 elements. FV is the lane's f32 values; `TV`, which a kernel with
// activation storage declares as `alias TV = T;`, its stored values.
const PACK: u32 = 1u;
alias FV = f32;

fn lane_sum(v: FV) -> f32 {
    return v;
}
