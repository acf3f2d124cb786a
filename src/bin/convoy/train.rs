//! `convoy train`: train a model on Fashion-MNIST (the embedded subset, or a full set from a
//! folder) with the 1cycle schedule, printing metrics per epoch and the final test accuracy.

use clap::builder::PossibleValuesParser;
use clap::Args;
use convoy::data::{Dataset, ImageFolder, Mnist};
use convoy::nn::{by_name, Model, MODEL_NAMES};
use convoy::onnx::OnnxModel;
use convoy::train::{Learner, Optimizer};
use convoy::{Error, Gpu};

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// A model of the zoo (the default, resnet_mini, is the main job's small ResNet; simple_cnn
    /// is the MNIST chapter's CNN).
    #[arg(long, default_value = "resnet_mini", value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    model: String,
    /// Train an ONNX model (torch.onnx.export) instead of a zoo model, from its initializers;
    /// with --num-classes its classifier (the last Gemm) is replaced by a new one.
    #[arg(long)]
    onnx: Option<std::path::PathBuf>,
    /// With --onnx: the new classifier's classes (must match the data's).
    #[arg(long, requires = "onnx")]
    num_classes: Option<usize>,
    /// Transfer learning: train only the classifier for this many epochs first (1cycle), then
    /// everything for --epochs.
    #[arg(long, default_value_t = 0)]
    freeze_epochs: usize,
    /// Transfer learning: the body's learning rate as a fraction of the classifier's after the
    /// frozen epochs (discriminative learning rates).
    #[arg(long, default_value_t = 1.0)]
    body_lr_mult: f32,
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
    /// Epochs to train.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    bs: usize,
    /// 1cycle schedule (the default): warm-up then cosine annealing, momentum cycled opposite.
    #[arg(long, conflicts_with = "constant_lr")]
    one_cycle: bool,
    /// A constant learning rate instead of 1cycle.
    #[arg(long)]
    constant_lr: bool,
    /// Peak learning rate of the 1cycle schedule (or the constant rate).
    #[arg(long, default_value_t = 0.15, allow_negative_numbers = true)]
    lr: f32,
    /// Label smoothing in [0, 1).
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    label_smoothing: f32,
    /// Weight decay (SGD with momentum cycled by the schedule).
    #[arg(long, default_value_t = 5e-4, allow_negative_numbers = true)]
    weight_decay: f32,
    /// Seed of the initial weights, the data order, the augmentation and the dropout masks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for metrics.json, checkpoint.safetensors (after every epoch: weights, optimizer
    /// state and position) and model.safetensors (the final weights, torchvision names).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Continue from a checkpoint.safetensors written by an earlier run with --out; the run's
    /// flags (model, epochs, batch, lr) must match the interrupted run for the same result
    /// (with --constant-lr, --epochs may differ: train until that many epochs). A checkpoint
    /// written by N data-parallel ranks resumes on any number of ranks.
    #[arg(long)]
    resume: Option<std::path::PathBuf>,
    /// Gather per-layer activation statistics every batch (mean, std, fraction near zero,
    /// histogram) and write activation_stats.json, activation_curves.png and
    /// colorful_dimension.png to --out.
    #[arg(long)]
    stats: bool,
    /// Data-parallel runs (`mpirun -np N convoy train ...`, built with `--features mpi`):
    /// normalise with batch statistics of the global batch (SyncBatchNorm) instead of each
    /// rank's own (DDP's default).
    #[arg(long)]
    sync_bn: bool,
    /// Data-parallel runs: MiB of gradients per all-reduce bucket (as PyTorch DDP's
    /// bucket_cap_mb).
    #[arg(long, default_value_t = 25.0)]
    bucket_mb: f64,
    /// `mixed`: mixed-precision training as PyTorch's autocast with GradScaler (f16
    /// activations and weight copies for convs and linear layers, f32 master weights, dynamic
    /// loss scaling kept in checkpoints); needs the adapter's shader-f16. `f32`: everything f32.
    #[arg(long, default_value = "f32", value_parser = PossibleValuesParser::new(["f32", "mixed"]))]
    precision: String,
}

