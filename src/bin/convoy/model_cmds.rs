//! `convoy infer` and `convoy train-step`: a torchvision-named checkpoint in, logits or updated
//! weights out, with .npy inputs. Scripts depend on these flags; keep them stable.

use clap::Args;
use convoy::io::npy::{read_npy, write_npy, NpyArray};
use convoy::io::safetensors::{load_safetensors, save_safetensors};
use convoy::nn::{by_name, Net};
use convoy::train::Optimizer;
use convoy::{Error, Gpu, Inference, ParamStore, TrainStep};
use std::path::PathBuf;

#[derive(Args)]
pub struct InferArgs {
    #[arg(long)]
    model: String,
    #[arg(long)]
    num_classes: usize,
    #[arg(long)]
    weights: PathBuf,
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
    #[arg(long)]
    model: String,
    #[arg(long)]
    num_classes: usize,
    #[arg(long)]
    weights: PathBuf,
    #[arg(long)]
    input: PathBuf,
    /// int64 class labels [N] (.npy)
    #[arg(long)]
    labels: PathBuf,
    #[arg(long)]
    lr: f32,
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    #[arg(long)]
    nesterov: bool,
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f32,
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

/// Build the model's graph for `shape`, load and check the weights.
fn load(
    gpu: &Gpu,
    model: &str,
    classes: usize,
    weights: &PathBuf,
    shape: [usize; 4],
    training: bool,
    no_dropout: bool,
) -> convoy::Result<(Net, ParamStore, convoy::graph::ValueId)> {
    // any zoo model: by_name refuses other names, listing the zoo
    let m = by_name(model, classes, shape[1])?;
    let mut net = Net::new(training);
    net.dropout_off = no_dropout;
    let x = net.graph.input("x", shape);
    let logits = m.forward(&mut net, x)?;
    let store = load_safetensors(gpu, weights)?;
    net.check_state(&store, &weights.display().to_string())?;
    Ok((net, store, logits))
}

pub fn infer(a: InferArgs) -> convoy::Result<()> {
    let (shape, x) = read_images(&a.input)?;
    let gpu = Gpu::new()?;
    let (net, mut store, logits) = load(
        &gpu,
        &a.model,
        a.num_classes,
        &a.weights,
        shape,
        a.train_mode,
        a.no_dropout,
    )?;
    let opts = convoy::CompileOptions {
        f16: a.f16,
        ..Default::default()
    };
    let inf = Inference::compile_with(&gpu, net.graph, &[logits], &mut store, opts)?;
    let y = inf.run(&x, None)?.remove(0);
    if a.repeat > 0 {
        let t = convoy::device::time_gpu(&gpu, 0, a.repeat, || inf.run(&x, None).map(|_| ()))?;
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
            shape: vec![shape[0], a.num_classes],
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
                if l < 0 || l as usize >= a.num_classes {
                    Err(Error::format(
                        a.labels.display(),
                        format!("label {l} is outside [0, {})", a.num_classes),
                    ))
                } else {
                    Ok(l as i32)
                }
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
    let (mut net, mut store, logits) = load(&gpu, &a.model, a.num_classes, &a.weights, shape, true, a.no_dropout)?;
    let names = net.state_names();
    let y = net.graph.labels("labels", shape[0]);
    let loss = net.graph.cross_entropy(logits, y, a.label_smoothing)?;
    let opt = Optimizer::Sgd {
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        nesterov: a.nesterov,
    };
    let opts = convoy::CompileOptions {
        dist: dist.clone(),
        ..Default::default()
    };
    let mut step = TrainStep::compile_groups(&gpu, net.graph, loss, &[], &mut store, opt, &|_| 0, vec![1.0], opts)?;
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
    save_safetensors(&a.save, &store, Some(&names))?;
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
