//! The variant table's unit tests: which kernel each pass of each kind of conv runs on lavapipe,
//! on a discrete 32-wide GPU and with the gpu family forced, described by their `GpuInfo`.
use super::{forward, input_gradient, weight_gradient, Choice, ConvDevice, Forward, InputGradient, WeightGradient};
use crate::device::{GpuInfo, KernelFamily, KernelPolicy, Overrides};
use crate::kernels::conv::tile::{ConvTile, TileKind};
use crate::shape::{Conv2dArgs, Shape};
use crate::shape::{Conv2dGeom, DType};

/// An adapter as convoy reads it: lavapipe (a CPU driver, 8-wide SIMD, textures up to
/// 16384) or a discrete GPU (32-wide subgroups, like NVIDIA's).
fn info(device_type: wgpu::DeviceType, simd: u32) -> GpuInfo {
    GpuInfo {
        name: format!("{device_type:?}"),
        backend: wgpu::Backend::Vulkan,
        device_type,
        driver: String::new(),
        limits: wgpu::Limits::default(),
        features: wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP,
        simd_width: simd,
        simd_min_width: simd,
        cooperative_matrix: Vec::new(),
        cooperative_f16: false,
        cooperative_emulated: false,
    }
}

struct Dev {
    info: GpuInfo,
    policy: KernelPolicy,
}

impl Dev {
    fn new(device_type: wgpu::DeviceType, simd: u32) -> Dev {
        let info = info(device_type, simd);
        let policy = KernelPolicy::choose(&info, &Overrides::default());
        Dev { info, policy }
    }
    fn lavapipe() -> Dev {
        Dev::new(wgpu::DeviceType::Cpu, 8)
    }
    fn discrete() -> Dev {
        Dev::new(wgpu::DeviceType::DiscreteGpu, 32)
    }
    fn dev(&self) -> ConvDevice<'_> {
        ConvDevice {
            policy: &self.policy,
            info: &self.info,
        }
    }
}

/// (n, cin, hw, cout, k, stride, groups) with padding k / 2.
fn geom(n: usize, cin: usize, hw: usize, cout: usize, k: usize, stride: usize, groups: usize) -> Conv2dGeom {
    let x = Shape::from([n, cin, hw, hw]);
    let w = Shape::from([cout, cin / groups, k, k]);
    Conv2dGeom::new(&x, &w, Conv2dArgs::new(stride, k / 2, 1, groups)).unwrap()
}

fn tiled_first(c: &Choice<Forward>) -> (&'static str, TileKind) {
    match &c.kernel {
        Forward::Tiled { kernel, tiles } => (*kernel, tiles.candidates[0].kind),
        other => panic!("not tiled: {other:?}"),
    }
}

