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
    /// Print the GPU adapter convoy picks, its limits and features, and the kernel policy.
    Info,
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
        Command::Info => info(),
        Command::OnnxInfo(args) => model_cmds::onnx_info(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn info() -> convoy::Result<()> {
    let gpu = convoy::Gpu::new()?;
    println!("{}", gpu.info());
    println!("{}", gpu.policy());
    Ok(())
}
