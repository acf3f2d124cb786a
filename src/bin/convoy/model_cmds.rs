//! `convoy infer` and `convoy train-step`: a torchvision-named checkpoint in, logits or updated
//! weights out, with .npy inputs. Scripts depend on these flags; keep them stable.

use clap::builder::PossibleValuesParser;
use clap::Args;
use convoy::io::npy::{read_npy, write_npy, NpyArray};
use convoy::io::safetensors::{
    encode_safetensors, load_safetensors, parse_safetensors, store_from_host, store_to_host,
};
use convoy::nn::{by_name, Model, Net, MODEL_NAMES};
use convoy::onnx::OnnxModel;
use convoy::train::Optimizer;
use convoy::ParamGroups;
use convoy::{Error, Gpu, Inference, ParamStore, TrainStep};
use std::path::PathBuf;

/// The model of `infer` and `train-step`: a zoo model with a checkpoint, or an ONNX file.
#[derive(Args)]
pub struct ModelArgs {
    /// A model of the zoo (with --num-classes and --weights).
    #[arg(
        long,
        required_unless_present = "onnx",
        requires_all = ["num_classes", "weights"],
        value_parser = PossibleValuesParser::new(MODEL_NAMES)
    )]
    model: Option<String>,
    /// An ONNX model (torch.onnx.export); its initializers are the weights unless --weights
    /// gives a checkpoint with the same tensor names.
    #[arg(long, conflicts_with = "model")]
    onnx: Option<PathBuf>,
    /// The zoo model's classes (with --onnx: the classes of a checkpoint fine-tuned with a new
    /// head, when they differ from the model's output).
    #[arg(long)]
    num_classes: Option<usize>,
    /// A safetensors checkpoint (torchvision names for a zoo model, the initializer names for
    /// an ONNX model).
    #[arg(long)]
    weights: Option<PathBuf>,
}

#[derive(Args)]
pub struct InferArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// float32 NCHW images (.npy)
    #[arg(long)]
    input: PathBuf,
    /// float32 logits [N, K] (.npy)
    #[arg(long)]
    output: PathBuf,
    /// Normalise with batch statistics (as model.train()) instead of the running statistics.
    #[arg(long)]
    train_mode: bool,
    /// Also time the inference: run it this many more times (after the first, which compiles
    /// and warms up) and print the median milliseconds per run.
    #[arg(long, default_value_t = 0)]
    repeat: usize,
    /// Store activations in f16 (weights and sums stay f32; needs the adapter's shader-f16).
    #[arg(long)]
    f16: bool,
    /// With --train-mode: build the model's dropout layers as the identity (as PyTorch with
    /// dropout=0), where otherwise they drop at random as in model.train().
    #[arg(long)]
    no_dropout: bool,
}

#[derive(Args)]
pub struct TrainStepArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// float32 NCHW images (.npy): the batch
    #[arg(long)]
    input: PathBuf,
    /// int64 class labels [N] (.npy)
    #[arg(long)]
    labels: PathBuf,
    /// SGD learning rate (constant over the steps).
    #[arg(long)]
    lr: f32,
    /// SGD momentum (PyTorch's SGD rule).
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    /// Weight decay (added to the gradient, as PyTorch's SGD).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Nesterov momentum.
    #[arg(long)]
    nesterov: bool,
    /// Label smoothing of the cross-entropy loss, in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
    /// SGD steps on the same batch.
    #[arg(long, default_value_t = 1)]
    steps: usize,
    /// Where to write all parameters and buffers after the steps (.safetensors).
    #[arg(long)]
    save: PathBuf,
    /// The loss before each step, float32 [steps] (.npy).
    #[arg(long)]
    loss_out: Option<PathBuf>,
    /// Under `mpirun -np R` (built with `--features mpi`): each rank trains on its contiguous
    /// share of the N inputs and gradients are averaged (DDP); with this flag batch norms use
    /// statistics of all N (SyncBatchNorm). Rank 0 writes --save and --loss-out (the loss of
    /// all N inputs).
    #[arg(long)]
    sync_bn: bool,
    /// MiB of gradients per all-reduce bucket in an MPI job.
    #[arg(long, default_value_t = 25.0)]
    bucket_mb: f64,
    /// Build the model's dropout layers as the identity (to compare with a reference run
    /// without dropout); otherwise their masks are drawn from --seed and the step number.
    #[arg(long)]
    no_dropout: bool,
    /// Seed of the dropout masks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `mixed`: mixed precision with dynamic loss scaling (as `convoy train --precision`);
    /// --save then holds the loss scaler's state as `grad_scaler`.
    #[arg(long, default_value = "f32", value_parser = PossibleValuesParser::new(["f32", "mixed"]))]
    precision: String,
    /// Mixed precision: the loss scale of the first step (GradScaler's init_scale).
    #[arg(long, default_value_t = 65536.0)]
    init_scale: f32,
    /// Mixed precision: clean steps before the scale doubles (GradScaler's growth_interval).
    #[arg(long, default_value_t = 2000)]
    growth_interval: u32,
}

