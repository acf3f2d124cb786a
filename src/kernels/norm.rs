//! batch_norm kernels: per-channel batch statistics, and the normalisation itself.

use super::shaders::{reduction_variant, variant, vec4_variant};
use super::shaders::{
    BATCH_NORM_APPLY, BATCH_NORM_BWD_DATA, BATCH_NORM_BWD_FINISH, BATCH_NORM_BWD_REDUCE, BATCH_NORM_MERGE,
    BATCH_NORM_RUNNING, BATCH_NORM_STATS, CHANNEL_SUM, FOLD_BN,
};
use super::{f32_bits, groups_for, u32_of};
use crate::device::{grid_1d, Dispatch, Gpu, KernelFamily};
use crate::error::{Error, Result};
use crate::shape::{DType, Epilogue};

const WG: usize = 256;

/// The buffers of a batch-statistics pass (`stats`, `merge_stats`, `running_update`): what the
/// statistics come from, the batch mean and biased variance (C), and the running mean and
/// variance (C).
#[derive(Clone, Copy)]
pub struct StatsBuffers<'a> {
    /// x (N, C, HW) for `stats`; the block statistics a conv wrote for x for `merge_stats`; the
    /// global batch size for `running_update`.
    pub input: &'a wgpu::Buffer,
    pub mean: &'a wgpu::Buffer,
    pub var: &'a wgpu::Buffer,
    pub running_mean: &'a wgpu::Buffer,
    pub running_var: &'a wgpu::Buffer,
}

impl StatsBuffers<'_> {
    /// The bindings of every statistics pass, in order.
    fn bindings(&self) -> [&wgpu::Buffer; 5] {
        [self.input, self.mean, self.var, self.running_mean, self.running_var]
    }
}

/// Batch mean and biased variance of x (N, C, HW) (`b.input`) per channel into `mean`, `var`
/// (C); when `update_running`, also running = (1 - momentum) * running + momentum * batch
/// (unbiased var).
pub fn stats(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    momentum: f32,
    update_running: bool,
    storage: DType,
    b: &StatsBuffers<'_>,
) -> Result<Dispatch> {
    per_channel_grid(gpu, "batch_norm", c)?;
    let shader = variant(gpu, reduction_variant(gpu, &BATCH_NORM_STATS), storage)?;
    let pipeline = gpu.pipeline(shader, &[reduction_lanes(gpu)])?;
    u32_of("batch_norm elements", n * c * hw)?;
    let params = [
        n as u32,
        c as u32,
        hw as u32,
        f32_bits(momentum),
        u32::from(update_running),
    ];
    Dispatch::new(gpu, pipeline, &params, &b.bindings(), [c as u32, 1, 1])
}

/// `stats` from the block statistics a conv wrote for its output x (N, C, HW) (`b.input`; see
/// `kernels::conv::STATS_BLOCK`), merged per channel with Chan's formula: no pass over x.
pub fn merge_stats(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    momentum: f32,
    update_running: bool,
    b: &StatsBuffers<'_>,
) -> Result<Dispatch> {
    // the gpu family: a workgroup per channel merging its blocks as a tree (a ResNet stem at
    // batch 32 has 1,568 blocks per channel); the cpu family: an invocation per channel
    let tree = gpu.policy().family == KernelFamily::Gpu;
    let pipeline = gpu.pipeline(&BATCH_NORM_MERGE, &[("TREE", f64::from(u8::from(tree)))])?;
    let params = [
        u32_of("batch_norm channels", c)?,
        u32_of("batch_norm pixels per channel", n * hw)?,
        super::conv::STATS_BLOCK as u32,
        f32_bits(momentum),
        u32::from(update_running),
    ];
    let grid = if tree {
        per_channel_grid(gpu, "batch_norm statistics", c)?
    } else {
        grid_1d(groups_for("batch_norm channels", c, 64)?)
    };
    Dispatch::new(gpu, pipeline, &params, &b.bindings(), grid)
}

/// Running statistics of x (N, C, HW) from batch statistics `mean`, `var` (C) computed over a
/// global batch of `b.input[0]` images (synchronised batch norm; see batch_norm_running.wgsl).
pub fn running_update(gpu: &Gpu, [c, hw]: [usize; 2], momentum: f32, b: &StatsBuffers<'_>) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&BATCH_NORM_RUNNING, &[])?;
    let params = [c as u32, hw as u32, f32_bits(momentum), 0];
    let grid = grid_1d(groups_for("batch_norm running statistics", c, 64)?);
    Dispatch::new(gpu, pipeline, &params, &b.bindings(), grid)
}

