//! The f16 conv forward on cooperative matrices (tensor cores), conv2d_fwd_coop, against the
//! float64 reference. It runs where the device enabled them (`GpuInfo::cooperative_f16`: an
//! NVIDIA GPU through Vulkan, for one); lavapipe has none, so there the test checks the other
//! half of the contract: the kernel is refused with an error that names the adapter, and the
//! f16 forward keeps its other kernels. `shaders::experimental_kernels_compile_to_spirv`
//! compiles the kernel on every machine.
//!
//! Tolerance: the reference is fed the f16 values the GPU holds (x and, since the kernel rounds
//! them, the weights); products of f16 values are exact in f32 and the fragments accumulate in
//! f32, so the error is the output's f16 rounding (2^-11 = 4.9e-4 relative) plus the f32 sum's:
//! the 1e-3 of the other f16 kernels (tests/kernels/half.rs), which still catches f16
//! accumulation (~1e-2 over these sums of 72-1,152 terms) or a misplaced fragment.

use crate::common::{assert_close, gpu, reference, rel_err, to_f64};
use crate::half::{round_f16, HALF_RTOL};
use convoy::graph::{Act, Epilogue};
use convoy::internals::kernels::conv::{
    cooperative_takes, forward_cooperative, forward_tiled, ConvTile, ForwardBuffers,
};
use convoy::ops::{conv2d, Conv2dArgs, Conv2dGeom};
use convoy::DType;
use convoy::Rng;
use convoy::Tensor;

