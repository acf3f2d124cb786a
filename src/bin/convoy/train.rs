//! `convoy train`: train a model on Fashion-MNIST (the embedded subset, or a full set from a
//! folder) with the 1cycle schedule, printing metrics per epoch and the final test accuracy.

use clap::Args;
use convoy::data::{Dataset, ImageFolder, Mnist};
use convoy::nn::{by_name, MODEL_NAMES};
use convoy::train::{Learner, Optimizer};
use convoy::{Error, Gpu};

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Model: resnet18/34/50, xresnet18/34/50, mobilenet_v1/v2, simple_cnn, plain8/14/20,
    /// resplain8/14/20.
    #[arg(long, default_value = "resnet_mini")]
    model: String,
    /// Data: `fashion-mnist` (the embedded subset), `fashion-mnist=PATH` (IDX files in PATH), or
    /// `folder=PATH` (PATH/train/<class>/*.jpg and PATH/val/<class>/*.jpg, JPEG or PNG).
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Image size (square) the model sees: the data's own size by default (224 for folders).
    #[arg(long)]
    size: Option<usize>,
    /// Progressive resizing: start at this size and grow linearly to --size by the last epoch
    /// (multiples of 4).
    #[arg(long, requires = "size")]
    size_start: Option<usize>,
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    bs: usize,
    /// Peak learning rate of the 1cycle schedule.
    #[arg(long, default_value_t = 0.15)]
    lr: f32,
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f32,
    /// Weight decay (SGD with momentum cycled by the schedule).
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for metrics.json, checkpoint.safetensors (after every epoch: weights, optimizer
    /// state and position) and model.safetensors (the final weights, torchvision names).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Continue from a checkpoint.safetensors written by an earlier run with --out; the run's
    /// flags (model, epochs, batch, lr) must match the interrupted run for the same result.
    #[arg(long)]
    resume: Option<std::path::PathBuf>,
    /// Gather per-layer activation statistics every batch (mean, std, fraction near zero,
    /// histogram) and write activation_stats.json, activation_curves.png and
    /// colorful_dimension.png to --out.
    #[arg(long)]
    stats: bool,
}

impl Default for TrainArgs {
    fn default() -> Self {
        TrainArgs {
            model: "resnet_mini".into(),
            data: "fashion-mnist".into(),
            size: None,
            size_start: None,
            epochs: 5,
            bs: 64,
            lr: 0.15,
            label_smoothing: 0.1,
            weight_decay: 5e-4,
            seed: 0,
            out: None,
            resume: None,
            stats: false,
        }
    }
}

/// The train and validation sets named by --data.
pub fn load(data: &str) -> convoy::Result<(Box<dyn Dataset>, Box<dyn Dataset>)> {
    let mnist = |m: Mnist| -> (Box<dyn Dataset>, Box<dyn Dataset>) { (Box::new(m.train), Box::new(m.test)) };
    match data.split_once('=') {
        None if data == "fashion-mnist" => Ok(mnist(Mnist::fashion_embedded()?)),
        Some(("fashion-mnist", path)) => Ok(mnist(Mnist::from_dir(path)?)),
        Some(("folder", path)) => {
            let (train, val) = ImageFolder::open(path, 224)?;
            Ok((Box::new(train), Box::new(val)))
        }
        _ => Err(Error::arg(
            "train",
            "--data",
            format!("'{data}': use fashion-mnist, fashion-mnist=PATH or folder=PATH"),
        )),
    }
}

/// The per-epoch sizes: --size alone, or a linear ramp from --size-start (multiples of 4).
fn sizes(a: &TrainArgs) -> convoy::Result<Vec<usize>> {
    let Some(end) = a.size else { return Ok(Vec::new()) };
    if end < 8 || a.size_start.is_some_and(|s| s < 8 || s > end) {
        return Err(Error::arg(
            "train",
            "--size/--size-start",
            format!(
                "sizes must be at least 8 and --size-start <= --size (got {:?} -> {end})",
                a.size_start
            ),
        ));
    }
    let Some(start) = a.size_start else {
        return Ok(vec![end]);
    };
    let e = a.epochs.max(2) - 1;
    Ok((0..a.epochs)
        .map(|i| {
            let s = start as f64 + (end - start) as f64 * i as f64 / e as f64;
            ((s / 4.0).round() as usize * 4).clamp(start, end)
        })
        .collect())
}

