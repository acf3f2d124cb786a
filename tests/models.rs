//! The model zoo beyond the PyTorch-parity models: xresnet, MobileNet v1, plain and residual
//! deep nets train (loss falls on four batches of the embedded data, cycled); checkpoints and .npy round-trip, and
//! checkpoints that do not fit a model are refused with the names that do not fit.

mod common;

use common::gpu;
use convoy::data::Mnist;
use convoy::data::{epoch_order, Dataset};
use convoy::io::npy::{encode_npy, parse_npy, NpyArray};
use convoy::io::safetensors::{load_safetensors, save_safetensors};
use convoy::nn::{by_name, Conv2dSpec, Net};
use convoy::train::Optimizer;
use convoy::{ParamStore, TrainStep};

fn loss_falls(model: &str, steps: usize, lr: f32) {
    let g = gpu();
    let data = Mnist::fashion_embedded().unwrap();
    let bs = 16;
    let m = by_name(model, 10, 1).unwrap();
    let mut net = Net::new(true);
    let x = net.graph.input("x", [bs, 1, 28, 28]);
    let logits = m.forward(&mut net, x).unwrap();
    let y = net.graph.labels("labels", bs);
    let loss = net.graph.cross_entropy(logits, y, 0.0).unwrap();
    let mut store = ParamStore::new();
    net.init_params(g, &mut store, 1).unwrap();
    let opt = Optimizer::Sgd {
        lr,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    };
    let mut step = TrainStep::compile(g, net.graph, loss, &[], &mut store, opt).unwrap();
    // four fixed batches, cycled: the training loss on them must fall (with 16 steps, the
    // first pass over them against the last)
    let order = epoch_order(data.train.n, Some(3));
    let mut losses = Vec::new();
    for i in 0..steps {
        let j = i % 4;
        let b = data.train.batch(&order[j * bs..(j + 1) * bs], None, None).unwrap();
        losses.push(step.step_read(&b.images, &b.labels).unwrap()[0][0]);
    }
    let k = steps / 4;
    let first = losses[..k].iter().sum::<f32>() / k as f32;
    let last = losses[steps - k..].iter().sum::<f32>() / k as f32;
    println!("{model}: mean loss of the first {k} steps {first:.3}, of the last {k} {last:.3}");
    assert!(
        last.is_finite() && last < 0.8 * first,
        "{model}: loss did not fall: {losses:?}"
    );
}

#[test]
fn xresnet18_trains() {
    loss_falls("xresnet18", 16, 0.05);
}

#[test]
fn mobilenet_v1_trains() {
    // from torchvision's He-normal (fan-out) init: at lr 0.01 the loss fell 19% in 16 steps
    loss_falls("mobilenet_v1", 16, 0.02);
}

#[test]
fn plain_and_residual_nets_train() {
    loss_falls("plain8", 16, 0.05);
    loss_falls("resplain14", 16, 0.05);
}

fn resnet18_store(classes: usize) -> (Net, ParamStore) {
    let m = by_name("resnet18", classes, 3).unwrap();
    let mut net = Net::new(false);
    let x = net.graph.input("x", [1, 3, 32, 32]);
    m.forward(&mut net, x).unwrap();
    let mut store = ParamStore::new();
    net.init_params(gpu(), &mut store, 0).unwrap();
    (net, store)
}

#[test]
fn checkpoints_round_trip_with_torchvision_names() {
    let (net, store) = resnet18_store(10);
    let names = net.state_names();
    for n in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked",
        "fc.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let path = std::env::temp_dir().join(format!("convoy-ckpt-{}.safetensors", std::process::id()));
    save_safetensors(&path, &store, Some(&names)).unwrap();
    let back = load_safetensors(gpu(), &path).unwrap();
    net.check_state(&back, "round trip").unwrap();
    let a = store.get("layer3.1.conv2.weight").unwrap().to_vec().unwrap();
    assert_eq!(a, back.get("layer3.1.conv2.weight").unwrap().to_vec().unwrap());
    assert_eq!(back.counter("bn1.num_batches_tracked"), Some(0));
    std::fs::remove_file(path).ok();
}

