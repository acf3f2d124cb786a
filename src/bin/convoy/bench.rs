//! `convoy bench conv` (forward and backward timings of the conv shape suite, each as a fraction
//! of the GEMM ceiling), `convoy bench gemm` (that ceiling) and `convoy bench models` (the model
//! suite, fused and unfused), as a table or JSON.

use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use convoy::bench::{
    copy_kernel_bandwidth, gemm_ceiling, run_model, time_repeats, Clock, ConvBench, ModelBench, ModelRun, RepeatTiming,
    CONV_SUITE, SUITE_BATCH,
};
use convoy::nn::MODEL_NAMES;
use convoy::{Gpu, Precision};

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
    /// Models and conv: batch size (the conv suite's shapes at this batch).
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
    /// Conv: time every tuner candidate of each pass of each shape (the variant table's list,
    /// the default first), as a table or JSON.
    #[arg(long)]
    candidates: bool,
    /// Also time f16 activation storage (f32 weights and accumulation; needs shader-f16): the
    /// conv forward on f16 (pass fwd_f16), and each inference model with f16 after its f32 runs.
    #[arg(long)]
    f16: bool,
    /// Models: `mixed` compiles each model in mixed precision (training: f16 activations,
    /// dynamic loss scaling; inference: f16 activations), `both` in f32 then mixed; the
    /// storage column then reads `mixed`.
    #[arg(long, default_value = "f32", value_parser = PossibleValuesParser::new(["f32", "mixed", "both"]))]
    precision: String,
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
    let (_, copy_gbs) = copy_kernel_bandwidth(&gpu, 64 << 20, 1, 5)?;
    // the GPU's clock where the adapter's timestamps are trusted, the wall time per run
    // otherwise; both are reported
    let clock = Clock::for_timing(&gpu);
    let yard = [ceiling, copy_gbs];
    if !args.json {
        println!(
            "GEMM ceiling ({0}x{0}x{0}): {ceiling:.2} GFLOP/s; copy kernel {copy_gbs:.2} GB/s; timed by {1}",
            args.gemm_size,
            clock_name(clock)
        );
    }
    let mut rows = Vec::new();
    for s in CONV_SUITE
        .iter()
        .filter(|s| args.filter.as_deref().is_none_or(|f| s.name.contains(f)))
    {
        let b = ConvBench::new(&gpu, s, args.batch, args.f16)?;
        let f = b.geom.flops();
        if args.candidates {
            for c in b.candidates(&gpu)? {
                let row = match &c.dispatches {
                    Ok(ds) => {
                        let t = time_repeats(&gpu, ds, args.warmup, args.iters)?;
                        Row::new(
                            (s.name, c.pass, args.batch),
                            &t,
                            clock,
                            [f, b.geom.min_bytes(c.pass)],
                            yard,
                        )
                    }
                    Err(e) => Row::refused(s.name, c.pass, args.batch, e.to_string()),
                }
                .with_candidate(&c.kernel, &c.tile, c.default);
                if !args.json {
                    row.print();
                }
                rows.push(row);
            }
            continue;
        }
        // backward = input gradient + weight gradient: twice the forward's FLOPs, each kernel
        // once (also timed alone, to show which one a shape waits on)
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
            let t = time_repeats(&gpu, dispatches, args.warmup, args.iters)?;
            let row = Row::new(
                (s.name, pass, args.batch),
                &t,
                clock,
                [flops, b.geom.min_bytes(pass)],
                yard,
            );
            if !args.json {
                row.print();
            }
            rows.push(row);
        }
    }
    if args.json {
        let items: Vec<String> = rows.iter().map(Row::json).collect();
        println!(
            "{{\"device\":\"{}\",\"clock\":\"{}\",\"gemm_gflops\":{ceiling:.4},\"copy_gbytes_per_s\":{copy_gbs:.4},\"results\":[{}]}}",
            gpu.info().name,
            clock_name(clock),
            items.join(",")
        );
    }
    Ok(())
}

/// Bytes the bandwidth yardstick copies (64 MiB: past the caches of today's GPUs).
const COPY_BYTES: u64 = 64 << 20;

fn clock_name(clock: Clock) -> &'static str {
    match clock {
        Clock::Timestamps => "timestamps",
        Clock::Wall => "wall",
    }
}

/// One timed pass (or one tuner candidate of it) of a suite shape.
struct Row {
    name: &'static str,
    pass: &'static str,
    batch: usize,
    /// The time per run by the bench's clock, the GPU's (None without timestamps) and the wall's.
    ms: f64,
    gpu_ms: Option<f64>,
    wall_ms: f64,
    cpu_ms: f64,
    gflops: f64,
    gbs: f64,
    fraction_of_gemm: f64,
    fraction_of_copy: f64,
    /// With --candidates: the kernel, the tile, whether it is the default, and why a candidate
    /// could not run.
    candidate: Option<(String, String, bool)>,
    refused: Option<String>,
}

