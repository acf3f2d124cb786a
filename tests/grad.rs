//! Gradient checks: for every op's backward kernel, and for residual blocks, the GPU gradients
//! from the autodiff graph match central finite differences of a float64 CPU evaluation of the
//! same forward graph (tests/common/cpu_graph.rs).

mod common;

use common::{cpu_graph, gpu};
use convoy::graph::{Graph, ValueId, ValueKind};
use convoy::internals::passes::autodiff;
use convoy::ops::{Conv2dArgs, Pool2dArgs};
use convoy::Rng;
use convoy::{ParamStore, Plan, Tensor};
use std::collections::HashMap;

/// Relative error bound of f32 gradients against f64 finite differences. The GPU sums a few
/// hundred f32 products per gradient element (relative rounding ~1e-6); batch-norm backward
/// subtracts nearly equal terms (M*dy - sum(dy) - xhat*sum(dy*xhat)), which can amplify that
/// tenfold. Finite differences in f64 with h = 1e-6 are exact to ~1e-9.
const GRAD_TOL: f64 = 2e-4;
const H: f64 = 1e-6;

struct Case {
    g: Graph,
    feeds: HashMap<String, Vec<f64>>,
    labels: Vec<i32>,
    rng: Rng,
    classes: usize,
}

impl Case {
    fn new(seed: u64) -> Case {
        Case {
            g: Graph::new(),
            feeds: HashMap::new(),
            labels: vec![],
            rng: Rng::new(seed),
            classes: 5,
        }
    }

    fn data(&mut self, name: &str, n: usize, lo: f64, hi: f64) {
        let v = (0..n).map(|_| self.rng.range(lo, hi) as f32 as f64).collect();
        self.feeds.insert(name.to_string(), v);
    }

