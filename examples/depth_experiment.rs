//! The ResNet paper's depth experiment on Fashion-MNIST: plain nets of 8, 14 and 20 layers
//! against the same nets with shortcuts. Deeper plain nets train worse (higher training loss);
//! residual ones do not. Writes out/depth_experiment/training_loss.png (smoothed per-batch
//! training loss of every net) and prints the final training loss and test accuracy of each.
//!
//! cargo run --release --example depth_experiment [EPOCHS] [IMAGES]   (default 2 2560; deep
//! nets at full 28x28 resolution are slow on a CPU driver)

use convoy::data::{Mnist, Split};
use convoy::diag::plots;
use convoy::nn::plain_net;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use std::ops::ControlFlow;

fn head(s: &Split, n: usize) -> Split {
    let n = n.min(s.n);
    Split {
        n,
        h: s.h,
        w: s.w,
        images: s.images[..n * s.h * s.w].to_vec(),
        labels: s.labels[..n].to_vec(),
    }
}

fn main() -> convoy::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().and_then(|e| e.parse().ok()).unwrap_or(2);
    let images = args.next().and_then(|e| e.parse().ok()).unwrap_or(2560);
    let gpu = Gpu::new()?;
    let data = Mnist::fashion_embedded()?;
    let train = head(&data.train, images);
    let mut curves = Vec::new();
    for residual in [false, true] {
        for depth in [8, 14, 20] {
            let name = format!("{}{depth}", if residual { "resplain" } else { "plain" });
            let opt = Optimizer::Sgd {
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 1e-4,
                nesterov: false,
            };
            let mut l = Learner::new(&gpu, Box::new(plain_net(10, 1, depth, residual)), opt, 64, 0);
            let s = l.fit_one_cycle(&train, &data.test, epochs, 0.05, &mut |_| ControlFlow::Continue(()))?;
            let last = s.last().expect("an epoch");
            println!(
                "{name:<11} final training loss {:.4}, test top-1 {:.2}%",
                last.train_loss,
                last.top1 * 100.0
            );
            let loss: Vec<f32> = l.recorder.iter().map(|r| r.0).collect();
            let k = 10.min(loss.len()).max(1);
            let smoothed = (0..loss.len())
                .map(|i| {
                    let lo = i.saturating_sub(k - 1);
                    loss[lo..=i].iter().sum::<f32>() / (i + 1 - lo) as f32
                })
                .collect();
            curves.push((name, smoothed));
        }
    }
    let png = plots::curves("training loss (mean of 10 batches)", "batch", &curves)?;
    convoy::io::write_file("out/depth_experiment/training_loss.png", &png)?;
    println!("wrote out/depth_experiment/training_loss.png");
    Ok(())
}
