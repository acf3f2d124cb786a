// The 16 x 16 fragments of the cooperative-matrix kernels (conv2d_coop_tile and the kernels
// built on it) on the device's matrix units (tensor cores): f16 operands, f32 accumulators,
// through wgpu's experimental cooperative matrices. Prepended by `kernels::shaders::
// cooperative_variant` after `enable f16; enable wgpu_cooperative_matrix;`; the emulated form
// (coop_fragments_emulated.wgsl) has the same functions. The tile declares the stages sa, sb
// (f16, rows LDA and LDB apart) and the result areas sc (f32, rows LDC apart).

alias FragA = coop_mat16x16<f16, A>;
alias FragB = coop_mat16x16<f16, B>;
alias Acc = coop_mat16x16<f32, C>;

fn acc_zero() -> Acc {
    return Acc();
}

// The A fragment whose first element is sa[at] (row-major, rows LDA apart); every stride a
// `let` of its own, as other naga users of these builtins write them, for its SPIR-V.
fn frag_a(at: u32) -> FragA {
    let ld = LDA;
    return coopLoadT<FragA>(&sa[at], ld);
}

// The B fragment whose first element is sb[at] (row-major, rows LDB apart).
fn frag_b(at: u32) -> FragB {
    let ld = LDB;
    return coopLoadT<FragB>(&sb[at], ld);
}

// c + a x b on the matrix units.
fn mma(a: FragA, b: FragB, c: Acc) -> Acc {
    return coopMultiplyAdd(a, b, c);
}

// c into sc from sc[at] (row-major, rows LDC apart).
fn acc_store(c: Acc, at: u32) {
    let ld = LDC;
    coopStoreT(c, &sc[at], ld);
}