impl Default for TrainArgs {
    fn default() -> Self {
        TrainArgs {
            model: "resnet_mini".into(),
            onnx: None,
            num_classes: None,
            freeze_epochs: 0,
            body_lr_mult: 1.0,
            data: "fashion-mnist".into(),
            size: None,
            size_start: None,
            one_cycle: false,
            constant_lr: false,
            epochs: 5,
            bs: 64,
            lr: 0.15,
            label_smoothing: 0.1,
            weight_decay: 5e-4,
            seed: 0,
            out: None,
            resume: None,
            stats: false,
            sync_bn: false,
            bucket_mb: 25.0,
            precision: "f32".into(),
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
    let (sync_bn, bucket_mb) = (a.sync_bn, a.bucket_mb);
    crate::job::run(sync_bn, bucket_mb, |dist, local_rank| run_rank(a, dist, local_rank))
}

/// What every step of one rank's run reads: the arguments, the model's name in checkpoints and
/// metrics, and this process's place in a data-parallel run.
struct RunCtx<'a> {
    a: &'a TrainArgs,
    model_name: String,
    world: usize,
    /// Rank 0: the only rank that prints and writes outputs (checkpoints: the Learner).
    main: bool,
}

impl RunCtx<'_> {
    /// The output folder, on rank 0 only.
    fn out(&self) -> Option<&std::path::Path> {
        if self.main {
            self.a.out.as_deref()
        } else {
            None
        }
    }
}

/// One rank of `convoy train`, as the sequence of its steps (rank 0 alone prints and writes
/// outputs).
fn run_rank(a: TrainArgs, dist: Option<convoy::dist::DistOptions>, local_rank: usize) -> convoy::Result<()> {
    let (rank, world) = dist
        .as_ref()
        .map_or((0, 1), |d| (d.collective.rank(), d.collective.size()));
    check_hyperparameters(&a)?;
    let (train, valid) = load(&a.data)?;
    let classes = train.classes().max(valid.classes());
    let (model, onnx) = build_model(&a, classes, train.channels())?;
    let ctx = RunCtx {
        a: &a,
        model_name: match &a.onnx {
            Some(p) => format!("onnx:{}", p.display()),
            None => a.model.clone(),
        },
        world,
        main: rank == 0,
    };
    check_phases(&a)?;
    let gpu = Gpu::builder().local_rank(local_rank).build()?;
    if ctx.main {
        announce(&ctx, &gpu, classes, train.len(), valid.len());
    }
    let mut learner = build_learner(&ctx, &gpu, model, dist)?;
    if let Some(path) = &a.resume {
        resume(&ctx, &mut learner, path)?;
    }
    attach_outputs(&a, &mut learner)?;
    let stats = fit_phases(&ctx, &mut learner, train.as_ref(), valid.as_ref())?;
    if ctx.main {
        finish(&ctx, &learner, onnx.as_ref(), &stats)?;
    }
    Ok(())
}

/// The hyperparameters' ranges, checked before anything is loaded.
fn check_hyperparameters(a: &TrainArgs) -> convoy::Result<()> {
    if a.bs == 0 || a.epochs == 0 {
        return Err(Error::arg("train", "--bs/--epochs", "must be at least 1"));
    }
    if !a.lr.is_finite() || a.lr <= 0.0 {
        return Err(Error::arg("train", "--lr", format!("{} must be positive", a.lr)));
    }
    if !(0.0..1.0).contains(&a.label_smoothing) {
        return Err(Error::arg(
            "train",
            "--label-smoothing",
            format!("{} must be in [0, 1)", a.label_smoothing),
        ));
    }
    if !a.weight_decay.is_finite() || a.weight_decay < 0.0 {
        return Err(Error::arg(
            "train",
            "--weight-decay",
            format!("{} must be >= 0", a.weight_decay),
        ));
    }
    Ok(())
}