impl Row {
    /// `flops` and `bytes` are the pass's work and its least traffic, `yard` the GEMM ceiling
    /// (GFLOP/s) and the copy kernel's bandwidth (GB/s).
    fn new(
        what: (&'static str, &'static str, usize),
        t: &RepeatTiming,
        clock: Clock,
        work: [f64; 2],
        yard: [f64; 2],
    ) -> Row {
        let (name, pass, batch) = what;
        let ([flops, bytes], [ceiling, copy_gbs]) = (work, yard);
        let ms = t.ms(clock);
        let gflops = flops / (ms * 1e-3) / 1e9;
        // memory-bound shapes (depthwise) are judged by bandwidth: the bytes the pass must read
        // and write at least once, against the copy kernel
        let gbs = bytes / (ms * 1e-3) / 1e9;
        Row {
            name,
            pass,
            batch,
            ms,
            gpu_ms: t.gpu_ms,
            wall_ms: t.wall_ms,
            cpu_ms: t.cpu_ms,
            gflops,
            gbs,
            fraction_of_gemm: gflops / ceiling,
            fraction_of_copy: gbs / copy_gbs,
            candidate: None,
            refused: None,
        }
    }

    fn refused(name: &'static str, pass: &'static str, batch: usize, why: String) -> Row {
        Row {
            name,
            pass,
            batch,
            ms: f64::NAN,
            gpu_ms: None,
            wall_ms: f64::NAN,
            cpu_ms: f64::NAN,
            gflops: f64::NAN,
            gbs: f64::NAN,
            fraction_of_gemm: f64::NAN,
            fraction_of_copy: f64::NAN,
            candidate: None,
            refused: Some(why),
        }
    }

    fn with_candidate(mut self, kernel: &str, tile: &str, default: bool) -> Row {
        self.candidate = Some((kernel.to_string(), tile.to_string(), default));
        self
    }

    fn print(&self) {
        let what = match &self.candidate {
            Some((_, tile, default)) => format!("{tile}{}", if *default { " (default)" } else { "" }),
            None => String::new(),
        };
        if let Some(why) = &self.refused {
            println!("{:<12} {:<10} {what}: refused: {why}", self.name, self.pass);
            return;
        }
        let gpu = self.gpu_ms.map_or("-".to_string(), |ms| format!("{ms:.3}"));
        println!(
            "{:<12} {:<10} {:>9.3} ms (GPU {gpu:>9} ms, wall {:>9.3} ms, CPU {:>7.1} ms) {:>8.2} GFLOP/s {:>5.0}% of GEMM {:>7.2} GB/s {:>4.0}% of copy  {what}",
            self.name,
            self.pass,
            self.ms,
            self.wall_ms,
            self.cpu_ms,
            self.gflops,
            100.0 * self.fraction_of_gemm,
            self.gbs,
            100.0 * self.fraction_of_copy
        );
    }

    fn json(&self) -> String {
        let num = |v: f64| {
            if v.is_finite() {
                format!("{v:.4}")
            } else {
                "null".into()
            }
        };
        let mut s = format!(
            "{{\"name\":\"{}\",\"pass\":\"{}\",\"batch\":{},\"ms\":{},\"gpu_ms\":{},\"wall_ms\":{},\"cpu_ms\":{},\"gflops\":{},\"fraction_of_gemm\":{},\"gbytes_per_s\":{},\"fraction_of_copy\":{}",
            self.name,
            self.pass,
            self.batch,
            num(self.ms),
            self.gpu_ms.map_or("null".into(), num),
            num(self.wall_ms),
            num(self.cpu_ms),
            num(self.gflops),
            num(self.fraction_of_gemm),
            num(self.gbs),
            num(self.fraction_of_copy)
        );
        if let Some((kernel, tile, default)) = &self.candidate {
            s += &format!(
                ",\"kernel\":{},\"tile\":{},\"default\":{default}",
                json_string(kernel),
                json_string(tile)
            );
        }
        if let Some(why) = &self.refused {
            s += &format!(",\"refused\":{}", json_string(why));
        }
        s + "}"
    }
}

/// `v` as a JSON string literal.
fn json_string(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out + "\""
}