/// Images from .npy: float32 (N, C, H, W).
fn read_images(path: &PathBuf) -> convoy::Result<([usize; 4], Vec<f32>)> {
    match read_npy(path)? {
        NpyArray::F32 { shape, data } if shape.len() == 4 && shape.iter().all(|&d| d > 0) => {
            Ok(([shape[0], shape[1], shape[2], shape[3]], data))
        }
        a => Err(Error::format(
            path.display(),
            format!("expected float32 images (N, C, H, W), got shape {:?}", a.shape()),
        )),
    }
}

/// A model built for `shape`, its weights loaded and checked, its output value.
struct Loaded {
    net: Net,
    store: ParamStore,
    logits: convoy::graph::ValueId,
    /// The ONNX model, whose layout checkpoints are saved in.
    onnx: Option<OnnxModel>,
}

impl Loaded {
    /// The model's parameters and buffers and the store's tensors `extra`, in the layout of its
    /// source (ONNX initializers keep the file's shapes).
    fn save(&self, path: &std::path::Path, extra: &[&str]) -> convoy::Result<()> {
        let mut names = self.net.state_names();
        names.extend(extra.iter().map(|s| s.to_string()));
        save_weights(path, &self.store, &names, self.onnx.as_ref())
    }
}

/// The tensors `names` of `store` as a safetensors file; an ONNX model's in the file's own
/// layout, under its initializer names.
pub fn save_weights(
    path: &std::path::Path,
    store: &ParamStore,
    names: &[String],
    onnx: Option<&OnnxModel>,
) -> convoy::Result<()> {
    let mut tensors = store_to_host(store, Some(names))?;
    if let Some(m) = onnx {
        m.to_onnx_layout(&mut tensors);
    }
    convoy::io::write_file(path, &encode_safetensors(&tensors)?)
}

/// Build the model's graph for `shape`, load and check the weights.
fn load(gpu: &Gpu, a: &ModelArgs, shape: [usize; 4], training: bool, no_dropout: bool) -> convoy::Result<Loaded> {
    let mut net = Net::new(training);
    net.dropout_off = no_dropout;
    let x = net.graph.input("x", shape);
    let (logits, onnx) = match (&a.model, &a.onnx) {
        (_, Some(path)) => {
            let mut m = OnnxModel::load(path)?;
            if let Some(k) = a.num_classes.filter(|&k| k != m.num_classes()) {
                // a model fine-tuned with a new head (`train --onnx --num-classes`): the head's
                // weights must come from the checkpoint
                if a.weights.is_none() {
                    return Err(Error::arg(
                        "onnx",
                        "--num-classes",
                        format!(
                            "{} has {} outputs; {k} needs the fine-tuned --weights",
                            path.display(),
                            m.num_classes()
                        ),
                    ));
                }
                m = m.with_new_head(k)?;
            }
            (m.forward(&mut net, x)?, Some(m))
        }
        // any zoo model: by_name refuses other names, listing the zoo
        (Some(model), None) => {
            let m = by_name(model, a.num_classes.unwrap_or(0), shape[1])?;
            (m.forward(&mut net, x)?, None)
        }
        (None, None) => return Err(Error::arg("infer", "--model/--onnx", "give one of them")),
    };
    let mut store = ParamStore::new();
    if let Some(w) = &a.weights {
        store = match &onnx {
            None => load_safetensors(gpu, w)?,
            Some(m) => {
                // a checkpoint saved in the ONNX layout: back to convoy's
                let mut host = parse_safetensors(&convoy::io::read_file(w)?, &w.display().to_string())?;
                m.to_convoy_layout(&mut host);
                store_from_host(gpu, host)?
            }
        };
        net.check_state(&store, &w.display().to_string())?;
    }
    // an ONNX model's initializers (the rest: counters)
    net.init_params(gpu, &mut store, 0)?;
    Ok(Loaded {
        net,
        store,
        logits,
        onnx,
    })
}

