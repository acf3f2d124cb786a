// Texels every lane of a workgroup fetches at the same coordinate (conv2d_fwd_tex's weights,
// gemm_tex's A rows): in this form each lane fetches each one itself. On lavapipe a fetch costs
// the same whether the lanes' coordinates agree or not, so kernels::shaders::operand_variant
// swaps in operand_share_subgroup.wgsl where the adapter has subgroups as wide as the rows:
// there a lane fetches one row's texel and shuffles serve the others.
// A kernel calls own_texel once per step (the texel of row share_row(lanes)) and shared_texel
// per row; this form ignores `own` and fetches at `at`. shared_coord does the same for a
// coordinate each lane could work out for its row (this form takes `at`, the kernel's own).

struct ShareLanes {
    @builtin(local_invocation_index) index: u32,
}

// The row whose texels this lane fetches for its subgroup (none in this form).
fn share_row(lanes: ShareLanes) -> u32 {
    return 0u;
}

fn own_texel(t: texture_2d<f32>, at: vec2i) -> vec4f {
    return vec4f(0.0);
}

fn shared_texel(t: texture_2d<f32>, own: vec4f, row: u32, at: vec2i) -> vec4f {
    return textureLoad(t, at, 0);
}

fn shared_coord(own: vec2i, row: u32, at: vec2i) -> vec2i {
    return at;
}
