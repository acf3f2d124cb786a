//! The benchmark shape suite of shared/bench-suite.md, shared by
//! `convoy bench` and the criterion benches so their numbers line up.

#[cfg(not(target_arch = "wasm32"))]
use crate::device::Dispatch;
#[cfg(not(target_arch = "wasm32"))]
pub use crate::device::{time_gpu, time_repeats, Clock, RepeatTiming};
use crate::device::{Gpu, Timing};
use crate::error::Result;
use crate::kernels;
use crate::ops::{Conv2dArgs, Conv2dGeom};
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// One conv shape of the suite (batch N = 8, square input).
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub name: &'static str,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    pub hw: usize,
}

/// shared/bench-suite.md, "Conv shapes".
#[rustfmt::skip]
pub const CONV_SUITE: [ConvShape; 10] = [
    ConvShape { name: "r18_stem",    cin: 3,   cout: 64,  k: 7, stride: 2, pad: 3, groups: 1,   hw: 224 },
    ConvShape { name: "r18_l1",      cin: 64,  cout: 64,  k: 3, stride: 1, pad: 1, groups: 1,   hw: 56 },
    ConvShape { name: "r18_down",    cin: 64,  cout: 128, k: 3, stride: 2, pad: 1, groups: 1,   hw: 56 },
    ConvShape { name: "r18_l3",      cin: 256, cout: 256, k: 3, stride: 1, pad: 1, groups: 1,   hw: 14 },
    ConvShape { name: "r18_l4",      cin: 512, cout: 512, k: 3, stride: 1, pad: 1, groups: 1,   hw: 7 },
    ConvShape { name: "r50_reduce",  cin: 256, cout: 64,  k: 1, stride: 1, pad: 0, groups: 1,   hw: 56 },
    ConvShape { name: "r50_expand",  cin: 64,  cout: 256, k: 1, stride: 1, pad: 0, groups: 1,   hw: 56 },
    ConvShape { name: "mbv2_dw",     cin: 144, cout: 144, k: 3, stride: 1, pad: 1, groups: 144, hw: 56 },
    ConvShape { name: "mbv2_dw_s2",  cin: 144, cout: 144, k: 3, stride: 2, pad: 1, groups: 144, hw: 56 },
    ConvShape { name: "resnext_g32", cin: 128, cout: 128, k: 3, stride: 1, pad: 1, groups: 32,  hw: 28 },
];

pub const SUITE_BATCH: usize = 8;

impl ConvShape {
    pub fn geom(&self, n: usize) -> Result<Conv2dGeom> {
        let args = Conv2dArgs::new(self.stride, self.pad, 1, self.groups);
        Conv2dGeom::new(
            &[n, self.cin, self.hw, self.hw].into(),
            &[self.cout, self.cin / self.groups, self.k, self.k].into(),
            args,
        )
    }
}

/// The copy kernel's bandwidth (copy_vec4, a vec4 per invocation) over `bytes`, counted as
/// bytes read plus bytes written per second (GB/s), `iters` runs in one submission: by the GPU's
/// clock where `Clock::for_timing` trusts it, else the wall time per run. The yardstick of the
/// memory-bound kernels, on the clock they are timed by.
#[cfg(not(target_arch = "wasm32"))]
pub fn copy_kernel_bandwidth(gpu: &Gpu, bytes: u64, warmup: usize, iters: usize) -> Result<(RepeatTiming, f64)> {
    let count = (bytes / 16) as usize;
    let src = Tensor::zeros(gpu, [count * 4])?;
    let dst = Tensor::zeros(gpu, [count * 4])?;
    let d = crate::device::Dispatch::new(
        gpu,
        gpu.pipeline(&kernels::shaders::COPY_VEC4, &[])?,
        &[kernels::u32_of("copy vec4s", count)?],
        &[src.buffer(), dst.buffer()],
        crate::device::grid_1d(kernels::groups_for("copy vec4s", count, 256)?),
    )?;
    let t = crate::device::time_repeats(gpu, std::slice::from_ref(&d), warmup, iters)?;
    let ms = t.ms(crate::device::Clock::for_timing(gpu));
    Ok((t, 2.0 * (count * 16) as f64 / (ms * 1e-3) / 1e9))
}

