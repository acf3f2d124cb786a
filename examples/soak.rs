//! Soak: train resnet_mini on the embedded Fashion-MNIST subset (the main job's recipe: 1cycle,
//! SGD with momentum, label smoothing, a checkpoint and an evaluation every epoch) for at least
//! STEPS steps, and record what the process holds - live GPU buffers, textures, bind groups and
//! pipelines and their bytes (wgpu's counters), and host RSS - at step 10, every 250 steps and at
//! the end. A runtime that leaks grows here (Burn's users report growth in long wgpu runs).
//! Prints a markdown table and writes it, with the growth from step 10 to the end, to
//! out/soak/soak.md.
//!
//! cargo run --release --example soak [STEPS]   (default 2000)

use convoy::data::{Dataset, Mnist};
use convoy::nn::by_name;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use convoy::MemoryCounts;
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::rc::Rc;

/// Resident memory of this process in bytes (Linux /proc; 0 elsewhere).
fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
}

struct Sample {
    step: usize,
    gpu: MemoryCounts,
    rss: u64,
}

fn row(s: &Sample) -> String {
    // MB, or "n/a" where the backend counts objects only (GL, Metal)
    let mb = |b: isize| match s.gpu.bytes_counted {
        true => format!("{:.2}", b as f64 / 1e6),
        false => "n/a".to_string(),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {:.1} |",
        s.step,
        s.gpu.buffers,
        s.gpu.textures,
        s.gpu.bind_groups,
        s.gpu.compute_pipelines,
        mb(s.gpu.buffer_bytes),
        mb(s.gpu.texture_bytes),
        s.rss as f64 / 1e6
    )
}

fn main() -> convoy::Result<()> {
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let gpu = Gpu::new()?;
    let data = Mnist::fashion_embedded()?;
    let bs = 64;
    let per_epoch = data.train.len() / bs;
    let epochs = steps.div_ceil(per_epoch.max(1));
    let opt = Optimizer::Sgd {
        lr: 0.15,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, by_name("resnet_mini", 10, 1)?, opt, bs, 0);
    learner.label_smoothing = 0.1;
    learner.model_name = "resnet_mini".into();
    let out = std::path::Path::new("out/soak");
    learner.checkpoint = Some(out.join("checkpoint.safetensors"));
    let samples: Rc<RefCell<Vec<Sample>>> = Rc::default();
    let (seen, g) = (samples.clone(), gpu.clone());
    let mut step = 0;
    learner.on_batch = Some(Box::new(move |_, _, _| {
        step += 1;
        if step == 10 || step % 250 == 0 {
            seen.borrow_mut().push(Sample {
                step,
                gpu: g.memory_counts(),
                rss: rss_bytes(),
            });
        }
    }));
    println!(
        "{} steps: {epochs} epochs of {per_epoch} at batch {bs}",
        epochs * per_epoch
    );
    let t0 = std::time::Instant::now();
    learner.fit_one_cycle(&data.train, &data.test, epochs, 0.15, &mut |s| {
        println!(
            "epoch {}: train loss {:.4}, valid loss {:.4}, top-1 {:.2}%, {:.0} s",
            s.epoch,
            s.train_loss,
            s.valid_loss,
            s.top1 * 100.0,
            t0.elapsed().as_secs_f64()
        );
        ControlFlow::Continue(())
    })?;
    gpu.sync()?;
    let mut samples = samples.take();
    samples.push(Sample {
        step: epochs * per_epoch,
        gpu: gpu.memory_counts(),
        rss: rss_bytes(),
    });
    let mut table = vec![
        "| step | buffers | textures | bind groups | pipelines | buffer MB | texture MB | host RSS MB |".to_string(),
        "|---:|---:|---:|---:|---:|---:|---:|---:|".to_string(),
    ];
    table.extend(samples.iter().map(row));
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    let growth = |a: f64, b: f64| if a == 0.0 { 0.0 } else { (b - a) / a * 100.0 };
    table.push(String::new());
    table.push(format!(
        "From step {} to step {} ({:.0} s): buffer bytes {:+.2}%, texture bytes {:+.2}%, buffers {:+}, bind groups {:+}, host RSS {:+.2}%.",
        first.step,
        last.step,
        t0.elapsed().as_secs_f64(),
        growth(first.gpu.buffer_bytes as f64, last.gpu.buffer_bytes as f64),
        growth(first.gpu.texture_bytes as f64, last.gpu.texture_bytes as f64),
        last.gpu.buffers - first.gpu.buffers,
        last.gpu.bind_groups - first.gpu.bind_groups,
        growth(first.rss as f64, last.rss as f64)
    ));
    let text = table.join("\n") + "\n";
    print!("{text}");
    convoy::io::write_file(out.join("soak.md"), text.as_bytes())?;
    Ok(())
}
