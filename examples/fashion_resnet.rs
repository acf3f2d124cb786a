//! A small ResNet (or any model by name) on the embedded Fashion-MNIST subset with 1cycle and
//! label smoothing, writing metrics, checkpoint and plots to out/fashion_resnet/.
//!
//! cargo run --release --example fashion_resnet [MODEL] [EPOCHS]   (default resnet_mini 5)

use convoy::data::Mnist;
use convoy::diag::plots;
use convoy::nn::by_name;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use std::ops::ControlFlow;

fn main() -> convoy::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "resnet_mini".into());
    let epochs = args.next().and_then(|e| e.parse().ok()).unwrap_or(5);
    let gpu = Gpu::new()?;
    let data = Mnist::fashion_embedded()?;
    let opt = Optimizer::Sgd {
        lr: 0.15,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, by_name(&model, 10, 1)?, opt, 64, 0);
    learner.label_smoothing = 0.1;
    learner.model_name = model.clone();
    let out = std::path::Path::new("out/fashion_resnet");
    learner.checkpoint = Some(out.join("checkpoint.safetensors"));
    let stats = learner.fit_one_cycle(&data.train, &data.test, epochs, 0.15, &mut |s| {
        println!(
            "epoch {}: train loss {:.4}, valid loss {:.4}, top-1 {:.2}%, top-5 {:.2}%, {:.0} img/s",
            s.epoch,
            s.train_loss,
            s.valid_loss,
            s.top1 * 100.0,
            s.top5 * 100.0,
            s.images_per_sec
        );
        ControlFlow::Continue(())
    })?;
    convoy::io::write_file(
        out.join("training_curves.png"),
        &plots::training_curves(&learner.recorder)?,
    )?;
    let last = stats.last().expect("at least one epoch");
    println!(
        "{model}: test accuracy {:.2}%; wrote {}",
        last.top1 * 100.0,
        out.display()
    );
    Ok(())
}
