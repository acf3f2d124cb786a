//! `Trainer`: trains a small CNN on the embedded Fashion-MNIST subset in the browser, one step
//! per call, so the page stays responsive and draws the loss as it falls.

use super::{check_model, describe, fashion, js, open_gpu};
use crate::data::{epoch_order, Dataset, Split};
use crate::exec::{Inference, ParamStore, TrainStep};
use crate::nn::{by_name, Model, Net};
use crate::train::{OneCycle, Optimizer};
use crate::Gpu;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

/// The models small enough to train at a useful speed in a page.
const MODELS: [&str; 2] = ["resnet_mini", "simple_cnn"];
/// As the native main job.
const LABEL_SMOOTHING: f32 = 0.1;
const WEIGHT_DECAY: f32 = 5e-4;

#[wasm_bindgen]
pub struct Trainer {
    gpu: Gpu,
    model: Box<dyn Model>,
    store: ParamStore,
    step: TrainStep,
    /// eval plans by batch size
    evals: HashMap<usize, Inference>,
    train: &'static Split,
    test: &'static Split,
    bs: usize,
    schedule: OneCycle,
    steps_done: usize,
    order: Vec<usize>,
    seed: u64,
}

fn graph(model: &dyn Model, shape: [usize; 4], training: bool) -> crate::Result<(Net, Vec<crate::graph::ValueId>)> {
    let mut net = Net::new(training);
    let x = net.graph.input("x", shape);
    let logits = model.forward(&mut net, x)?;
    let y = net.graph.labels("labels", shape[0]);
    let smoothing = if training { LABEL_SMOOTHING } else { 0.0 };
    let mut outs = vec![net.graph.cross_entropy(logits, y, smoothing)?];
    if !training {
        outs.push(net.graph.topk_accuracy(logits, y, 1)?);
        outs.push(net.graph.topk_accuracy(logits, y, 5)?);
    }
    Ok((net, outs))
}

#[wasm_bindgen]
impl Trainer {
    /// A fresh `model` (resnet_mini or simple_cnn) drawn from `seed`, trained with SGD and the
    /// 1cycle schedule peaking at `lr_max` over `epochs` epochs of `batch_size` images.
    pub async fn create(
        model: String,
        batch_size: usize,
        epochs: usize,
        lr_max: f32,
        seed: u32,
    ) -> Result<Trainer, JsError> {
        super::report_panics();
        check_model(&model, &MODELS)?;
        let data = fashion()?;
        let ok =
            (1..=data.train.n).contains(&batch_size) && (1..=100).contains(&epochs) && lr_max > 0.0 && lr_max <= 10.0;
        if !ok {
            return Err(JsError::new(&format!(
                "batch size {batch_size} must be in 1..={}, epochs {epochs} in 1..=100, lr {lr_max} in (0, 10]",
                data.train.n
            )));
        }
        let gpu = open_gpu().await?;
        let m = by_name(&model, 10, 1).map_err(js)?;
        let mut store = ParamStore::new();
        let (net, outs) = graph(m.as_ref(), [batch_size, 1, data.train.h, data.train.w], true).map_err(js)?;
        net.init_params(&gpu, &mut store, u64::from(seed)).map_err(js)?;
        let opt = Optimizer::Sgd {
            lr: lr_max,
            momentum: 0.9,
            weight_decay: WEIGHT_DECAY,
            nesterov: false,
        };
        let step = TrainStep::compile(&gpu, net.graph, outs[0], &[], &mut store, opt).map_err(js)?;
        let per_epoch = data.train.n / batch_size;
        Ok(Trainer {
            gpu,
            model: m,
            store,
            step,
            evals: HashMap::new(),
            train: &data.train,
            test: &data.test,
            bs: batch_size,
            schedule: OneCycle::new(lr_max, epochs * per_epoch),
            steps_done: 0,
            order: Vec::new(),
            seed: u64::from(seed),
        })
    }

    /// Train on the next batch; returns its loss. Each epoch reshuffles (seeded); the last
    /// partial batch of an epoch is dropped, as natively.
    pub async fn step(&mut self) -> Result<f32, JsError> {
        if self.steps_done >= self.schedule.total_steps {
            return Err(JsError::new(&format!(
                "training is finished: all {} steps are done",
                self.schedule.total_steps
            )));
        }
        let per_epoch = self.steps_per_epoch();
        let (epoch, b) = (self.steps_done / per_epoch, self.steps_done % per_epoch);
        if b == 0 || self.order.is_empty() {
            let seed = self.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37);
            self.order = epoch_order(self.train.n, Some(seed));
        }
        let batch = self
            .train
            .batch(&self.order[b * self.bs..(b + 1) * self.bs], None, None)
            .map_err(js)?;
        let (lr, momentum) = self.schedule.at(self.steps_done);
        self.step.optimizer.set_lr(lr);
        self.step.optimizer.set_momentum(momentum);
        let read = self
            .step
            .step_read_async(&batch.images, &batch.labels)
            .await
            .map_err(js)?;
        self.steps_done += 1;
        Ok(read[0][0])
    }

    pub fn steps_done(&self) -> usize {
        self.steps_done
    }

    pub fn total_steps(&self) -> usize {
        self.schedule.total_steps
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.train.n / self.bs
    }

    /// [mean loss, top-1, top-5] (fractions) on the first `n` embedded test images, with the
    /// running batch-norm statistics (eval mode).
    pub async fn evaluate(&mut self, n: usize) -> Result<Vec<f32>, JsError> {
        let n = n.clamp(1, self.test.n);
        let (mut loss, mut top1, mut top5) = (0.0f64, 0.0f64, 0.0f64);
        let idx: Vec<usize> = (0..n).collect();
        for chunk in idx.chunks(self.bs) {
            let b = self.test.batch(chunk, None, None).map_err(js)?;
            if !self.evals.contains_key(&chunk.len()) {
                let (net, outs) = graph(self.model.as_ref(), b.shape, false).map_err(js)?;
                let inf = Inference::compile(&self.gpu, net.graph, &outs, &mut self.store).map_err(js)?;
                self.evals.insert(chunk.len(), inf);
            }
            let r = self.evals[&chunk.len()]
                .run_async(&b.images, Some(&b.labels))
                .await
                .map_err(js)?;
            let w = chunk.len() as f64;
            loss += f64::from(r[0][0]) * w;
            top1 += f64::from(r[1][0]) * w;
            top5 += f64::from(r[2][0]) * w;
        }
        let n = n as f64;
        Ok(vec![(loss / n) as f32, (top1 / n) as f32, (top5 / n) as f32])
    }

    pub fn adapter(&self) -> String {
        describe(&self.gpu)
    }
}