pub fn infer(a: InferArgs) -> convoy::Result<()> {
    let (shape, x) = read_images(&a.input)?;
    let gpu = Gpu::new()?;
    let Loaded {
        net, mut store, logits, ..
    } = load(&gpu, &a.model, shape, a.train_mode, a.no_dropout)?;
    let out_shape = net.graph.shape(logits).dims().to_vec();
    let opts = convoy::CompileOptions {
        f16: a.f16,
        ..Default::default()
    };
    let inf = Inference::compile_with(&gpu, net.graph, &[logits], &mut store, opts)?;
    let y = inf.run(&x, None)?.remove(0);
    if a.repeat > 0 {
        let t = convoy::bench::time_gpu(&gpu, 0, a.repeat, || inf.run(&x, None).map(|_| ()))?;
        println!(
            "median {:.2} ms per run of {} image(s) over {} runs on {}",
            t.median_ms,
            shape[0],
            a.repeat,
            gpu.info().name
        );
    }
    write_npy(
        &a.output,
        &NpyArray::F32 {
            shape: out_shape,
            data: y,
        },
    )
}

pub fn train_step(a: TrainStepArgs) -> convoy::Result<()> {
    let (shape, x) = read_images(&a.input)?;
    let labels: Vec<i32> = match read_npy(&a.labels)? {
        NpyArray::I64 { shape: s, data } if s == [shape[0]] => data
            .iter()
            .map(|&l| {
                i32::try_from(l).map_err(|_| Error::format(a.labels.display(), format!("label {l} is out of range")))
            })
            .collect::<convoy::Result<_>>()?,
        arr => {
            return Err(Error::format(
                a.labels.display(),
                format!("expected int64 labels of shape [{}], got {:?}", shape[0], arr.shape()),
            ))
        }
    };
    if a.steps == 0 || a.lr.is_nan() || a.lr < 0.0 || !(0.0..=1.0).contains(&a.label_smoothing) {
        return Err(Error::arg(
            "train-step",
            "--steps/--lr/--label-smoothing",
            "steps >= 1, lr >= 0, label smoothing in [0, 1]",
        ));
    }
    crate::job::run(a.sync_bn, a.bucket_mb, |dist, local_rank| {
        train_step_rank(&a, shape, &x, &labels, dist, local_rank)
    })
}