#[test]
fn lavapipe_runs_the_texture_kernels_where_operands_fit() {
    let d = Dev::lavapipe();
    assert_eq!(d.policy.family, KernelFamily::Cpu);
    let r3x3 = geom(8, 64, 56, 64, 3, 1, 1);
    let f = forward(d.dev(), &r3x3, DType::F32, false).unwrap();
    assert_eq!(tiled_first(&f), ("conv2d_fwd_tex", TileKind::Texture { px: 8 }));
    // statistics: every candidate covers a full statistics block per workgroup
    let Forward::Tiled { tiles, .. } = forward(d.dev(), &r3x3, DType::F32, true).unwrap().kernel else {
        panic!("tiled")
    };
    assert!(tiles.tuner.ends_with(" with statistics"));
    assert!(tiles.candidates.iter().all(|t| t.writes_stats_blocks(8 * 56 * 56)));
    // f16 storage keys the tuner by the f16 variant
    let Forward::Tiled { tiles, .. } = forward(d.dev(), &r3x3, DType::F16, false).unwrap().kernel else {
        panic!("tiled")
    };
    assert_ne!(tiles.tuner, "conv2d_fwd_tex");
    // a depthwise conv whose rows are whole vec4s: the vec4 depthwise kernel, forward (with or
    // without statistics) and stride-1 input gradient
    let dw4 = geom(8, 32, 28, 32, 3, 1, 32);
    for stats in [false, true] {
        assert_eq!(
            forward(d.dev(), &dw4, DType::F32, stats).unwrap().kernel,
            Forward::DepthwiseVec4
        );
    }
    assert_eq!(
        input_gradient(d.dev(), &dw4, DType::F32).kernel,
        InputGradient::DepthwiseVec4
    );
    // one whose rows are not (14 columns) has no texture layout either: register tiles
    let dw = geom(8, 32, 14, 32, 3, 1, 32);
    let f = forward(d.dev(), &dw, DType::F32, false).unwrap();
    assert_eq!(tiled_first(&f), ("conv2d_fwd", TileKind::Register));
    assert!(f.why.contains("1 input channels per group"), "{}", f.why);
    // input gradients: the texture forward per stride phase (4 for stride 2)
    let down = geom(8, 64, 56, 128, 3, 2, 1);
    let InputGradient::ForwardPhases { texture: true, phases } = input_gradient(d.dev(), &down, DType::F32).kernel
    else {
        panic!("texture phases")
    };
    assert_eq!(phases.len(), 4);
    assert_eq!(input_gradient(d.dev(), &dw, DType::F32).kernel, InputGradient::Narrow);
    // weight gradients through textures; depthwise through the narrow kernel
    assert!(matches!(
        weight_gradient(d.dev(), &r3x3, DType::F32).kernel,
        WeightGradient::Texture { columns: 2, .. }
    ));
    assert_eq!(weight_gradient(d.dev(), &dw, DType::F32).kernel, WeightGradient::Narrow);
    // a 1x1 from 16 channels to 160: the weight gradient of the conv from 160 to 16 (4 texel
    // columns of 16 channels, 40 of 160), transposed
    let expand = geom(8, 16, 28, 160, 1, 1, 1);
    assert!(matches!(
        weight_gradient(d.dev(), &expand, DType::F32).kernel,
        WeightGradient::Swapped(_)
    ));
}

#[test]
fn a_discrete_gpu_runs_block_depthwise_and_gemm_kernels() {
    let d = Dev::discrete();
    assert_eq!(d.policy.family, KernelFamily::Gpu);
    let r3x3 = geom(32, 64, 56, 64, 3, 1, 1);
    let f = forward(d.dev(), &r3x3, DType::F32, false).unwrap();
    assert_eq!(tiled_first(&f), ("conv2d_fwd_block", TileKind::Block));
    let Forward::Tiled { tiles, .. } = &f.kernel else {
        unreachable!()
    };
    assert!(tiles.candidates[1..].iter().all(|t| t.kind == TileKind::Register));
    // depthwise over rows of whole vec4s: the vec4 kernel, with or without statistics
    let dw4 = geom(32, 96, 56, 96, 3, 1, 96);
    for stats in [false, true] {
        assert_eq!(
            forward(d.dev(), &dw4, DType::F32, stats).unwrap().kernel,
            Forward::DepthwiseVec4
        );
    }
    assert_eq!(
        input_gradient(d.dev(), &dw4, DType::F32).kernel,
        InputGradient::DepthwiseVec4
    );
    // other depthwise convs (14 columns): the staged kernel for inference; with statistics,
    // register tiles
    let dw = geom(32, 96, 14, 96, 3, 1, 96);
    assert_eq!(
        forward(d.dev(), &dw, DType::F32, false).unwrap().kernel,
        Forward::Depthwise
    );
    let f = forward(d.dev(), &dw, DType::F32, true).unwrap();
    assert_eq!(tiled_first(&f), ("conv2d_fwd", TileKind::Register));
    assert!(f.why.contains("writes no statistics"), "{}", f.why);
    assert_eq!(
        input_gradient(d.dev(), &dw, DType::F32).kernel,
        InputGradient::Depthwise
    );
    // a 1x1 from 16 to 8 channels (rows below the block's 32) over 56x56: a GEMM per image;
    // over 28x28 (196 lanes of 4 pixels, 256 in whole workgroups) the implicit GEMM
    let narrow = geom(32, 16, 56, 8, 1, 1, 1);
    let small = geom(32, 16, 28, 8, 1, 1, 1);
    assert_eq!(
        tiled_first(&forward(d.dev(), &small, DType::F32, false).unwrap()).0,
        "conv2d_fwd"
    );
    assert_eq!(
        forward(d.dev(), &narrow, DType::F32, false).unwrap().kernel,
        Forward::PointwiseGemm
    );
    assert_eq!(
        input_gradient(d.dev(), &narrow, DType::F32).kernel,
        InputGradient::PointwiseGemm
    );
    // stride 1: the block forward of dy first; stride 2: the block forward per phase
    let InputGradient::Tiled(t) = input_gradient(d.dev(), &r3x3, DType::F32).kernel else {
        panic!("tiled")
    };
    assert_eq!(t.candidates[0], ConvTile::BLOCK);
    let down = geom(32, 64, 56, 128, 3, 2, 1);
    let InputGradient::ForwardPhases { texture: false, phases } = input_gradient(d.dev(), &down, DType::F32).kernel
    else {
        panic!("block phases")
    };
    assert_eq!(phases.len(), 4);
    // weight gradients: block tiles first where the rows reach 32
    let WeightGradient::Tiled(t) = weight_gradient(d.dev(), &r3x3, DType::F32).kernel else {
        panic!("tiled")
    };
    assert_eq!(t.candidates[0], ConvTile::BLOCK);
    assert_eq!(weight_gradient(d.dev(), &dw, DType::F32).kernel, WeightGradient::Narrow);
}