fn gemm(gpu: &Gpu, a: &BenchArgs) -> convoy::Result<()> {
    let results = gemm_ceiling(gpu, a.gemm_size, a.warmup, a.iters)?;
    // the bandwidth yardstick: 64 MiB through the copy kernel, on the clock kernels are timed by
    let (copy, copy_gbs) = copy_kernel_bandwidth(gpu, COPY_BYTES, a.warmup, a.iters)?;
    let clock = Clock::for_timing(gpu);
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
            "{{\"device\":\"{}\",\"results\":[{}],\"copy\":{{\"kernel\":\"copy_vec4\",\"bytes\":{COPY_BYTES},\"clock\":\"{}\",\"ms\":{:.4},\"wall_ms\":{:.4},\"gbytes_per_s\":{copy_gbs:.4}}}}}",
            gpu.info().name,
            items.join(","),
            clock_name(clock),
            copy.ms(clock),
            copy.wall_ms
        );
    } else {
        for r in &results {
            let n = r.size;
            println!(
                "{:<40} {n}x{n}x{n} {:>9.2} ms {:>8.2} GFLOP/s",
                r.kernel, r.timing.median_ms, r.gflops
            );
        }
        println!(
            "{:<40} {:>11} {:>9.2} ms {:>8.2} GB/s (read + written, by {})",
            "copy_vec4 (the bandwidth yardstick)",
            format!("{} MiB", COPY_BYTES >> 20),
            copy.ms(clock),
            copy_gbs,
            clock_name(clock)
        );
    }
    Ok(())
}

/// How `bench models` compiles a model: fusion, precision, f16 storage.
type ModelConfig = (bool, Precision, bool);

/// What `bench models` compiles each model as: (fusion, precision, f16 storage) for each fusion
/// mode in each precision of `--precision` (f32 first), then (inference, with --f16) in f16;
/// and the first precision, whose rounds compare fusion.
fn model_configs(a: &BenchArgs, modes: &[bool], train: bool) -> convoy::Result<(Vec<ModelConfig>, Precision)> {
    let precisions = match a.precision.as_str() {
        "both" => vec![Precision::F32, Precision::Mixed],
        p => vec![crate::train::precision_arg(p)?],
    };
    let mut configs: Vec<ModelConfig> = precisions
        .iter()
        .flat_map(|&p| modes.iter().map(move |&m| (m, p, false)))
        .collect();
    if a.f16 && !train {
        configs.extend(modes.iter().map(|&m| (m, Precision::F32, true)));
    }
    Ok((configs, precisions[0]))
}

/// The storage column of a `bench models` row.
fn storage_label(precision: Precision, f16: bool) -> &'static str {
    match (precision, f16) {
        (Precision::Mixed, _) => "mixed",
        (_, true) => "f16",
        _ => "f32",
    }
}

/// `bench models --profile`'s kernels as JSON: each one's summed time, dispatches and bytes.
fn profile_json(profile: &[convoy::KernelProfile]) -> String {
    let kernels: Vec<String> = profile
        .iter()
        .map(|k| {
            format!(
                "{{\"kernel\":\"{}\",\"ms\":{:.4},\"dispatches\":{},\"bytes\":{}}}",
                k.kernel, k.ms, k.dispatches, k.bytes
            )
        })
        .collect();
    format!("[{}]", kernels.join(","))
}

/// `bench models --profile`'s kernels under a model's row: time and dispatches, and for the
/// memory-bound kernels their bytes, bandwidth and share of the copy kernel's (`copy_gbs`).
fn print_profile(profile: &[convoy::KernelProfile], copy_gbs: Option<f64>) {
    for k in profile {
        let (kernel, ms, n) = (k.kernel, k.ms, k.dispatches);
        let bandwidth = match (k.gb_per_s(), copy_gbs) {
            (Some(gbs), Some(copy)) => format!(
                "  {:>8.1} MB {gbs:>8.2} GB/s {:>5.1}% of copy",
                k.bytes as f64 / 1e6,
                100.0 * gbs / copy
            ),
            _ => String::new(),
        };
        println!("    {kernel:<28} {ms:>10.1} ms  {n:>4} dispatches{bandwidth}");
    }
}

/// The fusion speed-up of each round of alternated unfused and fused runs ([unfused, fused] ms),
/// by wall and by CPU time.
fn print_fusion_rounds(name: &str, rounds: &[[f64; 2]], cpu_rounds: &[[f64; 2]]) {
    for (what, r) in [("wall", rounds), ("CPU", cpu_rounds)] {
        let speedups: Vec<String> = r.iter().map(|[off, on]| format!("{:.3}x", off / on)).collect();
        let faster = r.iter().filter(|[off, on]| on < off).count();
        println!(
            "{name:<18} fusion speed-up per round, {what} time (unfused / fused): {} - fused faster in {faster} of {} rounds",
            speedups.join(" "),
            r.len()
        );
    }
}

