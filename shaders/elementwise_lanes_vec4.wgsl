// The vec4 form of elementwise_lanes.wgsl: a lane takes 4 consecutive elements, loaded and
// stored as one vec4 each. Lavapipe runs a storage load whose address differs per lane as a
// loop over the lanes, so 4 elements cost one trip where they cost four; GPUs issue one
// 16-byte access per lane where they issued four 4-byte ones.
const PACK: u32 = 4u;
alias FV = vec4f;

fn lane_sum(v: FV) -> f32 {
    return v.x + v.y + v.z + v.w;
}