/// One run of the GEMM ceiling benchmark: C (size x size) = A B in f32.
#[derive(Clone, Copy, Debug)]
pub struct GemmResult {
    pub kernel: &'static str,
    pub size: usize,
    pub timing: Timing,
    pub gflops: f64,
}

/// The f32 GEMMs convoy can run on this device, square `size` (a multiple of 4): the
/// workgroup-tiled `gemm` kernel (linear layers), the row-tiled `gemm_rows` (1x1 convs), the
/// implicit-GEMM conv kernels on the same product as a 1x1 conv (`size` pixels, rounded up
/// to whole rows of 32), gemm_tex (both operands through textures), and the texture forward on
/// a 3x3 conv of as many multiply-adds. The fastest is the practical ceiling for conv here.
#[cfg(not(target_arch = "wasm32"))]
pub fn gemm_ceiling(gpu: &Gpu, size: usize, warmup: usize, iters: usize) -> Result<Vec<GemmResult>> {
    if size < 64 {
        // one workgroup tile at least (smaller products are not what the tile kernel is for)
        return Err(crate::error::Error::arg(
            "bench gemm",
            "size",
            format!("{size}: at least 64 (one workgroup tile)"),
        ));
    }
    let mut rng = Rng::new(0);
    let (a_host, b_host) = (rng.vec(size * size, -1.0, 1.0), rng.vec(size * size, -1.0, 1.0));
    let a = Tensor::from_slice(gpu, &a_host, [size, size])?;
    let b = Tensor::from_slice(gpu, &b_host, [size, size])?;
    let c = Tensor::zeros(gpu, [size, size])?;
    let flops = 2.0 * (size as f64).powi(3);
    let geom = kernels::gemm::GemmGeom {
        m: size,
        n: size,
        k: size,
        trans_a: false,
        trans_b: false,
    };
    let bufs = kernels::gemm::GemmBuffers::new(a.buffer(), b.buffer(), c.buffer());
    let tiled = kernels::gemm::gemm_tile(gpu, &geom, DType::F32, &bufs)?;
    let rows_geom = kernels::gemm::RowsGeom {
        batch: 1,
        m: size,
        n: size,
        k: size,
        trans_a: false,
    };
    let rows = kernels::gemm::gemm_rows(gpu, &rows_geom, crate::graph::Act::None, DType::F32, &bufs)?;
    // the conv kernels on the same GEMM, as a 1x1 conv of one image of `size` pixels: C (Cout,
    // pixels) = A (Cout, Cin) x B (Cin, pixels); a ceiling below the convs would mislead
    let ([register, block, texture], conv_flops, _conv_tensors) = pointwise_convs(gpu, size, &a, &mut rng)?;
    // the texture forward as a 3x3 conv of about the same multiply-adds (Cin = Cout = size/4,
    // padded): neighbouring taps fetch the same texels while they are in cache, where a GEMM
    // streams B once per block of rows; the conv suite's 3x3 shapes ran 1.1-1.3x faster than
    // gemm_tex, so without it the ceiling would sit below them
    let (texture3, flops3, _tensors3) = texture_3x3(gpu, size, &mut rng)?;
    let mut runs = vec![
        (
            "conv2d_fwd_tex as a 1x1 conv (input through a texture)",
            texture,
            conv_flops,
        ),
        (
            "conv2d_fwd_tex as a 3x3 conv of as many multiply-adds (taps reuse cached texels)",
            texture3,
            flops3,
        ),
    ];
    // both operands through textures, where the size tiles whole workgroups
    let mut _tex_operands = Vec::new();
    if size.is_multiple_of(TEXTURE_GEMM_COLUMNS) {
        let (d, textures) = texture_gemm(gpu, &a_host, &b_host, size, &c, false)?;
        _tex_operands.push(textures);
        runs.push(("gemm_tex (A and B through textures, 8 x 2 vec4 tiles)", vec![d], flops));
        if gpu.policy().subgroup_operands {
            let (d, textures) = texture_gemm(gpu, &a_host, &b_host, size, &c, true)?;
            _tex_operands.push(textures);
            runs.push((
                "gemm_tex, A's fetches shared across subgroups (one per lane, then shuffles)",
                vec![d],
                flops,
            ));
        }
    }
    let mut out = Vec::new();
    for (kernel, d, flops) in runs.into_iter().chain([
        ("gemm (64x64 workgroup tiles)", tiled, flops),
        ("gemm_rows (8 x vec4 register tiles)", vec![rows], flops),
        (
            "conv2d_fwd as a 1x1 conv (8 x vec4 register tiles)",
            register,
            conv_flops,
        ),
        (
            "conv2d_fwd_block as a 1x1 conv (64x64 workgroup-memory tiles, the gpu family's)",
            block,
            conv_flops,
        ),
    ]) {
        let timing = time_gpu(gpu, warmup, iters, || {
            gpu.run(&d);
            Ok(())
        })?;
        out.push(GemmResult {
            kernel,
            size,
            timing,
            gflops: flops / (timing.median_ms * 1e-3) / 1e9,
        });
    }
    Ok(out)
}