#[test]
fn checkpoints_that_do_not_fit_name_the_tensors() {
    let (net, store) = resnet18_store(10);
    let (_, other) = resnet18_store(7); // fc has 7 outputs
    let err = net.check_state(&other, "ckpt7").unwrap_err().to_string();
    assert!(
        err.contains("mis-shaped") && err.contains("fc.weight") && err.contains("[7, 512]"),
        "{err}"
    );
    let mut missing = store.clone();
    missing.remove("layer4.1.bn2.running_mean");
    let err = net.check_state(&missing, "ckpt").unwrap_err().to_string();
    assert!(err.contains("missing tensors: layer4.1.bn2.running_mean"), "{err}");
    let mut extra = store.clone();
    extra.insert("head.weight", convoy::Tensor::zeros(gpu(), [2]).unwrap());
    let err = net.check_state(&extra, "ckpt").unwrap_err().to_string();
    assert!(err.contains("unexpected tensors: head.weight"), "{err}");
}

#[test]
fn npy_round_trips_and_rejects_bad_files() {
    for a in [
        NpyArray::F32 {
            shape: vec![2, 3],
            data: vec![1.0, -2.5, 3.0, 0.0, 1e-7, 9.0],
        },
        NpyArray::I64 {
            shape: vec![4],
            data: vec![0, 9, -1, 1 << 40],
        },
        NpyArray::F32 {
            shape: vec![1, 1, 2, 2],
            data: vec![0.5; 4],
        },
    ] {
        assert_eq!(parse_npy(&encode_npy(&a), "t").unwrap(), a);
    }
    let good = encode_npy(&NpyArray::F32 {
        shape: vec![3],
        data: vec![1.0, 2.0, 3.0],
    });
    let mut float64 = good.clone();
    let at = float64.windows(3).position(|w| w == b"<f4").unwrap();
    float64[at..at + 3].copy_from_slice(b"<f8");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..good.len() - 4].to_vec()),
        ("float64", float64),
        ("bad magic", b"NUMPY\x01\x00\x10\x00".to_vec()),
        (
            "huge header",
            [&b"\x93NUMPY\x02\x00"[..], &[0xff, 0xff, 0xff, 0x7f]].concat(),
        ),
    ];
    for (what, bytes) in cases {
        assert!(parse_npy(&bytes, what).is_err(), "{what} parsed");
    }
}

/// An error raised while a model is built names the layer it came from, innermost first, as the
/// ONNX importer's name their node: a zoo model fed the wrong number of channels, and a shape
/// that does not fit three scopes deep.
#[test]
fn build_errors_name_the_layer() {
    let m = by_name("resnet18", 10, 3).unwrap();
    let mut net = Net::new(true);
    let x = net.graph.input("x", [1, 1, 32, 32]);
    let Err(err) = m.forward(&mut net, x) else {
        panic!("1 channel into a 3-channel stem must be refused");
    };
    let err = err.to_string();
    println!("{err}");
    assert!(err.starts_with("conv1: "), "{err}");
    assert!(err.contains('3') && err.contains('1'), "{err}");

    let mut net = Net::new(true);
    let x = net.graph.input("x", [2, 4, 8, 8]);
    let built = net.scope("layer2", |n| {
        let conv = Conv2dSpec::new(3, 8, 3).padding(1).bias(false);
        n.scope("0", |n| n.scope("conv1", |n| n.conv2d(x, conv)))
    });
    let Err(err) = built else {
        panic!("4 channels into a conv of 3 must be refused");
    };
    let err = err.to_string();
    assert!(err.starts_with("layer2.0.conv1: "), "{err}");
    assert_eq!(err.matches("layer2").count(), 1, "named once, not per scope: {err}");
}
