//! The executor: memory planning never lets two live values share a buffer, optimizers follow
//! PyTorch's update rules, and a small CNN overfits one batch.

mod common;

use common::gpu;
use convoy::data::Mnist;
use convoy::graph::{Graph, ValueId, ValueKind};
use convoy::internals::passes::{autodiff, memory};
use convoy::nn::{simple_cnn, Model, Net};
use convoy::ops::Conv2dArgs;
use convoy::train::Optimizer;
use convoy::Rng;
use convoy::{ParamStore, Tensor, TrainStep};

/// A random graph of convs, relus, adds (skip connections over random distances) and
/// reshapes, ending in a loss; then its backward graph.
fn random_graph(rng: &mut Rng) -> (Graph, ValueId) {
    let mut g = Graph::new();
    let c = rng.int(1, 4);
    let x = g.input("x", [2, c, 5, 5]);
    let mut live = vec![x];
    for i in 0..rng.int(3, 12) {
        let a = live[rng.int(0, live.len() - 1)];
        let v = match rng.int(0, 2) {
            0 => {
                let w = g.param(&format!("w{i}"), [c, c, 3, 3], true);
                g.conv2d(a, w, None, Conv2dArgs::default().padding(1)).unwrap()
            }
            1 => g.relu(a),
            _ => {
                let b = live[rng.int(0, live.len() - 1)];
                g.add(a, b).unwrap()
            }
        };
        live.push(v);
    }
    let last = *live.last().unwrap();
    let f = g.flatten(last).unwrap();
    let w = g.param("fc", [3, c * 25], true);
    let logits = g.linear(f, w, None).unwrap();
    let y = g.labels("y", 2);
    let loss = g.cross_entropy(logits, y, 0.0).unwrap();
    autodiff::backward(&mut g, loss).unwrap();
    (g, loss)
}

