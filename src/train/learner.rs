//! `Learner`: trains a model on an image-classification split and evaluates it, over compiled
//! training steps and eval plans that share one parameter store.

use super::{metrics::EpochStats, schedule::OneCycle};
use crate::data::{batch_indices, epoch_order, for_each_batch, Dataset};
use crate::device::Gpu;
use crate::dist::{shard_epoch, DistOptions};
use crate::error::Result;
use crate::exec::{Inference, ParamGroups, ParamStore, TrainStep};
use crate::nn::{Model, Net};
use crate::passes::optimizer::Optimizer;
use std::collections::HashMap;
use std::ops::ControlFlow;

/// A per-batch callback: (batch index within the epoch, batches per epoch, loss).
pub type OnBatch = Box<dyn FnMut(usize, usize, f32)>;

pub struct Learner {
    gpu: Gpu,
    model: Box<dyn Model>,
    pub store: ParamStore,
    pub optimizer: Optimizer,
    pub bs: usize,
    pub label_smoothing: f32,
    pub seed: u64,
    step: Option<TrainStep>,
    evals: HashMap<[usize; 4], Inference>,
    epochs_done: usize,
    steps_done: u64,
    /// Schedule position (epochs) the next fit starts from: set by `resume`.
    resume_at: usize,
    /// Written (atomically) after every epoch when set: weights, optimizer state and position.
    pub checkpoint: Option<std::path::PathBuf>,
    /// The model's name, recorded in checkpoints.
    pub model_name: String,
    /// (loss, lr, momentum) per training batch (of this process: a resumed run starts empty).
    pub recorder: Vec<(f32, f32, f32)>,
    /// Every epoch's metrics, including those before a resume (checkpoints carry them).
    pub history: Vec<EpochStats>,
    /// Parameter-name prefixes that are frozen (no gradient, no optimizer state).
    frozen: Vec<String>,
    /// Only the head trains (`freeze_body`).
    body_frozen: bool,
    /// Discriminative learning rates: (name prefix, multiplier of the schedule's rate); the first
    /// matching prefix wins, parameters matching none train at the full rate.
    lr_groups: Vec<(String, f32)>,
    /// Called after every training batch (progress bars): batch index within the epoch, batches
    /// per epoch, loss.
    pub on_batch: Option<OnBatch>,
    /// Let `load_weights` accept NaN or infinite values (refused by default: such weights make
    /// every output NaN).
    pub allow_non_finite_weights: bool,
    /// Image size per epoch (progressive resizing; the last entry holds for later epochs);
    /// empty: the data's own size.
    pub sizes: Vec<usize>,
    /// Per-layer activation statistics per training batch, gathered when set (`watch_activations`).
    pub stats: Option<crate::diag::ActivationStats>,
    /// Data-parallel training as one rank of a job (`distribute`).
    dist: Option<DistOptions>,
    /// Whether the ranks' parameters have been made equal (broadcast from rank 0).
    params_synced: bool,
    /// Evaluate with f16 activation storage (needs shader-f16).
    pub eval_f16: bool,
    /// The precision training steps compute in (`Precision::Mixed`: mixed precision with
    /// dynamic loss scaling, whose scaler checkpoints keep; evaluation then stores f16
    /// activations too). Needs shader-f16.
    pub precision: crate::Precision,
    /// Dynamic loss scaling's settings for mixed precision (PyTorch GradScaler's by default).
    pub loss_scale: crate::LossScale,
}