#[test]
fn large_tiles_lead_where_their_grid_fills_a_gpu() {
    let mut d = Dev::discrete();
    d.info.limits.max_compute_workgroup_storage_size = 48 << 10; // as NVIDIA's
    let tiles = |d: &Dev, g: Conv2dGeom, stats| match forward(d.dev(), &g, DType::F32, stats).unwrap().kernel {
        Forward::Tiled { tiles, .. } => tiles.candidates,
        other => panic!("not tiled: {other:?}"),
    };
    // ResNet-50 at batch 32, with and without statistics: 784 tiles of 64 x 128 at 56x56
    // (>= 2 x 132 compute units); 196 of 128 x 128 at 28x28, 98 at 14x14: split over K into
    // the fewest slices that reach 264 workgroups, the block tile after the large tiles
    let (m64, block) = (ConvTile::MM_64, ConvTile::BLOCK);
    let split = |t: ConvTile, slices| t.split(slices);
    let m128 = ConvTile::MM_128;
    for (c, hw, first) in [(64, 56, m64), (128, 28, split(m128, 2)), (256, 14, split(m128, 3))] {
        for stats in [false, true] {
            let t = tiles(&d, geom(32, c, hw, c, 3, 1, 1), stats);
            assert_eq!(
                (t[0], t.contains(&m64), t.contains(&ConvTile::MM_128)),
                (first, true, c > 64)
            );
            if c > 64 {
                assert_eq!(t[1..4], [m128, m64, block]);
            }
        }
    }
    // ResNet-18's 7x7 stage at batch 8: 16 tiles of 128 x 128, 288 chunks of K in 17 slices of
    // 17; at batch 2 the 2 MB of raw sums per slice allow 32 slices of 9 chunks
    let t = tiles(&d, geom(8, 512, 7, 512, 3, 1, 1), true);
    assert_eq!(t[..3], [split(m128, 17), m128, m64]);
    let c = forward(d.dev(), &geom(8, 512, 7, 512, 3, 1, 1), DType::F32, false).unwrap();
    assert!(c.why.contains("split over K (17)"), "{}", c.why);
    assert_eq!(tiled_first(&c).0, "conv2d_fwd_mm");
    assert_eq!(tiles(&d, geom(2, 512, 7, 512, 3, 1, 1), false)[0], split(m128, 32));
    // K too short to split (a 1x1 of 64 channels: 4 chunks): the block tile first
    assert_eq!(tiles(&d, geom(2, 64, 7, 128, 1, 1, 1), false)[0], block);
    let r50 = forward(d.dev(), &geom(32, 64, 56, 64, 3, 1, 1), DType::F32, false).unwrap();
    assert_eq!(tiled_first(&r50).0, "conv2d_fwd_mm");
    // WebGPU's 16 KiB of workgroup memory, or groups of 32 channels: no large tiles
    let no_mm = |t: Vec<ConvTile>| t.iter().all(|t| t.kind != TileKind::Mm);
    assert!(no_mm(tiles(&Dev::discrete(), geom(32, 64, 56, 64, 3, 1, 1), false)));
    assert!(no_mm(tiles(&d, geom(32, 64, 56, 64, 3, 1, 2), false)));
    // the input gradient: conv2d_bwd_data_mm where its grid fills the GPU (784 tiles of 64
    // input channels x 128 pixels at 56x56), else after the block tile; strided, the same
    // beside the block forward per stride phase
    let input = |d: &Dev, g: Conv2dGeom| match input_gradient(d.dev(), &g, DType::F32).kernel {
        InputGradient::Tiled(t) => t,
        other => panic!("not tiled: {other:?}"),
    };
    let t = input(&d, geom(32, 64, 56, 64, 3, 1, 1));
    assert_eq!(t.candidates[0], m64);
    assert!(t.tuner.ends_with(" or conv2d_bwd_data_mm"), "{}", t.tuner);
    // ResNet-50's 14x14 3x3 at batch 32 (98 tiles of 128 x 128): the forward of dy split over K
    // in 3 first, the block forward and the large tiles for the tuner
    let t = input(&d, geom(32, 256, 14, 256, 3, 1, 1));
    assert_eq!(t.candidates[..4], [split(m128, 3), block, ConvTile::MM_128, m64]);
    assert!(t.tuner.ends_with(" or the split conv2d_fwd_mm of dy"), "{}", t.tuner);
    let t = input(&d, geom(32, 64, 56, 128, 3, 2, 1));
    assert_eq!(t.candidates, [m64, block]);
    assert_eq!(t.tuner, "conv2d_fwd_block per phase or conv2d_bwd_data_mm");
    let c = input_gradient(d.dev(), &geom(32, 256, 14, 512, 1, 2, 1), DType::F32);
    let InputGradient::Tiled(t) = &c.kernel else {
        panic!("tiled: {:?}", c.kernel)
    };
    assert_eq!(t.candidates, [block, ConvTile::MM_128, m64]);
    assert!(c.why.contains("large tiles for the tuner"), "{}", c.why);
    // strides past 4 x 4: the block forward per phase alone
    assert!(matches!(
        input_gradient(d.dev(), &geom(32, 64, 60, 64, 1, 5, 1), DType::F32).kernel,
        InputGradient::ForwardPhases { texture: false, .. }
    ));
    assert!(input(&Dev::discrete(), geom(32, 64, 56, 64, 3, 1, 1))
        .candidates
        .iter()
        .all(|t| t.kind != TileKind::Mm));
    // the weight gradient: split-K fills the GPU wherever the output pixels allow (ResNet-50's
    // 14x14 stage at batch 32: 6,272 pixels in 25 chunks of 256 for 36 blocks of 128 x 128);
    // ResNet-18's 7x7 stage at batch 2 (98 pixels, one chunk, 144 blocks): the block tile first
    let weight = |d: &Dev, g: Conv2dGeom| match weight_gradient(d.dev(), &g, DType::F32).kernel {
        WeightGradient::Tiled(t) => t,
        other => panic!("not tiled: {other:?}"),
    };
    for (c, hw) in [(64, 56), (256, 14)] {
        let t = weight(&d, geom(32, c, hw, c, 3, 1, 1));
        let want = if c > 64 { ConvTile::MM_128 } else { m64 };
        assert_eq!(t.candidates[0], want, "{c} channels at {hw}x{hw}");
        assert!(t.tuner.ends_with(" or conv2d_bwd_weight_mm"), "{}", t.tuner);
    }
    let t = weight(&d, geom(2, 512, 7, 512, 3, 1, 1));
    assert_eq!(t.candidates[..3], [block, ConvTile::MM_128, m64]);
    let c = weight_gradient(d.dev(), &geom(32, 64, 56, 64, 3, 1, 1), DType::F32);
    assert!(c.why.contains("large tiles"), "{}", c.why);
    assert!(c.kernel.to_string().starts_with("conv2d_bwd_weight_mm"), "{}", c.kernel);
    assert!(weight(&d, geom(32, 64, 56, 64, 3, 1, 2))
        .candidates
        .iter()
        .all(|t| t.kind != TileKind::Mm));
}

