//! Progressive resizing (fastai ch. 7): train on small images first, then grow them, so the
//! early epochs cost less. The small ResNet on Fashion-MNIST resized 16 -> 28 pixels over the
//! epochs against 28 throughout: time per epoch and final accuracy of both.
//!
//! cargo run --release --example progressive_resizing [EPOCHS]   (default 4)

use convoy::data::Mnist;
use convoy::nn::by_name;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use std::ops::ControlFlow;

fn main() -> convoy::Result<()> {
    let epochs: usize = std::env::args().nth(1).and_then(|e| e.parse().ok()).unwrap_or(4);
    let gpu = Gpu::new()?;
    let data = Mnist::fashion_embedded()?;
    let ramp: Vec<usize> = (0..epochs)
        .map(|i| 16 + (12 * i / (epochs.max(2) - 1)) / 4 * 4)
        .collect();
    for (what, sizes) in [("progressive", ramp), ("fixed 28", vec![28])] {
        let opt = Optimizer::Sgd {
            lr: 0.15,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: false,
        };
        let mut l = Learner::new(&gpu, by_name("resnet_mini", 10, 1)?, opt, 64, 0);
        l.label_smoothing = 0.1;
        l.sizes = sizes.clone();
        let t = std::time::Instant::now();
        let s = l.fit_one_cycle(&data.train, &data.test, epochs, 0.15, &mut |s| {
            println!(
                "  {what}: epoch {} {:.1}s top-1 {:.2}%",
                s.epoch,
                s.seconds,
                s.top1 * 100.0
            );
            ControlFlow::Continue(())
        })?;
        let last = s.last().expect("an epoch");
        println!(
            "{what} (sizes {sizes:?}): {:.0} s, test accuracy {:.2}% at 28x28",
            t.elapsed().as_secs_f64(),
            last.top1 * 100.0
        );
    }
    Ok(())
}