impl Learner {
    pub fn new(gpu: &Gpu, model: Box<dyn Model>, optimizer: Optimizer, bs: usize, seed: u64) -> Learner {
        Learner {
            gpu: gpu.clone(),
            model,
            store: ParamStore::new(),
            optimizer,
            bs,
            label_smoothing: 0.0,
            seed,
            step: None,
            evals: HashMap::new(),
            epochs_done: 0,
            steps_done: 0,
            resume_at: 0,
            checkpoint: None,
            model_name: String::new(),
            recorder: Vec::new(),
            history: Vec::new(),
            stats: None,
            sizes: Vec::new(),
            allow_non_finite_weights: false,
            on_batch: None,
            frozen: Vec::new(),
            body_frozen: false,
            lr_groups: Vec::new(),
            dist: None,
            params_synced: false,
            eval_f16: false,
            precision: crate::Precision::F32,
            loss_scale: crate::LossScale::default(),
        }
    }

    /// Train data-parallel as one rank of `opts.collective` (e.g. `dist::Mpi`): each epoch this
    /// rank trains on its shard of the shared shuffle (`dist::shard_epoch`; the last uneven
    /// global batch is split as evenly as possible, so every sample is seen once per epoch),
    /// gradients are averaged across ranks in buckets during the backward, and with
    /// `opts.sync_bn` batch norms normalise with global-batch statistics. Parameters are
    /// broadcast from rank 0 before the first step; evaluation is sharded and its metrics
    /// summed; only rank 0 writes checkpoints. `bs` stays the per-rank batch size.
    pub fn distribute(&mut self, opts: DistOptions) {
        self.dist = Some(opts);
        self.params_synced = false;
        self.step = None;
    }

    /// (rank, ranks) of this learner's job: (0, 1) when not distributed.
    pub fn rank_and_size(&self) -> (usize, usize) {
        self.dist
            .as_ref()
            .map_or((0, 1), |d| (d.collective.rank(), d.collective.size()))
    }

    /// Training steps per epoch over `n` samples (the same on every rank).
    fn steps_per_epoch(&self, n: usize) -> usize {
        match self.rank_and_size() {
            (_, 1) => n / self.bs.max(1),
            (_, world) => n.div_ceil(self.bs.max(1) * world),
        }
    }

    /// Make every rank's tensors under `keep` equal to rank 0's (parameters before training,
    /// batch-norm running statistics before evaluation).
    fn broadcast_from_rank0(&mut self, keep: &dyn Fn(&str) -> bool) -> Result<()> {
        let Some(d) = &self.dist else { return Ok(()) };
        let mut names: Vec<String> = self.store.iter().map(|(n, _)| n.clone()).filter(|n| keep(n)).collect();
        names.sort();
        for n in &names {
            let t = self.store.get(n).expect("listed above");
            if t.dtype() != crate::DType::F32 {
                continue;
            }
            let mut v = t.to_vec()?;
            d.collective.broadcast(bytemuck::cast_slice_mut(&mut v), 0)?;
            t.write(&v)?;
        }
        self.store.touch();
        Ok(())
    }

    /// Build the graph for input (N, C, H, W): loss (and, in eval, top-1 and top-5 accuracy).
    fn build(&mut self, shape: [usize; 4], training: bool) -> Result<(Net, Vec<crate::graph::ValueId>)> {
        let mut net = Net::new(training);
        let frozen: Vec<&str> = self.frozen.iter().map(String::as_str).collect();
        net.freeze(&frozen);
        if self.body_frozen {
            net.freeze_all_but(&self.model.head_prefix());
        }
        let x = net.graph.input("x", shape);
        let logits = self.model.forward(&mut net, x)?;
        let y = net.graph.labels("labels", shape[0]);
        let smoothing = if training { self.label_smoothing } else { 0.0 };
        let loss = net.graph.cross_entropy(logits, y, smoothing)?;
        let mut outs = vec![loss];
        if let (true, Some(st)) = (training, self.stats.as_mut()) {
            // statistics of every activation, read back with the loss (no extra sync)
            let c = st.config;
            st.names = net.activations.iter().map(|(n, _)| n.clone()).collect();
            for &(_, v) in &net.activations {
                outs.push(net.graph.act_stats(v, c.bins, c.hi, c.near)?);
            }
        }
        if !training {
            let k5 = self.model.num_classes().min(5);
            outs.push(net.graph.topk_accuracy(logits, y, 1)?);
            outs.push(net.graph.topk_accuracy(logits, y, k5)?);
        }
        net.init_params(&self.gpu, &mut self.store, self.seed)?;
        Ok((net, outs))
    }

