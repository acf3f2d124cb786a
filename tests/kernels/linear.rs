//! linear (the GEMM kernel) against the f64 reference.

use crate::common::{assert_close, gpu, open_gpu, reference, to_f64, RTOL};
use convoy::internals::kernels::gemm::GemmBuffers;
use convoy::ops::{linear, Act};
use convoy::Rng;
use convoy::{DType, Tensor};

#[test]
fn linear_random_shapes() {
    let g = gpu();
    let mut rng = Rng::new(4);
    // includes sizes around the 64-wide tile and the 16-deep k step, and a 1-row batch
    let mut shapes = vec![(1, 10, 3), (64, 64, 16), (65, 17, 129), (3, 200, 70)];
    for _ in 0..6 {
        shapes.push((rng.int(1, 90), rng.int(1, 150), rng.int(1, 90)));
    }
    for (n, fin, fout) in shapes {
        let x = rng.vec(n * fin, -1.0, 1.0);
        let w = rng.vec(fout * fin, -0.5, 0.5);
        let b = rng.vec(fout, -1.0, 1.0);
        let xt = Tensor::from_slice(g, &x, [n, fin]).unwrap();
        let wt = Tensor::from_slice(g, &w, [fout, fin]).unwrap();
        let bt = Tensor::from_slice(g, &b, [fout]).unwrap();
        for with_bias in [true, false] {
            let y = linear(g, &xt, &wt, with_bias.then_some(&bt)).unwrap();
            assert_eq!(y.dims(), &[n, fout]);
            let bf = to_f64(&b);
            let want = reference::linear(&to_f64(&x), n, fin, &to_f64(&w), fout, with_bias.then_some(&bf[..]));
            assert_close(
                &format!("linear {n}x{fin} -> {fout}"),
                &y.to_vec().unwrap(),
                &want,
                RTOL,
            );
        }
    }
}