/// The buffers of a batch-norm normalisation: x (N, C, HW), the statistics it normalises by
/// (mean, var: C), gamma and beta (C), the optional residual (like x), y (like x), and the
/// optional store of the value before the activation (stored as x is).
#[derive(Clone, Copy)]
pub struct ApplyBuffers<'a> {
    pub x: &'a wgpu::Buffer,
    pub mean: &'a wgpu::Buffer,
    pub var: &'a wgpu::Buffer,
    pub gamma: &'a wgpu::Buffer,
    pub beta: &'a wgpu::Buffer,
    pub residual: Option<&'a wgpu::Buffer>,
    pub y: &'a wgpu::Buffer,
    pub pre: Option<&'a wgpu::Buffer>,
}

/// y = act((x - mean) / sqrt(var + eps) * gamma + beta [+ residual]), per channel of x (N, C, HW);
/// with `pre`, the value before the activation is stored there too (as y is).
pub fn apply(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    eps: f32,
    epi: Epilogue,
    storage: DType,
    b: &ApplyBuffers<'_>,
) -> Result<Dispatch> {
    let ApplyBuffers {
        x,
        mean,
        var,
        gamma,
        beta,
        residual,
        y,
        pre,
    } = *b;
    let total = n * c * hw;
    let [act, alpha] = epi.act.constants();
    let (shader, pack, straddle) = lanes(&BATCH_NORM_APPLY, [total, hw], true)?;
    let constants = [
        ("WG", WG as f64),
        ("HAS_RESIDUAL", f64::from(u8::from(residual.is_some()))),
        ("HAS_PRE", f64::from(u8::from(pre.is_some()))),
        act,
        alpha,
        ("C", c as f64),
        ("HW", hw as f64),
        straddle,
    ];
    let pipeline = gpu.pipeline(super::shaders::variant(gpu, shader, storage)?, &constants)?;
    let params = [u32_of("batch_norm elements", total)?, f32_bits(eps)];
    let grid = grid_1d(groups_for("batch_norm", total / pack, WG)?);
    let r = residual.unwrap_or(gpu.dummy());
    // x read, y written, the residual read and the value before the activation written
    let moved = (2 + usize::from(residual.is_some()) + usize::from(pre.is_some())) * storage.size() * total;
    let pre = pre.unwrap_or(gpu.dummy_rw());
    Ok(Dispatch::new(gpu, pipeline, &params, &[x, mean, var, gamma, beta, r, y, pre], grid)?.moving(moved))
}

/// How the lanes of a per-channel elementwise kernel (the elementwise_lanes prelude) take
/// `total` values in planes of `hw`: 4 consecutive elements per lane through vec4 loads and
/// stores where 4 consecutive elements lie in one plane (`hw` a multiple of 4) or, for a
/// kernel that handles it (`straddles`), in two at most (`hw` >= 4, the total a multiple of 4);
/// else one. Returns the shader, the elements per lane and its STRADDLE constant.
fn lanes(
    shader: &'static crate::device::Shader,
    [total, hw]: [usize; 2],
    straddles: bool,
) -> Result<(&'static crate::device::Shader, usize, (&'static str, f64))> {
    let whole = hw.is_multiple_of(4);
    let vec4 = whole || (straddles && hw >= 4 && total.is_multiple_of(4));
    let straddle = ("STRADDLE", f64::from(u8::from(vec4 && !whole)));
    match vec4 {
        true => Ok((vec4_variant(shader)?, 4, straddle)),
        false => Ok((shader, 1, straddle)),
    }
}

/// Kernels that give each channel one workgroup: the channel count must fit one grid dimension.
/// The workgroup size of the per-channel reductions (one workgroup per channel, or per split of
/// one): the policy's (`KernelPolicy::run_lanes`), as their WG constant.
fn reduction_lanes(gpu: &Gpu) -> (&'static str, f64) {
    ("WG", f64::from(gpu.policy().run_lanes))
}

fn per_channel_grid(gpu: &Gpu, what: &str, c: usize) -> Result<[u32; 3]> {
    let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
    if c > max {
        return Err(Error::Limit {
            what: format!("{what} channels (one workgroup each)"),
            need: c as u64,
            max: max as u64,
        });
    }
    Ok([c as u32, 1, 1])
}

