// The vec4 form of channel_lanes.wgsl: the activations per component, and which of a lane's 4
// elements lie in the next plane.
override STRADDLE: bool = false;

fn in_next_plane(e: u32) -> vec4<bool> {
    return (vec4u(e) + vec4u(0u, 1u, 2u, 3u)) / HW != vec4u(e / HW);
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
