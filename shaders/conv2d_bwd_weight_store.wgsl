// The store of the split-K weight-gradient kernels whose lanes hold 4 weight columns each
// (conv2d_bwd_weight and conv2d_bwd_weight_tex); prepended to them by `kernels::shaders`. Each
// chunk writes its partial sums to its own slice of `part`; split_k_reduce adds the slices (with
// one chunk, `part` is dw itself). The kernel defines WG.
@group(0) @binding(3) var<storage, read_write> part: array<f32>;  // (chunks, Cout, Cin/g*KH*KW)

// Store the partial sums `acc[o][j]` of rows oc0 .. oc0+noc at the lane's columns `col[j]`
// (where `ok[j]`) in chunk `chunk`'s slice; with `dead_taps` (the first column block, when some
// tap reads only padding), also the zeros of those rows' dead-tap columns, spread over the lanes.
fn store_columns(acc_in: array<vec4f, 8>, ok_in: array<bool, 4>, col_in: array<u32, 4>,
                 chunk: u32, oc0: u32, noc: u32, cout: u32, cols: u32, dead_taps: bool,
                 lid: u32) {
    // locals: a value array takes constant indices only
    var acc = acc_in;
    var ok = ok_in;
    var col = col_in;
    let base = chunk * cout * cols;
    for (var j = 0u; j < 4u; j++) {
        if (!ok[j]) {
            continue;
        }
        for (var o = 0u; o < noc; o++) {
            part[base + (oc0 + o) * cols + col[j]] = acc[o][j];
        }
    }
    // a loop with no trip without dead taps, so the other workgroups skip it
    let dead_rows = select(0u, noc, dead_taps);
    let taps = KH * KW;
    for (var o = 0u; o < dead_rows; o++) {
        for (var c = lid; c < cols; c += WG) {
            let ky = (c % taps) / KW;
            let kx = c % KW;
            if (ky < KY0 || ky >= KY1 || kx < KX0 || kx >= KX1) {
                part[base + (oc0 + o) * cols + c] = 0.0;
            }
        }
    }
}