    fn train_step(&mut self, shape: [usize; 4]) -> Result<&mut TrainStep> {
        let stale = self
            .step
            .as_ref()
            .is_none_or(|s| s.plan.graph.find("x").map(|v| s.plan.graph.shape(v).dims()) != Some(&shape[..]));
        if stale {
            let (net, outs) = self.build(shape, true)?;
            // group i: the i-th prefix of `lr_groups`; the last group: everything else
            let groups = self.lr_groups.clone();
            let group_of = |name: &str| {
                groups
                    .iter()
                    .position(|(p, _)| name.starts_with(p.as_str()))
                    .unwrap_or(groups.len())
            };
            let mut mults: Vec<f32> = groups.iter().map(|g| g.1).collect();
            mults.push(1.0);
            let opts = crate::CompileOptions {
                dist: self.dist.clone(),
                precision: self.precision,
                loss_scale: self.loss_scale,
                ..Default::default()
            };
            let groups = ParamGroups {
                optimizer: self.optimizer,
                group_of: &group_of,
                lr_mults: mults,
            };
            let mut step =
                TrainStep::compile_groups(&self.gpu, net.graph, outs[0], &outs[1..], &mut self.store, groups, opts)?;
            step.skip_to(self.steps_done);
            step.set_dropout_seed(self.seed);
            self.step = Some(step);
            if !self.params_synced {
                // everything the model holds (weights, running statistics, optimizer state)
                self.broadcast_from_rank0(&|_| true)?;
                self.params_synced = true;
            }
        }
        Ok(self.step.as_mut().expect("compiled above"))
    }