    /// A trainable tensor with random data: its gradient is checked.
    fn param(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> ValueId {
        self.data(name, shape.iter().product(), lo, hi);
        self.g.param(name, shape, true)
    }

    fn frozen(&mut self, name: &str, shape: &[usize], lo: f64, hi: f64) -> ValueId {
        self.data(name, shape.iter().product(), lo, hi);
        self.g.param(name, shape, false)
    }

    /// Batch-norm parameters (trainable gamma, beta) and running statistics.
    fn bn(&mut self, name: &str, c: usize) -> [ValueId; 4] {
        let gamma = self.param(&format!("{name}.weight"), &[c], 0.5, 1.5);
        let beta = self.param(&format!("{name}.bias"), &[c], -0.5, 0.5);
        self.data(&format!("{name}.running_mean"), c, -0.1, 0.1);
        self.data(&format!("{name}.running_var"), c, 0.9, 1.1);
        let rm = self.g.state(&format!("{name}.running_mean"), [c]);
        let rv = self.g.state(&format!("{name}.running_var"), [c]);
        [gamma, beta, rm, rv]
    }

    /// flatten -> frozen random linear -> cross-entropy: a scalar loss whose upstream gradients
    /// are dense and different per element.
    fn head(&mut self, h: ValueId) -> ValueId {
        let n = self.g.shape(h).dims()[0];
        let f = self.g.flatten(h).unwrap();
        let fin = self.g.shape(f).dims()[1];
        let w = self.frozen("head.weight", &[self.classes, fin], -1.0, 1.0);
        let logits = self.g.linear(f, w, None).unwrap();
        self.loss(logits, n, 0.0)
    }

    fn loss(&mut self, logits: ValueId, n: usize, smoothing: f32) -> ValueId {
        self.labels = (0..n).map(|_| self.rng.int(0, self.classes - 1) as i32).collect();
        let y = self.g.labels("labels", n);
        self.g.cross_entropy(logits, y, smoothing).unwrap()
    }

    /// Run forward + backward on the GPU and compare every trainable parameter's gradient (up
    /// to 24 elements each) with finite differences.
    fn check(mut self, what: &str, loss: ValueId) {
        let gpu = gpu();
        let mut g = self.g.clone();
        let grads = autodiff::backward(&mut g, loss).unwrap();
        let mut store = ParamStore::new();
        for v in &g.values {
            if v.kind.is_resident() {
                let d: Vec<f32> = self.feeds[&v.name].iter().map(|&x| x as f32).collect();
                store.insert(v.name.clone(), Tensor::from_slice(gpu, &d, v.shape.clone()).unwrap());
            }
        }
        let order: Vec<(ValueId, ValueId)> = grads.iter().map(|(p, d)| (*p, *d)).collect();
        let mut readable = vec![loss];
        readable.extend(order.iter().map(|(_, d)| *d));
        let plan = Plan::compile(gpu, g, &mut store, &readable, 0).unwrap();
        plan.write_labels("labels", &self.labels).unwrap();
        if let Some(s) = self.feeds.get(convoy::internals::ops::dropout::SEED_INPUT) {
            plan.write_labels(convoy::internals::ops::dropout::SEED_INPUT, &[s[0] as i32, s[1] as i32])
                .unwrap();
        }
        let out = plan.run_and_read().unwrap();

        let base = cpu_graph::eval(&self.g, &self.feeds, &self.labels);
        let l64 = cpu_graph::scalar(&base, loss);
        assert!(
            ((out[0][0] as f64) - l64).abs() <= 1e-5 * l64.abs().max(1.0),
            "{what}: loss {} vs f64 {l64}",
            out[0][0]
        );

        let trainable: Vec<ValueId> = (0..self.g.values.len())
            .map(ValueId)
            .filter(|v| self.g.value(*v).kind == ValueKind::Param { trainable: true })
            .collect();
        assert_eq!(
            trainable.len(),
            order.len(),
            "{what}: every trainable parameter gets a gradient"
        );
        for (k, (p, _)) in order.iter().enumerate() {
            let name = self.g.value(*p).name.clone();
            let got = &out[k + 1];
            let rms = (got.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / got.len() as f64)
                .sqrt()
                .max(1e-12);
            let picks: Vec<usize> = if got.len() <= 24 {
                (0..got.len()).collect()
            } else {
                (0..24).map(|_| self.rng.int(0, got.len() - 1)).collect()
            };
            for i in picks {
                let at = |delta: f64| {
                    let mut feeds = self.feeds.clone();
                    feeds.get_mut(&name).unwrap()[i] += delta;
                    cpu_graph::scalar(&cpu_graph::eval(&self.g, &feeds, &self.labels), loss)
                };
                let fd = (at(H) - at(-H)) / (2.0 * H);
                let err = (got[i] as f64 - fd).abs() / fd.abs().max(rms);
                assert!(
                    err <= GRAD_TOL,
                    "{what}: d loss / d {name}[{i}] = {} on the GPU, {fd} by finite differences (rel err {err:.2e})",
                    got[i]
                );
            }
        }
    }
}

fn conv_case(seed: u64, xs: [usize; 4], cout: usize, k: usize, args: Conv2dArgs, bias: bool) {
    let mut c = Case::new(seed);
    let x = c.param("x", &xs, -1.0, 1.0);
    let w = c.param("conv.weight", &[cout, xs[1] / args.groups, k, k], -0.5, 0.5);
    let b = bias.then(|| c.param("conv.bias", &[cout], -0.5, 0.5));
    let y = c.g.conv2d(x, w, b, args).unwrap();
    let loss = c.head(y);
    c.check(&format!("conv2d x{xs:?} cout {cout} k{k} {args:?}"), loss);
}

#[test]
fn conv2d_backward_data_weight_bias() {
    let a = |stride, padding, dilation, groups| Conv2dArgs::new(stride, padding, dilation, groups);
    conv_case(1, [2, 3, 6, 5], 4, 3, a(1, 1, 1, 1), true);
    conv_case(2, [2, 3, 7, 7], 2, 3, a(2, 1, 1, 1), false);
    conv_case(3, [1, 2, 8, 7], 3, 3, a(1, 2, 2, 1), true);
    conv_case(4, [2, 4, 6, 6], 6, 3, a(1, 1, 1, 2), true);
    conv_case(5, [2, 3, 7, 6], 3, 3, a(2, 1, 1, 3), true); // depthwise, stride 2
    conv_case(6, [2, 5, 4, 4], 3, 1, a(1, 0, 1, 1), true); // 1x1
    conv_case(7, [1, 2, 9, 9], 2, 5, a(2, 2, 1, 1), false);
}

/// Per-axis strides, paddings and dilations with rectangular kernels: Inception's 1x7 and 7x1
/// (padding (0, 3) and (3, 0)), and mixed strides and dilations, grouped and not.
#[test]
fn asymmetric_conv_backward() {
    let cases = [
        ([2, 3, 5, 9], 4, [1, 7], [1, 1], [0, 3], [1, 1], 1),
        ([2, 3, 9, 5], 4, [7, 1], [1, 1], [3, 0], [1, 1], 1),
        ([1, 4, 7, 8], 4, [3, 2], [2, 1], [1, 0], [1, 2], 2),
        ([2, 3, 6, 7], 3, [3, 3], [1, 2], [2, 1], [2, 1], 3),
    ];
    for (i, (xs, cout, [kh, kw], stride, padding, dilation, groups)) in cases.into_iter().enumerate() {
        let mut c = Case::new(120 + i as u64);
        let x = c.param("x", &xs, -1.0, 1.0);
        let w = c.param("w", &[cout, xs[1] / groups, kh, kw], -0.5, 0.5);
        let b = c.param("b", &[cout], -0.5, 0.5);
        let args = Conv2dArgs::new(1, 0, 1, groups).hw(stride, padding, dilation);
        let y = c.g.conv2d(x, w, Some(b), args).unwrap();
        let loss = c.head(y);
        c.check(&format!("conv2d x{xs:?} k{kh}x{kw} {args:?}"), loss);
    }
}

#[test]
fn random_conv_shapes() {
    let mut rng = Rng::new(77);
    for seed in 0..5 {
        let groups = [1, 2][rng.int(0, 1)];
        let k = [1, 3][rng.int(0, 1)];
        let args = Conv2dArgs::new(rng.int(1, 2), rng.int(0, k / 2), rng.int(1, 2), groups);
        let span = args.dilation[0] * (k - 1) + 1;
        let xs = [
            rng.int(1, 2),
            groups * rng.int(1, 2),
            rng.int(span, span + 4),
            rng.int(span, span + 4),
        ];
        conv_case(100 + seed, xs, groups * rng.int(1, 3), k, args, rng.int(0, 1) == 1);
    }
}

#[test]
fn batch_norm_training_backward() {
    for (seed, xs) in [(10, [3, 4, 3, 3]), (11, [2, 3, 5, 4]), (12, [8, 2, 1, 1])] {
        let mut c = Case::new(seed);
        let x = c.param("x", &xs, -2.0, 2.0);
        let bn = c.bn("bn", xs[1]);
        let y = c.g.batch_norm(x, bn, true, 0.1, 1e-5).unwrap();
        let loss = c.head(y);
        c.check(&format!("batch_norm {xs:?}"), loss);
    }
}

#[test]
fn relu_add_backward() {
    let mut c = Case::new(20);
    let a = c.param("a", &[2, 3, 4, 4], -1.0, 1.0);
    let b = c.param("b", &[2, 3, 4, 4], -1.0, 1.0);
    let s = c.g.add(a, b).unwrap();
    let r = c.g.relu(s);
    let loss = c.head(r);
    c.check("relu(add)", loss);
}

/// Every activation, alone (its own backward kernel, from its input or its output) and after a
/// training batch norm (fused there when its derivative follows from its output). Inputs over
/// [-4, 4] cover every curved region; a value within H of a kink has odds of ~1e-5.
#[test]
fn activation_backward() {
    let mut acts = convoy::ops::Act::ALL.to_vec();
    acts.push(convoy::ops::Act::LeakyRelu(-0.3));
    for (i, act) in acts.into_iter().enumerate() {
        let mut c = Case::new(40 + i as u64);
        let a = c.param("a", &[2, 3, 4, 4], -4.0, 4.0);
        let y = c.g.activation(a, act).unwrap();
        let loss = c.head(y);
        c.check(&format!("{act:?}"), loss);

        let mut c = Case::new(60 + i as u64);
        let x = c.param("x", &[3, 4, 3, 3], -2.0, 2.0);
        let bn = c.bn("bn", 4);
        let y = c.g.batch_norm(x, bn, true, 0.1, 1e-5).unwrap();
        let y = c.g.activation(y, act).unwrap();
        let loss = c.head(y);
        c.check(&format!("{act:?}(batch_norm)"), loss);
    }
}

/// Dropout and per-sample dropout (stochastic depth) between two layers: the gradient flows
/// through the kept elements, scaled, and the backward draws the forward's mask.
#[test]
fn dropout_backward() {
    for (i, per_sample) in [false, true].into_iter().enumerate() {
        let mut c = Case::new(90 + i as u64);
        c.feeds
            .insert(convoy::internals::ops::dropout::SEED_INPUT.into(), vec![77.0, 5.0]);
        let a = c.param("a", &[4, 3, 4, 4], -1.0, 1.0);
        let b = c.param("b", &[4, 3, 4, 4], -1.0, 1.0);
        let s = c.g.add(a, b).unwrap();
        let y = c.g.dropout(s, 0.3, per_sample).unwrap();
        let loss = c.head(y);
        c.check(&format!("dropout (per sample: {per_sample})"), loss);
    }
}

/// ShuffleNet's unit and a DenseNet-style concat: x split in two channel halves, one half
/// through a 1x1 conv, the halves concatenated with x itself and channel-shuffled, so every
/// gradient passes a slice, a concat and a shuffle (and x's gradients add up over three paths).
#[test]
fn concat_chunk_and_shuffle_backward() {
    let mut c = Case::new(95);
    let x = c.param("x", &[2, 4, 3, 3], -1.0, 1.0);
    let w = c.param("w", &[2, 2, 1, 1], -1.0, 1.0);
    let halves = c.g.chunk(x, 2).unwrap();
    let b = c.g.conv2d(halves[1], w, None, Conv2dArgs::default()).unwrap();
    let b = c.g.activation(b, convoy::ops::Act::Silu).unwrap();
    let y = c.g.concat(&[halves[0], b, x]).unwrap();
    let y = c.g.channel_shuffle(y, 2).unwrap();
    let loss = c.head(y);
    c.check("concat(chunk, conv(chunk), x) + shuffle", loss);
}

/// Softmax as an op inside the graph (a gate over a linear layer's outputs, scaled back into
/// the features), so its backward from the output is checked against finite differences.
#[test]
fn softmax_backward() {
    let mut c = Case::new(97);
    let x = c.param("x", &[3, 6], -2.0, 2.0);
    let p = c.g.softmax(x).unwrap();
    let y = c.g.add(p, x).unwrap();
    let loss = c.head(y);
    c.check("softmax(x) + x", loss);
}

/// Nearest and bilinear upsampling inside a graph: the backward's gather against finite
/// differences of the forward.
#[test]
fn upsample_backward() {
    for (i, (bilinear, scale)) in [(false, 2), (true, 2), (true, 3)].into_iter().enumerate() {
        let mut c = Case::new(100 + i as u64);
        let x = c.param("x", &[2, 2, 3, 4], -1.0, 1.0);
        let args = convoy::ops::UpsampleArgs { scale, bilinear };
        let y = c.g.upsample(x, args).unwrap();
        let loss = c.head(y);
        c.check(&format!("upsample {args:?}"), loss);
    }
}

/// Asymmetric padding (a constant fill) inside a graph: the crop against finite differences.
#[test]
fn pad_backward() {
    let mut c = Case::new(104);
    let x = c.param("x", &[2, 2, 3, 4], -1.0, 1.0);
    let args = convoy::ops::Pad2dArgs {
        pads: [1, 0, 2, 3],
        value: 0.5,
    };
    let y = c.g.pad2d(x, args).unwrap();
    let loss = c.head(y);
    c.check("pad2d", loss);
}

/// Non-square pooling windows through their backward kernels.
#[test]
fn non_square_pooling_backward() {
    let mut c = Case::new(110);
    let x = c.param("x", &[2, 2, 6, 5], -1.0, 1.0);
    let a =
        c.g.max_pool2d(x, Pool2dArgs::new_hw(1, 3).stride_hw(1, 2).padding_hw(0, 1))
            .unwrap();
    let b =
        c.g.avg_pool2d(a, Pool2dArgs::new_hw(3, 1).stride_hw(2, 1).padding_hw(1, 0))
            .unwrap();
    let loss = c.head(b);
    c.check("max 1x3 then avg 3x1", loss);
}

/// A squeeze-and-excite block as MobileNetV3 and EfficientNet build it: global average pool,
/// 1x1 conv (with bias), ReLU, 1x1 conv, hard sigmoid, and the gate multiplied into the input,
/// so the input's gradient flows both through the gate and around it.
#[test]
fn squeeze_excite_backward() {
    for (seed, xs, squeeze) in [(80, [2, 6, 5, 4], 3), (81, [3, 4, 1, 1], 2)] {
        let mut c = Case::new(seed);
        let c_in = xs[1];
        let x = c.param("x", &xs, -2.0, 2.0);
        let w1 = c.param("fc1.weight", &[squeeze, c_in, 1, 1], -0.8, 0.8);
        let b1 = c.param("fc1.bias", &[squeeze], -0.3, 0.3);
        let w2 = c.param("fc2.weight", &[c_in, squeeze, 1, 1], -0.8, 0.8);
        let b2 = c.param("fc2.bias", &[c_in], -0.3, 0.3);
        let p = c.g.adaptive_avg_pool2d(x, [1, 1]).unwrap();
        let h = c.g.conv2d(p, w1, Some(b1), Conv2dArgs::default()).unwrap();
        let h = c.g.relu(h);
        let s = c.g.conv2d(h, w2, Some(b2), Conv2dArgs::default()).unwrap();
        let s = c.g.activation(s, convoy::ops::Act::HardSigmoid).unwrap();
        let y = c.g.mul_channels(x, s).unwrap();
        let loss = c.head(y);
        c.check(&format!("squeeze-excite {xs:?}"), loss);
    }
}

#[test]
fn pooling_backward() {
    let mut rng = Rng::new(30);
    for (k, s, p, d) in [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2), (2, 1, 0, 1), (3, 2, 1, 2)] {
        let mut c = Case::new(rng.next_u64());
        let x = c.param("x", &[2, 2, 7, 6], -1.0, 1.0);
        let y =
            c.g.max_pool2d(x, Pool2dArgs::new(k).stride(s).padding(p).dilation(d))
                .unwrap();
        let loss = c.head(y);
        c.check(&format!("max_pool2d k{k} s{s} p{p} d{d}"), loss);
    }
    for (k, s, p, inc, ceil) in [
        (2, 2, 0, true, true),
        (3, 2, 1, true, false),
        (3, 2, 1, false, true),
        (3, 1, 1, false, false),
    ] {
        let mut c = Case::new(rng.next_u64());
        let x = c.param("x", &[2, 2, 7, 6], -1.0, 1.0);
        let args = Pool2dArgs::new(k)
            .stride(s)
            .padding(p)
            .count_include_pad(inc)
            .ceil_mode(ceil);
        let y = c.g.avg_pool2d(x, args).unwrap();
        let loss = c.head(y);
        c.check(
            &format!("avg_pool2d k{k} s{s} p{p} include_pad {inc} ceil {ceil}"),
            loss,
        );
    }
    {
        let mut c = Case::new(rng.next_u64());
        let x = c.param("x", &[2, 2, 7, 6], -1.0, 1.0);
        let y = c.g.max_pool2d(x, Pool2dArgs::new(2).stride(2).ceil_mode(true)).unwrap();
        let loss = c.head(y);
        c.check("max_pool2d k2 s2 ceil", loss);
    }
    for out in [[1, 1], [2, 3], [4, 4]] {
        let mut c = Case::new(rng.next_u64());
        let x = c.param("x", &[2, 3, 5, 7], -1.0, 1.0);
        let y = c.g.adaptive_avg_pool2d(x, out).unwrap();
        let loss = c.head(y);
        c.check(&format!("adaptive_avg_pool2d -> {out:?}"), loss);
    }
}

