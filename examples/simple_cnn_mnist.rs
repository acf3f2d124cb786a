//! The MNIST chapter's CNN (fastai book ch. 13) trained on the embedded Fashion-MNIST subset:
//! stride-2 convolutions with batch norm halve 28x28 down to 1x1, then flatten; SGD with
//! momentum under the 1cycle schedule.
//!
//! cargo run --release --example simple_cnn_mnist [EPOCHS]   (default 5)

use convoy::data::Mnist;
use convoy::nn::simple_cnn;
use convoy::train::{EpochStats, Learner, Optimizer};
use convoy::Gpu;

fn train(epochs: usize, train_images: usize) -> convoy::Result<EpochStats> {
    let gpu = Gpu::new()?;
    let mut data = Mnist::fashion_embedded()?;
    // keep the first `train_images` training images (all of them by default)
    let px = data.train.h * data.train.w;
    data.train.n = train_images.min(data.train.n);
    data.train.images.truncate(data.train.n * px);
    data.train.labels.truncate(data.train.n);

    let opt = Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
    };
    let mut learner = Learner::new(&gpu, Box::new(simple_cnn(10)), opt, 64, 0);
    let stats = learner.fit_one_cycle(&data.train, &data.test, epochs, 0.05, &mut |s| {
        println!(
            "epoch {}: train loss {:.4}, valid loss {:.4}, top-1 {:.2}%, {:.0} img/s",
            s.epoch,
            s.train_loss,
            s.valid_loss,
            s.top1 * 100.0,
            s.images_per_sec
        );
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(stats.last().expect("one epoch at least").clone())
}

fn main() -> convoy::Result<()> {
    let epochs = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let last = train(epochs, usize::MAX)?;
    println!("test accuracy: {:.2}%", last.top1 * 100.0);
    Ok(())
}

#[test]
fn learns_fashion_mnist_in_one_short_epoch() {
    // 2,560 images, one epoch: enough to be far above chance (10%) in a few seconds
    let last = train(1, 2560).expect("training runs (needs a GPU adapter)");
    assert!(last.top1 > 0.6, "top-1 after one short epoch: {}", last.top1);
    assert!(last.train_loss.is_finite() && last.valid_loss < 1.5, "{last:?}");
}