/// The model to train: an ONNX model (its head replaced with --num-classes, else checked
/// against the data's classes) or one of the zoo's; the ONNX model is kept to export the
/// trained weights in its names.
fn build_model(a: &TrainArgs, classes: usize, channels: usize) -> convoy::Result<(Box<dyn Model>, Option<OnnxModel>)> {
    let Some(path) = &a.onnx else {
        let m = by_name(&a.model, classes, channels).map_err(|_| {
            Error::arg(
                "train",
                "--model",
                format!("'{}' is not one of {}", a.model, MODEL_NAMES.join(", ")),
            )
        })?;
        return Ok((m, None));
    };
    let mut m = OnnxModel::load(path)?;
    if let Some(k) = a.num_classes {
        if k != classes {
            return Err(Error::arg(
                "train",
                "--num-classes",
                format!("{k}, but {} has {classes} classes", a.data),
            ));
        }
        m = m.with_new_head(k)?;
    } else if m.num_classes() != classes {
        return Err(Error::arg(
            "train",
            "--onnx",
            format!(
                "{} has {} outputs and {} {classes} classes: give --num-classes {classes} for a new head",
                path.display(),
                m.num_classes(),
                a.data
            ),
        ));
    }
    Ok((Box::new(m.clone()), Some(m)))
}

/// The transfer-learning options, checked once the model is known.
fn check_phases(a: &TrainArgs) -> convoy::Result<()> {
    if a.freeze_epochs > 0 && a.resume.is_some() {
        return Err(Error::arg("train", "--freeze-epochs", "cannot resume a two-phase run"));
    }
    if !a.body_lr_mult.is_finite() || a.body_lr_mult < 0.0 {
        return Err(Error::arg("train", "--body-lr-mult", "must be finite and >= 0"));
    }
    Ok(())
}

/// Rank 0's header: the device, the data-parallel layout and the run's settings.
fn announce(ctx: &RunCtx, gpu: &Gpu, classes: usize, train_len: usize, valid_len: usize) {
    let a = ctx.a;
    println!("{}", gpu.info().name);
    if ctx.world > 1 {
        println!(
            "data-parallel: {} ranks x batch {} = global batch {}, {} batch norm, {} MiB buckets",
            ctx.world,
            a.bs,
            a.bs * ctx.world,
            if a.sync_bn { "synchronised" } else { "per-rank" },
            a.bucket_mb
        );
    }
    println!(
        "training {} on {} ({} train / {} test images, {classes} classes), {} epochs, batch {}, {} lr {}",
        ctx.model_name,
        a.data,
        train_len,
        valid_len,
        a.epochs,
        a.bs,
        if a.constant_lr { "constant" } else { "1cycle" },
        a.lr
    );
    if a.precision == "mixed" {
        println!("mixed precision: f16 activations and weight copies, f32 master weights, dynamic loss scaling");
    }
}

/// The learner with its optimizer (SGD with momentum), loss, image sizes and, across ranks,
/// its collective.
fn build_learner(
    ctx: &RunCtx,
    gpu: &Gpu,
    model: Box<dyn Model>,
    dist: Option<convoy::dist::DistOptions>,
) -> convoy::Result<Learner> {
    let a = ctx.a;
    let opt = Optimizer::Sgd {
        lr: a.lr,
        momentum: 0.9,
        weight_decay: a.weight_decay,
        nesterov: false,
    };
    let mut learner = Learner::new(gpu, model, opt, a.bs, a.seed);
    learner.label_smoothing = a.label_smoothing;
    learner.model_name = ctx.model_name.clone();
    learner.sizes = sizes(a)?;
    learner.precision = precision_arg(&a.precision)?;
    if let Some(d) = dist {
        learner.distribute(d);
    }
    Ok(learner)
}

/// Continues from a checkpoint written by a run of the same model and, under 1cycle, the same
/// length.
fn resume(ctx: &RunCtx, learner: &mut Learner, path: &std::path::Path) -> convoy::Result<()> {
    let info = learner.resume(path)?;
    // the 1cycle schedule depends on the run's length; a constant rate may run longer
    if info.model != ctx.model_name || (info.epochs_total != ctx.a.epochs && !ctx.a.constant_lr) {
        return Err(Error::arg(
            "train",
            "--resume",
            format!(
                "{} was written by a run of {} over {} epochs; this run is {} over {} epochs",
                path.display(),
                info.model,
                info.epochs_total,
                ctx.model_name,
                ctx.a.epochs
            ),
        ));
    }
    if ctx.main {
        println!("resuming after epoch {} (step {})", info.epoch, info.step);
    }
    Ok(())
}