/// y (C) = sum of x (N, C, HW) over N and HW: the bias gradient of conv2d and linear.
pub fn channel_sum(gpu: &Gpu, [n, c, hw]: [usize; 3], x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Dispatch> {
    let grid = per_channel_grid(gpu, "channel_sum", c)?;
    u32_of("channel_sum elements", n * c * hw)?;
    let pipeline = gpu.pipeline(reduction_variant(gpu, &CHANNEL_SUM), &[reduction_lanes(gpu)])?;
    Dispatch::new(gpu, pipeline, &[n as u32, c as u32, hw as u32], &[x, y], grid)
}

/// The buffers of a batch_norm backward; `y` (the output) when the epilogue has an activation,
/// `dr` (the residual's gradient) when it has a residual.
pub struct BnBackward<'a> {
    pub dy: &'a wgpu::Buffer,
    pub x: &'a wgpu::Buffer,
    pub mean: &'a wgpu::Buffer,
    pub var: &'a wgpu::Buffer,
    pub gamma: &'a wgpu::Buffer,
    /// With a fused activation: the forward's output y where the activation's derivative
    /// follows from it (`Act::grad_from_output`), else the value before the activation.
    pub y: Option<&'a wgpu::Buffer>,
    pub dx: &'a wgpu::Buffer,
    pub dgamma: &'a wgpu::Buffer,
    pub dbeta: &'a wgpu::Buffer,
    pub dr: Option<&'a wgpu::Buffer>,
    /// How x and y are stored (f16 in mixed precision); dy, dx and dr are f32.
    pub saved: DType,
}

/// The launches of a batch_norm backward: the reduction into dgamma and dbeta (one dispatch, or
/// a split reduction and its finish), then dx.
pub struct BnBackwardDispatches {
    pub reduce: Vec<Dispatch>,
    pub data: Dispatch,
}

/// Values of one channel per workgroup of a split backward reduction at least (16 per lane).
const SPLIT_VALUES: usize = 4096;
/// Workgroups per channel of a split backward reduction at most.
const MAX_SPLITS: usize = 64;

/// Workgroups per channel for the backward reduction over `count` values of each channel: on
/// the gpu family enough that each takes about `SPLIT_VALUES` (a ResNet stem at batch 32 has
/// 64 channels of 401,408 values: 64 workgroups would leave most of a GPU idle), on the cpu
/// family one (a CPU driver's few threads are busy with one workgroup per channel already).
pub fn backward_splits(gpu: &Gpu, count: usize) -> usize {
    if gpu.policy().family == KernelFamily::Gpu {
        count.div_ceil(SPLIT_VALUES).clamp(1, MAX_SPLITS)
    } else {
        1
    }
}