/// The register, block and texture forwards as a 1x1 conv of one image of `size` pixels with
/// `a` as its weights: C (Cout, pixels) = A (Cout, Cin) x B (Cin, pixels); their flops, and the
/// tensors they read and write (kept alive by the caller while it times them).
#[cfg(not(target_arch = "wasm32"))]
fn pointwise_convs(
    gpu: &Gpu,
    size: usize,
    a: &Tensor,
    rng: &mut Rng,
) -> Result<([Vec<Dispatch>; 3], f64, [Tensor; 2])> {
    let (h, w) = (size.div_ceil(32).min(size), 32.min(size));
    let conv_geom = Conv2dGeom::new(
        &crate::shape::Shape::new(&[1, size, h, w]),
        &crate::shape::Shape::new(&[size, size, 1, 1]),
        Conv2dArgs::default(),
    )?;
    let conv_b = Tensor::from_slice(gpu, &rng.vec(size * h * w, -1.0, 1.0), [1, size, h, w])?;
    let conv_c = Tensor::zeros(gpu, [1, size, h, w])?;
    let conv_with = |tile| {
        kernels::conv::forward_tiled(
            gpu,
            &conv_geom,
            tile,
            Default::default(),
            DType::F32,
            &kernels::conv::ForwardBuffers::new(conv_b.buffer(), a.buffer(), conv_c.buffer()),
        )
    };
    let register = conv_with(kernels::conv::ConvTile::default_for(gpu, size, h * w))?;
    let block = conv_with(kernels::conv::ConvTile::BLOCK)?;
    let texture = conv_with(kernels::conv::ConvTile::texture(
        size,
        h * w,
        8,
        gpu.info().simd_width as usize,
    ))?;
    Ok((
        [register, block, texture],
        2.0 * (size * size * h * w) as f64,
        [conv_b, conv_c],
    ))
}

