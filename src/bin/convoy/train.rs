//! `convoy train`: train a model on Fashion-MNIST (the embedded subset, or a full set from a
//! folder) with the 1cycle schedule, printing metrics per epoch and the final test accuracy.

use clap::Args;
use convoy::data::Mnist;
use convoy::nn::{by_name, MODEL_NAMES};
use convoy::train::{Learner, Optimizer};
use convoy::{Error, Gpu};

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Model: resnet18/34/50, xresnet18/34/50, mobilenet_v1/v2, simple_cnn, plain8/14/20,
    /// resplain8/14/20.
    #[arg(long, default_value = "simple_cnn")]
    model: String,
    /// Data: `fashion-mnist` (the embedded subset) or `fashion-mnist=PATH` (IDX files in PATH).
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    bs: usize,
    /// Peak learning rate of the 1cycle schedule.
    #[arg(long, default_value_t = 0.05)]
    lr: f32,
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// Weight decay (SGD with momentum cycled by the schedule).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Default for TrainArgs {
    fn default() -> Self {
        TrainArgs {
            model: "simple_cnn".into(),
            data: "fashion-mnist".into(),
            epochs: 5,
            bs: 64,
            lr: 0.05,
            label_smoothing: 0.0,
            weight_decay: 5e-4,
            seed: 0,
        }
    }
}

fn load(data: &str) -> convoy::Result<Mnist> {
    match data.split_once('=') {
        None if data == "fashion-mnist" => Mnist::fashion_embedded(),
        Some(("fashion-mnist", path)) => Mnist::from_dir(path),
        _ => Err(Error::arg(
            "train",
            "--data",
            format!("'{data}': use fashion-mnist or fashion-mnist=PATH"),
        )),
    }
}

pub fn run(a: TrainArgs) -> convoy::Result<()> {
    if a.bs == 0 || a.epochs == 0 {
        return Err(Error::arg("train", "--bs/--epochs", "must be at least 1"));
    }
    if a.lr.is_nan() || a.lr <= 0.0 {
        return Err(Error::arg("train", "--lr", format!("{} must be positive", a.lr)));
    }
    let model = by_name(&a.model, 10, 1).map_err(|_| {
        Error::arg(
            "train",
            "--model",
            format!("'{}' is not one of {}", a.model, MODEL_NAMES.join(", ")),
        )
    })?;
    let gpu = Gpu::new()?;
    let data = load(&a.data)?;
    println!("{}", gpu.info().name);
    println!(
        "training {} on {} ({} train / {} test images), {} epochs, batch {}, 1cycle lr {}",
        a.model, a.data, data.train.n, data.test.n, a.epochs, a.bs, a.lr
    );
    let opt = Optimizer::Sgd {
        lr: a.lr,
        momentum: 0.9,
        weight_decay: a.weight_decay,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, model, opt, a.bs, a.seed);
    learner.label_smoothing = a.label_smoothing;
    println!("epoch  train_loss  valid_loss  top1    top5    time    img/s");
    let stats = learner.fit_one_cycle(&data.train, &data.test, a.epochs, a.lr, &mut |s| {
        println!(
            "{:>5}  {:>10.4}  {:>10.4}  {:>5.2}%  {:>5.2}%  {:>5.1}s  {:>6.0}",
            s.epoch,
            s.train_loss,
            s.valid_loss,
            s.top1 * 100.0,
            s.top5 * 100.0,
            s.seconds,
            s.images_per_sec
        )
    })?;
    let last = stats.last().expect("at least one epoch");
    println!(
        "test accuracy: {:.2}% (top-5 {:.2}%)",
        last.top1 * 100.0,
        last.top5 * 100.0
    );
    Ok(())
}