#[test]
fn linear_rejects_bad_shapes() {
    let g = gpu();
    let x = Tensor::zeros(g, [4, 10]).unwrap();
    let err = linear(g, &x, &Tensor::zeros(g, [3, 9]).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("linear") && err.contains("[3, 9]"), "{err}");
    let err = linear(
        g,
        &x,
        &Tensor::zeros(g, [3, 10]).unwrap(),
        Some(&Tensor::zeros(g, [4]).unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("bias"), "{err}");
    assert!(linear(
        g,
        &Tensor::zeros(g, [4, 10, 1]).unwrap(),
        &Tensor::zeros(g, [3, 10]).unwrap(),
        None
    )
    .is_err());
}

/// gemm_rows (the 1x1-conv GEMM): batched, rows not a multiple of the 8-row tile, columns across
/// several workgroups, with each epilogue, against f64.
#[test]
fn gemm_rows_batched_with_epilogues() {
    use convoy::internals::kernels::gemm::{gemm_rows, GemmBuffers, RowsGeom};
    let g = gpu();
    let mut rng = Rng::new(5);
    for (batch, m, n, k) in [(1, 1, 4, 1), (2, 9, 12, 5), (3, 17, 264, 33), (1, 64, 1024, 7)] {
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(batch * k * n, -1.0, 1.0);
        let bias = rng.vec(m, -1.0, 1.0);
        let res = rng.vec(batch * m * n, -1.0, 1.0);
        let at = Tensor::from_slice(g, &a, [m, k]).unwrap();
        let bt = Tensor::from_slice(g, &b, [batch, k, n]).unwrap();
        let biast = Tensor::from_slice(g, &bias, [m]).unwrap();
        let rest = Tensor::from_slice(g, &res, [batch, m, n]).unwrap();
        // A transposed: the same product from A^T stored (K, M)
        let at_t: Vec<f32> = (0..k * m).map(|e| a[(e % m) * k + e / m]).collect();
        let att = Tensor::from_slice(g, &at_t, [k, m]).unwrap();
        for (act, with_extras, trans_a) in [
            (Act::None, false, false),
            (Act::Relu, true, false),
            (Act::Relu6, true, false),
            (Act::Gelu, true, false),
            (Act::None, false, true),
            (Act::Relu, true, true),
            (Act::HardSwish, true, true),
        ] {
            let ct = Tensor::zeros(g, [batch, m, n]).unwrap();
            let geom = RowsGeom {
                batch,
                m,
                n,
                k,
                trans_a,
            };
            let at = if trans_a { &att } else { &at };
            let (bi, re) = (with_extras.then(|| biast.buffer()), with_extras.then(|| rest.buffer()));
            let bufs = GemmBuffers {
                a: at.buffer(),
                b: bt.buffer(),
                bias: bi,
                residual: re,
                c: ct.buffer(),
            };
            let d = gemm_rows(g, &geom, act, DType::F32, &bufs).unwrap();
            g.run(&[d]);
            let mut want = vec![0.0f64; batch * m * n];
            for z in 0..batch {
                for i in 0..m {
                    for j in 0..n {
                        let mut s: f64 = (0..k)
                            .map(|t| a[i * k + t] as f64 * b[(z * k + t) * n + j] as f64)
                            .sum();
                        let o = (z * m + i) * n + j;
                        if with_extras {
                            s += bias[i] as f64 + res[o] as f64;
                        }
                        want[o] = reference::activation(act, s);
                    }
                }
            }
            assert_close(
                &format!("gemm_rows {batch}x{m}x{n}x{k} {}", act.name()),
                &ct.to_vec().unwrap(),
                &want,
                RTOL,
            );
        }
    }
    // N not a multiple of 4 is refused, not computed wrongly
    let t = Tensor::zeros(g, [4, 4]).unwrap();
    let bad = RowsGeom {
        batch: 1,
        m: 2,
        n: 6,
        k: 2,
        trans_a: false,
    };
    let bufs = GemmBuffers::new(t.buffer(), t.buffer(), t.buffer());
    let err = gemm_rows(g, &bad, Act::None, DType::F32, &bufs)
        .err()
        .expect("N = 6 must be refused");
    assert!(err.to_string().contains("multiple of 4"), "{err}");
}

/// gemm_tex (`convoy bench gemm`'s texture-operand GEMM, the ceiling the conv suite is measured
/// against) against the f64 reference: a 512^3 product sums 512 terms per output.
#[test]
fn texture_gemm_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(41);
    let n = convoy::bench::TEXTURE_GEMM_COLUMNS;
    let a = rng.vec(n * n, -1.0, 1.0);
    let b = rng.vec(n * n, -1.0, 1.0);
    // C = A x B, A (M, K) and B (K, N) row-major: B as the (out, in) weight of `linear` is B^T
    let bt: Vec<f64> = (0..n * n).map(|i| b[(i % n) * n + i / n] as f64).collect();
    let want = reference::linear(&to_f64(&a), n, n, &bt, n, None);
    // every lane fetching A's texels, and where the policy shares them (lavapipe: 8-wide
    // subgroups) one lane per row
    for share in [false, true] {
        let c = Tensor::empty(g, [n, n]).unwrap(); // NaN: every element written
        let (d, _textures) = convoy::bench::texture_gemm(g, &a, &b, n, &c, share).unwrap();
        g.run(&[d]);
        assert_close(
            &format!("gemm_tex 512^3, shared {share}"),
            &c.to_vec().unwrap(),
            &want,
            RTOL,
        );
    }
    let c = Tensor::empty(g, [n, n]).unwrap();
    let err = convoy::bench::texture_gemm(g, &a[..100], &b, 10, &c, false)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("multiple of 512"), "{err}");
}

/// The three products of a linear layer (forward A B^T, input gradient A B, weight gradient
/// A^T B) through `ops::linear::gemm` under both kernel families: the cpu family runs each
/// as a 1x1 conv through the texture kernels at any batch, the gpu family the tile GEMM from 64
/// rows (1x1 convs below).
#[test]
fn gemm_products_match_reference_under_both_families() {
    use convoy::internals::kernels::gemm::GemmGeom;
    use convoy::internals::ops::linear::gemm;
    use convoy::{Gpu, KernelFamily};
    let families = [KernelFamily::Cpu, KernelFamily::Gpu].map(|f| open_gpu(Gpu::builder().kernels(f)));
    let mut rng = Rng::new(12);
    // (m, n, k): rows around the 64-row tile, widths that are not multiples of 4 or 64
    for (m, n, k) in [(70, 33, 129), (64, 10, 64), (130, 65, 7), (5, 200, 90), (97, 3, 45)] {
        for (trans_a, trans_b) in [(false, true), (false, false), (true, false)] {
            let a = rng.vec(m * k, -1.0, 1.0);
            let b = rng.vec(k * n, -1.0, 1.0);
            // element (i, j) of op(A) and op(B)
            let at = |i: usize, j: usize| f64::from(if trans_a { a[j * m + i] } else { a[i * k + j] });
            let bt = |i: usize, j: usize| f64::from(if trans_b { b[j * k + i] } else { b[i * n + j] });
            let want: Vec<f64> = (0..m * n)
                .map(|e| (0..k).map(|l| at(e / n, l) * bt(l, e % n)).sum())
                .collect();
            for g in &families {
                let a_dims = if trans_a { [k, m] } else { [m, k] };
                let b_dims = if trans_b { [n, k] } else { [k, n] };
                let at = Tensor::from_slice(g, &a, a_dims).unwrap();
                let bt = Tensor::from_slice(g, &b, b_dims).unwrap();
                let c = Tensor::empty(g, [m, n]).unwrap();
                let geom = GemmGeom {
                    m,
                    n,
                    k,
                    trans_a,
                    trans_b,
                };
                let ds = gemm(
                    g,
                    &geom,
                    (DType::F32, DType::F32),
                    &GemmBuffers::new(at.buffer(), bt.buffer(), c.buffer()),
                    None,
                )
                .unwrap();
                g.run(&ds);
                let what = format!(
                    "{:?} family: gemm m{m} n{n} k{k} trans_a {trans_a} trans_b {trans_b}",
                    g.policy().family
                );
                assert_close(&what, &c.to_vec().unwrap(), &want, RTOL);
            }
        }
    }
}