/// The texture forward as a 3x3 conv of about `size`^3 multiply-adds (Cin = Cout = size/4,
/// padded): its dispatches, their flops, and the tensors they read and write (kept alive by
/// the caller while it times them).
#[cfg(not(target_arch = "wasm32"))]
fn texture_3x3(gpu: &Gpu, size: usize, rng: &mut Rng) -> Result<(Vec<Dispatch>, f64, [Tensor; 3])> {
    let c3 = (size / 4).max(4);
    let pixels3 = (size.pow(3) / (c3 * c3 * 9)).max(32);
    let (h3, w3) = (32, pixels3.div_ceil(32));
    let geom3 = Conv2dGeom::new(
        &crate::shape::Shape::new(&[1, c3, h3, w3]),
        &crate::shape::Shape::new(&[c3, c3, 3, 3]),
        Conv2dArgs::new(1, 1, 1, 1),
    )?;
    let x3 = Tensor::from_slice(gpu, &rng.vec(c3 * h3 * w3, -1.0, 1.0), [1, c3, h3, w3])?;
    let w3t = Tensor::from_slice(gpu, &rng.vec(c3 * c3 * 9, -0.1, 0.1), [c3, c3, 3, 3])?;
    let y3 = Tensor::zeros(gpu, [1, c3, h3, w3])?;
    let d = kernels::conv::forward_tiled(
        gpu,
        &geom3,
        kernels::conv::ConvTile::texture(c3, h3 * w3, 8, gpu.info().simd_width as usize),
        Default::default(),
        DType::F32,
        &kernels::conv::ForwardBuffers::new(x3.buffer(), w3t.buffer(), y3.buffer()),
    )?;
    Ok((d, 2.0 * (c3 * c3 * 9 * h3 * w3) as f64, [x3, w3t, y3]))
}

/// Columns of one gemm_tex workgroup (64 lanes x 2 texels of 4): the square sizes it runs.
pub const TEXTURE_GEMM_COLUMNS: usize = 512;

/// C (size x size) = A x B through gemm_tex, A and B (row-major) uploaded into rgba32float
/// textures: the dispatch, and the textures it reads (keep them while it runs). `size` a
/// multiple of `TEXTURE_GEMM_COLUMNS`. With `share`, A's fetches (the same texel in every lane)
/// are shared across subgroups where the policy allows it (`shaders::operand_variant`).
#[cfg(not(target_arch = "wasm32"))]
pub fn texture_gemm(
    gpu: &Gpu,
    a: &[f32],
    b: &[f32],
    size: usize,
    c: &Tensor,
    share: bool,
) -> Result<(crate::device::Dispatch, [wgpu::TextureView; 2])> {
    use crate::device::{Dispatch, Resource};
    if !size.is_multiple_of(TEXTURE_GEMM_COLUMNS) || a.len() != size * size || b.len() != size * size {
        return Err(crate::error::Error::arg(
            "gemm_tex",
            "size",
            format!("{size}: square operands of a multiple of {TEXTURE_GEMM_COLUMNS}"),
        ));
    }
    let upload = |data: &[f32]| -> Result<wgpu::TextureView> {
        let side = size as u32;
        if side > gpu.limits().max_texture_dimension_2d {
            return Err(crate::error::Error::Limit {
                what: "gemm_tex operand texture".into(),
                need: side as u64,
                max: gpu.limits().max_texture_dimension_2d as u64,
            });
        }
        let extent = wgpu::Extent3d {
            width: side / 4,
            height: side,
            depth_or_array_layers: 1,
        };
        let texture = gpu.device().create_texture(&wgpu::TextureDescriptor {
            label: Some("gemm_tex operand"),
            size: extent,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: crate::device::OPERAND_FORMAT,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        gpu.queue().write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(data),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                // side/4 texels of 16 bytes: a multiple of 256 for sides of 64k
                bytes_per_row: Some(side * 4),
                rows_per_image: None,
            },
            extent,
        );
        Ok(texture.create_view(&wgpu::TextureViewDescriptor::default()))
    };
    let (at, bt) = (upload(a)?, upload(b)?);
    let shader = match share {
        true => kernels::shaders::operand_variant(gpu, &kernels::shaders::GEMM_TEX, 64),
        false => &kernels::shaders::GEMM_TEX,
    };
    let pipeline = gpu.pipeline(shader, &[("WG", 64.0)])?;
    let side = size as u32;
    let grid = [side / TEXTURE_GEMM_COLUMNS as u32, side / 8, 1];
    let d = Dispatch::with_resources(
        gpu,
        pipeline,
        &[side, side, side, 0],
        &[
            Resource::Texture(&at),
            Resource::Texture(&bt),
            Resource::Buffer(c.buffer()),
        ],
        grid,
    )?;
    Ok((d, [at, bt]))
}

