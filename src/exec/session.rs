//! Training steps and inference over compiled plans: what a model's user calls each batch.

use super::plan::Plan;
use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId, ValueKind};
use crate::kernels::loss_scale::{self, LossScale};
use crate::passes::fuse;
use crate::passes::optimizer::Optimizer;
use crate::passes::pipeline::{self, ParamGroups};
use crate::passes::precision::{Precision, LOSS_SCALER};
use crate::store::ParamStore;
use crate::tensor::DType;

/// How graphs are compiled.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Run the fusion passes (default: on, unless CONVOY_FUSION=0).
    pub fusion: bool,
    /// Compile a training step for one rank of a data-parallel job (see `crate::dist`).
    pub dist: Option<crate::dist::DistOptions>,
    /// Store activations in f16, weights and accumulation in f32 (inference only; needs the
    /// adapter's shader-f16). See `passes::precision`.
    pub f16: bool,
    /// The precision the plan computes in (`Precision::Mixed`: mixed-precision training, or
    /// f16 activations for inference, as `f16`). Needs the adapter's shader-f16.
    pub precision: Precision,
    /// Dynamic loss scaling's settings for a mixed-precision training step (PyTorch
    /// GradScaler's by default). A parameter store that already holds the scaler's state (a
    /// checkpoint's) keeps it, settings included, as GradScaler's `load_state_dict` does.
    pub loss_scale: LossScale,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            fusion: fuse::enabled_by_env(),
            dist: None,
            f16: false,
            precision: Precision::F32,
            loss_scale: LossScale::default(),
        }
    }
}

/// The one float input and the one label input of a graph, by name (the dropout seed, which
/// the step writes itself, aside).
fn io_names(g: &Graph) -> Result<(String, Option<String>)> {
    let pick = |dtype: DType| -> Vec<String> {
        g.values
            .iter()
            .filter(|v| v.kind == ValueKind::Input && v.dtype == dtype && v.name != crate::ops::dropout::SEED_INPUT)
            .map(|v| v.name.clone())
            .collect()
    };
    let (xs, ys) = (pick(DType::F32), pick(DType::I32));
    if xs.len() != 1 || ys.len() > 1 {
        return Err(Error::arg(
            "compile",
            "graph inputs",
            format!("need exactly one float input and at most one label input, found {xs:?} and {ys:?}"),
        ));
    }
    Ok((xs[0].clone(), ys.into_iter().next()))
}

/// One training step compiled once: forward, backward and optimizer update in one submit.
/// Parameters, gradients and optimizer state stay on the GPU; only what is asked is read back.
pub struct TrainStep {
    pub plan: Plan,
    pub optimizer: Optimizer,
    lr_mults: Vec<f32>,
    steps: u64,
    input: String,
    labels: String,
    /// The seed of the dropout masks (`ops::dropout`), with the step count.
    dropout_seed: u32,
}

impl TrainStep {
    /// `graph` is the forward graph in training mode ending in `loss` (a cross_entropy output);
    /// `readable` values (the loss is always first) can be read back after a step.
    pub fn compile(
        gpu: &Gpu,
        graph: Graph,
        loss: ValueId,
        readable: &[ValueId],
        store: &mut ParamStore,
        optimizer: Optimizer,
    ) -> Result<TrainStep> {
        let groups = ParamGroups::single(optimizer);
        Self::compile_groups(gpu, graph, loss, readable, store, groups, CompileOptions::default())
    }

    /// As `compile`, with parameter groups (`ParamGroups`: the optimizer, each parameter's group
    /// and each group's learning-rate multiplier) and compile options. The passes are
    /// `passes::pipeline::training`.
    pub fn compile_groups(
        gpu: &Gpu,
        graph: Graph,
        loss: ValueId,
        readable: &[ValueId],
        store: &mut ParamStore,
        groups: ParamGroups,
        opts: CompileOptions,
    ) -> Result<TrainStep> {
        let (input, labels) = io_names(&graph)?;
        let labels = labels.ok_or_else(|| Error::arg("TrainStep", "graph inputs", "no label input"))?;
        if opts.f16 {
            return Err(Error::arg(
                "TrainStep",
                "f16",
                "f16 activation storage alone is for inference; train with precision Mixed",
            ));
        }
        if opts.precision == Precision::Mixed {
            gpu.require_f16("mixed-precision training")?;
            init_loss_scaler(gpu, store, &opts.loss_scale)?;
        }
        let (graph, read) = pipeline::training(graph, loss, readable, opts.fusion, &groups, opts.precision)?;
        let lr_mults = groups.lr_mults;
        let plan = Plan::compile_dist(gpu, graph, store, &read, lr_mults.len(), opts.dist.as_ref())?;
        Ok(TrainStep {
            plan,
            optimizer: groups.optimizer,
            lr_mults,
            steps: 0,
            input,
            labels,
            dropout_seed: 0,
        })
    }

    fn prepare(&mut self, x: &[f32], labels: &[i32]) -> Result<()> {
        self.plan.write_input(&self.input, x)?;
        self.plan.write_labels(&self.labels, labels)?;
        self.steps += 1;
        if self.plan.has_input(crate::ops::dropout::SEED_INPUT) {
            // the masks of update number `steps`: the same after a resume
            let seed = [self.dropout_seed as i32, self.steps as u32 as i32];
            self.plan.write_labels(crate::ops::dropout::SEED_INPUT, &seed)?;
        }
        let hyper: Vec<f32> = self
            .lr_mults
            .iter()
            .flat_map(|&m| self.optimizer.hyper(self.steps, m))
            .collect();
        let buf = self.plan.hyper.as_ref().expect("a training plan has hyperparameters");
        self.plan
            .gpu()
            .queue()
            .write_buffer(buf, 0, bytemuck::cast_slice(&hyper));
        Ok(())
    }

