//! The cooperative-matrix (tensor core) variants of the large-tile conv kernels
//! (`kernels::conv::cooperative`) against the float64 reference: the forward with its fused
//! epilogue and the training statistics, the input gradient (every stride phase in one
//! dispatch) and the weight gradient (split-K), in both tiles. Where the device has matrix
//! units convoy can use (`GpuInfo::cooperative_f16`: an NVIDIA GPU through Vulkan, for one) they
//! run there; elsewhere (lavapipe) on a device opened with emulated fragments
//! (`GpuBuilder::emulate_cooperative_matrix`), which runs everything of the kernels but the
//! fragment builtins themselves (staging, the fragments' places, the hand-off to the epilogues,
//! the statistics); `shaders::cooperative_kernels_compile_to_spirv` compiles the native form on
//! every machine. And without either, the tiles are refused with an error naming the adapter.
//!
//! Tolerance: the operands are f16 values (x, dy, and the weights rounded to f16 as mixed
//! precision's copies are), and the reference is fed the same values; products of f16 values
//! are exact in f32 and the fragments accumulate in f32, so f32 results (the gradients, the
//! statistics) meet the f32 kernels' RTOL, and the forward's f16 output its rounding, the 1e-3
//! of the other f16 kernels (tests/kernels/half.rs), which still catches f16 accumulation (~1e-2
//! over these sums) or a misplaced fragment.

use crate::common::{assert_close, gpu, open_gpu, reference, to_f64, RTOL};
use crate::conv::{block_stats, forward_buffers, large_tile_gradients_match};
use crate::half::{round_f16, HALF_RTOL};
use convoy::graph::{Act, Epilogue};
use convoy::internals::device::KernelFamily;
use convoy::internals::kernels::conv::{self, ConvTile};
use convoy::ops::{Conv2dArgs, Conv2dGeom};
use convoy::{DType, Gpu, Rng, Tensor};
use std::sync::OnceLock;

/// The device the cooperative kernels run on in these tests: the test GPU where it has matrix
/// units, else one with emulated fragments and the gpu family (whose kernels they are); None
/// without shader-f16 (wgpu's GL backend).
fn coop_gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    if gpu().info().cooperative_f16 {
        return Some(gpu());
    }
    let g = GPU.get_or_init(|| {
        open_gpu(
            Gpu::builder()
                .kernels(KernelFamily::Gpu)
                .emulate_cooperative_matrix(true),
        )
    });
    match g.info().cooperative_emulated {
        true => Some(g),
        false => {
            println!("{}: no shader-f16, so no cooperative kernels to test", g.info().name);
            None
        }
    }
}

const TILES: [ConvTile; 2] = [ConvTile::COOP_128, ConvTile::COOP_64];

#[test]
fn cooperative_tiles_are_refused_without_matrix_units() {
    let g = gpu();
    if g.info().cooperative_kernels() {
        return;
    }
    let mut rng = Rng::new(77);
    let (xs, ws) = ([1, 16, 8, 8], [64, 16, 3, 3]);
    let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::default().padding(1)).unwrap();
    // without shader-f16 (wgpu's GL backend) there are no f16 tensors: f32 buffers stand in,
    // since the refusal comes before anything is read
    let act = if g.info().has_f16() { DType::F16 } else { DType::F32 };
    let x = Tensor::from_slice(g, &rng.vec(16 * 64, -1.0, 1.0), xs).unwrap();
    let w = Tensor::from_slice(g, &rng.vec(64 * 144, -1.0, 1.0), ws).unwrap();
    let y = Tensor::empty_of(g, geom.out_shape(), act).unwrap();
    let dy = Tensor::from_slice(g, &rng.vec(64 * 64, -1.0, 1.0), [1, 64, 8, 8]).unwrap();
    let dw = Tensor::empty(g, ws).unwrap();
    for tile in TILES {
        let bufs = forward_buffers(&x, &w, None, None, &y);
        let err = conv::forward_tiled(g, &geom, tile, Epilogue::default(), act, &bufs)
            .err()
            .expect("a cooperative tile ran on a device without matrix units")
            .to_string();
        assert!(err.contains(&g.info().name) && err.contains("cooperative"), "{err}");
        let err = conv::backward_data_tiled(g, &geom, tile, dy.buffer(), w.buffer(), x.buffer())
            .err()
            .expect("a cooperative input gradient ran without matrix units")
            .to_string();
        assert!(err.contains(&g.info().name), "{err}");
        let bufs = conv::WeightGradientBuffers {
            dy: dy.buffer(),
            x: x.buffer(),
            dw: dw.buffer(),
        };
        let err = conv::backward_weight_tiled(g, &geom, tile, None, &bufs)
            .err()
            .expect("a cooperative weight gradient ran without matrix units")
            .to_string();
        assert!(err.contains(&g.info().name), "{err}");
    }
    println!("{}: cooperative tiles refused", g.info().name);
}