#[test]
fn memory_plan_never_aliases_live_values() {
    let mut rng = Rng::new(1);
    for _ in 0..200 {
        let (g, loss) = random_graph(&mut rng);
        let plan = memory::plan(&g, &[loss]);
        // Independent liveness: a base value lives from its producer to the last node reading
        // it or any view of it (to the end if kept).
        let n = g.nodes.len();
        let mut range: Vec<Option<(usize, usize)>> = vec![None; g.values.len()];
        for (i, node) in g.nodes.iter().enumerate() {
            for &o in &node.outputs {
                let b = memory::base_of(&g, o);
                if b == o {
                    range[o.0] = Some((i, i));
                }
            }
            for &v in &node.inputs {
                let b = memory::base_of(&g, v).0;
                if let Some((s, _)) = range[b] {
                    range[b] = Some((s, range[b].unwrap().1.max(i)));
                }
            }
        }
        range[memory::base_of(&g, loss).0] = range[memory::base_of(&g, loss).0].map(|(s, _)| (s, n));
        let temps: Vec<usize> = (0..g.values.len())
            .filter(|&v| g.values[v].kind == ValueKind::Temp && memory::base_of(&g, ValueId(v)).0 == v)
            .collect();
        for &v in &temps {
            let slot = plan.slot_of[v].expect("every temporary has a slot");
            let bytes = g.values[v].shape.numel() as u64 * 4;
            assert!(plan.slot_bytes[slot] >= bytes, "slot {slot} too small for value {v}");
        }
        for (i, &a) in temps.iter().enumerate() {
            for &b in &temps[i + 1..] {
                if plan.slot_of[a] != plan.slot_of[b] {
                    continue;
                }
                let (sa, ea) = range[a].unwrap();
                let (sb, eb) = range[b].unwrap();
                // sharing is fine only if one dies strictly before the other is written
                assert!(
                    ea < sb || eb < sa,
                    "values {a} [{sa},{ea}] and {b} [{sb},{eb}] share slot {:?}\n{}",
                    plan.slot_of[a],
                    g.dump()
                );
            }
        }
        assert!(plan.total_bytes() <= temps.iter().map(|&v| g.values[v].shape.numel() as u64 * 4).sum::<u64>());
        // the live peak, node by node from the independent liveness: what the plan reports, and
        // no more than it allocates
        let peak = (0..=n)
            .map(|i| {
                temps
                    .iter()
                    .filter(|&&v| range[v].is_some_and(|(s, e)| s <= i && i <= e))
                    .map(|&v| g.values[v].shape.numel() as u64 * 4)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        assert_eq!(plan.live_peak_bytes(&g), peak);
        assert!(plan.total_bytes() >= peak);
    }
}

/// linear + cross-entropy gradients in f64, by hand: dlogits = (softmax - onehot) / N.
fn linear_ce_grads(
    x: &[f64],
    w: &[f64],
    b: &[f64],
    labels: &[i32],
    n: usize,
    fin: usize,
    k: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut dw = vec![0.0; k * fin];
    let mut db = vec![0.0; k];
    for i in 0..n {
        let logits: Vec<f64> = (0..k)
            .map(|o| b[o] + (0..fin).map(|j| x[i * fin + j] * w[o * fin + j]).sum::<f64>())
            .collect();
        let mx = logits.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = logits.iter().map(|l| (l - mx).exp()).sum();
        for o in 0..k {
            let d = ((logits[o] - mx).exp() / z - f64::from(u8::from(o as i32 == labels[i]))) / n as f64;
            db[o] += d;
            for j in 0..fin {
                dw[o * fin + j] += d * x[i * fin + j];
            }
        }
    }
    (dw, db)
}

fn optimizer_matches_pytorch_rule(opt: Optimizer) {
    let g = gpu();
    // w's 12 elements take the update kernel's vec4 lanes, b's 3 its scalar ones
    let (n, fin, k) = (6, 4, 3);
    let mut rng = Rng::new(9);
    let x: Vec<f32> = rng.vec(n * fin, -1.0, 1.0);
    let labels: Vec<i32> = (0..n).map(|_| rng.int(0, k - 1) as i32).collect();
    let w0 = rng.vec(k * fin, -0.5, 0.5);
    let b0 = rng.vec(k, -0.5, 0.5);
    let mut graph = Graph::new();
    let xi = graph.input("x", [n, fin]);
    let wv = graph.param("w", [k, fin], true);
    let bv = graph.param("b", [k], true);
    let logits = graph.linear(xi, wv, Some(bv)).unwrap();
    let y = graph.labels("y", n);
    let loss = graph.cross_entropy(logits, y, 0.0).unwrap();
    let mut store = ParamStore::new();
    store.insert("w", Tensor::from_slice(g, &w0, [k, fin]).unwrap());
    store.insert("b", Tensor::from_slice(g, &b0, [k]).unwrap());
    let mut step = TrainStep::compile(g, graph, loss, &[], &mut store, opt).unwrap();

    // The same steps in f64 with PyTorch's formulas.
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut p: Vec<Vec<f64>> = vec![
        w0.iter().map(|&v| v as f64).collect(),
        b0.iter().map(|&v| v as f64).collect(),
    ];
    let mut s1: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut s2 = s1.clone();
    for t in 1..=4 {
        step.step(&x, &labels).unwrap();
        let (dw, db) = linear_ce_grads(&x64, &p[0], &p[1], &labels, n, fin, k);
        for (pi, gi) in [dw, db].into_iter().enumerate() {
            for j in 0..gi.len() {
                let (g, w) = (gi[j], p[pi][j]);
                match opt {
                    Optimizer::Sgd {
                        lr,
                        momentum,
                        weight_decay,
                        nesterov,
                    } => {
                        let d = g + weight_decay as f64 * w;
                        let buf = if t == 1 { d } else { momentum as f64 * s1[pi][j] + d };
                        s1[pi][j] = buf;
                        let d = if nesterov { d + momentum as f64 * buf } else { buf };
                        p[pi][j] = w - lr as f64 * d;
                    }
                    Optimizer::AdamW {
                        lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                    } => {
                        let (lr, b1, b2) = (lr as f64, beta1 as f64, beta2 as f64);
                        let w = w * (1.0 - lr * weight_decay as f64);
                        s1[pi][j] = b1 * s1[pi][j] + (1.0 - b1) * g;
                        s2[pi][j] = b2 * s2[pi][j] + (1.0 - b2) * g * g;
                        let mh = s1[pi][j] / (1.0 - b1.powi(t));
                        let vh = s2[pi][j] / (1.0 - b2.powi(t));
                        p[pi][j] = w - lr * mh / (vh.sqrt() + eps as f64);
                    }
                }
            }
        }
    }
    for (name, want) in [("w", &p[0]), ("b", &p[1])] {
        let got = store.get(name).unwrap().to_vec().unwrap();
        // four f32 steps from the same start: errors of a few ulps of the weights
        common::assert_close(&format!("{opt:?} {name}"), &got, want, 1e-5);
    }
}

#[test]
fn sgd_momentum_weight_decay_matches_pytorch() {
    optimizer_matches_pytorch_rule(Optimizer::Sgd {
        lr: 0.3,
        momentum: 0.9,
        weight_decay: 0.01,
        nesterov: false,
    });
    optimizer_matches_pytorch_rule(Optimizer::Sgd {
        lr: 0.2,
        momentum: 0.8,
        weight_decay: 0.05,
        nesterov: true,
    });
    optimizer_matches_pytorch_rule(Optimizer::sgd(0.5));
}

#[test]
fn adamw_matches_pytorch() {
    optimizer_matches_pytorch_rule(Optimizer::adamw(0.01));
    optimizer_matches_pytorch_rule(Optimizer::AdamW {
        lr: 0.05,
        beta1: 0.8,
        beta2: 0.99,
        eps: 1e-6,
        weight_decay: 0.1,
    });
}

/// The MNIST-chapter CNN's training step (SGD, lr 0.05, momentum 0.9) on the first `n` embedded
/// training images, with those images and labels.
fn simple_cnn_step(g: &convoy::Gpu, n: usize) -> (TrainStep, Vec<f32>, Vec<i32>) {
    let data = Mnist::fashion_embedded().unwrap();
    let x: Vec<f32> = (0..n).flat_map(|i| data.train.image(i)).collect();
    let y: Vec<i32> = data.train.labels[..n].iter().map(|&l| l as i32).collect();
    let mut net = Net::new(true);
    let xi = net.graph.input("x", [n, 1, 28, 28]);
    let logits = simple_cnn(10).forward(&mut net, xi).unwrap();
    let labels = net.graph.labels("labels", n);
    let loss = net.graph.cross_entropy(logits, labels, 0.0).unwrap();
    let mut store = ParamStore::new();
    net.init_params(g, &mut store, 0).unwrap();
    let opt = Optimizer::Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: false,
    };
    let step = TrainStep::compile(g, net.graph, loss, &[], &mut store, opt).unwrap();
    (step, x, y)
}

#[test]
fn small_cnn_overfits_one_batch() {
    let (mut step, x, y) = simple_cnn_step(gpu(), 32);
    assert_eq!(step.plan.stats.temp_buffers, step.plan.memory.slot_bytes.len());
    let first = step.step_read(&x, &y).unwrap()[0][0];
    for _ in 0..80 {
        step.step(&x, &y).unwrap();
    }
    let last = step.step_read(&x, &y).unwrap()[0][0];
    assert!(first > 1.5, "starts near ln(10): {first}");
    assert!(last < 0.05, "loss after 82 steps on one batch: {last} (from {first})");
    // buffer reuse: temporaries take less than one buffer each would
    let s = &step.plan.stats;
    assert!(s.temp_bytes < s.temp_bytes_unplanned, "{s:?}");
}

/// One device used from several threads at once, as an app would: one thread trains while two
/// others upload, run kernels, read back and drop tensors. On wgpu's GL backend this is what made
/// wgpu panic ("Could not lock adapter context") before convoy serialised its calls there
/// (`device::serial`); on every backend the results must stay right.
#[test]
fn one_device_shared_by_threads() {
    let g = gpu();
    std::thread::scope(|s| {
        s.spawn(|| {
            let (mut step, x, y) = simple_cnn_step(g, 16);
            let first = step.step_read(&x, &y).unwrap()[0][0];
            for _ in 0..10 {
                step.step(&x, &y).unwrap();
            }
            let last = step.step_read(&x, &y).unwrap()[0][0];
            assert!(last < first, "training beside other threads: loss {first} -> {last}");
        });
        for seed in 0..2 {
            s.spawn(move || {
                let mut rng = Rng::new(100 + seed);
                for round in 0..20 {
                    let n = rng.int(1, 5000);
                    let (a, b) = (rng.vec(n, -1.0, 1.0), rng.vec(n, -1.0, 1.0));
                    let (at, bt) = (
                        Tensor::from_slice(g, &a, [n]).unwrap(),
                        Tensor::from_slice(g, &b, [n]).unwrap(),
                    );
                    let sum = convoy::ops::add(g, &at, &bt).unwrap();
                    let got = convoy::ops::relu(g, &sum).unwrap().to_vec().unwrap();
                    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y).max(0.0)).collect();
                    assert_eq!(got, want, "thread {seed}, round {round}");
                }
            });
        }
    });
}