/// `train-step` on this rank's share of the batch (all of it outside an MPI job).
fn train_step_rank(
    a: &TrainStepArgs,
    shape: [usize; 4],
    x: &[f32],
    labels: &[i32],
    dist: Option<convoy::dist::DistOptions>,
    local_rank: usize,
) -> convoy::Result<()> {
    let (rank, world) = dist
        .as_ref()
        .map_or((0, 1), |d| (d.collective.rank(), d.collective.size()));
    let n = shape[0];
    let (lo, hi) = (rank * n / world, (rank + 1) * n / world);
    if lo == hi {
        return Err(Error::arg(
            "train-step",
            "--input",
            format!("{n} images cannot be shared by {world} ranks: each needs at least one"),
        ));
    }
    let px = shape[1..].iter().product::<usize>();
    let (x, labels) = (&x[lo * px..hi * px], &labels[lo..hi]);
    let shape = [hi - lo, shape[1], shape[2], shape[3]];
    let gpu = Gpu::builder().local_rank(local_rank).build()?;
    let mut loaded = load(&gpu, &a.model, shape, true, a.no_dropout)?;
    let (net, logits) = (&mut loaded.net, loaded.logits);
    let classes = net.graph.shape(logits).dims().last().copied().unwrap_or(0);
    if let Some(l) = labels.iter().find(|&&l| l < 0 || l as usize >= classes) {
        return Err(Error::format(
            a.labels.display(),
            format!("label {l} is outside [0, {classes})"),
        ));
    }
    let y = net.graph.labels("labels", shape[0]);
    let loss = net.graph.cross_entropy(logits, y, a.label_smoothing)?;
    let opt = Optimizer::Sgd {
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        nesterov: a.nesterov,
    };
    let precision = crate::train::precision_arg(&a.precision)?;
    let opts = convoy::CompileOptions {
        dist: dist.clone(),
        precision,
        loss_scale: convoy::LossScale {
            init_scale: a.init_scale,
            growth_interval: a.growth_interval,
            ..Default::default()
        },
        ..Default::default()
    };
    let graph = std::mem::take(&mut net.graph);
    let groups = ParamGroups::single(opt);
    let mut step = TrainStep::compile_groups(&gpu, graph, loss, &[], &mut loaded.store, groups, opts)?;
    step.set_dropout_seed(a.seed);
    let weight = (hi - lo) as f32 / n as f32;
    step.set_dist_batch(weight, n);
    let mut losses = Vec::with_capacity(a.steps);
    for _ in 0..a.steps {
        // the loss of the whole batch: the ranks' losses weighted by their shares
        let mut l = [step.step_read(x, labels)?[0][0] * weight];
        if let Some(d) = &dist {
            d.collective.all_reduce_sum(&mut l)?;
        }
        losses.push(l[0]);
    }
    if rank != 0 {
        return Ok(());
    }
    // the model's parameters and buffers, and a mixed-precision step's loss scaler
    let scaler: &[&str] = match precision {
        convoy::Precision::Mixed => &[convoy::train::LOSS_SCALER],
        convoy::Precision::F32 => &[],
    };
    loaded.save(&a.save, scaler)?;
    if let Some(p) = &a.loss_out {
        write_npy(
            p,
            &NpyArray::F32 {
                shape: vec![losses.len()],
                data: losses,
            },
        )?;
    }
    Ok(())
}

#[derive(Args)]
pub struct OnnxInfoArgs {
    /// The .onnx file.
    model: PathBuf,
    /// The input shape to import it for, N,C,H,W (default: the file's, batch 1, 224 for a
    /// size it leaves open).
    #[arg(long, value_delimiter = ',')]
    input_shape: Option<Vec<usize>>,
    /// Also list every node in execution order: op, inputs, outputs and their shapes.
    #[arg(long)]
    nodes: bool,
}

/// `convoy onnx-info`: what the model is and whether convoy can run it (the exit status is 1
/// when it cannot).
pub fn onnx_info(a: OnnxInfoArgs) -> convoy::Result<()> {
    let m = OnnxModel::load(&a.model)?;
    let shape = match a.input_shape.as_deref() {
        Some(&[n, c, h, w]) if n * c * h * w > 0 => [n, c, h, w],
        Some(s) => {
            return Err(Error::arg(
                "onnx-info",
                "--input-shape",
                format!("{s:?}: four positive numbers"),
            ))
        }
        None => m.input_shape(1),
    };
    let (report, runs) = m.describe(shape, a.nodes);
    print!("{report}");
    if runs {
        Ok(())
    } else {
        Err(Error::format(
            a.model.display(),
            "convoy cannot run this model (see above)",
        ))
    }
}
