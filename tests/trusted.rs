//! Trusted modules: the kernels audited as bounded by construction (`Shader::trusted`), built
//! without naga's runtime checks where the policy says so (`GpuBuilder::trusted_modules`,
//! CONVOY_TRUSTED), compute bit for bit what their checked modules compute: whole training steps
//! and inferences of a ResNet and a MobileNetV2 under the gpu family, whose kernels they are,
//! on two devices that differ only in the checks. A kernel that read past an array where the
//! checks clamp its index would differ (or fault) here.

mod common;

use common::open_gpu;
use convoy::nn::{by_name, Net};
use convoy::train::Optimizer;
use convoy::{CompileOptions, Gpu, Inference, KernelFamily, ParamGroups, ParamStore, Rng, TrainStep};

/// Everything a model computes on `gpu`: the logits of an f32 and (where the adapter has
/// shader-f16) an f16 inference, the two losses of two training steps and every tensor of the
/// store after them, as raw bits.
fn run(gpu: &Gpu, model: &str, shape: [usize; 4], seed: u64) -> Vec<(String, Vec<u32>)> {
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<u32>>();
    let m = by_name(model, 7, shape[1]).unwrap();
    let mut rng = Rng::new(seed);
    let x = rng.vec(shape.iter().product(), -1.0, 1.0);
    let y: Vec<i32> = (0..shape[0]).map(|_| rng.int(0, 6) as i32).collect();
    let mut out = Vec::new();
    for f16 in [false, true] {
        if f16 && !gpu.info().has_f16() {
            continue;
        }
        let mut net = Net::new(false);
        let input = net.graph.input("x", shape);
        let logits = m.forward(&mut net, input).unwrap();
        let mut store = ParamStore::new();
        net.init_params(gpu, &mut store, seed).unwrap();
        let opts = CompileOptions {
            f16,
            ..Default::default()
        };
        let inf = Inference::compile_with(gpu, net.graph, &[logits], &mut store, opts).unwrap();
        out.push((
            format!("logits (f16 {f16})"),
            bits(inf.run(&x, None).unwrap().remove(0)),
        ));
    }
    let mut net = Net::new(true);
    let input = net.graph.input("x", shape);
    let logits = m.forward(&mut net, input).unwrap();
    let labels = net.graph.labels("labels", shape[0]);
    let loss = net.graph.cross_entropy(logits, labels, 0.1).unwrap();
    let mut store = ParamStore::new();
    net.init_params(gpu, &mut store, seed).unwrap();
    let opt = Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        nesterov: false,
    };
    let groups = ParamGroups::single(opt);
    let mut step =
        TrainStep::compile_groups(gpu, net.graph, loss, &[], &mut store, groups, CompileOptions::default()).unwrap();
    for k in 0..2 {
        let l = step.step_read(&x, &y).unwrap()[0].clone();
        out.push((format!("loss {k}"), bits(l)));
    }
    for (name, t) in store.iter() {
        out.push((name.clone(), bits(t.to_vec().unwrap())));
    }
    out
}

#[test]
fn trusted_modules_compute_what_checked_modules_compute() {
    let open = |trusted: bool| open_gpu(Gpu::builder().kernels(KernelFamily::Gpu).trusted_modules(trusted));
    let (checked, trusted) = (open(false), open(true));
    assert!(trusted.policy().trusted_modules && !checked.policy().trusted_modules);
    for (model, shape) in [("resnet18", [2, 3, 40, 36]), ("mobilenet_v2", [2, 3, 36, 40])] {
        let a = run(&checked, model, shape, 11);
        let b = run(&trusted, model, shape, 11);
        assert_eq!(a.len(), b.len());
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            let differ = x.iter().zip(y).filter(|(p, q)| p != q).count();
            assert_eq!(differ, 0, "{model} {name}: {differ} of {} values differ", x.len());
        }
    }
    assert!(checked.unchecked_modules().is_empty());
    let unchecked = trusted.unchecked_modules();
    // what the models ran of the audited kernels (the test's teeth: without them it compares
    // checked modules with checked modules)
    for kernel in [
        "conv2d_fwd_block",
        "conv2d_fwd_depthwise",
        // MobileNetV2's first depthwise conv (18x20): forward, flipped input gradient, weights
        "conv2d_fwd_depthwise_vec4",
        "conv2d_bwd_weight_depthwise_vec4",
        // and its stride-2 one (18x20 to 9x10): the transposed input gradient
        "conv2d_bwd_data_depthwise_vec4",
        "conv2d_bwd_weight_block",
        "conv2d_fwd",
        "conv2d_bwd_data",
        "conv2d_bwd_weight",
        "conv2d_bwd_data_narrow",
        "conv2d_bwd_weight_narrow",
        "split_k_reduce",
        "conv2d_stats_condense",
        "conv2d_scatter_phase",
        "conv2d_transpose_weights",
    ] {
        assert!(
            unchecked.contains(&kernel),
            "{kernel} was not built unchecked: {unchecked:?}"
        );
    }
}