/// The column heads of `bench models`' table.
fn print_models_header() {
    println!(
        "{:<18} {:>6} {:>7} {:>10} {:>14} {:>12} {:>10} {:>12} {:>10} {:>10} {:>8} {:>9} {:>8} {:>10} {:>9}",
        "model",
        "fusion",
        "storage",
        "dispatches",
        "activations MB",
        "peak MB",
        "live MB",
        "derived MB",
        "ms",
        "CPU ms",
        "host ms",
        "img/s",
        "init ms",
        "compile ms",
        "first ms"
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
    // with --profile, the memory-bound kernels' bandwidth is read against the copy kernel's
    let copy_gbs = match a.profile {
        true => Some(copy_kernel_bandwidth(gpu, COPY_BYTES, a.warmup, a.iters.max(3))?.1),
        false => None,
    };
    if !a.json {
        if let Some(gbs) = copy_gbs {
            println!("copy_vec4 (the bandwidth yardstick): {gbs:.2} GB/s read + written");
        }
        print_models_header();
    }
    for b in benches
        .iter()
        .filter(|b| a.filter.as_deref().is_none_or(|f| b.name.contains(f)))
    {
        let (configs, first) = model_configs(a, modes, b.train)?;
        // (unfused, fused) wall ms and CPU ms per round, in the first precision
        let mut rounds: Vec<[f64; 2]> = Vec::new();
        let mut cpu_rounds: Vec<[f64; 2]> = Vec::new();
        for &(fusion, precision, f16) in configs.iter().cycle().take(configs.len() * a.rounds.max(1)) {
            let run = ModelRun {
                fusion,
                f16,
                precision,
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
            if modes.len() == 2 && !f16 && precision == first {
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
            let storage = storage_label(precision, f16);
            if a.json {
                items.push(format!(
                    "{{\"name\":\"{}\",\"fusion\":{fusion},\"storage\":\"{storage}\",\"batch\":{},\"size\":{},\"dispatches\":{},\"activation_bytes\":{},\"peak_temp_bytes\":{},\"live_peak_bytes\":{},\"derived_bytes\":{},\"ms\":{:.3},\"cpu_ms\":{:.1},\"host_ms\":{:.3},\"images_per_sec\":{:.3},\"init_ms\":{:.1},\"compile_ms\":{:.1},\"first_ms\":{:.1},\"tuned_shapes\":{tuned},\"tuned_candidates\":{timed},\"tuning_runs\":{runs},\"tuning_seconds\":{tune_s:.3}}}",
                    b.name, a.batch, a.size, s.dispatches, s.temp_bytes_unplanned, s.temp_bytes, s.live_peak_bytes, s.derived_bytes, r.timing.median_ms, r.timing.median_cpu_ms, r.host_ms, r.images_per_sec, r.init_ms, r.compile_ms, r.timing.first_ms
                ));
                if a.profile {
                    let last = items.last_mut().expect("just pushed");
                    last.pop();
                    last.push_str(&format!(",\"profile\":{}}}", profile_json(&r.profile)));
                }
            } else {
                let on = if fusion { "on" } else { "off" };
                println!(
                    "{:<18} {:>6} {:>7} {:>10} {:>14.1} {:>12.1} {:>10.1} {:>12.1} {:>10.1} {:>10.0} {:>8.2} {:>9.2} {:>8.0} {:>10.0} {:>9.0}",
                    b.name,
                    on,
                    storage,
                    s.dispatches,
                    mb(s.temp_bytes_unplanned),
                    mb(s.temp_bytes),
                    mb(s.live_peak_bytes),
                    mb(s.derived_bytes),
                    r.timing.median_ms,
                    r.timing.median_cpu_ms,
                    r.host_ms,
                    r.images_per_sec,
                    r.init_ms,
                    r.compile_ms,
                    r.timing.first_ms
                );
                print_profile(&r.profile, copy_gbs);
                if tuned > 0 {
                    println!(
                        "    tuner: {tuned} new kernel shapes, {timed} candidates timed in {runs} runs, {tune_s:.2} s"
                    );
                }
            }
        }
        if rounds.len() > 1 && !a.json {
            print_fusion_rounds(&b.name, &rounds, &cpu_rounds);
        }
    }
    if a.json {
        let copy = copy_gbs.map_or(String::new(), |g| format!(",\"copy_gbytes_per_s\":{g:.4}"));
        println!(
            "{{\"device\":\"{}\",\"results\":[{}]{copy}}}",
            gpu.info().name,
            items.join(",")
        );
    }
    Ok(())
}