/// Buffers and the prepared dispatches of one suite shape, on random data: the forward conv,
/// and the backward (input gradient, then weight gradient; bias gradients are not counted).
pub struct ConvBench {
    pub geom: Conv2dGeom,
    /// The forward (with the CPU family, its input's packing first).
    pub forward: Vec<crate::device::Dispatch>,
    /// Input gradient, then weight gradient (which may take a split-K reduction dispatch).
    pub backward: Vec<crate::device::Dispatch>,
    /// How many of `backward` compute the input gradient.
    pub backward_data_len: usize,
    /// The forward with f16 activations (x and y; f32 weights and accumulation), when asked.
    pub forward_f16: Option<Vec<crate::device::Dispatch>>,
    /// The forward that also writes the batch-norm block statistics (a fused training step's).
    pub forward_stats: Vec<crate::device::Dispatch>,
    /// x, w, y (also dy), dx, dw, the statistics blocks (and the f16 x and y, when asked).
    tensors: Vec<Tensor>,
}

/// One tuner candidate of one pass of a suite shape, ready to time.
pub struct ConvCandidate {
    /// forward, fwd_stats, bwd_data or bwd_weight.
    pub pass: &'static str,
    /// The kernel the variant table chose for the pass (its `Display`).
    pub kernel: String,
    /// The candidate's tile (`variants::tile_name`), or "-" for a kernel without tiles.
    pub tile: String,
    /// The table's default for the pass.
    pub default: bool,
    /// The dispatches, or why this candidate cannot run the shape.
    pub dispatches: Result<Vec<crate::device::Dispatch>>,
}

impl ConvBench {
    /// With `f16`, also the forward on f16 activations (needs shader-f16).
    pub fn new(gpu: &Gpu, s: &ConvShape, n: usize, f16: bool) -> Result<Self> {
        let geom = s.geom(n)?;
        let mut rng = Rng::new(0);
        let xs = [n, s.cin, s.hw, s.hw];
        let ws = [s.cout, s.cin / s.groups, s.k, s.k];
        let x = Tensor::from_slice(gpu, &rng.vec(xs.iter().product(), -1.0, 1.0), xs)?;
        let w = Tensor::from_slice(gpu, &rng.vec(ws.iter().product(), -0.1, 0.1), ws)?;
        let y = Tensor::zeros(gpu, geom.out_shape())?;
        let dx = Tensor::zeros(gpu, xs)?;
        let dw = Tensor::zeros(gpu, ws)?;
        let (xb, wb, yb) = (x.buffer(), w.buffer(), y.buffer());
        let forward = kernels::conv::forward(
            gpu,
            &geom,
            Default::default(),
            DType::F32,
            &kernels::conv::ForwardBuffers::new(xb, wb, yb),
        )?;
        let pixels = geom.n * geom.oh * geom.ow;
        let partials = Tensor::zeros(gpu, [pixels.div_ceil(kernels::conv::STATS_BLOCK), s.cout, 2])?;
        let forward_stats = kernels::conv::forward(
            gpu,
            &geom,
            Default::default(),
            DType::F32,
            &kernels::conv::ForwardBuffers {
                stats: Some(partials.buffer()),
                ..kernels::conv::ForwardBuffers::new(xb, wb, yb)
            },
        )?;
        let mut backward = kernels::conv::backward_data(gpu, &geom, yb, wb, dx.buffer(), DType::F32, None)?;
        let backward_data_len = backward.len();
        let bufs = kernels::conv::WeightGradientBuffers {
            dy: yb,
            x: xb,
            dw: dw.buffer(),
        };
        backward.extend(kernels::conv::backward_weight(gpu, &geom, &bufs, DType::F32, None)?);
        let mut tensors = vec![];
        let forward_f16 = if f16 {
            let (xh, yh) = (
                x.to_dtype(DType::F16)?,
                Tensor::empty_of(gpu, geom.out_shape(), DType::F16)?,
            );
            let d = kernels::conv::forward(
                gpu,
                &geom,
                Default::default(),
                DType::F16,
                &kernels::conv::ForwardBuffers::new(xh.buffer(), wb, yh.buffer()),
            )?;
            tensors.extend([xh, yh]);
            Some(d)
        } else {
            None
        };
        tensors.splice(0..0, [x, w, y, dx, dw, partials]);
        Ok(ConvBench {
            geom,
            forward,
            backward,
            backward_data_len,
            forward_f16,
            forward_stats,
            tensors,
        })
    }
}