/// Where the learner writes its checkpoints, and the activation statistics --stats plots.
fn attach_outputs(a: &TrainArgs, learner: &mut Learner) -> convoy::Result<()> {
    if let Some(dir) = &a.out {
        learner.checkpoint = Some(dir.join("checkpoint.safetensors"));
    }
    if a.stats {
        if a.out.is_none() {
            return Err(Error::arg("train", "--stats", "needs --out DIR for its plots"));
        }
        learner.watch_activations(Default::default());
    }
    Ok(())
}

/// The epochs: with --freeze-epochs the classifier alone first, then everything (the body at
/// its own rate); rank 0 prints a line and rewrites metrics.json after each epoch. A run that
/// stops says where its last checkpoint is.
fn fit_phases(
    ctx: &RunCtx,
    learner: &mut Learner,
    train: &dyn Dataset,
    valid: &dyn Dataset,
) -> convoy::Result<Vec<convoy::train::EpochStats>> {
    let a = ctx.a;
    if ctx.main {
        learner.on_batch = Some(progress_bar(a.bs * ctx.world, learner.epochs_done()));
        println!("epoch  train_loss  valid_loss  top1    top5    time    img/s");
    }
    // the epochs before a resume first (the checkpoint carries them), so metrics.json has the
    // whole run
    let mut history = learner.history.clone();
    let fit = if a.constant_lr {
        Learner::fit
    } else {
        Learner::fit_one_cycle
    };
    let mut report = |s: &convoy::train::EpochStats| {
        history.push(s.clone());
        if ctx.main {
            report_epoch(ctx, &history, s);
        }
        std::ops::ControlFlow::Continue(())
    };
    let mut result = Ok(Vec::new());
    if a.freeze_epochs > 0 {
        learner.freeze_body();
        if ctx.main {
            println!(
                "classifier only ({}) for {} epoch(s)",
                learner.head_prefix(),
                a.freeze_epochs
            );
        }
        result = fit(learner, train, valid, a.freeze_epochs, a.lr, &mut report);
        learner.unfreeze();
    }
    if a.body_lr_mult != 1.0 {
        let head = learner.head_prefix();
        learner.set_lr_groups(&[(head.as_str(), 1.0), ("", a.body_lr_mult)])?;
    }
    if result.is_ok() {
        result = fit(learner, train, valid, a.epochs, a.lr, &mut report);
    }
    if let (Err(e), Some(dir)) = (&result, ctx.out()) {
        eprintln!("stopped: {e}");
        eprintln!(
            "the last checkpoint is intact: {}",
            dir.join("checkpoint.safetensors").display()
        );
    }
    result
}