/// The switch: CONVOY_TRUSTED=0|1 decides over the policy, anything else is refused by name;
/// the policy says so in `convoy info`.
#[test]
fn convoy_trusted_is_read_and_checked() {
    let info = |v: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
            .arg("info")
            .env("CONVOY_TRUSTED", v)
            .env("CONVOY_KERNELS", "gpu")
            .output()
            .unwrap()
    };
    let o = info("2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("CONVOY_TRUSTED") && err.contains("'2'"),
        "{err}"
    );
    let o = info("1");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("audited kernels without runtime checks"));
    let gpu = open_gpu(Gpu::builder().kernels(KernelFamily::Gpu).trusted_modules(true));
    assert!(
        gpu.policy().to_string().contains("without runtime checks"),
        "{}",
        gpu.policy()
    );
    // lavapipe is a CPU driver: checked unless asked, whichever family
    let gpu = open_gpu(Gpu::builder().kernels(KernelFamily::Gpu));
    if std::env::var("CONVOY_TRUSTED").is_err() && gpu.policy().cpu_driver {
        assert!(!gpu.policy().trusted_modules);
    }
}

/// The large-tile forward (conv2d_fwd_mm), weight gradient (conv2d_bwd_weight_mm) and input
/// gradient (conv2d_bwd_data_mm), which whole models at test sizes do not reach (their grids
/// are too small to be the default): both tiles, the forward with the training statistics, on
/// edge shapes (pixels and channels past a tile, stride 2, two groups), bit for bit both ways.
#[test]
fn trusted_large_tile_forward_computes_what_checked_computes() {
    use convoy::internals::kernels::conv::{
        backward_data_tiled, backward_weight_tiled, forward_tiled, ConvTile, ForwardBuffers, WeightGradientBuffers,
    };
    use convoy::ops::{Conv2dArgs, Conv2dGeom};
    use convoy::{DType, Tensor};
    let open = |trusted: bool| open_gpu(Gpu::builder().kernels(KernelFamily::Gpu).trusted_modules(trusted));
    let (checked, trusted) = (open(false), open(true));
    let mut rng = Rng::new(5);
    // (n, cin, hw, cout, k, stride, groups)
    for (n, cin, hw, cout, k, stride, groups) in [
        (2, 24, 13, 136, 3, 1, 1),
        (1, 40, 17, 70, 3, 2, 1),
        (3, 32, 9, 128, 1, 1, 2),
    ] {
        let xs = [n, cin, hw, hw];
        let ws = [cout, cin / groups, k, k];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::new(stride, k / 2, 1, groups)).unwrap();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let blocks = (geom.n * geom.oh * geom.ow).div_ceil(256);
        for tile in [ConvTile::MM_128, ConvTile::MM_64] {
            let run = |g: &Gpu| {
                let xt = Tensor::from_slice(g, &x, xs).unwrap();
                let wt = Tensor::from_slice(g, &w, ws).unwrap();
                let y = Tensor::zeros(g, geom.out_shape()).unwrap();
                let stats = Tensor::zeros(g, [blocks, cout, 2]).unwrap();
                let b = ForwardBuffers {
                    stats: Some(stats.buffer()),
                    ..ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer())
                };
                g.run(&forward_tiled(g, &geom, tile, Default::default(), DType::F32, &b).unwrap());
                // and the large-tile weight gradient (conv2d_bwd_weight_mm) of y as dy, in
                // split-K chunks that end inside a step
                let dw = Tensor::zeros(g, ws).unwrap();
                let wb = WeightGradientBuffers {
                    dy: y.buffer(),
                    x: xt.buffer(),
                    dw: dw.buffer(),
                };
                g.run(&backward_weight_tiled(g, &geom, tile, Some(50), &wb).unwrap());
                // and the large-tile input gradient (conv2d_bwd_data_mm), every stride phase
                let dx = Tensor::zeros(g, xs).unwrap();
                g.run(&backward_data_tiled(g, &geom, tile, y.buffer(), wt.buffer(), dx.buffer()).unwrap());
                let bits = |t: &Tensor| t.to_vec().unwrap().into_iter().map(f32::to_bits).collect::<Vec<u32>>();
                (bits(&y), bits(&stats), bits(&dw), bits(&dx))
            };
            assert_eq!(
                run(&checked),
                run(&trusted),
                "{tile:?} on x{xs:?} w{ws:?} s{stride} g{groups}"
            );
        }
    }
    // the forward split over K (conv2d_fwd_mm's SPLIT_K and conv2d_split_k_epilogue), planes in
    // vec4s (10x10) and not (9x9), with the statistics
    use convoy::internals::kernels::conv::TileKind;
    for (hw, slices) in [(10, 3), (9, 4)] {
        let (xs, ws) = ([2, 40, hw, hw], [136, 40, 3, 3]);
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::new(1, 1, 1, 1)).unwrap();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        for base in [ConvTile::MM_128, ConvTile::MM_64] {
            let tile = ConvTile {
                kind: TileKind::MmSplit { slices },
                ..base
            };
            let run = |g: &Gpu| {
                let xt = Tensor::from_slice(g, &x, xs).unwrap();
                let wt = Tensor::from_slice(g, &w, ws).unwrap();
                let y = Tensor::zeros(g, geom.out_shape()).unwrap();
                let stats = Tensor::zeros(g, [(2 * hw * hw).div_ceil(256), 136, 2]).unwrap();
                let b = ForwardBuffers {
                    stats: Some(stats.buffer()),
                    ..ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer())
                };
                g.run(&forward_tiled(g, &geom, tile, Default::default(), DType::F32, &b).unwrap());
                let bits = |t: &Tensor| t.to_vec().unwrap().into_iter().map(f32::to_bits).collect::<Vec<u32>>();
                (bits(&y), bits(&stats))
            };
            assert_eq!(run(&checked), run(&trusted), "{tile:?} on x{xs:?}");
        }
    }
    for kernel in [
        "conv2d_fwd_mm",
        "conv2d_split_k_epilogue",
        "conv2d_bwd_weight_mm",
        "conv2d_bwd_data_mm",
    ] {
        assert!(trusted.unchecked_modules().contains(&kernel), "{kernel}");
    }
}

