//! Training state: checkpoints, resume, divergence. A resumed run must equal an uninterrupted
//! one; a non-finite loss must stop training without touching the last checkpoint; a broken or
//! foreign checkpoint file must be refused with an error naming it.

mod common;

use common::gpu;
use convoy::data::{Mnist, Split};
use convoy::nn::{simple_cnn, Conv2dSpec};
use convoy::train::{load_checkpoint, Learner, Optimizer};
use convoy::Error;
use std::ops::ControlFlow;

fn head(s: &Split, n: usize) -> Split {
    Split {
        n,
        h: s.h,
        w: s.w,
        images: s.images[..n * s.h * s.w].to_vec(),
        labels: s.labels[..n].to_vec(),
    }
}

fn data() -> (Split, Split) {
    let m = Mnist::fashion_embedded().unwrap();
    (head(&m.train, 384), head(&m.test, 128))
}

fn learner(opt: Optimizer) -> Learner {
    let mut l = Learner::new(gpu(), Box::new(simple_cnn(10)), opt, 64, 7);
    l.model_name = "simple_cnn".into();
    l
}

fn sgd() -> Optimizer {
    Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: false,
    }
}

fn tensors(l: &Learner) -> Vec<(String, Vec<f32>)> {
    l.store.iter().map(|(n, t)| (n.clone(), t.to_vec().unwrap())).collect()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("convoy-train-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Interrupted after epoch 1 of 3, resumed in a new learner from the checkpoint: the weights,
/// batch-norm statistics and optimizer state after epoch 3 equal the uninterrupted run's
/// exactly (same kernels, same order of operations, same data order), for SGD and AdamW.
#[test]
fn resumed_run_equals_uninterrupted_run() {
    let (train, valid) = data();
    for opt in [sgd(), Optimizer::adamw(2e-3)] {
        let mut whole = learner(opt);
        let full = whole
            .fit_one_cycle(&train, &valid, 3, 0.05, &mut |_| ControlFlow::Continue(()))
            .unwrap();

        let ckpt = tmp("resume").join("checkpoint.safetensors");
        let mut first = learner(opt);
        first.checkpoint = Some(ckpt.clone());
        let part = first
            .fit_one_cycle(&train, &valid, 3, 0.05, &mut |_| ControlFlow::Break(()))
            .unwrap();
        assert_eq!(part.len(), 1, "stopped after the first epoch");
        drop(first);

        let mut second = learner(opt);
        let info = second.resume(&ckpt).unwrap();
        assert_eq!((info.epoch, info.epochs_total, info.step), (1, 3, 6));
        assert_eq!(info.history, part, "the checkpoint carries the first epoch's metrics");
        let rest = second
            .fit_one_cycle(&train, &valid, 3, 0.05, &mut |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(rest.iter().map(|s| s.epoch).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(second.history.iter().map(|s| s.epoch).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(second.history[0], part[0]);
        assert_eq!(rest[1].train_loss, full[2].train_loss, "{opt:?}");
        assert_eq!(rest[1].top1, full[2].top1);
        let (a, b) = (tensors(&whole), tensors(&second));
        assert_eq!(a.len(), b.len());
        for ((na, va), (nb, vb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(va == vb, "{opt:?}: {na} differs after resuming");
        }
        assert_eq!(
            whole.store.counter("conv0.1.num_batches_tracked"),
            second.store.counter("conv0.1.num_batches_tracked")
        );
    }
}

/// A small net with dropout (element-wise) and stochastic depth (per image) in training.
struct DropoutNet;

impl convoy::nn::Model for DropoutNet {
    fn forward(&self, net: &mut convoy::nn::Net, x: convoy::graph::ValueId) -> convoy::Result<convoy::graph::ValueId> {
        let conv = Conv2dSpec::new(1, 8, 3).stride(2).padding(1).bias(false);
        let h = net.scope("conv", |n| n.conv2d(x, conv))?;
        let h = net.scope("bn", |n| n.batch_norm(h, 8, false))?;
        let h = net.relu(h);
        let branch = Conv2dSpec::new(8, 8, 3).padding(1).bias(false);
        let b = net.scope("branch", |n| n.conv2d(h, branch))?;
        let b = net.stochastic_depth(b, 0.3)?;
        let h = net.graph.add(h, b)?;
        let f = net.global_pool(h)?;
        let f = net.dropout(f, 0.5)?;
        net.scope("fc", |n| n.linear(f, 8, 10))
    }

    fn num_classes(&self) -> usize {
        10
    }
}

/// Dropout masks are drawn from (seed, step), so a run resumed from a checkpoint draws the
/// masks the uninterrupted run drew: the same losses and weights, bit for bit (that the masks
/// change with the step and the seed is tests/kernels/dropout.rs's).
#[test]
fn resumed_run_with_dropout_equals_uninterrupted_run() {
    let (train, valid) = data();
    let make = |seed| {
        let mut l = Learner::new(gpu(), Box::new(DropoutNet), sgd(), 64, seed);
        l.model_name = "dropout_net".into();
        l
    };
    let mut whole = make(7);
    let full = whole
        .fit_one_cycle(&train, &valid, 2, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let ckpt = tmp("resume-dropout").join("checkpoint.safetensors");
    let mut first = make(7);
    first.checkpoint = Some(ckpt.clone());
    first
        .fit_one_cycle(&train, &valid, 2, 0.05, &mut |_| ControlFlow::Break(()))
        .unwrap();
    drop(first);
    let mut second = make(7);
    second.resume(&ckpt).unwrap();
    let rest = second
        .fit_one_cycle(&train, &valid, 2, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(rest[0].train_loss, full[1].train_loss);
    for ((na, va), (_, vb)) in tensors(&whole).iter().zip(&tensors(&second)) {
        assert!(va == vb, "{na} differs after resuming");
    }
}

/// A learning rate that blows the loss up stops training with `Diverged`, and the checkpoint of
/// the last good epoch is still there and loads.
#[test]
fn divergence_stops_training_and_keeps_the_last_checkpoint() {
    let (train, valid) = data();
    let ckpt = tmp("diverge").join("checkpoint.safetensors");
    let mut l = learner(sgd());
    l.checkpoint = Some(ckpt.clone());
    l.fit_one_cycle(&train, &valid, 1, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let before = std::fs::read(&ckpt).unwrap();
    let err = l
        .fit_one_cycle(&train, &valid, 2, 1e30, &mut |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("diverged"), "{err}");
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the last good checkpoint is untouched"
    );
    let (_, info) = load_checkpoint(gpu(), &ckpt).unwrap();
    assert_eq!(info.epoch, 1);
}

/// Broken and foreign files are refused with an error naming the file, never a panic.
#[test]
fn bad_checkpoints_are_refused() {
    let (train, valid) = data();
    let dir = tmp("bad");
    let ckpt = dir.join("checkpoint.safetensors");
    let mut l = learner(sgd());
    l.checkpoint = Some(ckpt.clone());
    l.fit_one_cycle(&train, &valid, 1, 0.05, &mut |_| ControlFlow::Break(()))
        .unwrap();
    let good = std::fs::read(&ckpt).unwrap();
    let path = dir.join("bad.safetensors");
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated header", good[..6].to_vec()),
        ("truncated data", good[..good.len() / 2].to_vec()),
        ("garbage", vec![0xff; 64]),
    ];
    // plain weights (no checkpoint metadata)
    let weights = dir.join("weights.safetensors");
    convoy::io::safetensors::save_safetensors(&weights, &l.store, None).unwrap();
    cases.push(("plain weights", std::fs::read(&weights).unwrap()));
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let err = learner(sgd())
            .resume(&path)
            .err()
            .unwrap_or_else(|| panic!("{what} accepted"));
        assert!(err.to_string().contains("bad.safetensors"), "{what}: {err}");
    }
    // a checkpoint of another model: the mismatch names a tensor when the step compiles
    let mut other = Learner::new(gpu(), Box::new(simple_cnn(12)), sgd(), 64, 7);
    other.resume(&ckpt).unwrap();
    let err = other
        .fit_one_cycle(&train, &valid, 2, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(err.to_string().contains("12"), "{err}");
}

/// Activation statistics gathered during training: one record per batch for every ReLU output,
/// consistent with what the layer holds (ReLU outputs: mean >= 0, histogram counts summing to at
/// most the activation's size), and the plots render as PNG.
#[test]
fn activation_stats_are_recorded_and_plotted() {
    let (train, valid) = data();
    let mut l = learner(sgd());
    l.watch_activations(Default::default());
    l.fit_one_cycle(&train, &valid, 1, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let st = l.stats.as_ref().unwrap();
    assert_eq!(st.names, ["conv0", "conv1", "conv2", "conv3"]);
    assert_eq!(st.batches.len(), train.n / 64);
    // simple_cnn's activations at batch 64: 8x14x14, 16x7x7, 32x4x4, 64x2x2 per image
    let sizes = [64 * 8 * 14 * 14, 64 * 16 * 7 * 7, 64 * 32 * 4 * 4, 64 * 64 * 2 * 2];
    for b in &st.batches {
        for (layer, s) in b.iter().enumerate() {
            assert_eq!(s.len(), 3 + 40);
            assert!(
                s[0] >= 0.0 && s[1] >= 0.0 && (0.0..=1.0).contains(&s[2]),
                "{layer}: {:?}",
                &s[..3]
            );
            let counted: f32 = s[3..].iter().sum();
            assert!(counted <= sizes[layer] as f32 && counted > 0.0);
            // ReLU zeros fall in the first bin, so it holds at least the near-zero fraction's zeros
            assert!(s[3] >= 1.0);
        }
    }
    use convoy::diag::plots;
    for png in [
        plots::training_curves(&l.recorder).unwrap(),
        plots::activation_curves(st).unwrap(),
        plots::colorful_dimension(st).unwrap(),
    ] {
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 10_000);
    }
}

/// End to end on an image folder (PNG and JPEG, odd sizes, two colour classes) with progressive
/// resizing (12 then 16 pixels): the pipeline decodes, augments, batches on the background
/// thread, and the model learns the classes.
#[test]
fn trains_on_an_image_folder_with_progressive_resizing() {
    let root = common::images::make_folder("train-folder");
    let (train, val) = convoy::data::ImageFolder::open(&root, 16).unwrap();
    let model = convoy::nn::by_name("simple_cnn", 2, 3).unwrap();
    let mut l = Learner::new(gpu(), model, sgd(), 4, 1);
    l.sizes = vec![12, 16];
    let stats = l
        .fit_one_cycle(&train, &val, 4, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let last = stats.last().unwrap();
    assert!(last.train_loss < stats[0].train_loss, "{stats:?}");
    assert_eq!(last.top1, 1.0, "{stats:?}");
    // the classifier head for more classes than the data has is fine; fewer is an error
    let small = convoy::nn::by_name("simple_cnn", 1, 3).unwrap();
    let err = Learner::new(gpu(), small, sgd(), 4, 1)
        .fit_one_cycle(&train, &val, 1, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap_err();
    assert!(err.to_string().contains("2 classes"), "{err}");
}

/// `fit` keeps the learning rate and momentum constant; `fit_one_cycle` warms up and anneals.
#[test]
fn fit_is_constant_and_one_cycle_is_not() {
    let (train, valid) = data();
    let mut l = learner(sgd());
    l.fit(&train, &valid, 1, 0.01, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert!(l.recorder.iter().all(|r| r.1 == 0.01 && r.2 == 0.9), "{:?}", l.recorder);
    let mut c = learner(sgd());
    c.fit_one_cycle(&train, &valid, 1, 0.01, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let lrs: Vec<f32> = c.recorder.iter().map(|r| r.1).collect();
    let peak = lrs.iter().copied().fold(0.0, f32::max);
    assert!(
        lrs[0] < peak / 10.0 && lrs[lrs.len() - 1] < peak / 5.0 && peak <= 0.01,
        "{lrs:?}"
    );
}

/// Weights holding NaN or infinity are refused by default, naming the tensor and element; the
/// option lets them through.
#[test]
fn non_finite_weights_are_refused_unless_allowed() {
    use convoy::io::safetensors::{encode_safetensors, HostData, HostTensor};
    let dir = tmp("nan");
    let path = dir.join("w.safetensors");
    let mut t = std::collections::BTreeMap::new();
    t.insert(
        "conv0.0.weight".to_string(),
        HostTensor {
            shape: vec![2, 1, 1, 1],
            data: HostData::F32(vec![0.5, f32::NAN]),
        },
    );
    std::fs::write(&path, encode_safetensors(&t).unwrap()).unwrap();
    let err = learner(sgd()).load_weights(&path, &[]).unwrap_err().to_string();
    assert!(
        err.contains("conv0.0.weight") && err.contains("NaN") && err.contains("element 1"),
        "{err}"
    );
    let mut l = learner(sgd());
    l.allow_non_finite_weights = true;
    assert_eq!(l.load_weights(&path, &[]).unwrap(), ["conv0.0.weight"]);
}

/// Discriminative learning rates reach the optimizer: a group at multiplier 0 does not move
/// (its learning rate, and so its weight decay, is 0), the others train.
#[test]
fn lr_groups_scale_each_group_learning_rate() {
    let (train, valid) = data();
    let mut l = learner(sgd());
    l.set_lr_groups(&[("conv0.", 0.0), ("conv1.", 0.5)]).unwrap();
    // initialise, then keep the starting weights
    l.fit(&train, &valid, 1, 0.05, &mut |_| ControlFlow::Break(())).unwrap();
    let before: std::collections::HashMap<_, _> = tensors(&l).into_iter().collect();
    l.fit(&train, &valid, 2, 0.05, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    let after: std::collections::HashMap<_, _> = tensors(&l).into_iter().collect();
    for frozen in ["conv0.0.weight", "conv0.1.weight", "conv0.1.bias"] {
        assert_eq!(before[frozen], after[frozen], "{frozen} moved at multiplier 0");
    }
    for trained in ["conv1.0.weight", "conv2.0.weight", "conv4.0.bias"] {
        assert_ne!(before[trained], after[trained], "{trained} did not train");
    }
}
