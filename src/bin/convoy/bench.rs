//! `convoy bench conv` (forward and backward timings of the conv shape suite, each as a fraction
//! of the GEMM ceiling), `convoy bench gemm` (that ceiling) and `convoy bench models` (the model
//! suite, fused and unfused), as a table or JSON.

use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use convoy::bench::{
    copy_bandwidth, gemm_ceiling, run_model, ConvBench, ModelBench, ModelRun, CONV_SUITE, SUITE_BATCH,
};
use convoy::device::time_gpu;
use convoy::nn::MODEL_NAMES;
use convoy::Gpu;

#[derive(Clone, Copy, ValueEnum)]
pub enum Suite {
    /// The conv shapes, forward and backward, with their fraction of the GEMM ceiling.
    Conv,
    /// The best f32 GEMM convoy runs on this device (the ceiling for conv).
    Gemm,
    /// The models (inference and a training step), with fusion on and off.
    Models,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Fusion {
    On,
    Off,
    Both,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Which suite to run.
    #[arg(value_enum, default_value = "conv")]
    suite: Suite,
    /// Timed runs per shape (median reported), after warm-up.
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Only shapes whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Models: with fusion, without, or both.
    #[arg(long, value_enum, default_value = "both")]
    fusion: Fusion,
    /// Models: batch size.
    #[arg(long, default_value_t = SUITE_BATCH)]
    batch: usize,
    /// Models: input height and width.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// Models: time this zoo model (inference and a training step) instead of the suite, e.g.
    /// `--model xresnet18 --channels 1 --classes 10 --size 28 --batch 64` for Fashion-MNIST.
    #[arg(long, value_parser = PossibleValuesParser::new(MODEL_NAMES))]
    model: Option<String>,
    /// Models: input channels.
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Models: classes of the head.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Gemm (and the conv suite's ceiling): matrix size.
    #[arg(long, default_value_t = 1024)]
    gemm_size: usize,
    /// Models: also time each dispatch alone (the best of 7 runs) and print the time per kernel.
    #[arg(long)]
    profile: bool,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Models with --fusion both: alternate unfused and fused runs this many rounds and print
    /// the speed-up of each round, so that slow drift of the machine (thermal, other load)
    /// hits both sides alike.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Also time f16 activation storage (f32 weights and accumulation; needs shader-f16): the
    /// conv forward on f16 (pass fwd_f16), and each inference model with f16 after its f32 runs.
    #[arg(long)]
    f16: bool,
}

pub fn run(args: BenchArgs) -> convoy::Result<()> {
    let gpu = Gpu::new()?;
    match args.suite {
        Suite::Models => return models(&gpu, &args),
        Suite::Gemm => return gemm(&gpu, &args),
        Suite::Conv => {}
    }
    let ceiling = gemm_ceiling(&gpu, args.gemm_size, 1, 3)?
        .iter()
        .map(|r| r.gflops)
        .fold(0.0, f64::max);
    let (_, copy_gbs) = copy_bandwidth(&gpu, 64 << 20, 1, 3)?;
    if !args.json {
        println!(
            "GEMM ceiling ({0}x{0}x{0}): {ceiling:.2} GFLOP/s; copy bandwidth {copy_gbs:.2} GB/s",
            args.gemm_size
        );
    }
    let mut rows = Vec::new();
    for s in CONV_SUITE
        .iter()
        .filter(|s| args.filter.as_deref().is_none_or(|f| s.name.contains(f)))
    {
        let b = ConvBench::new(&gpu, s, SUITE_BATCH, args.f16)?;
        // backward = input gradient + weight gradient: twice the forward's FLOPs, each kernel
        // once (also timed alone, to show which one a shape waits on)
        let f = b.geom.flops();
        let mut passes = vec![
            ("forward", &b.forward[..], f),
            // the forward of a fused training step: also the batch-norm block statistics
            ("fwd_stats", &b.forward_stats[..], f),
            ("backward", &b.backward[..], 2.0 * f),
            ("bwd_data", &b.backward[..b.backward_data_len], f),
            ("bwd_weight", &b.backward[b.backward_data_len..], f),
        ];
        if let Some(d) = &b.forward_f16 {
            passes.insert(1, ("fwd_f16", &d[..], f));
        }
        for (pass, dispatches, flops) in passes {
            let t = time_gpu(&gpu, args.warmup, args.iters, || {
                gpu.run(dispatches);
                Ok(())
            })?;
            let gflops = flops / (t.median_ms * 1e-3) / 1e9;
            // memory-bound shapes (depthwise) are judged by bandwidth: the bytes the pass must
            // read and write at least once, against a plain copy
            let gbs = b.geom.min_bytes(pass) / (t.median_ms * 1e-3) / 1e9;
            rows.push((s.name, pass, t.median_ms, t.median_cpu_ms, gflops, gbs));
            if !args.json {
                println!(
                    "{:<12} {pass:<10} {:>9.2} ms {:>9.0} CPU ms {:>8.2} GFLOP/s {:>5.0}% of GEMM {:>6.2} GB/s {:>4.0}% of copy",
                    s.name,
                    t.median_ms,
                    t.median_cpu_ms,
                    gflops,
                    100.0 * gflops / ceiling,
                    gbs,
                    100.0 * gbs / copy_gbs
                );
            }
        }
    }
    if args.json {
        let items: Vec<String> = rows
            .iter()
            .map(|(n, pass, ms, cpu, gf, gbs)| format!("{{\"name\":\"{n}\",\"pass\":\"{pass}\",\"batch\":{SUITE_BATCH},\"ms\":{ms:.4},\"cpu_ms\":{cpu:.1},\"gflops\":{gf:.4},\"fraction_of_gemm\":{:.4},\"gbytes_per_s\":{gbs:.4},\"fraction_of_copy\":{:.4}}}", gf / ceiling, gbs / copy_gbs))
            .collect();
        println!(
            "{{\"device\":\"{}\",\"gemm_gflops\":{ceiling:.4},\"copy_gbytes_per_s\":{copy_gbs:.4},\"results\":[{}]}}",
            gpu.info().name,
            items.join(",")
        );
    }
    Ok(())
}

fn gemm(gpu: &Gpu, a: &BenchArgs) -> convoy::Result<()> {
    let results = gemm_ceiling(gpu, a.gemm_size, a.warmup, a.iters)?;
    if a.json {
        let items: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "{{\"kernel\":\"{}\",\"size\":{},\"ms\":{:.4},\"gflops\":{:.4}}}",
                    r.kernel, r.size, r.timing.median_ms, r.gflops
                )
            })
            .collect();
        println!(
            "{{\"device\":\"{}\",\"results\":[{}]}}",
            gpu.info().name,
            items.join(",")
        );
    } else {
        for r in &results {
            let n = r.size;
            println!(
                "{:<40} {n}x{n}x{n} {:>9.2} ms {:>8.2} GFLOP/s",
                r.kernel, r.timing.median_ms, r.gflops
            );
        }
    }
    Ok(())
}

