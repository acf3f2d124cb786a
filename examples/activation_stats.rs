//! fastai ch. 13's activation statistics on the MNIST chapter's CNN: per-layer mean, standard
//! deviation and fraction of near-zero activations at every batch, gathered on the GPU, and the
//! "colorful dimension" histogram image. Writes out/activation_stats/*.png and prints, per
//! layer, how many activations end up near zero.
//!
//! cargo run --release --example activation_stats [EPOCHS] [LR]   (default 1 0.06)

use convoy::data::Mnist;
use convoy::diag::{plots, StatsConfig};
use convoy::nn::simple_cnn;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use std::ops::ControlFlow;

fn main() -> convoy::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().and_then(|e| e.parse().ok()).unwrap_or(1);
    let lr: f32 = args.next().and_then(|e| e.parse().ok()).unwrap_or(0.06);
    let gpu = Gpu::new()?;
    let data = Mnist::fashion_embedded()?;
    let opt = Optimizer::Sgd {
        lr,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, Box::new(simple_cnn(10)), opt, 64, 0);
    learner.watch_activations(StatsConfig::default());
    learner.fit_one_cycle(&data.train, &data.test, epochs, lr, &mut |s| {
        println!("epoch {}: top-1 {:.2}%", s.epoch, s.top1 * 100.0);
        ControlFlow::Continue(())
    })?;
    let st = learner.stats.as_ref().expect("watched");
    let out = std::path::Path::new("out/activation_stats");
    convoy::io::write_file(out.join("activation_curves.png"), &plots::activation_curves(st)?)?;
    convoy::io::write_file(out.join("colorful_dimension.png"), &plots::colorful_dimension(st)?)?;
    convoy::io::write_file(
        out.join("training_curves.png"),
        &plots::training_curves(&learner.recorder)?,
    )?;
    for (l, name) in st.names.iter().enumerate() {
        let near = st.series(l, 2);
        println!(
            "{name}: near zero {:.1}% at the first batch, {:.1}% at the last",
            near[0] * 100.0,
            near[near.len() - 1] * 100.0
        );
    }
    println!("wrote {}", out.display());
    Ok(())
}