/// batch_norm training backward: dgamma, dbeta (C) by reduction, then dx elementwise, with the
/// epilogue's activation derivative (from `b.y`: the output, or the value before the
/// activation) and residual gradient fused in.
pub fn backward(
    gpu: &Gpu,
    [n, c, hw]: [usize; 3],
    eps: f32,
    epi: Epilogue,
    b: &BnBackward<'_>,
) -> Result<BnBackwardDispatches> {
    let total = n * c * hw;
    let count = n * hw;
    let splits = backward_splits(gpu, count);
    let mut grid = per_channel_grid(gpu, "batch_norm backward", c)?;
    grid[1] = splits as u32;
    let [act, alpha] = epi.act.constants();
    let from_output = ("FROM_OUTPUT", f64::from(u8::from(epi.act.grad_from_output())));
    let y = b.y.unwrap_or(gpu.dummy());
    let split = ("SPLIT", f64::from(u8::from(splits > 1)));
    // the channel count and plane size as pipeline constants (the shaders say why)
    let shape = [("C", c as f64), ("HW", hw as f64)];
    // the reduction walks one channel's planes: vec4 only where they hold whole vec4s
    let (reduce, pack, _) = lanes(&BATCH_NORM_BWD_REDUCE, [total, hw], false)?;
    let reduce = gpu.pipeline(
        variant(gpu, reduction_variant(gpu, reduce), b.saved)?,
        &[act, alpha, from_output, split, shape[0], shape[1], reduction_lanes(gpu)],
    )?;
    // whole lanes' worth of values per split (count is a multiple of pack)
    let chunk = count.div_ceil(splits).next_multiple_of(pack);
    let params = [n as u32, f32_bits(eps), u32_of("batch_norm values per channel", chunk)?];
    let partials = if splits > 1 {
        Some(gpu.scratch_buffer("batch_norm backward partial sums", (c * splits * 2 * 4) as u64)?)
    } else {
        None
    };
    let p = partials.as_ref().unwrap_or(gpu.dummy_rw());
    // dy and x read, and the saved activation where there is one
    let saved = (1 + usize::from(b.y.is_some())) * b.saved.size();
    let mut reduce = vec![Dispatch::new(
        gpu,
        reduce,
        &params,
        &[b.dy, b.x, b.mean, b.var, y, b.dgamma, b.dbeta, p],
        grid,
    )?
    .moving((4 + saved) * total)];
    if let Some(partials) = &partials {
        reduce.push(Dispatch::new(
            gpu,
            gpu.pipeline(&BATCH_NORM_BWD_FINISH, &[])?,
            &[c as u32, splits as u32],
            &[partials, b.dgamma, b.dbeta],
            grid_1d(groups_for("batch_norm channels", c, 64)?),
        )?);
    }
    let res = ("HAS_RESIDUAL", f64::from(u8::from(b.dr.is_some())));
    let (data, pack, straddle) = lanes(&BATCH_NORM_BWD_DATA, [total, hw], true)?;
    let data = gpu.pipeline(
        variant(gpu, data, b.saved)?,
        &[
            ("WG", WG as f64),
            act,
            alpha,
            from_output,
            res,
            shape[0],
            shape[1],
            straddle,
        ],
    )?;
    let params = [
        u32_of("batch_norm elements", total)?,
        f32_bits(eps),
        f32_bits(count as f32),
    ];
    let grid = grid_1d(groups_for("batch_norm backward", total / pack, WG)?);
    let dr = b.dr.unwrap_or(gpu.dummy_rw());
    let bufs = [b.dy, b.x, b.mean, b.var, b.gamma, b.dgamma, b.dbeta, y, b.dx, dr];
    // dy, x and the saved activation read, dx and the residual's gradient written
    let moved = (2 + usize::from(b.dr.is_some())) * 4 * total + saved * total;
    let data = Dispatch::new(gpu, data, &params, &bufs, grid)?.moving(moved);
    Ok(BnBackwardDispatches { reduce, data })
}

/// The buffers of a batch-norm fold: conv weight (and bias), BN parameters and statistics in,
/// folded weight and bias out.
pub struct FoldBuffers<'a> {
    pub w: &'a wgpu::Buffer,
    pub b: Option<&'a wgpu::Buffer>,
    pub gamma: &'a wgpu::Buffer,
    pub beta: &'a wgpu::Buffer,
    pub rm: &'a wgpu::Buffer,
    pub rv: &'a wgpu::Buffer,
    pub w_out: &'a wgpu::Buffer,
    pub b_out: &'a wgpu::Buffer,
}

/// Lanes of a fold_bn workgroup: a 3x3 conv's row of 64 input channels is 144 vec4s, so wider
/// workgroups would leave most of their lanes idle on the narrow layers.
const FOLD_WG: usize = 64;

/// Fold an eval-mode batch norm into the conv weight (Cout, per_channel) before it: workgroups
/// over runs of each channel's row, in vec4s where a row is whole vec4s. With per_channel 0 the
/// bias alone (the weights folded as they are packed: `texture::KeptOperands`).
pub fn fold(gpu: &Gpu, [cout, per]: [usize; 2], eps: f32, f: &FoldBuffers<'_>) -> Result<Dispatch> {
    let (shader, pack) = match per.is_multiple_of(4) {
        true => (vec4_variant(&FOLD_BN)?, 4),
        false => (&FOLD_BN, 1),
    };
    let pipeline = gpu.pipeline(
        shader,
        &[("WG", FOLD_WG as f64), ("HAS_BIAS", f64::from(u8::from(f.b.is_some())))],
    )?;
    let runs = (per / pack).div_ceil(FOLD_WG).max(1);
    let grid = grid_1d(u32_of("fold_bn workgroups", cout.saturating_mul(runs))?);
    let params = [
        u32_of("fold_bn channels", cout)?,
        u32_of("fold_bn weights", per / pack)?,
        u32_of("fold_bn runs", runs)?,
        f32_bits(eps),
    ];
    let bufs = [
        f.w,
        f.b.unwrap_or(gpu.dummy()),
        f.gamma,
        f.beta,
        f.rm,
        f.rv,
        f.w_out,
        f.b_out,
    ];
    // the weights read and written
    Ok(Dispatch::new(gpu, pipeline, &params, &bufs, grid)?.moving(2 * 4 * cout * per))
}
