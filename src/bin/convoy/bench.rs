//! `convoy bench conv`: forward timings of the conv shape suite, as a table or JSON.

use clap::{Args, ValueEnum};
use convoy::bench::{time_gpu, ConvForwardBench, CONV_SUITE, SUITE_BATCH};
use convoy::Gpu;

#[derive(Clone, Copy, ValueEnum)]
pub enum Suite {
    /// The conv shapes, forward.
    Conv,
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
}

pub fn run(args: BenchArgs) -> convoy::Result<()> {
    let gpu = Gpu::new()?;
    let Suite::Conv = args.suite;
    let mut rows = Vec::new();
    for s in CONV_SUITE
        .iter()
        .filter(|s| args.filter.as_deref().is_none_or(|f| s.name.contains(f)))
    {
        let b = ConvForwardBench::new(&gpu, s, SUITE_BATCH)?;
        let t = time_gpu(&gpu, 2, args.iters, || {
            gpu.run(std::slice::from_ref(&b.dispatch));
            Ok(())
        })?;
        let gflops = b.geom.flops() / (t.median_ms * 1e-3) / 1e9;
        rows.push((s.name, t.median_ms, gflops));
        if !args.json {
            println!("{:<12} fwd {:>9.2} ms {:>8.2} GFLOP/s", s.name, t.median_ms, gflops);
        }
    }
    if args.json {
        let items: Vec<String> = rows
            .iter()
            .map(|(n, ms, gf)| format!("{{\"name\":\"{n}\",\"pass\":\"forward\",\"batch\":{SUITE_BATCH},\"ms\":{ms:.4},\"gflops\":{gf:.4}}}"))
            .collect();
        println!(
            "{{\"device\":\"{}\",\"results\":[{}]}}",
            gpu.info().name,
            items.join(",")
        );
    }
    Ok(())
}