#[test]
fn cooperative_matrices_lead_the_large_tiles_on_f16_operands() {
    let mut d = Dev::discrete();
    d.info.limits.max_compute_workgroup_storage_size = 48 << 10;
    d.info.cooperative_f16 = true;
    // ResNet-50's 3x3 at batch 32: large tiles first; 64 channels: the 64 x 128 tiles only
    let r3x3 = geom(32, 64, 56, 64, 3, 1, 1);
    let wide = geom(32, 256, 28, 256, 3, 1, 1);
    for stats in [false, true] {
        let Forward::Tiled { tiles, .. } = forward(d.dev(), &r3x3, DType::F16, stats).unwrap().kernel else {
            panic!("tiled")
        };
        assert_eq!(tiles.candidates[..2], [ConvTile::COOP_64, ConvTile::MM_64]);
        assert!(tiles.tuner.contains(" or conv2d_fwd_mm_coop"), "{}", tiles.tuner);
        let Forward::Tiled { tiles, .. } = forward(d.dev(), &wide, DType::F16, stats).unwrap().kernel else {
            panic!("tiled")
        };
        let want = [ConvTile::COOP_128, ConvTile::COOP_64, ConvTile::MM_128, ConvTile::MM_64];
        assert_eq!(tiles.candidates[..4], want);
    }
    let coop = |t: &[ConvTile]| t.iter().filter(|t| t.kind == TileKind::CoopMm).count();
    let Forward::Tiled { tiles, .. } = forward(d.dev(), &wide, DType::F32, true).unwrap().kernel else {
        panic!("tiled")
    };
    assert_eq!(coop(&tiles.candidates), 0, "f32 activations on cooperative matrices");
    // the backward passes on operands that hold f16 values (mixed precision's), not on f32 ones
    for (operands, want) in [(DType::F16, 2), (DType::F32, 0)] {
        let InputGradient::Tiled(t) = input_gradient(d.dev(), &wide, operands).kernel else {
            panic!("tiled input gradient")
        };
        assert_eq!(coop(&t.candidates), want, "input gradient on {operands:?}: {t:?}");
        let WeightGradient::Tiled(t) = weight_gradient(d.dev(), &wide, operands).kernel else {
            panic!("tiled weight gradient")
        };
        assert_eq!(coop(&t.candidates), want, "weight gradient on {operands:?}: {t:?}");
        if want > 0 {
            assert_eq!(t.candidates[0], ConvTile::COOP_128);
            assert!(t.tuner.ends_with(" or conv2d_bwd_weight_mm_coop"), "{}", t.tuner);
        }
    }
    // a device without them, and the emulated ones (tests) alike
    d.info.cooperative_f16 = false;
    let Forward::Tiled { tiles, .. } = forward(d.dev(), &wide, DType::F16, true).unwrap().kernel else {
        panic!("tiled")
    };
    assert_eq!(coop(&tiles.candidates), 0);
    d.info.cooperative_emulated = true;
    let Forward::Tiled { tiles, .. } = forward(d.dev(), &wide, DType::F16, true).unwrap().kernel else {
        panic!("tiled")
    };
    assert_eq!(tiles.candidates[0], ConvTile::COOP_128);
}

#[test]
fn the_forced_gpu_family_on_lavapipe_keeps_its_simd_width() {
    // CONVOY_KERNELS=gpu on lavapipe: the gpu family's kernels, lavapipe's 8-wide tiles
    let info = info(wgpu::DeviceType::Cpu, 8);
    let policy = KernelPolicy::choose(&info, &Overrides::family(KernelFamily::Gpu));
    let dev = ConvDevice {
        policy: &policy,
        info: &info,
    };
    let small = geom(2, 64, 7, 64, 3, 1, 1);
    let f = forward(dev, &small, DType::F32, false).unwrap();
    assert_eq!(tiled_first(&f).1, TileKind::Block);
    let Forward::Tiled { tiles, .. } = f.kernel else {
        unreachable!()
    };
    // 98 output pixels: 25 lanes of 4, the narrowest register workgroup that covers them
    assert_eq!(tiles.candidates[1], ConvTile::register(8, 32));
}
