// The vec4 form of elementwise_lanes.wgsl: a lane takes 4 consecutive elements of one channel,
// loaded and stored as one vec4 each. Lavapipe runs a storage load whose address differs per
// lane as a loop over the lanes, so 4 elements cost one trip where they cost four; GPUs issue
// one 16-byte access per lane where they issued four 4-byte ones.
const PACK: u32 = 4u;
alias FV = vec4f;
override STRADDLE: bool = false;

fn in_next_plane(e: u32) -> vec4<bool> {
    return (vec4u(e) + vec4u(0u, 1u, 2u, 3u)) / HW != vec4u(e / HW);
}

fn lane_sum(v: FV) -> f32 {
    return v.x + v.y + v.z + v.w;
}

fn act_v(v: FV) -> FV {
    return act4(v);
}

fn act_grad_v(v: FV) -> FV {
    return vec4f(act_grad(v.x), act_grad(v.y), act_grad(v.z), act_grad(v.w));
}

fn act_grad_from_output_v(v: FV) -> FV {
    return vec4f(act_grad_from_output(v.x), act_grad_from_output(v.y), act_grad_from_output(v.z),
        act_grad_from_output(v.w));
}