/// An activation larger than one storage binding of this device is refused when the plan
/// compiles, naming the value, its shape and the limit (never a driver error or a wrong result).
#[test]
fn activations_over_the_binding_limit_are_refused_by_name() {
    let g = gpu();
    let max = g.limits().max_storage_buffer_binding_size;
    // an input under the limit whose 4-channel conv output is over it
    let side = ((max / 4 / 2) as f64).sqrt() as usize;
    let mut graph = Graph::new();
    let x = graph.input("x", [1, 1, side, side]);
    let w = graph.param("w", [4, 1, 1, 1], false);
    let y = graph.conv2d(x, w, None, Conv2dArgs::default()).unwrap();
    let mut store = ParamStore::new();
    store.insert("w", Tensor::from_slice(g, &[1.0, 2.0, 3.0, 4.0], [4, 1, 1, 1]).unwrap());
    let Err(err) = convoy::Inference::compile(g, graph, &[y], &mut store) else {
        panic!("a {side}x{side}x4 activation compiled under a {max}-byte binding limit");
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("[1, 4, {side}, {side}]")) && msg.contains(&max.to_string()),
        "{msg}"
    );
}

/// A linear layer whose weight is past one storage binding (4100 x 8192 floats, 134 MB, over
/// lavapipe's and WebGPU's 128 MiB) is held as two row chunks (`nn::chunks`): its logits and one
/// SGD step with momentum and weight decay match float64, and the store saves and loads the
/// whole tensor under its own name.
#[test]
fn a_linear_layer_past_one_binding_runs_in_row_chunks() {
    use convoy::io::safetensors::{store_from_host, store_to_host, HostData};
    let g = gpu();
    let (n, fin, k) = (2, 8192, 4100);
    assert!(k * fin * 4 > g.limits().max_storage_buffer_binding_size as usize);
    let mut net = Net::new(true);
    let xi = net.graph.input("x", [n, fin]);
    let logits = net.scope("fc", |net| net.linear(xi, fin, k)).unwrap();
    let names: Vec<&str> = net.declared.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(names, ["fc.weight#0", "fc.bias#0", "fc.weight#1", "fc.bias#1"]);
    let y = net.graph.labels("y", n);
    let loss = net.graph.cross_entropy(logits, y, 0.0).unwrap();
    let mut store = ParamStore::new();
    net.init_params(g, &mut store, 3).unwrap();
    let host = store_to_host(&store, None).unwrap();
    let (HostData::F32(w0), HostData::F32(b0)) = (&host["fc.weight"].data, &host["fc.bias"].data) else {
        panic!("float tensors");
    };
    assert_eq!(host["fc.weight"].shape, [k, fin]);
    let (w0, b0): (Vec<f64>, Vec<f64>) = (
        w0.iter().map(|&v| v as f64).collect(),
        b0.iter().map(|&v| v as f64).collect(),
    );
    let mut rng = Rng::new(4);
    let x: Vec<f32> = rng.vec(n * fin, -1.0, 1.0);
    let labels = [7, 4099];
    let opt = Optimizer::Sgd {
        lr: 0.5,
        momentum: 0.9,
        weight_decay: 0.01,
        nesterov: false,
    };
    let mut step = TrainStep::compile(g, net.graph, loss, &[], &mut store, opt).unwrap();
    step.step(&x, &labels).unwrap();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let (dw, db) = linear_ce_grads(&x64, &w0, &b0, &labels, n, fin, k);
    // the first SGD step: w - lr (g + wd w) (the momentum buffer starts as the gradient)
    let after = |p: &[f64], g: &[f64]| -> Vec<f64> { p.iter().zip(g).map(|(p, g)| p - 0.5 * (g + 0.01 * p)).collect() };
    let host = store_to_host(
        &store,
        Some(&[
            "fc.weight#0".into(),
            "fc.weight#1".into(),
            "fc.bias#0".into(),
            "fc.bias#1".into(),
        ]),
    )
    .unwrap();
    for (name, want) in [("fc.weight", after(&w0, &dw)), ("fc.bias", after(&b0, &db))] {
        let HostData::F32(got) = &host[name].data else {
            panic!("{name}")
        };
        // one f32 step: the update is lr * gradient, a few ulps of the weights
        common::assert_close(&format!("chunked {name} after one step"), got, &want, 1e-5);
    }
    // and back: the whole tensors split again into the chunks the model holds
    let again = store_from_host(g, host).unwrap();
    let mut chunk_names: Vec<&String> = again.iter().map(|(n, _)| n).collect();
    chunk_names.sort();
    assert_eq!(chunk_names, ["fc.bias#0", "fc.bias#1", "fc.weight#0", "fc.weight#1"]);
}