/// The row-tiled GEMM (gemm_rows: 1x1 convs on wide maps, which the models at test sizes do
/// not reach) and the register kernels' edge paths the models may miss: conv2d_fwd's row
/// segments, channels-outside and taps-outside loops with the training statistics,
/// conv2d_bwd_data's stride phases and conv2d_bwd_weight's dead taps over split-K chunks, on
/// shapes that end inside a tile, bit for bit both ways.
#[test]
fn trusted_register_kernels_compute_what_checked_computes() {
    use convoy::graph::{Act, Epilogue};
    use convoy::internals::kernels::conv::{
        backward_data_tiled, backward_weight_tiled, forward_tiled, ConvTile, ForwardBuffers, TileKind,
        WeightGradientBuffers,
    };
    use convoy::internals::kernels::gemm::{gemm_rows, GemmBuffers, RowsGeom};
    use convoy::ops::{Conv2dArgs, Conv2dGeom};
    use convoy::{DType, Tensor};
    let open = |trusted: bool| open_gpu(Gpu::builder().kernels(KernelFamily::Gpu).trusted_modules(trusted));
    let (checked, trusted) = (open(false), open(true));
    let bits = |t: &Tensor| t.to_vec().unwrap().into_iter().map(f32::to_bits).collect::<Vec<u32>>();
    let mut rng = Rng::new(9);
    // gemm_rows: M past its 8-row blocks, N/4 past a 64-lane workgroup, A both ways, with bias,
    // residual and activation
    for (batch, m, n, k, trans_a) in [(2, 13, 264, 7, false), (1, 5, 8, 19, true)] {
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(batch * k * n, -1.0, 1.0);
        let bias = rng.vec(m, -1.0, 1.0);
        let res = rng.vec(batch * m * n, -1.0, 1.0);
        let run = |g: &Gpu| {
            let at = Tensor::from_slice(g, &a, [m * k]).unwrap();
            let bt = Tensor::from_slice(g, &b, [batch * k * n]).unwrap();
            let biast = Tensor::from_slice(g, &bias, [m]).unwrap();
            let rest = Tensor::from_slice(g, &res, [batch * m * n]).unwrap();
            let c = Tensor::zeros(g, [batch * m * n]).unwrap();
            let bufs = GemmBuffers {
                a: at.buffer(),
                b: bt.buffer(),
                bias: Some(biast.buffer()),
                residual: Some(rest.buffer()),
                c: c.buffer(),
            };
            let geom = RowsGeom {
                batch,
                m,
                n,
                k,
                trans_a,
            };
            g.run(&[gemm_rows(g, &geom, Act::Relu, DType::F32, &bufs).unwrap()]);
            bits(&c)
        };
        assert_eq!(
            run(&checked),
            run(&trusted),
            "gemm_rows {batch}x{m}x{n}x{k} trans_a {trans_a}"
        );
    }
    let register = |ocb: usize, wg: usize| ConvTile {
        ocb,
        wg,
        kind: TileKind::Register,
    };
    // (n, cin, hw, cout, k, stride, padding, groups, tile): 3 input channels over rows of 16
    // (row segments), 4 per group (taps outside) at stride 2, depthwise on a 5-wide map (channels
    // outside), a 3x3 whose first taps read only padding
    for (n, cin, hw, cout, k, stride, pad, groups, tile) in [
        (2, 3, 16, 10, 3, 1, 1, 1, register(8, 64)),
        (2, 8, 13, 12, 3, 2, 1, 2, register(8, 32)),
        (1, 6, 9, 6, 3, 2, 1, 6, register(1, 8)),
        (2, 5, 2, 12, 3, 2, 1, 1, register(8, 8)),
    ] {
        let xs = [n, cin, hw, hw];
        let ws = [cout, cin / groups, k, k];
        let geom = Conv2dGeom::new(&xs.into(), &ws.into(), Conv2dArgs::new(stride, pad, 1, groups)).unwrap();
        let x = rng.vec(xs.iter().product(), -1.0, 1.0);
        let w = rng.vec(ws.iter().product(), -0.5, 0.5);
        let bias = rng.vec(cout, -0.5, 0.5);
        let res = rng.vec(geom.out_shape().numel(), -1.0, 1.0);
        let blocks = (geom.n * geom.oh * geom.ow).div_ceil(256);
        let run = |g: &Gpu| {
            let xt = Tensor::from_slice(g, &x, xs).unwrap();
            let wt = Tensor::from_slice(g, &w, ws).unwrap();
            let biast = Tensor::from_slice(g, &bias, [cout]).unwrap();
            let rest = Tensor::from_slice(g, &res, geom.out_shape()).unwrap();
            let y = Tensor::zeros(g, geom.out_shape()).unwrap();
            let stats = Tensor::zeros(g, [blocks, cout, 2]).unwrap();
            let b = ForwardBuffers {
                bias: Some(biast.buffer()),
                residual: Some(rest.buffer()),
                stats: Some(stats.buffer()),
                ..ForwardBuffers::new(xt.buffer(), wt.buffer(), y.buffer())
            };
            let epi = Epilogue {
                residual: true,
                act: Act::Relu,
            };
            g.run(&forward_tiled(g, &geom, tile, epi, DType::F32, &b).unwrap());
            // y as dy: the weight gradient in split-K chunks that end inside a row, and (4+
            // output channels per group) the input gradient, every stride phase
            let dw = Tensor::zeros(g, ws).unwrap();
            let wb = WeightGradientBuffers {
                dy: y.buffer(),
                x: xt.buffer(),
                dw: dw.buffer(),
            };
            g.run(&backward_weight_tiled(g, &geom, register(tile.ocb.min(4), 32), Some(7), &wb).unwrap());
            let dx = Tensor::zeros(g, xs).unwrap();
            if cout / groups >= 4 {
                g.run(&backward_data_tiled(g, &geom, register(3, 16), y.buffer(), wt.buffer(), dx.buffer()).unwrap());
            }
            (bits(&y), bits(&stats), bits(&dw), bits(&dx))
        };
        assert_eq!(
            run(&checked),
            run(&trusted),
            "{tile:?} on x{xs:?} w{ws:?} s{stride} p{pad} g{groups}"
        );
    }
    let unchecked = trusted.unchecked_modules();
    for kernel in [
        "gemm_rows",
        "conv2d_fwd",
        "conv2d_bwd_data",
        "conv2d_bwd_weight",
        "split_k_reduce",
    ] {
        assert!(unchecked.contains(&kernel), "{kernel}: {unchecked:?}");
    }
}