/// Mixed precision's linear layers on cooperative matrices: where the device runs them (here
/// with emulated fragments on the gpu family), `ops::linear::gemm` takes the three products of a
/// layer with 64+ rows as 1x1 convs, whose variant table puts them on the tensor-core tiles: the
/// forward on f16 activations, the gradients on operands that hold f16 values. Against the f64
/// reference on the same f16 values: the f16 output within its rounding, the f32 gradients
/// within f32's.
#[test]
fn gemm_products_on_cooperative_matrices_match_reference() {
    use crate::half::{round_f16, HALF_RTOL};
    use convoy::internals::kernels::gemm::GemmGeom;
    use convoy::internals::ops::linear::gemm;
    use convoy::{Gpu, KernelFamily};
    if !gpu().info().has_f16() {
        return;
    }
    let g = &open_gpu(
        Gpu::builder()
            .kernels(KernelFamily::Gpu)
            .emulate_cooperative_matrix(true),
    );
    let mut rng = Rng::new(13);
    for (m, n, k) in [(70, 130, 96), (130, 64, 80)] {
        for (trans_a, trans_b) in [(false, true), (false, false), (true, false)] {
            let a = round_f16(&rng.vec(m * k, -1.0, 1.0));
            let b = round_f16(&rng.vec(k * n, -1.0, 1.0));
            let at = |i: usize, j: usize| f64::from(if trans_a { a[j * m + i] } else { a[i * k + j] });
            let bt = |i: usize, j: usize| f64::from(if trans_b { b[j * k + i] } else { b[i * n + j] });
            let want: Vec<f64> = (0..m * n)
                .map(|e| (0..k).map(|l| at(e / n, l) * bt(l, e % n)).sum())
                .collect();
            // the forward (A B^T) stores f16 activations; the gradients are f32 on f16 values
            let storage = if trans_b { DType::F16 } else { DType::F32 };
            let a_dims = if trans_a { [k, m] } else { [m, k] };
            let b_dims = if trans_b { [n, k] } else { [k, n] };
            let at = match storage {
                DType::F16 => Tensor::from_slice_f16(g, &a, a_dims.to_vec()).unwrap(),
                _ => Tensor::from_slice(g, &a, a_dims).unwrap(),
            };
            let bt = Tensor::from_slice(g, &b, b_dims).unwrap();
            let c = Tensor::empty_of(g, [m, n], storage).unwrap();
            let geom = GemmGeom {
                m,
                n,
                k,
                trans_a,
                trans_b,
            };
            let operands = (storage, DType::F16);
            let ds = gemm(
                g,
                &geom,
                operands,
                &GemmBuffers::new(at.buffer(), bt.buffer(), c.buffer()),
                None,
            )
            .unwrap();
            let what = format!("cooperative gemm m{m} n{n} k{k} trans_a {trans_a} trans_b {trans_b}");
            assert!(
                ds.iter().any(|d| d.pipeline.shader.name.contains("_coop")),
                "{what}: {:?}",
                ds.iter().map(|d| d.pipeline.shader.name).collect::<Vec<_>>()
            );
            g.run(&ds);
            let tol = if storage == DType::F16 { HALF_RTOL } else { RTOL };
            assert_close(&what, &c.to_vec().unwrap(), &want, tol);
        }
    }
}