/// A fine-tuning step whose first conv is frozen: on the cpu family that conv's weights are
/// packed once, in the prologue, and the plan's own steps (which never write them) leave the
/// packing current; rewriting them and touching the store packs them again. Every step's
/// updates equal those of a plan compiled afresh on the same weights.
#[test]
fn a_frozen_convs_packed_weights_outlive_the_steps() {
    let mut g = Graph::new();
    let x = g.input("x", [2, 3, 9, 9]);
    let w0 = g.param("w0", [8, 3, 3, 3], false);
    let a = g.conv2d(x, w0, None, Conv2dArgs::default().padding(1)).unwrap();
    let r = g.relu(a);
    let w1 = g.param("w1", [4, 8, 3, 3], true);
    let b = g.conv2d(r, w1, None, Conv2dArgs::default()).unwrap();
    let f = g.flatten(b).unwrap();
    let fc = g.param("fc", [3, 4 * 49], true);
    let logits = g.linear(f, fc, None).unwrap();
    let y = g.labels("y", 2);
    let loss = g.cross_entropy(logits, y, 0.0).unwrap();
    let mut rng = Rng::new(5);
    let xs = rng.vec(2 * 3 * 81, -1.0, 1.0);
    let ys = [0, 2];
    let shapes: [(&str, Vec<usize>); 3] = [("w0", vec![8, 3, 3, 3]), ("w1", vec![4, 8, 3, 3]), ("fc", vec![3, 196])];
    let mut stores = [ParamStore::new(), ParamStore::new()];
    for (name, shape) in &shapes {
        let v = rng.vec(shape.iter().product(), -0.3, 0.3);
        for s in &mut stores {
            s.insert(*name, Tensor::from_slice(gpu(), &v, shape.clone()).unwrap());
        }
    }
    let opt = Optimizer::Sgd {
        lr: 0.1,
        momentum: 0.0,
        weight_decay: 0.0,
        nesterov: false,
    };
    let [kept, fresh] = &mut stores;
    let mut step = TrainStep::compile(gpu(), g.clone(), loss, &[], kept, opt).unwrap();
    let packs = gpu().policy().texture_operands;
    let weights = |s: &ParamStore| -> Vec<Vec<f32>> {
        shapes
            .iter()
            .map(|(n, _)| s.get(n).unwrap().to_vec().unwrap())
            .collect()
    };
    for k in 0..4 {
        if k == 3 {
            // the frozen weights rewritten from outside, in both stores
            let v = rng.vec(8 * 27, -0.3, 0.3);
            for s in [&*kept, &*fresh] {
                s.get("w0").unwrap().write(&v).unwrap();
                s.touch();
            }
        }
        step.step(&xs, &ys).unwrap();
        TrainStep::compile(gpu(), g.clone(), loss, &[], fresh, opt)
            .unwrap()
            .step(&xs, &ys)
            .unwrap();
        assert_eq!(weights(kept), weights(fresh), "step {k}");
        if packs {
            let runs = step.plan.prologue_runs();
            assert_eq!(runs, if k < 3 { 1 } else { 2 }, "prologue runs after step {k}");
        }
    }
}