/// The passes `ConvBench::candidates` times: f32, then mixed precision's.
const PASSES: [[&str; 4]; 2] = [
    ["forward", "fwd_stats", "bwd_data", "bwd_weight"],
    ["forward_f16", "fwd_stats_f16", "bwd_data_f16", "bwd_weight_f16"],
];

impl ConvBench {
    /// Every tuner candidate of each pass (forward, fwd_stats, bwd_data, bwd_weight; with f16,
    /// also their mixed-precision forms forward_f16 .. bwd_weight_f16) on this
    /// shape, as the variant table lists them (the default first); a pass whose kernel has no
    /// tiles (a GEMM per image, the depthwise and narrow kernels, the input gradient's stride
    /// phases) is its one kernel, as the launcher runs it.
    pub fn candidates(&self, gpu: &Gpu) -> Result<Vec<ConvCandidate>> {
        use kernels::conv::variants::{self, tile_name, Forward, InputGradient, WeightGradient};
        use kernels::conv::{ConvDevice, ConvTile, ForwardBuffers};
        let g = &self.geom;
        let dev = ConvDevice::from(gpu);
        let b = |i: usize| self.tensors[i].buffer();
        let (x, w, y, dx, dw, partials) = (b(0), b(1), b(2), b(3), b(4), b(5));
        let mut out = Vec::new();
        let mut push = |pass,
                        kernel: String,
                        tiles: Vec<Option<ConvTile>>,
                        run: &dyn Fn(Option<ConvTile>) -> Result<Vec<crate::device::Dispatch>>| {
            for (i, t) in tiles.into_iter().enumerate() {
                out.push(ConvCandidate {
                    pass,
                    kernel: kernel.clone(),
                    tile: t.as_ref().map_or("-".into(), tile_name),
                    default: i == 0,
                    dispatches: run(t),
                });
            }
        };
        // with --f16, mixed precision's passes too: the forward on f16 activations, the gradients
        // on f16 values (the cooperative matrices' tiles first where the device has them)
        let mut precisions = vec![(PASSES[0], DType::F32, x, y)];
        if self.forward_f16.is_some() {
            precisions.push((PASSES[1], DType::F16, b(6), b(7)));
        }
        for ([fwd, fwd_stats, bwd_data, bwd_weight], storage, x, y) in precisions {
            for (pass, stats) in [(fwd, None), (fwd_stats, Some(partials))] {
                let fb = ForwardBuffers {
                    stats,
                    ..ForwardBuffers::new(x, w, y)
                };
                let choice = variants::forward(dev, g, storage, stats.is_some())?;
                let tiles = match &choice.kernel {
                    Forward::Tiled { tiles, .. } => tiles.candidates.iter().copied().map(Some).collect(),
                    _ => vec![None],
                };
                push(pass, choice.kernel.to_string(), tiles, &|t| match t {
                    Some(t) => kernels::conv::forward_tiled(gpu, g, t, Default::default(), storage, &fb),
                    None => kernels::conv::forward(gpu, g, Default::default(), storage, &fb),
                });
            }
            // the gradients read the f32 tensors either way (mixed precision's are f32 copies)
            let (x, y) = (b(0), b(2));
            let choice = variants::input_gradient(dev, g, storage);
            let tiles = match &choice.kernel {
                InputGradient::Tiled(t) => t.candidates.iter().copied().map(Some).collect(),
                _ => vec![None],
            };
            push(bwd_data, choice.kernel.to_string(), tiles, &|t| match t {
                Some(t) => kernels::conv::backward_data_tiled(gpu, g, t, y, w, dx),
                None => kernels::conv::backward_data(gpu, g, y, w, dx, storage, None),
            });
            let choice = variants::weight_gradient(dev, g, storage);
            let (tiles, columns) = match &choice.kernel {
                WeightGradient::Tiled(t) => (t.candidates.iter().copied().map(Some).collect(), None),
                WeightGradient::Texture { tiles, columns } => {
                    (tiles.candidates.iter().copied().map(Some).collect(), Some(*columns))
                }
                _ => (vec![None], None),
            };
            let bufs = kernels::conv::WeightGradientBuffers { dy: y, x, dw };
            push(bwd_weight, choice.kernel.to_string(), tiles, &|t| match (t, columns) {
                (Some(t), Some(c)) => kernels::conv::texture::backward_weight(gpu, g, t, c, None, &bufs, None),
                (Some(t), None) => kernels::conv::backward_weight_tiled(gpu, g, t, None, &bufs),
                (None, _) => kernels::conv::backward_weight(gpu, g, &bufs, storage, None),
            });
        }
        Ok(out)
    }
}