/// Rank 0's record of one epoch: metrics.json so far (rewritten every epoch so a stopped run
/// keeps them; a failed write only warns) and the epoch's line.
fn report_epoch(ctx: &RunCtx, history: &[convoy::train::EpochStats], s: &convoy::train::EpochStats) {
    if let Some(dir) = ctx.out() {
        if let Err(e) = convoy::io::write_file(
            dir.join("metrics.json"),
            metrics_json(ctx.a, &ctx.model_name, ctx.world, history).as_bytes(),
        ) {
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
}

/// Rank 0's end of the run: the trained weights (without optimizer state) and plots in the
/// output folder, and the final test accuracy.
fn finish(
    ctx: &RunCtx,
    learner: &Learner,
    onnx: Option<&OnnxModel>,
    stats: &[convoy::train::EpochStats],
) -> convoy::Result<()> {
    let Some(last) = stats.last() else {
        println!(
            "nothing to train: the checkpoint had finished all {} epochs",
            ctx.a.epochs
        );
        return Ok(());
    };
    if let Some(dir) = ctx.out() {
        let names: Vec<String> = learner
            .store
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !convoy::train::is_optimizer_state(n))
            .collect();
        crate::model_cmds::save_weights(&dir.join("model.safetensors"), &learner.store, &names, onnx)?;
        write_plots(dir, learner)?;
        println!("wrote {}", dir.display());
    }
    println!(
        "test accuracy: {:.2}% (top-5 {:.2}%)",
        last.top1 * 100.0,
        last.top5 * 100.0
    );
    Ok(())
}

/// metrics.json: the run's settings (`ranks`: data-parallel processes, `bs` per rank) and one
/// record per epoch.
fn metrics_json(a: &TrainArgs, model: &str, ranks: usize, h: &[convoy::train::EpochStats]) -> String {
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
        "{{\"model\":{:?},\"data\":{:?},\"epochs\":{},\"bs\":{},\"ranks\":{ranks},\"sync_bn\":{},\"lr\":{},\"label_smoothing\":{},\"weight_decay\":{},\"seed\":{},\"precision\":{:?},\"history\":[{}]}}\n",
        model, a.data, a.epochs, a.bs, a.sync_bn && ranks > 1, a.lr, a.label_smoothing, a.weight_decay, a.seed, a.precision, epochs.join(",")
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

/// A progress bar per epoch on stderr (loss, images/s, ETA); indicatif hides it when stderr is
/// not a terminal, so logs and CI output keep only the per-epoch lines.
fn progress_bar(bs: usize, epochs_before: usize) -> Box<dyn FnMut(usize, usize, f32)> {
    use indicatif::{ProgressBar, ProgressStyle};
    let style = ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
        .expect("valid template")
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let mut epoch = epochs_before;
    let mut start = std::time::Instant::now();
    let mut smooth = f32::NAN;
    Box::new(move |i, total, loss| {
        if i == 0 {
            epoch += 1;
            start = std::time::Instant::now();
            let b = ProgressBar::new(total as u64).with_style(style.clone());
            b.set_prefix(epoch.to_string());
            bar = Some(b);
        }
        smooth = if smooth.is_nan() {
            loss
        } else {
            0.9 * smooth + 0.1 * loss
        };
        if let Some(b) = &bar {
            let ips = ((i + 1) * bs) as f64 / start.elapsed().as_secs_f64().max(1e-9);
            b.set_message(format!("loss {smooth:.4} {ips:.0} img/s"));
            b.inc(1);
            if i + 1 == total {
                b.finish_and_clear();
            }
        }
    })
}

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// A model of the zoo, as for train.
    #[arg(long, value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    model: String,
    /// Weights: model.safetensors or checkpoint.safetensors from `convoy train --out`.
    #[arg(long)]
    weights: std::path::PathBuf,
    /// Data (as for train); the validation / test split is evaluated.
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    bs: usize,
    /// Image size (square); the data's own size by default.
    #[arg(long)]
    size: Option<usize>,
    /// Store activations in f16 (weights and sums stay f32; needs the adapter's shader-f16).
    #[arg(long)]
    f16: bool,
}

/// `convoy eval`: loss, top-1 and top-5 accuracy of saved weights on a data set's test split.
pub fn eval(a: EvalArgs) -> convoy::Result<()> {
    if a.bs == 0 {
        return Err(Error::arg("eval", "--bs", "must be at least 1"));
    }
    let (train, valid) = load(&a.data)?;
    let classes = train.classes().max(valid.classes());
    let model = by_name(&a.model, classes, valid.channels()).map_err(|_| {
        Error::arg(
            "eval",
            "--model",
            format!("'{}' is not one of {}", a.model, MODEL_NAMES.join(", ")),
        )
    })?;
    let gpu = Gpu::new()?;
    let mut learner = Learner::new(&gpu, model, Optimizer::sgd(0.0), a.bs, 0);
    learner.load_weights(&a.weights, &[])?;
    learner.sizes = a.size.into_iter().collect();
    learner.eval_f16 = a.f16;
    // every tensor of the model must come from the file: nothing freshly initialised
    let (loss, top1, top5) = learner.evaluate_weights_only(valid.as_ref())?;
    println!(
        "{}{} on {} ({} images): loss {loss:.4}, top-1 {:.2}%, top-5 {:.2}%",
        a.model,
        if a.f16 { " (f16 activations)" } else { "" },
        a.data,
        valid.len(),
        top1 * 100.0,
        top5 * 100.0
    );
    Ok(())
}

impl TrainArgs {
    /// The same run with activation statistics on (`convoy stats`).
    pub fn with_stats(self) -> TrainArgs {
        TrainArgs { stats: true, ..self }
    }
}

/// The `--precision` flag's value (clap checked the name).
pub fn precision_arg(name: &str) -> convoy::Result<convoy::Precision> {
    convoy::Precision::parse(name)
        .ok_or_else(|| Error::arg("convoy", "--precision", format!("'{name}' is not f32 or mixed")))
}
