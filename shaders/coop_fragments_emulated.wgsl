// coop_fragments.wgsl's functions in plain arithmetic, for testing the cooperative-matrix
// kernels where the device has no matrix units (lavapipe, with CONVOY_COOP_MATRIX=emulate): the
// same stages, the same products of f16 values summed in f32, the same results areas, so every
// part of a kernel but the builtins themselves runs under the tests. Each 32 consecutive
// invocations play one subgroup (`coop_lane`: the invocation's place in it, set by the tile);
// lane l holds row l / 2, columns (l % 2) * 8 .. + 7 of an accumulator. A fragment of A or B is
// where it starts in its stage: the products read the stages themselves, between the same
// barriers as the loads they stand for.

alias FragA = u32;
alias FragB = u32;

struct Acc {
    lo: vec4f,
    hi: vec4f,
}

fn acc_zero() -> Acc {
    return Acc(vec4f(0.0), vec4f(0.0));
}

fn frag_a(at: u32) -> FragA {
    return at;
}

fn frag_b(at: u32) -> FragB {
    return at;
}

// c + a x b for this lane's 8 elements of the accumulator.
fn mma(a: FragA, b: FragB, c: Acc) -> Acc {
    let row = a + (coop_lane / 2u) * LDA;
    let col = b + (coop_lane % 2u) * 8u;
    var lo = c.lo;
    var hi = c.hi;
    for (var k = 0u; k < 16u; k++) {
        let av = f32(sa[row + k]);
        let at = col + k * LDB;
        lo += av * vec4f(f32(sb[at]), f32(sb[at + 1u]), f32(sb[at + 2u]), f32(sb[at + 3u]));
        hi += av * vec4f(f32(sb[at + 4u]), f32(sb[at + 5u]), f32(sb[at + 6u]), f32(sb[at + 7u]));
    }
    return Acc(lo, hi);
}

fn acc_store(c: Acc, at: u32) {
    let o = at + (coop_lane / 2u) * LDC + (coop_lane % 2u) * 8u;
    sc[o] = c.lo.x;
    sc[o + 1u] = c.lo.y;
    sc[o + 2u] = c.lo.z;
    sc[o + 3u] = c.lo.w;
    sc[o + 4u] = c.hi.x;
    sc[o + 5u] = c.hi.y;
    sc[o + 6u] = c.hi.z;
    sc[o + 7u] = c.hi.w;
}