/// A model benchmark: one of shared/bench-suite.md's "Models" or any zoo model on request.
#[derive(Clone, Debug)]
pub struct ModelBench {
    pub name: String,
    pub model: String,
    pub train: bool,
    /// Classes of the model's head (1000 in the suite).
    pub classes: usize,
}

impl ModelBench {
    fn new(name: &str, model: &str, train: bool) -> ModelBench {
        ModelBench {
            name: name.into(),
            model: model.into(),
            train,
            classes: 1000,
        }
    }

    /// The suite of shared/bench-suite.md: ResNet-18, ResNet-50 and MobileNetV2 inference and a
    /// ResNet-18 training step.
    pub fn suite() -> Vec<ModelBench> {
        vec![
            ModelBench::new("resnet18_infer", "resnet18", false),
            ModelBench::new("resnet50_infer", "resnet50", false),
            ModelBench::new("mobilenetv2_infer", "mobilenet_v2", false),
            ModelBench::new("resnet18_train", "resnet18", true),
        ]
    }

    /// Inference and a training step of any zoo model (`nn::by_name`) with `classes` classes.
    pub fn model(model: &str, classes: usize) -> Vec<ModelBench> {
        [false, true]
            .into_iter()
            .map(|train| ModelBench {
                name: format!("{model}_{}", if train { "train" } else { "infer" }),
                model: model.into(),
                train,
                classes,
            })
            .collect()
    }
}

/// What one model benchmark measured.
#[derive(Clone, Debug)]
pub struct ModelResult {
    pub timing: Timing,
    pub images_per_sec: f64,
    pub stats: crate::exec::PlanStats,
    /// Median host milliseconds to record and submit one run (`Plan::host_ms`).
    pub host_ms: f64,
    /// Milliseconds to build the model's graph and its initial weights (drawn and uploaded).
    pub init_ms: f64,
    /// Milliseconds to compile the plan (fusion, memory plan, lowering, every pipeline built).
    pub compile_ms: f64,
    /// Per-kernel time of one run, each dispatch timed alone as the best of 7 runs (with
    /// `profile`).
    pub profile: Vec<crate::exec::KernelProfile>,
}

