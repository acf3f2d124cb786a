// The per-channel side of the elementwise lanes (after elementwise_lanes.wgsl and the
// activation prelude), for kernels over planes of HW, their constant: the activations on a
// lane's values, and where a lane's elements may cross into the next plane. One element a lane
// here; the vec4 form (channel_lanes_vec4.wgsl) goes with elementwise_lanes_vec4.wgsl.
// STRADDLE (the vec4 form only): HW is not a multiple of 4, so a lane's 4 elements may reach
// into the next plane (at most one more: HW >= 4).
override STRADDLE: bool = false;

// Per element of the lane: whether it lies in the plane after the first element's.
fn in_next_plane(e: u32) -> bool {
    return false;
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
