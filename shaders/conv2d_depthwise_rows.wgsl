// The input rows of the vec4 depthwise kernels (conv2d_fwd_depthwise_vec4 and
// conv2d_bwd_weight_depthwise_vec4), prepended to them by `kernels::shaders` (WGSL has no
// include). A unit of 4 outputs of a row, its first column a multiple of 4, reads per tap row
// the NV vec4s of x under its taps (its segment: from the first input column it reaches,
// rounded down to a vec4), and takes each tap's 4 inputs out of them at constant offsets. The
// kernel binds `x` ((N, C, H, W / 4) as vec4s) and `p` (its Params, with `w`).

// where a unit's first input column sits in its first vec4: its output column is a multiple of
// 4, so (4 - PW % 4) % 4 whatever the column
override OFF: u32 = (4u - PW % 4u) % 4u;
// vec4s under a unit's taps in one row: OFF + 3 SW + (KW - 1) DW + 1 columns (at most 4 vec4s:
// the host checks, `depthwise_vec4_fits`)
override NV: u32 = (OFF + 3u * SW + (KW - 1u) * DW + 4u) / 4u;

// A unit's segment in one tap row, zero past its NV vec4s.
struct Segment { a: vec4f, b: vec4f, c: vec4f, d: vec4f }

// The vec4 of row `row` (an offset in vec4s) at input column `col` (a multiple of 4), zero
// outside the image. The load itself stays inside the row (`select` evaluates both sides).
fn segment(row: u32, col: i32) -> vec4f {
    let inside = col >= 0 && col < i32(p.w);
    return select(vec4f(0.0), vec4f(x[row + u32(clamp(col, 0, i32(p.w) - 4)) / 4u]), inside);
}

// Element e of the segment (e < 16): a constant after the tap loops unroll, so this folds to
// one component; no private array to index.
fn pick(s: Segment, e: u32) -> f32 {
    let v = select(select(select(s.d, s.c, e < 12u), s.b, e < 8u), s.a, e < 4u);
    return v[e & 3u];
}

// The inputs of tap kx under the unit's 4 outputs.
fn tap_inputs(s: Segment, kx: u32) -> vec4f {
    let e = OFF + kx * DW;
    return vec4f(pick(s, e), pick(s, e + SW), pick(s, e + 2u * SW), pick(s, e + 3u * SW));
}

// The segment of the unit at input column col0 (a multiple of 4) in row `row`, loaded whole (a
// GPU's path: a unit per invocation).
fn load_segment(row: u32, col0: i32) -> Segment {
    var s = Segment(segment(row, col0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
    if (NV > 1u) {
        s.b = segment(row, col0 + 4);
    }
    if (NV > 2u) {
        s.c = segment(row, col0 + 8);
    }
    if (NV > 3u) {
        s.d = segment(row, col0 + 12);
    }
    return s;
}

// The same on a CPU driver's path, where an invocation walks a run of units: the tap row's
// segment kept in `win` from `at`; a unit right of the last one in its row (`carried`) takes
// the vec4s the last one loaded SW along, and loads the others (zero where the row is outside
// the image).
fn carry_segment(win: ptr<function, array<vec4f, 28>>, at: u32, row: u32, col0: i32, row_in: bool,
                 carried: bool) -> Segment {
    for (var k = 0u; k < NV; k++) {
        if (carried && k + SW < NV) {
            (*win)[at + k] = (*win)[at + k + SW];
        } else {
            (*win)[at + k] = select(vec4f(0.0), segment(row, col0 + i32(4u * k)), row_in);
        }
    }
    return Segment((*win)[at], (*win)[at + 1u], (*win)[at + 2u], (*win)[at + 3u]);
}