/// How `run_model` compiles and times a model.
#[derive(Clone, Copy, Debug)]
pub struct ModelRun {
    pub fusion: bool,
    /// f16 activation storage (inference only).
    pub f16: bool,
    /// The precision of the plan (`Precision::Mixed`: mixed-precision training, f16
    /// activations for inference).
    pub precision: crate::Precision,
    pub warmup: usize,
    pub iters: usize,
    /// Also time each dispatch alone, summed per kernel.
    pub profile: bool,
}

/// Compile and time one model at `shape` (N, C, H, W) with `b.classes` classes, eval-mode
/// inference or one SGD-momentum training step, with or without fusion.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_model(gpu: &Gpu, b: &ModelBench, shape: [usize; 4], run: ModelRun) -> Result<ModelResult> {
    let ModelRun {
        fusion,
        f16,
        precision,
        warmup,
        iters,
        profile,
    } = run;
    use crate::exec::{CompileOptions, Inference, ParamGroups, ParamStore, TrainStep};
    use crate::nn::{by_name, Net};
    use crate::train::Optimizer;
    let started = std::time::Instant::now();
    let m = by_name(&b.model, b.classes, shape[1])?;
    let mut net = Net::new(b.train);
    let x = net.graph.input("x", shape);
    let logits = m.forward(&mut net, x)?;
    let mut store = ParamStore::new();
    net.init_params(gpu, &mut store, 0)?;
    let mut rng = Rng::new(1);
    let images = rng.vec(shape.iter().product(), -1.0, 1.0);
    let init_ms = started.elapsed().as_secs_f64() * 1e3;
    let compile_ms;
    let opts = CompileOptions {
        fusion,
        f16,
        precision,
        ..Default::default()
    };
    // host time of each run, warm-up runs included
    let mut host = Vec::new();
    let (timing, stats, profile) = if b.train {
        let y = net.graph.labels("labels", shape[0]);
        let loss = net.graph.cross_entropy(logits, y, 0.0)?;
        let labels: Vec<i32> = (0..shape[0]).map(|i| (i % b.classes) as i32).collect();
        let opt = Optimizer::Sgd {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        };
        let groups = ParamGroups::single(opt);
        let compiling = std::time::Instant::now();
        let mut step = TrainStep::compile_groups(gpu, net.graph, loss, &[], &mut store, groups, opts)?;
        compile_ms = compiling.elapsed().as_secs_f64() * 1e3;
        let t = time_gpu(gpu, warmup, iters, || {
            step.step(&images, &labels)?;
            host.push(step.plan.host_ms());
            Ok(())
        })?;
        let p = if profile { step.plan.profile()? } else { Vec::new() };
        (t, step.plan.stats.clone(), p)
    } else {
        let compiling = std::time::Instant::now();
        let inf = Inference::compile_with(gpu, net.graph, &[logits], &mut store, opts)?;
        compile_ms = compiling.elapsed().as_secs_f64() * 1e3;
        inf.plan.write_input("x", &images)?;
        let t = time_gpu(gpu, warmup, iters, || {
            inf.plan.run()?;
            host.push(inf.plan.host_ms());
            Ok(())
        })?;
        let p = if profile { inf.plan.profile()? } else { Vec::new() };
        (t, inf.plan.stats.clone(), p)
    };
    // the timed runs' median
    let mut timed = host.split_off(host.len().saturating_sub(iters.max(1)));
    timed.sort_by(f64::total_cmp);
    Ok(ModelResult {
        images_per_sec: shape[0] as f64 / (timing.median_ms * 1e-3),
        host_ms: timed.get(timed.len() / 2).copied().unwrap_or(0.0),
        init_ms,
        compile_ms,
        timing,
        stats,
        profile,
    })
}
