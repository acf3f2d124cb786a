//! Transfer learning on Fashion-MNIST: pre-train the MNIST chapter's CNN on five classes
//! (T-shirt, trouser, pullover, dress, coat), then reuse its body for the other five (sandal,
//! shirt, sneaker, bag, ankle boot): load the weights without the head, train the new head with
//! the body frozen, unfreeze, and fine-tune with discriminative learning rates (early layers
//! slower). Compared with the same model trained from scratch for the same number of epochs.
//!
//! cargo run --release --example transfer_learning

use convoy::data::{Mnist, Split};
use convoy::nn::simple_cnn;
use convoy::train::{Learner, Optimizer};
use convoy::Gpu;
use std::ops::ControlFlow;

/// The images of `classes` (relabelled 0..), the first `limit` of them.
fn subset(s: &Split, classes: &[u8], limit: usize) -> Split {
    let px = s.h * s.w;
    let mut out = Split {
        n: 0,
        h: s.h,
        w: s.w,
        images: Vec::new(),
        labels: Vec::new(),
    };
    for i in 0..s.n {
        if let Some(new) = classes.iter().position(|&c| c == s.labels[i]) {
            if out.n == limit {
                break;
            }
            out.images.extend_from_slice(&s.images[i * px..(i + 1) * px]);
            out.labels.push(new as u8);
            out.n += 1;
        }
    }
    out
}

fn sgd() -> Optimizer {
    Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
    }
}

fn quiet(_: &convoy::train::EpochStats) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

pub struct Outcome {
    pub scratch: f32,
    pub head_only: f32,
    pub fine_tuned: f32,
    pub trainable_when_frozen: Vec<String>,
    pub body_unchanged_when_frozen: bool,
    pub no_optimizer_state_when_frozen: bool,
}

pub fn run(limit: usize, epochs: usize) -> convoy::Result<Outcome> {
    let gpu = Gpu::new()?;
    let data = Mnist::fashion_embedded()?;
    let (a, b) = ([0u8, 1, 2, 3, 4], [5u8, 6, 7, 8, 9]);
    let (pre_train, pre_valid) = (subset(&data.train, &a, limit), subset(&data.test, &a, limit));
    let (new_train, new_valid) = (subset(&data.train, &b, limit), subset(&data.test, &b, limit));

    // 1. pre-train on the first five classes and save the weights
    let mut pre = Learner::new(&gpu, Box::new(simple_cnn(5)), sgd(), 64, 0);
    let s = pre.fit_one_cycle(&pre_train, &pre_valid, epochs, 0.05, &mut quiet)?;
    println!(
        "pre-trained on classes 0-4: top-1 {:.2}%",
        s.last().map_or(0.0, |s| s.top1) * 100.0
    );
    let dir = std::env::temp_dir().join(format!("convoy-transfer-{}", std::process::id()));
    let weights = dir.join("pretrained.safetensors");
    let names: Vec<String> = pre
        .store
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !convoy::train::is_optimizer_state(n))
        .collect();
    convoy::io::safetensors::save_safetensors(&weights, &pre.store, Some(&names))?;

    // 2. a new head for the other five classes: load the body, train only the head
    let mut tl = Learner::new(&gpu, Box::new(simple_cnn(5)), sgd(), 64, 1);
    let head = tl.head_prefix();
    tl.load_weights(&weights, &[&head])?;
    let body_before = tl.store.get("conv0.0.weight").expect("loaded").to_vec()?;
    tl.freeze_body();
    let s = tl.fit_one_cycle(&new_train, &new_valid, 1, 0.05, &mut quiet)?;
    let head_only = s.last().map_or(0.0, |s| s.top1);
    let trainable_when_frozen = tl.trainable_params();
    let body_unchanged_when_frozen = tl.store.get("conv0.0.weight").expect("kept").to_vec()? == body_before;
    let no_optimizer_state_when_frozen = tl.store.get("conv0.0.weight.momentum_buffer").is_none()
        && tl.store.get(&format!("{head}0.weight.momentum_buffer")).is_some();
    println!(
        "head only ({head}*), body frozen, 1 epoch: top-1 {:.2}%",
        head_only * 100.0
    );

    // 3. unfreeze; early layers learn at a tenth of the rate, the middle at a third
    tl.unfreeze();
    tl.set_lr_groups(&[("conv0.", 0.1), ("conv1.", 0.1), ("conv2.", 0.33), ("conv3.", 0.33)])?;
    let s = tl.fit_one_cycle(&new_train, &new_valid, epochs.max(2) - 1, 0.02, &mut quiet)?;
    let fine_tuned = s.last().map_or(0.0, |s| s.top1);
    println!("fine-tuned with discriminative rates: top-1 {:.2}%", fine_tuned * 100.0);

    // the same budget from scratch
    let mut scratch = Learner::new(&gpu, Box::new(simple_cnn(5)), sgd(), 64, 1);
    let s = scratch.fit_one_cycle(&new_train, &new_valid, epochs.max(2), 0.05, &mut quiet)?;
    let scratch = s.last().map_or(0.0, |s| s.top1);
    println!("from scratch, same epochs: top-1 {:.2}%", scratch * 100.0);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Outcome {
        scratch,
        head_only,
        fine_tuned,
        trainable_when_frozen,
        body_unchanged_when_frozen,
        no_optimizer_state_when_frozen,
    })
}

fn main() -> convoy::Result<()> {
    run(usize::MAX, 3)?;
    Ok(())
}

#[test]
fn transfer_learning_freezes_the_body_and_fine_tunes() {
    let o = run(1280, 2).expect("runs (needs a GPU adapter)");
    // with the body frozen only the new head (conv4) trains, and the body does not move
    assert!(!o.trainable_when_frozen.is_empty());
    assert!(
        o.trainable_when_frozen.iter().all(|n| n.starts_with("conv4.")),
        "{:?}",
        o.trainable_when_frozen
    );
    assert!(o.body_unchanged_when_frozen);
    assert!(
        o.no_optimizer_state_when_frozen,
        "frozen parameters got optimizer state"
    );
    // a pretrained body with a new head is already well above chance (20%), and fine-tuning
    // keeps it there
    assert!(
        o.head_only > 0.5 && o.fine_tuned > 0.6,
        "head {} fine-tuned {}",
        o.head_only,
        o.fine_tuned
    );
    assert!(o.scratch > 0.2);
}