/// The forward on f16 activations: f16 y with bias, residual and an activation, and the batch
/// statistics of the values stored (before their rounding). Channels and K off the tile's
/// multiples (K = 19 x 9), pixels ending inside a 128-pixel block, a 1x1 map, stride 2,
/// dilation, groups, 1x1 convs, a 7x7 stem on 3 channels; and f32 activations refused.
#[test]
fn cooperative_forward_matches_reference() {
    let Some(g) = coop_gpu() else { return };
    let mut rng = Rng::new(78);
    // (x, cout, kernel, stride, padding, dilation, groups)
    let cases = [
        ([3, 19, 13, 11], 130, 3, 1, 1, 1, 1),
        ([1, 64, 7, 9], 64, 1, 1, 0, 1, 1),
        ([2, 128, 17, 16], 140, 3, 2, 1, 1, 2),
        ([5, 8, 1, 1], 72, 3, 1, 1, 1, 1),
        ([2, 32, 12, 12], 96, 3, 1, 2, 2, 1),
        ([1, 3, 33, 30], 64, 7, 2, 3, 1, 1),
        ([2, 256, 8, 8], 256, 1, 1, 0, 1, 1),
    ];
    for (xs, cout, k, stride, pad, dil, groups) in cases {
        let args = Conv2dArgs::new(stride, pad, dil, groups);
        let ws = [cout, xs[1] / groups, k, k];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), args).unwrap();
        let yd = geom.out_shape().dims().to_vec();
        let x = round_f16(&rng.vec(xs.iter().product(), -1.0, 1.0));
        let w = round_f16(&rng.vec(ws.iter().product(), -0.5, 0.5));
        let b = rng.vec(cout, -0.5, 0.5);
        let r = round_f16(&rng.vec(yd.iter().product(), -1.0, 1.0));
        let (conv, _) = reference::conv2d(
            &to_f64(&x),
            xs,
            &to_f64(&w),
            ws,
            Some(&to_f64(&b)),
            stride,
            pad,
            dil,
            groups,
        );
        let want: Vec<f64> = conv
            .iter()
            .zip(&r)
            .map(|(&v, &r)| reference::activation(Act::Silu, v + r as f64))
            .collect();
        let want_stats = block_stats(&want, [yd[0], yd[1], yd[2] * yd[3]]);
        let xt = Tensor::from_slice_f16(g, &x, xs.to_vec()).unwrap();
        let rt = Tensor::from_slice_f16(g, &r, yd.clone()).unwrap();
        let wt = Tensor::from_slice(g, &w, ws).unwrap();
        let bt = Tensor::from_slice(g, &b, [cout]).unwrap();
        let epi = Epilogue {
            residual: true,
            act: Act::Silu,
        };
        for tile in TILES {
            let y = Tensor::empty_of(g, geom.out_shape(), DType::F16).unwrap();
            let stats = Tensor::empty(g, [want_stats.len()]).unwrap();
            let bufs = conv::ForwardBuffers {
                stats: Some(stats.buffer()),
                ..forward_buffers(&xt, &wt, Some(&bt), Some(&rt), &y)
            };
            let ds = conv::forward_tiled(g, &geom, tile, epi, DType::F16, &bufs).unwrap();
            assert!(
                ds[0].pipeline.shader.name.contains("_coop"),
                "{}",
                ds[0].pipeline.shader.name
            );
            g.run(&ds);
            let what = format!("cooperative forward x{xs:?} w{ws:?} {args:?} {tile:?}");
            let (y, stats) = (y.to_vec().unwrap(), stats.to_vec().unwrap());
            assert_close(&what, &y, &want, HALF_RTOL);
            // element by element too: a misplaced fragment of a large tensor could hide in the
            // norm; the means apart from the (larger) sums of squares
            let worst = y
                .iter()
                .zip(&want)
                .map(|(a, b)| (f64::from(*a) - b).abs() / (b.abs() + 1e-2))
                .fold(0.0f64, f64::max);
            assert!(worst < 5e-3, "{what}: an element {worst:.2e} off");
            assert_close(&format!("{what}: statistics"), &stats, &want_stats, RTOL);
            let means: Vec<f32> = stats.iter().step_by(2).copied().collect();
            let want_means: Vec<f64> = want_stats.iter().step_by(2).copied().collect();
            assert_close(&format!("{what}: means"), &means, &want_means, RTOL);
            // f32 activations are refused
            let y32 = Tensor::empty(g, geom.out_shape()).unwrap();
            let bufs = forward_buffers(&xt, &wt, None, None, &y32);
            let err = conv::forward_tiled(g, &geom, tile, Epilogue::default(), DType::F32, &bufs)
                .err()
                .expect("f32 activations on a cooperative tile")
                .to_string();
            assert!(err.contains("f16"), "{err}");
        }
    }
}

/// The gradients on operands that hold f16 values (mixed precision's): the weight gradient with
/// its default split, one chunk and chunks ending inside a 16-pixel step; the input gradient
/// with every stride phase in one dispatch (phases without taps get zeros). The shapes of the
/// f32 large tiles' test (tests/kernels/conv.rs), a subset.
#[test]
fn cooperative_gradients_match_reference() {
    let Some(g) = coop_gpu() else { return };
    let mut rng = Rng::new(79);
    // (x, cout, kernel, stride, padding, dilation, groups)
    let cases = [
        ([2, 37, 13, 11], 130, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([5, 32, 1, 1], 100, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        ([3, 130, 6, 5], 64, [1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([2, 24, 17, 15], 96, [3, 3], [2, 2], [1, 1], [1, 1], 1),
        ([2, 18, 12, 12], 66, [3, 3], [1, 1], [2, 2], [2, 2], 1),
        ([2, 128, 8, 9], 140, [3, 3], [1, 1], [1, 1], [1, 1], 2),
        ([2, 70, 9, 10], 40, [1, 1], [2, 2], [0, 0], [1, 1], 1),
        ([2, 128, 10, 13], 36, [3, 3], [2, 3], [1, 2], [1, 1], 2),
    ];
    large_tile_gradients_match(g, &mut rng, &cases, &TILES, &[13], round_f16, "_coop");
}