pub fn run(a: TrainArgs) -> convoy::Result<()> {
    if a.bs == 0 || a.epochs == 0 {
        return Err(Error::arg("train", "--bs/--epochs", "must be at least 1"));
    }
    if a.lr.is_nan() || a.lr <= 0.0 {
        return Err(Error::arg("train", "--lr", format!("{} must be positive", a.lr)));
    }
    let (train, valid) = load(&a.data)?;
    let classes = train.classes().max(valid.classes());
    let model = by_name(&a.model, classes, train.channels()).map_err(|_| {
        Error::arg(
            "train",
            "--model",
            format!("'{}' is not one of {}", a.model, MODEL_NAMES.join(", ")),
        )
    })?;
    let gpu = Gpu::new()?;
    println!("{}", gpu.info().name);
    println!(
        "training {} on {} ({} train / {} test images, {classes} classes), {} epochs, batch {}, 1cycle lr {}",
        a.model,
        a.data,
        train.len(),
        valid.len(),
        a.epochs,
        a.bs,
        a.lr
    );
    let opt = Optimizer::Sgd {
        lr: a.lr,
        momentum: 0.9,
        weight_decay: a.weight_decay,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, model, opt, a.bs, a.seed);
    learner.label_smoothing = a.label_smoothing;
    learner.model_name = a.model.clone();
    learner.sizes = sizes(&a)?;
    if let Some(path) = &a.resume {
        let info = learner.resume(path)?;
        if info.model != a.model || info.epochs_total != a.epochs {
            return Err(Error::arg(
                "train",
                "--resume",
                format!(
                    "{} was written by a run of {} over {} epochs; this run is {} over {} epochs",
                    path.display(),
                    info.model,
                    info.epochs_total,
                    a.model,
                    a.epochs
                ),
            ));
        }
        println!("resuming after epoch {} (step {})", info.epoch, info.step);
    }
    if let Some(dir) = &a.out {
        learner.checkpoint = Some(dir.join("checkpoint.safetensors"));
    }
    if a.stats {
        if a.out.is_none() {
            return Err(Error::arg("train", "--stats", "needs --out DIR for its plots"));
        }
        learner.watch_activations(Default::default());
    }
    let mut history: Vec<convoy::train::EpochStats> = Vec::new();
    println!("epoch  train_loss  valid_loss  top1    top5    time    img/s");
    let result = learner.fit_one_cycle(train.as_ref(), valid.as_ref(), a.epochs, a.lr, &mut |s| {
        history.push(s.clone());
        if let Some(dir) = &a.out {
            // metrics so far, rewritten every epoch so a stopped run keeps them
            if let Err(e) = convoy::io::write_file(dir.join("metrics.json"), metrics_json(&a, &history).as_bytes()) {
                eprintln!("warning: {e}");
            }
        }
        println!(
            "{:>5}  {:>10.4}  {:>10.4}  {:>5.2}%  {:>5.2}%  {:>5.1}s  {:>6.0}",
            s.epoch,
            s.train_loss,
            s.valid_loss,
            s.top1 * 100.0,
            s.top5 * 100.0,
            s.seconds,
            s.images_per_sec
        );
        std::ops::ControlFlow::Continue(())
    });
    if let (Err(e), Some(dir)) = (&result, &a.out) {
        eprintln!("stopped: {e}");
        eprintln!(
            "the last checkpoint is intact: {}",
            dir.join("checkpoint.safetensors").display()
        );
    }
    let stats = result?;
    let Some(last) = stats.last() else {
        println!("nothing to train: the checkpoint had finished all {} epochs", a.epochs);
        return Ok(());
    };
    if let Some(dir) = &a.out {
        let names: Vec<String> = learner
            .store
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !is_optimizer_state(n))
            .collect();
        convoy::io::safetensors::save_safetensors(dir.join("model.safetensors"), &learner.store, Some(&names))?;
        write_plots(dir, &learner)?;
        println!("wrote {}", dir.display());
    }
    println!(
        "test accuracy: {:.2}% (top-5 {:.2}%)",
        last.top1 * 100.0,
        last.top5 * 100.0
    );
    Ok(())
}

fn is_optimizer_state(name: &str) -> bool {
    [".momentum_buffer", ".exp_avg", ".exp_avg_sq"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// metrics.json: the run's settings and one record per epoch.
fn metrics_json(a: &TrainArgs, h: &[convoy::train::EpochStats]) -> String {
    let epochs: Vec<String> = h
        .iter()
        .map(|s| {
            format!(
                "{{\"epoch\":{},\"train_loss\":{},\"valid_loss\":{},\"top1\":{},\"top5\":{},\"seconds\":{:.3},\"images_per_sec\":{:.1}}}",
                s.epoch, s.train_loss, s.valid_loss, s.top1, s.top5, s.seconds, s.images_per_sec
            )
        })
        .collect();
    format!(
        "{{\"model\":{:?},\"data\":{:?},\"epochs\":{},\"bs\":{},\"lr\":{},\"label_smoothing\":{},\"weight_decay\":{},\"seed\":{},\"history\":[{}]}}\n",
        a.model, a.data, a.epochs, a.bs, a.lr, a.label_smoothing, a.weight_decay, a.seed, epochs.join(",")
    )
}

/// training_curves.png, and with activation statistics their JSON and two plots.
fn write_plots(dir: &std::path::Path, learner: &Learner) -> convoy::Result<()> {
    use convoy::diag::plots;
    convoy::io::write_file(
        dir.join("training_curves.png"),
        &plots::training_curves(&learner.recorder)?,
    )?;
    if let Some(st) = &learner.stats {
        convoy::io::write_file(dir.join("activation_stats.json"), st.to_json().as_bytes())?;
        convoy::io::write_file(dir.join("activation_curves.png"), &plots::activation_curves(st)?)?;
        convoy::io::write_file(dir.join("colorful_dimension.png"), &plots::colorful_dimension(st)?)?;
    }
    Ok(())
}