    /// Continue from a checkpoint written by `checkpoint` (or `save_checkpoint`): its weights,
    /// optimizer state, batch-norm statistics and position replace this learner's; the next
    /// `fit_one_cycle` picks the schedule up where it stopped. Returns where that is.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn resume(&mut self, path: impl AsRef<std::path::Path>) -> Result<super::CheckpointInfo> {
        let (store, info) = super::load_checkpoint(&self.gpu, path)?;
        self.store = store;
        // compiled plans hold the old store's buffers
        self.step = None;
        self.evals.clear();
        self.epochs_done = info.epoch;
        self.steps_done = info.step;
        self.resume_at = info.epoch;
        self.seed = info.seed;
        self.history = info.history.clone();
        Ok(info)
    }

    /// Freeze the parameters whose names start with one of `prefixes` (e.g. everything but the
    /// head): they get no gradient and no optimizer state until `unfreeze`. Batch-norm running
    /// statistics keep updating in training mode, as in fastai.
    pub fn freeze(&mut self, prefixes: &[&str]) {
        self.frozen = prefixes.iter().map(|p| p.to_string()).collect();
        self.step = None;
    }

    /// Freeze everything but the model's head (`Model::head_prefix`): the first phase of
    /// transfer learning.
    pub fn freeze_body(&mut self) {
        self.body_frozen = true;
        self.step = None;
    }

    /// Undo `freeze` and `freeze_body`: every parameter trains.
    pub fn unfreeze(&mut self) {
        self.frozen.clear();
        self.body_frozen = false;
        self.step = None;
    }

    /// The model's head prefix (what `load_weights` should skip when the classes change).
    pub fn head_prefix(&self) -> String {
        self.model.head_prefix()
    }

    /// Trainable parameters of the compiled training step (after freezing), for inspection.
    pub fn trainable_params(&self) -> Vec<String> {
        self.step.as_ref().map_or_else(Vec::new, |s| {
            let g = &s.plan.graph;
            g.values
                .iter()
                .filter(|v| v.kind == crate::graph::ValueKind::Param { trainable: true })
                .map(|v| v.name.clone())
                .collect()
        })
    }

    /// Discriminative learning rates for fine-tuning: parameters under each prefix train at the
    /// schedule's rate times its multiplier (first match wins; others at the full rate).
    pub fn set_lr_groups(&mut self, groups: &[(&str, f32)]) -> Result<()> {
        if let Some((p, m)) = groups.iter().find(|(_, m)| !m.is_finite() || *m < 0.0) {
            return Err(crate::Error::arg(
                "set_lr_groups",
                *p,
                format!("multiplier {m} must be finite and >= 0"),
            ));
        }
        self.lr_groups = groups.iter().map(|(p, m)| (p.to_string(), *m)).collect();
        self.step = None;
        Ok(())
    }

    /// Load pretrained weights (a safetensors file with torchvision names, e.g. `model.safetensors`
    /// from `convoy train --out`) into the model, except tensors whose names start with one of
    /// `skip` (the head being replaced: it keeps a fresh initialisation) and optimizer state.
    /// A tensor whose shape differs from the model's is an error naming it when training
    /// compiles. Returns the names loaded.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_weights(&mut self, path: impl AsRef<std::path::Path>, skip: &[&str]) -> Result<Vec<String>> {
        let path = path.as_ref();
        let bytes = crate::io::read_file(path)?;
        let name = path.display().to_string();
        let tensors = crate::io::safetensors::parse_safetensors(&bytes, &name)?;
        if !self.allow_non_finite_weights {
            crate::io::safetensors::reject_non_finite(&tensors, &name)?;
        }
        let keep = |n: &str| !skip.iter().any(|p| n.starts_with(p)) && !crate::passes::optimizer::is_optimizer_state(n);
        let tensors: std::collections::BTreeMap<_, _> = tensors.into_iter().filter(|(n, _)| keep(n)).collect();
        let names: Vec<String> = tensors.keys().cloned().collect();
        let loaded = crate::io::safetensors::store_from_host(&self.gpu, tensors)?;
        for (n, t) in loaded.iter() {
            self.store.insert(n.clone(), t.clone());
        }
        for (n, v) in crate::device::lock(loaded.counters()).iter() {
            self.store.set_counter(n.clone(), *v);
        }
        self.step = None;
        self.evals.clear();
        Ok(names)
    }

    /// Gather per-layer activation statistics (every ReLU output: mean, std, fraction near zero,
    /// histogram) at every training batch from now on, into `stats`.
    pub fn watch_activations(&mut self, config: crate::diag::StatsConfig) {
        self.stats = Some(crate::diag::ActivationStats::new(config));
        self.step = None; // recompile with the statistics in the plan
    }

    /// Epochs trained so far (including those before a resume).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Train with the 1cycle schedule over `epochs` epochs peaking at `lr_max` (after `resume`,
    /// only the epochs the checkpoint had left); evaluate on `valid` after each epoch, write the
    /// checkpoint if one is set, and show `on_epoch` the metrics (it returns `Break` to stop early,
    /// e.g. on a signal; the checkpoint is already written). A non-finite loss stops training
    /// with `Error::Diverged` before that epoch's checkpoint is written.
    pub fn fit_one_cycle(
        &mut self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        epochs: usize,
        lr_max: f32,
        on_epoch: &mut dyn FnMut(&EpochStats) -> ControlFlow<()>,
    ) -> Result<Vec<EpochStats>> {
        let per_epoch = self.steps_per_epoch(train.len());
        let sched = OneCycle::new(lr_max, epochs * per_epoch);
        self.fit_with(train, valid, epochs, &|i| sched.at(i), on_epoch)
    }

    /// Train `epochs` epochs at a constant learning rate `lr` (and the optimizer's momentum);
    /// otherwise as `fit_one_cycle`.
    pub fn fit(
        &mut self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        epochs: usize,
        lr: f32,
        on_epoch: &mut dyn FnMut(&EpochStats) -> ControlFlow<()>,
    ) -> Result<Vec<EpochStats>> {
        let mom = self.optimizer.momentum();
        self.fit_with(train, valid, epochs, &|_| (lr, mom), on_epoch)
    }

    /// The training loop, with (learning rate, momentum) at global step i from `schedule`.
    fn fit_with(
        &mut self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        epochs: usize,
        schedule: &dyn Fn(usize) -> (f32, f32),
        on_epoch: &mut dyn FnMut(&EpochStats) -> ControlFlow<()>,
    ) -> Result<Vec<EpochStats>> {
        if train.classes() > self.model.num_classes() {
            return Err(crate::Error::arg(
                "fit",
                "data",
                format!(
                    "the data has {} classes, the model {} outputs",
                    train.classes(),
                    self.model.num_classes()
                ),
            ));
        }
        let per_epoch = self.steps_per_epoch(train.len());
        let (rank, world) = self.rank_and_size();
        if per_epoch == 0 {
            return Err(crate::Error::arg(
                "fit",
                "batch size",
                format!("{} is larger than the {} training images", self.bs, train.len()),
            ));
        }
        let mut out = Vec::new();
        let start = std::mem::take(&mut self.resume_at).min(epochs);
        let mut i = start * per_epoch;
        for _ in start..epochs {
            let t0 = std::time::Instant::now();
            let size = self.size_at(self.epochs_done);
            let epoch_seed = self.seed ^ (self.epochs_done as u64 + 1).wrapping_mul(0x9E37);
            let order = epoch_order(train.len(), Some(epoch_seed));
            // this rank's part of each global batch (all of it in a single process)
            let shards = shard_epoch(&order, self.bs, rank, world, world > 1);
            let lists: Vec<Vec<usize>> = shards.iter().map(|s| s.indices.clone()).collect();
            let mut losses = Vec::with_capacity(per_epoch);
            // sum over steps of this rank's weight * loss, and the samples it trained on
            let (mut weighted_loss, mut samples) = (0.0f64, 0.0f64);
            let batches = lists.len();
            for_each_batch(train, &lists, size, Some(epoch_seed.rotate_left(17)), |bi, b| {
                let (lr, mom) = schedule(i);
                i += 1;
                let step = self.train_step(b.shape)?;
                step.optimizer.set_lr(lr);
                step.optimizer.set_momentum(mom);
                let shard = &shards[bi];
                step.set_dist_batch(shard.weight, shard.global);
                let mut read = step.step_read(&b.images, &b.labels)?;
                let loss = read[0][0];
                if let Some(st) = self.stats.as_mut() {
                    st.batches.push(read.drain(1..).collect());
                }
                self.steps_done += 1;
                if !loss.is_finite() {
                    return Err(crate::Error::Diverged {
                        epoch: self.epochs_done + 1,
                        step: self.steps_done,
                        loss,
                    });
                }
                losses.push(loss);
                weighted_loss += f64::from(shard.weight * loss);
                if shard.weight > 0.0 {
                    samples += shard.indices.len() as f64;
                }
                self.recorder.push((loss, lr, mom));
                if let Some(f) = self.on_batch.as_mut() {
                    f(bi, batches, loss);
                }
                Ok(ControlFlow::Continue(()))
            })?;
            let secs = t0.elapsed().as_secs_f64();
            let mut sums = [weighted_loss, samples];
            if let Some(d) = &self.dist {
                d.collective.all_reduce_sum_f64(&mut sums)?;
            }
            let (valid_loss, top1, top5) = self.evaluate_at(valid, size)?;
            self.epochs_done += 1;
            let stats = EpochStats {
                epoch: self.epochs_done,
                train_loss: (sums[0] / losses.len().max(1) as f64) as f32,
                valid_loss,
                top1,
                top5,
                seconds: secs,
                images_per_sec: sums[1] / secs,
            };
            self.history.push(stats.clone());
            #[cfg(not(target_arch = "wasm32"))]
            if let (Some(path), 0) = (&self.checkpoint, rank) {
                let info = super::CheckpointInfo {
                    epoch: self.epochs_done,
                    step: self.steps_done,
                    epochs_total: epochs,
                    model: self.model_name.clone(),
                    seed: self.seed,
                    history: self.history.clone(),
                };
                super::save_checkpoint(path, &self.store, &info)?;
            }
            let flow = on_epoch(&stats);
            out.push(stats);
            if flow.is_break() {
                break;
            }
        }
        Ok(out)
    }

    /// The image size of epoch `e` (0-based) under `sizes`: None (the data's own) when empty.
    fn size_at(&self, e: usize) -> Option<usize> {
        self.sizes.get(e.min(self.sizes.len().saturating_sub(1))).copied()
    }

    /// `evaluate`, refusing to run if the model has a tensor the store lacks (so weights loaded
    /// with `load_weights` are evaluated as they are, never padded with a fresh initialisation).
    pub fn evaluate_weights_only(&mut self, data: &dyn Dataset) -> Result<(f32, f32, f32)> {
        let [h, w] = data.default_size();
        let s = self.size_at(0).map_or([h, w], |s| [s, s]);
        let mut net = Net::new(false);
        let x = net.graph.input("x", [1, data.channels(), s[0], s[1]]);
        self.model.forward(&mut net, x)?;
        if let Some(missing) = net.declared.iter().map(|d| &d.0).find(|n| self.store.get(n).is_none()) {
            return Err(crate::Error::arg(
                "evaluate",
                "weights",
                format!("the model's tensor '{missing}' is not in the weights"),
            ));
        }
        self.evaluate(data)
    }

    /// Mean loss, top-1 and top-5 accuracy over a data set, in eval mode (running statistics),
    /// at the size of the last epoch trained.
    pub fn evaluate(&mut self, data: &dyn Dataset) -> Result<(f32, f32, f32)> {
        let size = self.size_at(self.epochs_done.saturating_sub(1));
        self.evaluate_at(data, size)
    }

    fn evaluate_at(&mut self, data: &dyn Dataset, size: Option<usize>) -> Result<(f32, f32, f32)> {
        let (mut loss, mut top1, mut top5) = (0.0, 0.0, 0.0);
        // distributed: rank 0's running statistics (as DDP broadcasts buffers), each rank a
        // contiguous shard of the data, the sums added up
        let (rank, world) = self.rank_and_size();
        if world > 1 {
            self.broadcast_from_rank0(&|n| n.contains("running_"))?;
        }
        let n = data.len();
        let shard: Vec<usize> = (rank * n / world..(rank + 1) * n / world).collect();
        let lists = batch_indices(&shard, self.bs, true);
        for_each_batch(data, &lists, size, None, |_, b| {
            let shape = b.shape;
            if !self.evals.contains_key(&shape) {
                let (net, outs) = self.build(shape, false)?;
                let opts = crate::CompileOptions {
                    f16: self.eval_f16 || self.precision == crate::Precision::Mixed,
                    ..Default::default()
                };
                let inf = Inference::compile_with(&self.gpu, net.graph, &outs, &mut self.store, opts)?;
                self.evals.insert(shape, inf);
            }
            let r = self.evals[&shape].run(&b.images, Some(&b.labels))?;
            let w = b.n() as f64;
            loss += f64::from(r[0][0]) * w;
            top1 += f64::from(r[1][0]) * w;
            top5 += f64::from(r[2][0]) * w;
            Ok(ControlFlow::Continue(()))
        })?;
        let mut sums = [loss, top1, top5];
        if let Some(d) = &self.dist {
            d.collective.all_reduce_sum_f64(&mut sums)?;
        }
        let n = n.max(1) as f64;
        Ok(((sums[0] / n) as f32, (sums[1] / n) as f32, (sums[2] / n) as f32))
    }
}
