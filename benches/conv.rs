//! Criterion: conv2d forward on the shape suite of shared/bench-suite.md (batch 8).
//! Each iteration submits the prepared dispatch and waits for the GPU; throughput in FLOPs.
//! cargo bench --bench conv [-- NAME]

use convoy::bench::{ConvBench, CONV_SUITE, SUITE_BATCH};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};

fn conv_forward(c: &mut Criterion) {
    let gpu = convoy::Gpu::new().unwrap_or_else(|e| panic!("benches need a GPU adapter: {e}"));
    let mut group = c.benchmark_group("conv2d_fwd");
    // lavapipe runs these shapes in 0.05-1.5 s each: few samples, no long warm-up
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for s in &CONV_SUITE {
        let b = ConvBench::new(&gpu, s, SUITE_BATCH, false).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        group.throughput(Throughput::Elements(b.geom.flops() as u64));
        group.bench_function(s.name, |bench| {
            bench.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    gpu.run(&b.forward);
                }
                gpu.sync().expect("GPU sync");
                t.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, conv_forward);
criterion_main!(benches);