/// The column heads of `bench models`' table.
fn print_models_header() {
    println!(
        "{:<18} {:>6} {:>7} {:>10} {:>14} {:>12} {:>12} {:>10} {:>10} {:>9}",
        "model", "fusion", "storage", "dispatches", "activations MB", "peak MB", "derived MB", "ms", "CPU ms", "img/s"
    );
}

fn models(gpu: &Gpu, a: &BenchArgs) -> convoy::Result<()> {
    let modes: &[bool] = match a.fusion {
        Fusion::On => &[true],
        Fusion::Off => &[false],
        Fusion::Both => &[false, true],
    };
    let shape = [a.batch, a.channels, a.size, a.size];
    let benches = match &a.model {
        Some(m) => ModelBench::model(m, a.classes),
        None => ModelBench::suite(),
    };
    let mut items = Vec::new();
    if !a.json {
        print_models_header();
    }
    for b in benches
        .iter()
        .filter(|b| a.filter.as_deref().is_none_or(|f| b.name.contains(f)))
    {
        // each fusion mode in f32, then (inference, with --f16) in f16
        let mut configs: Vec<(bool, bool)> = modes.iter().map(|&m| (m, false)).collect();
        if a.f16 && !b.train {
            configs.extend(modes.iter().map(|&m| (m, true)));
        }
        // (unfused, fused) wall ms and CPU ms per round, f32
        let mut rounds: Vec<[f64; 2]> = Vec::new();
        let mut cpu_rounds: Vec<[f64; 2]> = Vec::new();
        for &(fusion, f16) in configs.iter().cycle().take(configs.len() * a.rounds.max(1)) {
            let run = ModelRun {
                fusion,
                f16,
                warmup: a.warmup,
                iters: a.iters,
                profile: a.profile,
            };
            let cost_before = gpu.tuner().map(|t| t.cost()).unwrap_or_default();
            let r = run_model(gpu, b, shape, run)?;
            // what the tuner timed while compiling this model (zero for shapes it knew)
            let cost = gpu.tuner().map(|t| t.cost()).unwrap_or_default();
            let (tuned, timed, runs, tune_s) = (
                cost.shapes - cost_before.shapes,
                cost.candidates - cost_before.candidates,
                cost.runs - cost_before.runs,
                cost.seconds - cost_before.seconds,
            );
            if modes.len() == 2 && !f16 {
                if fusion {
                    rounds.last_mut().expect("unfused ran first")[1] = r.timing.median_ms;
                    cpu_rounds.last_mut().expect("unfused ran first")[1] = r.timing.median_cpu_ms;
                } else {
                    rounds.push([r.timing.median_ms, 0.0]);
                    cpu_rounds.push([r.timing.median_cpu_ms, 0.0]);
                }
            }
            let s = &r.stats;
            let mb = |x: u64| x as f64 / 1e6;
            let storage = if f16 { "f16" } else { "f32" };
            if a.json {
                items.push(format!(
                    "{{\"name\":\"{}\",\"fusion\":{fusion},\"storage\":\"{storage}\",\"batch\":{},\"size\":{},\"dispatches\":{},\"activation_bytes\":{},\"peak_temp_bytes\":{},\"derived_bytes\":{},\"ms\":{:.3},\"cpu_ms\":{:.1},\"images_per_sec\":{:.3},\"tuned_shapes\":{tuned},\"tuned_candidates\":{timed},\"tuning_runs\":{runs},\"tuning_seconds\":{tune_s:.3}}}",
                    b.name, a.batch, a.size, s.dispatches, s.temp_bytes_unplanned, s.temp_bytes, s.derived_bytes, r.timing.median_ms, r.timing.median_cpu_ms, r.images_per_sec
                ));
            } else {
                let on = if fusion { "on" } else { "off" };
                println!(
                    "{:<18} {:>6} {:>7} {:>10} {:>14.1} {:>12.1} {:>12.1} {:>10.1} {:>10.0} {:>9.2}",
                    b.name,
                    on,
                    storage,
                    s.dispatches,
                    mb(s.temp_bytes_unplanned),
                    mb(s.temp_bytes),
                    mb(s.derived_bytes),
                    r.timing.median_ms,
                    r.timing.median_cpu_ms,
                    r.images_per_sec
                );
                for (kernel, ms, n) in &r.profile {
                    println!("    {kernel:<28} {ms:>10.1} ms  {n:>4} dispatches");
                }
                if tuned > 0 {
                    println!(
                        "    tuner: {tuned} new kernel shapes, {timed} candidates timed in {runs} runs, {tune_s:.2} s"
                    );
                }
            }
        }
        if rounds.len() > 1 && !a.json {
            for (what, r) in [("wall", &rounds), ("CPU", &cpu_rounds)] {
                let speedups: Vec<String> = r.iter().map(|[off, on]| format!("{:.3}x", off / on)).collect();
                let faster = r.iter().filter(|[off, on]| on < off).count();
                println!(
                    "{:<18} fusion speed-up per round, {what} time (unfused / fused): {} - fused faster in {faster} of {} rounds",
                    b.name,
                    speedups.join(" "),
                    r.len()
                );
            }
        }
    }
    if a.json {
        println!(
            "{{\"device\":\"{}\",\"results\":[{}]}}",
            gpu.info().name,
            items.join(",")
        );
    }
    Ok(())
}