    /// One step on a batch; nothing read back (the GPU runs ahead of the host).
    pub fn step(&mut self, x: &[f32], labels: &[i32]) -> Result<()> {
        self.prepare(x, labels)?;
        self.plan.run()
    }

    /// One step, then read the loss and the other readable values (waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_read(&mut self, x: &[f32], labels: &[i32]) -> Result<Vec<Vec<f32>>> {
        self.prepare(x, labels)?;
        self.plan.run_and_read()
    }

    pub async fn step_read_async(&mut self, x: &[f32], labels: &[i32]) -> Result<Vec<Vec<f32>>> {
        self.prepare(x, labels)?;
        self.plan.run_and_read_async().await
    }

    /// This rank's share of the next step of a data-parallel step (see `Plan::set_dist_batch`).
    pub fn set_dist_batch(&self, weight: f32, global: usize) {
        self.plan.set_dist_batch(weight, global);
    }

    /// Continue the update count of an earlier plan (AdamW's bias correction depends on it).
    pub fn skip_to(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Seed the dropout masks (0 unless set); each step draws from (seed, update number).
    pub fn set_dropout_seed(&mut self, seed: u64) {
        self.dropout_seed = (seed ^ (seed >> 32)) as u32;
    }

    /// Steps taken so far (a mixed-precision step skipped for a non-finite gradient counts).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// A mixed-precision step's loss scaler, read back (waits for the GPU): None in f32.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn loss_scaler(&self) -> Result<Option<LossScalerState>> {
        if !self.plan.has_resident(LOSS_SCALER) {
            return Ok(None);
        }
        let s = self.plan.read_resident(LOSS_SCALER)?;
        Ok(Some(LossScalerState {
            scale: s[0],
            growth_tracker: s[1] as u32,
            applied: s[3] as u64,
        }))
    }

    pub fn set_lr_mults(&mut self, mults: &[f32]) -> Result<()> {
        if mults.len() != self.lr_mults.len() {
            return Err(Error::arg(
                "TrainStep",
                "lr_mults",
                format!("{} groups, not {}", self.lr_mults.len(), mults.len()),
            ));
        }
        self.lr_mults = mults.to_vec();
        Ok(())
    }
}

/// Where a mixed-precision step's loss scaling stands (`TrainStep::loss_scaler`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScalerState {
    /// The scale the next step's loss gradient is multiplied by.
    pub scale: f32,
    /// Clean steps since the scale last moved.
    pub growth_tracker: u32,
    /// Updates applied (steps not skipped for a non-finite gradient).
    pub applied: u64,
}

/// The loss scaler's state in `store`: kept where it is there (a checkpoint's, checked), else
/// `settings`' initial state.
fn init_loss_scaler(gpu: &Gpu, store: &mut ParamStore, settings: &LossScale) -> Result<()> {
    settings.check()?;
    if let Some(_t) = store.get(LOSS_SCALER) {
        // the browser cannot wait for a read here; a checkpoint's state is checked natively
        #[cfg(not(target_arch = "wasm32"))]
        loss_scale::check_state(&_t.to_vec()?, LOSS_SCALER)?;
        return Ok(());
    }
    let t = crate::tensor::Tensor::from_slice(gpu, &settings.initial_state(), [loss_scale::STATE_LEN])?;
    store.insert(LOSS_SCALER, t);
    Ok(())
}

/// A forward pass compiled once (eval mode, or train mode for statistics): write the input,
/// run, read the outputs.
pub struct Inference {
    pub plan: Plan,
    input: String,
    labels: Option<String>,
}

impl Inference {
    pub fn compile(gpu: &Gpu, graph: Graph, outputs: &[ValueId], store: &mut ParamStore) -> Result<Inference> {
        Self::compile_with(gpu, graph, outputs, store, CompileOptions::default())
    }

    /// As `compile`, with compile options. The passes are `passes::pipeline::inference`.
    pub fn compile_with(
        gpu: &Gpu,
        graph: Graph,
        outputs: &[ValueId],
        store: &mut ParamStore,
        opts: CompileOptions,
    ) -> Result<Inference> {
        let (input, labels) = io_names(&graph)?;
        let f16 = opts.f16 || opts.precision == Precision::Mixed;
        if f16 {
            gpu.require_f16("f16 activation storage")?;
        }
        let (graph, outputs) = pipeline::inference(graph, outputs, opts.fusion, f16)?;
        let plan = Plan::compile(gpu, graph, store, &outputs, 0)?;
        Ok(Inference { plan, input, labels })
    }

    /// Run on `x` (and `labels` if the graph reads labels); returns the outputs in order.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, x: &[f32], labels: Option<&[i32]>) -> Result<Vec<Vec<f32>>> {
        pollster::block_on(self.run_async(x, labels))
    }

    pub async fn run_async(&self, x: &[f32], labels: Option<&[i32]>) -> Result<Vec<Vec<f32>>> {
        self.plan.write_input(&self.input, x)?;
        match (&self.labels, labels) {
            (Some(name), Some(l)) => self.plan.write_labels(name, l)?,
            (Some(name), None) => return Err(Error::arg("Inference", name, "the graph needs labels")),
            _ => {}
        }
        self.plan.run_and_read_async().await
    }
}
