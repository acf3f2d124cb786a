//! The convoy command line: `convoy train` (the default), `convoy eval`, `convoy stats`,
//! `convoy infer`, `convoy train-step`, `convoy info`, `convoy onnx-info`, `convoy bench`.

mod bench;
mod job;
mod model_cmds;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "convoy",
    version,
    about = "CNN runtime on portable GPU compute (wgpu + WGSL)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (the default command: resnet_mini, 5 epochs on the embedded Fashion-MNIST
    /// subset).
    Train(train::TrainArgs),
    /// Loss, top-1 and top-5 accuracy of saved weights on a data set's test split.
    Eval(train::EvalArgs),
    /// Train with per-layer activation statistics and write the diagnostics plots to --out
    /// (train --stats).
    Stats(train::TrainArgs),
    /// Run a model on .npy images with a safetensors checkpoint; write the logits as .npy.
    Infer(model_cmds::InferArgs),
    /// Run SGD steps on one batch from a checkpoint; save the updated checkpoint.
    TrainStep(model_cmds::TrainStepArgs),
    /// Print the GPU adapter convoy picks, its limits and features, and the kernel policy;
    /// with --model, the kernel each pass of each of the model's convs runs, and why.
    Info(InfoArgs),
    /// Print an ONNX model's input, output and ops, and whether convoy can run it.
    OnnxInfo(model_cmds::OnnxInfoArgs),
    /// Time the conv shapes, the GEMM ceiling or the models (shared/bench-suite.md).
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Train(train::TrainArgs::default())) {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => train::eval(args),
        Command::Stats(args) => train::run(args.with_stats()),
        Command::Infer(args) => model_cmds::infer(args),
        Command::TrainStep(args) => model_cmds::train_step(args),
        Command::Info(args) => info(args),
        Command::OnnxInfo(args) => model_cmds::onnx_info(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[derive(clap::Args)]
struct InfoArgs {
    /// A zoo model: print, for each of its convs, the kernel of its inference forward, its
    /// training forward, input gradient and weight gradient, why, and the tuner's recorded tile.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(convoy::nn::MODEL_NAMES))]
    model: Option<String>,
    /// The batch of the model's shapes.
    #[arg(long, default_value_t = 8, requires = "model", value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// The images' side (square).
    #[arg(long, default_value_t = 224, requires = "model", value_parser = clap::value_parser!(u64).range(1..))]
    size: u64,
    /// The classifier's classes.
    #[arg(long, default_value_t = 1000, requires = "model", value_parser = clap::value_parser!(u64).range(1..))]
    classes: u64,
    /// The inference forward on f16 activations (as `infer --f16`).
    #[arg(long, requires = "model")]
    f16: bool,
    /// The graph unfused (CONVOY_FUSION=0): no conv writes batch statistics.
    #[arg(long, requires = "model")]
    no_fusion: bool,
}

fn info(a: InfoArgs) -> convoy::Result<()> {
    let gpu = convoy::Gpu::new()?;
    println!("{}", gpu.info());
    println!("{}", gpu.policy());
    match gpu.pipeline_cache_file() {
        Some(path) => println!(
            "pipeline cache: {} (CONVOY_PIPELINE_CACHE=0 turns it off)",
            path.display()
        ),
        None => println!("pipeline cache: none (off, or the backend keeps none: only Vulkan's is kept)"),
    }
    let Some(name) = a.model else { return Ok(()) };
    let (batch, size, classes) = (a.batch as usize, a.size as usize, a.classes as usize);
    let model = convoy::nn::by_name(&name, classes, 3)?;
    let storage = if a.f16 { convoy::DType::F16 } else { convoy::DType::F32 };
    let convs =
        convoy::diag::kernels::conv_passes(&gpu, model.as_ref(), [batch, 3, size, size], storage, !a.no_fusion)?;
    let tuner = match gpu.tuner() {
        Some(_) => "tuner on: recorded tiles shown",
        None => "tuner off (CONVOY_TUNE=1 turns it on): defaults run",
    };
    println!(
        "\n{name}, batch {batch}, {size}x{size}, {classes} classes: {} convs ({tuner})\n",
        convs.len()
    );
    print!("{}", convoy::diag::kernels::format_conv_passes(&gpu, &convs));
    Ok(())
}