#[test]
fn linear_and_cross_entropy_backward() {
    for (seed, smoothing) in [(40, 0.0), (41, 0.1), (42, 0.5)] {
        let mut c = Case::new(seed);
        c.classes = 7;
        let x = c.param("x", &[5, 9], -1.0, 1.0);
        let w = c.param("fc.weight", &[7, 9], -0.5, 0.5);
        let b = c.param("fc.bias", &[7], -0.5, 0.5);
        let logits = c.g.linear(x, w, Some(b)).unwrap();
        let loss = c.loss(logits, 5, smoothing);
        c.check(&format!("linear + cross_entropy, smoothing {smoothing}"), loss);
    }
}

/// conv-BN-ReLU-conv-BN (+ shortcut) -> add -> ReLU: the ResNet basic block. `x` fans out to
/// the main path and the shortcut, so its gradient is a sum.
fn residual_block(seed: u64, cin: usize, cout: usize, stride: usize) {
    let mut c = Case::new(seed);
    let x = c.param("x", &[2, cin, 6, 6], -1.0, 1.0);
    let conv = |c: &mut Case, name: &str, h, ci, co, k, s| {
        let w = c.param(&format!("{name}.weight"), &[co, ci, k, k], -0.5, 0.5);
        c.g.conv2d(h, w, None, Conv2dArgs::default().stride(s).padding(k / 2))
            .unwrap()
    };
    let h = conv(&mut c, "conv1", x, cin, cout, 3, stride);
    let bn1 = c.bn("bn1", cout);
    let h = c.g.batch_norm(h, bn1, true, 0.1, 1e-5).unwrap();
    let h = c.g.relu(h);
    let h = conv(&mut c, "conv2", h, cout, cout, 3, 1);
    let bn2 = c.bn("bn2", cout);
    let h = c.g.batch_norm(h, bn2, true, 0.1, 1e-5).unwrap();
    let short = if stride != 1 || cin != cout {
        let s = conv(&mut c, "downsample.0", x, cin, cout, 1, stride);
        let bnd = c.bn("downsample.1", cout);
        c.g.batch_norm(s, bnd, true, 0.1, 1e-5).unwrap()
    } else {
        x
    };
    let y = c.g.add(h, short).unwrap();
    let y = c.g.relu(y);
    let loss = c.head(y);
    c.check(&format!("residual block {cin}->{cout} stride {stride}"), loss);
}

#[test]
fn residual_block_identity_shortcut() {
    residual_block(50, 3, 3, 1);
}

#[test]
fn residual_block_stride2_projection_shortcut() {
    residual_block(51, 2, 4, 2);
}