#[test]
fn cooperative_matrix_conv_forward_matches_reference() {
    let g = gpu();
    let mut rng = Rng::new(77);
    // (x shape, cout, k, stride, pad, dilation, groups): block edges in every dimension (channels
    // not a multiple of 64 or 16, K not a multiple of 32, pixels not a multiple of 64), batch 1,
    // a 1x1 map, stride 2, dilation, a 7x7 stem on 3 channels (K = 147), 1x1 convs, groups of
    // 16 and 48 output channels
    let cases = [
        ([2, 32, 9, 11], 64, 3, 1, 1, 1, 1),
        ([1, 24, 15, 13], 80, 3, 2, 1, 1, 1),
        ([3, 40, 8, 8], 17, 1, 1, 0, 1, 1),
        ([4, 64, 1, 1], 96, 3, 1, 1, 1, 1),
        ([1, 3, 33, 30], 64, 7, 2, 3, 1, 1),
        ([2, 16, 12, 12], 32, 3, 1, 2, 2, 1),
        ([2, 32, 10, 9], 32, 3, 1, 1, 1, 2),
        ([1, 96, 7, 7], 144, 1, 1, 0, 1, 3),
        ([2, 128, 14, 14], 128, 3, 1, 1, 1, 1),
    ];
    let geom_of = |xs: [usize; 4], ws: [usize; 4], args| Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
    if !g.info().cooperative_f16 {
        let (xs, ws) = ([1, 16, 8, 8], [32, 16, 3, 3]);
        let geom = geom_of(xs, ws, Conv2dArgs::default().padding(1));
        assert!(
            !cooperative_takes(g, &geom, DType::F16, false),
            "no cooperative matrices, yet chosen"
        );
        // without shader-f16 (wgpu's GL backend) there are no f16 tensors: f32 buffers stand
        // in, since the refusal comes before anything is read
        let act = if g.info().has_f16() { DType::F16 } else { DType::F32 };
        let x = match act {
            DType::F16 => Tensor::from_slice_f16(g, &rng.vec(16 * 64, -1.0, 1.0), xs.to_vec()).unwrap(),
            _ => Tensor::from_slice(g, &rng.vec(16 * 64, -1.0, 1.0), xs.to_vec()).unwrap(),
        };
        let w = Tensor::from_slice(g, &rng.vec(32 * 144, -1.0, 1.0), ws).unwrap();
        let y = Tensor::empty_of(g, geom.out_shape(), act).unwrap();
        let err = forward_cooperative(
            g,
            &geom,
            Epilogue::default(),
            &ForwardBuffers::new(x.buffer(), w.buffer(), y.buffer()),
        )
        .err()
        .expect("the cooperative-matrix kernel must be refused on a device without them")
        .to_string();
        assert!(err.contains(&g.info().name) && err.contains("cooperative"), "{err}");
        // the tuner's route to the kernel refuses alike, and f32 activations are refused first
        let bufs = ForwardBuffers::new(x.buffer(), w.buffer(), y.buffer());
        let tiled = forward_tiled(g, &geom, ConvTile::COOPERATIVE, Epilogue::default(), DType::F16, &bufs);
        assert!(
            tiled.is_err(),
            "the cooperative tile ran on a device without cooperative matrices"
        );
        let f32_err = forward_tiled(g, &geom, ConvTile::COOPERATIVE, Epilogue::default(), DType::F32, &bufs)
            .err()
            .expect("f32 activations on the cooperative tile must be refused")
            .to_string();
        assert!(f32_err.contains("f16"), "{f32_err}");
        println!(
            "{} has no cooperative matrices convoy can use: refused ({err})",
            g.info().name
        );
        return;
    }
    for (xs, cout, k, s, p, d, groups) in cases {
        let ws = [cout, xs[1] / groups, k, k];
        let args = Conv2dArgs::new(s, p, d, groups);
        let geom = geom_of(xs, ws, args);
        assert!(
            cooperative_takes(g, &geom, DType::F16, false),
            "x{xs:?} w{ws:?} g{groups}: not chosen"
        );
        let x = rng.vec(xs.iter().product(), -2.0, 2.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let b = rng.vec(cout, -1.0, 1.0);
        let xt = Tensor::from_slice_f16(g, &x, xs.to_vec()).unwrap();
        let wt = Tensor::from_slice(g, &w, ws).unwrap();
        let bt = Tensor::from_slice(g, &b, [cout]).unwrap();
        let x64 = to_f64(&round_f16(&x));
        let (want, _) = reference::conv2d(
            &x64,
            xs,
            &to_f64(&round_f16(&w)),
            ws,
            Some(&to_f64(&b)),
            s,
            p,
            d,
            groups,
        );
        let what = format!("coop conv2d x{xs:?} w{ws:?} s{s} p{p} d{d} g{groups}");
        // through the op: the tuner (on by default on a GPU) picks this kernel or the block
        // kernel, which keeps the weights in f32, so the result is one of the two references
        // (the weights' f16 rounding alone moved a 3x3x32 sum by 1.009e-3 on an H200, past
        // the bound)
        let y = conv2d(g, &xt, &wt, Some(&bt), args).unwrap().to_vec().unwrap();
        let (want_f32_weights, _) = reference::conv2d(&x64, xs, &to_f64(&w), ws, Some(&to_f64(&b)), s, p, d, groups);
        let err = rel_err(&y, &want).min(rel_err(&y, &want_f32_weights));
        assert!(
            err <= HALF_RTOL,
            "{what} through the op: relative error {err:.3e} > {HALF_RTOL:.1e}"
        );
        // ... and the kernel itself with the fused epilogue: + residual (f16), ReLU
        let r = round_f16(&rng.vec(want.len(), -1.0, 1.0));
        let rt = Tensor::from_slice_f16(g, &r, geom.out_shape().dims().to_vec()).unwrap();
        let want_epi: Vec<f64> = want.iter().zip(&r).map(|(a, b)| (a + *b as f64).max(0.0)).collect();
        let y = Tensor::empty_of(g, geom.out_shape(), DType::F16).unwrap();
        let epi = Epilogue {
            residual: true,
            act: Act::Relu,
        };
        // (as the tuner builds its candidate: the tile routes to the kernel)
        let ds = forward_tiled(
            g,
            &geom,
            ConvTile::COOPERATIVE,
            epi,
            DType::F16,
            &ForwardBuffers {
                x: xt.buffer(),
                w: wt.buffer(),
                bias: Some(bt.buffer()),
                residual: Some(rt.buffer()),
                y: y.buffer(),
                stats: None,
                kept: None,
                placement: None,
                x_packed: None,
                w_transposed: None,
            },
        )
        .unwrap();
        assert_eq!(ds[0].pipeline.shader.name, "conv2d_fwd_coop", "{what}");
        g.run(&ds);
        assert_close(
            &format!("{what} + residual, relu"),
            &y.to_vec().unwrap(),
            &want_epi,
            HALF_RTOL,
        );
    }
    // f32 activations never take the f16 kernel, nor does a training forward
    let geom = geom_of([1, 32, 8, 8], [32, 32, 3, 3], Conv2dArgs::default());
    assert!(!cooperative_takes(g, &geom, DType::F32, false));
    assert!(!cooperative_takes(g, &geom, DType::F16, true));
}
