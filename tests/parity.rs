//! Parity with PyTorch/torchvision through the CLI: `convoy infer` (eval and train mode) and
//! `convoy train-step` against fixtures written by tools/make_parity_fixtures.py, which this test
//! runs (Debian's python3-torch and python3-torchvision) when the fixtures are missing.
//!
//! A training step is judged by its update, w_after - w_before, tensor by tensor, against
//! PyTorch in float64: each tensor against its own bound, a small multiple of how far PyTorch's
//! own float32 runs land from float64 on that tensor, or float64 itself under float32-sized
//! noise (so a tensor that PyTorch float32 gets to 1e-6 is held near 1e-6, and one a ReLU kink
//! makes chaotic is not held to what no float32 implementation can do), and against PyTorch
//! float32 too. Every step's loss is compared.

mod common;

use common::fixtures::{convoy_ok, read_f32s as f32s, rel_max};

use convoy::io::safetensors::{parse_safetensors, HostData, HostTensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Logits: the bound the model-zoo issue sets, 1e-4 of the largest logit.
const TOL: f64 = 1e-4;
/// Logits with f16 activation storage: f16 rounds each stored activation to 2^-11 relative; the
/// four fixture models land 3.1e-4 to 7.4e-4 of the largest logit from PyTorch; 4e-3 is 8 f16
/// ulps (as tests/fusion.rs), and still fails a kernel that misreads a half.
const HALF_TOL: f64 = 4e-3;
/// Each tensor's update (and each step's loss) may land this many times as far from PyTorch
/// float64 as the farthest of PyTorch's three float32 runs (NCHW, channels-last, rounding noise
/// at every layer) lands on that same tensor, or as float64 itself moves under float32-sized
/// noise (1e-6 at every conv and batch-norm input: the drift float32 arithmetic accumulates),
/// whichever is larger. The second term is what a ReLU or max-pool kink makes of a fixture:
/// where float64 moves a tensor by 1e-2 under that noise, a float32 implementation whose
/// summation order crosses a kink that PyTorch float32's happened not to lands that far, and
/// is right (tools/kink_probe.py shows one such crossing in full). Measured after one step on
/// the four fixtures (lavapipe): convoy's distance is at most 1.14x PyTorch float32's on the
/// cpu family; on the gpu family (another batch-norm merge order) resnet34 crosses a kink and
/// lands 5.9e-3 from float64 on layer3.0.bn1.bias, 0.93 of its bound (float64's own drift
/// there 1.6e-3, PyTorch float32's 2.9e-4).
const SPREAD_FACTOR: f64 = 4.0;
/// A fixture whose one-step updates float64 moves by more than this under the drift noise is
/// chaotic: three steps later a per-tensor comparison measures the chaos, not convoy (PyTorch
/// float32 itself lands O(1) from float64 on resnet50 and mobilenet_v2 there), so after three
/// steps such a fixture has its losses checked and its tensors reported, not asserted.
const CHAOTIC_DRIFT: f64 = 1e-3;
/// The smallest bound on a tensor's update, relative to its norm: 8 float32 ulps (2^-20), for a
/// tensor PyTorch float32 happens to get exact; it binds on none of today's fixtures, whose
/// smallest bound is 1.65e-6.
const UPDATE_FLOOR: f64 = 1.0 / (1 << 20) as f64;
/// The smallest bound on a step's loss, relative: a tenth of the logits' TOL. Measured: convoy
/// within 5e-6 of PyTorch float64 on every step of the four fixtures.
const LOSS_FLOOR: f64 = 1e-5;

fn fixtures(case: &str) -> PathBuf {
    common::fixtures::pytorch_fixtures("make_parity_fixtures.py", "parity", case, FIXTURE_FORMAT)
}

/// tools/make_parity_fixtures.py's FORMAT.
const FIXTURE_FORMAT: u32 = 3;
/// f16's largest value is 65504; a model whose activations come within a factor 2 of it is not
/// compared with f16 storage (the random-init resnet101 and resnet152 fixtures reach 1e5-1e6,
/// where PyTorch in half precision overflows as well).
const HALF_RANGE: f64 = 32768.0;

/// A number of the fixture's meta.json.
fn meta_number(d: &Path, key: &str) -> f64 {
    let meta = std::fs::read_to_string(d.join("meta.json")).expect("meta.json");
    let at = meta
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("meta.json has no {key}"));
    let rest = &meta[at + key.len() + 4..];
    rest[..rest.find([',', '}']).expect("a number")]
        .trim()
        .parse()
        .expect("a number")
}

fn tensors(path: &Path) -> BTreeMap<String, HostTensor> {
    parse_safetensors(&std::fs::read(path).unwrap(), &path.display().to_string()).unwrap()
}

/// The float tensors of a parsed checkpoint in float64.
fn floats(ts: &BTreeMap<String, HostTensor>) -> BTreeMap<String, Vec<f64>> {
    ts.iter()
        .filter_map(|(name, t)| match &t.data {
            HostData::F32(v) => Some((name.clone(), v.iter().map(|&x| f64::from(x)).collect())),
            HostData::I64(_) => None,
        })
        .collect()
}

/// |a - b| / |b| in the Euclidean norm.
fn rel_norm(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let n: f64 = b.iter().map(|y| y * y).sum();
    (d / n.max(1e-300)).sqrt()
}

/// One tensor's update measured: convoy's distance from PyTorch float64 and from PyTorch
/// float32, PyTorch float32's own distances from float64, and the bound.
struct UpdateCheck {
    name: String,
    convoy: f64,
    vs_float32: f64,
    spread: f64,
    drift: f64,
    bound: f64,
}

impl UpdateCheck {
    fn ok(&self) -> bool {
        // the float32 comparison follows from the float64 one by the triangle inequality
        self.convoy <= self.bound && self.vs_float32 <= self.bound + self.spread.max(self.drift)
    }
}

/// Every tensor of convoy's update after `steps` steps against the fixture's updates.
fn check_updates(dir: &Path, steps: usize, got: &Path) -> Vec<UpdateCheck> {
    let before = tensors(&dir.join("weights.safetensors"));
    let after = tensors(got);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "same tensor names"
    );
    let (w0, w1) = (floats(&before), floats(&after));
    let run = |tag: &str| floats(&tensors(&dir.join(format!("update{steps}{tag}.safetensors"))));
    let (f64_ref, nchw, cl, pert, noise) = (run("_f64"), run(""), run("_cl"), run("_pert"), run("_noise"));
    let mut checks = Vec::new();
    for (name, t) in &before {
        assert_eq!(after[name].shape, t.shape, "{name}");
        if let (HostData::I64(a), HostData::I64(b)) = (&after[name].data, &t.data) {
            // num_batches_tracked: one more per step
            let want: Vec<i64> = b.iter().map(|v| v + steps as i64).collect();
            assert_eq!(a, &want, "{name}");
            continue;
        }
        let update: Vec<f64> = w1[name].iter().zip(&w0[name]).map(|(a, b)| a - b).collect();
        let reference = &f64_ref[name];
        let spread = [&nchw, &cl, &pert]
            .iter()
            .map(|r| rel_norm(&r[name], reference))
            .fold(0.0, f64::max);
        let drift = rel_norm(&noise[name], reference);
        checks.push(UpdateCheck {
            name: name.clone(),
            convoy: rel_norm(&update, reference),
            vs_float32: rel_norm(&update, &nchw[name]),
            spread,
            drift,
            bound: (SPREAD_FACTOR * spread.max(drift)).max(UPDATE_FLOOR),
        });
    }
    checks
}

fn parity(case: &str, model: &str) {
    let d = fixtures(case);
    let p = |f: &str| d.join(f).display().to_string();
    let tmp = tempdir(case);
    let t = |f: &str| tmp.join(f).display().to_string();
    let base = [
        "--model",
        model,
        "--num-classes",
        "10",
        "--weights",
        &p("weights.safetensors"),
        "--input",
        &p("x.npy"),
        // the fixtures build their models with dropout=0.0: PyTorch's masks cannot be fed in
        "--no-dropout",
    ];

    convoy_ok(&[&["infer"][..], &base, &["--output", &t("eval.npy")]].concat());
    let e = rel_max(&f32s(&tmp.join("eval.npy")), &f32s(&d.join("logits_eval.npy")));
    convoy_ok(&[&["infer"][..], &base, &["--output", &t("train.npy"), "--train-mode"]].concat());
    // train mode against float64, within TOL or SPREAD_FACTOR x PyTorch float32's own distance
    // (batch statistics of a deep net's last stage on small maps are ill-conditioned)
    let train64 = f32s(&d.join("logits_train_f64.npy"));
    let tr = rel_max(&f32s(&tmp.join("train.npy")), &train64);
    let tr32 = rel_max(&f32s(&d.join("logits_train.npy")), &train64);
    let tr_bound = TOL.max(SPREAD_FACTOR * tr32);
    println!(
        "{case}: logits relative error eval {e:.2e}, train mode {tr:.2e} from float64 (PyTorch float32 {tr32:.2e}, bound {tr_bound:.1e})"
    );
    assert!(e <= TOL, "{case} eval logits: {e:.2e}");
    assert!(tr <= tr_bound, "{case} train-mode logits: {tr:.2e} > {tr_bound:.2e}");
    // f16 activation storage against PyTorch's float32, where every activation fits in f16
    let peak = meta_number(&d, "largest_activation");
    if peak < HALF_RANGE {
        convoy_ok(&[&["infer"][..], &base, &["--output", &t("eval16.npy"), "--f16"]].concat());
        let h = rel_max(&f32s(&tmp.join("eval16.npy")), &f32s(&d.join("logits_eval.npy")));
        println!("{case}: eval with f16 activations {h:.2e}");
        assert!(h <= HALF_TOL, "{case} eval logits with f16 activations: {h:.2e}");
    } else {
        println!("{case}: f16 not compared: an activation reaches {peak:.3e}, past f16's range");
    }

    let sgd = [
        "--labels",
        &p("y.npy"),
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--weight-decay",
        "1e-4",
        "--nesterov",
        "--label-smoothing",
        "0.1",
    ];
    let mut failures = Vec::new();
    let mut chaotic = false;
    for steps in fixture_steps(&d) {
        let out = t(&format!("after{steps}.safetensors"));
        let losses = t(&format!("losses{steps}.npy"));
        convoy_ok(
            &[
                &["train-step"][..],
                &base,
                &sgd,
                &["--steps", &steps.to_string(), "--save", &out, "--loss-out", &losses],
            ]
            .concat(),
        );

        // every step's loss
        let loss = |tag: &str| f32s(&d.join(format!("losses{steps}{tag}.npy")));
        let (got, want) = (f32s(Path::new(&losses)), loss("_f64"));
        assert_eq!(got.len(), steps, "{case}: one loss per step");
        for i in 0..steps {
            let rel = |l: f32| ((l as f64 - want[i] as f64) / want[i] as f64).abs();
            let spread = ["", "_cl", "_pert"]
                .iter()
                .map(|tag| rel(loss(tag)[i]))
                .fold(0.0, f64::max);
            let drift = rel(loss("_noise")[i]);
            let bound = (SPREAD_FACTOR * spread.max(drift)).max(LOSS_FLOOR);
            println!("{case}: loss of step {} of {steps}: convoy {:.3e} from PyTorch float64 (bound {bound:.1e}; PyTorch float32 {spread:.1e}, float64 drift {drift:.1e})", i + 1, rel(got[i]));
            if rel(got[i]) > bound {
                failures.push(format!(
                    "loss of step {} of {steps}: {:.2e} > {bound:.2e}",
                    i + 1,
                    rel(got[i])
                ));
            }
        }

        let mut checks = check_updates(&d, steps, Path::new(&out));
        checks.sort_by(|a, b| (b.convoy / b.bound).total_cmp(&(a.convoy / a.bound)));
        if steps == 1 {
            chaotic = checks.iter().any(|c| c.drift > CHAOTIC_DRIFT);
        }
        println!(
            "{case}, {steps} step(s): the update of each tensor, relative to its norm; the closest to their bounds:"
        );
        println!(
            "  {:<42} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "tensor", "convoy", "bound", "f32", "vs f32", "f64+1e-6"
        );
        for c in checks.iter().take(8) {
            println!(
                "  {:<42} {:>9.2e} {:>9.2e} {:>9.2e} {:>9.2e} {:>9.2e}",
                c.name, c.convoy, c.bound, c.spread, c.vs_float32, c.drift
            );
        }
        if steps > 1 && chaotic {
            println!("{case}: chaotic (float64 moves a one-step update by more than {CHAOTIC_DRIFT:.0e} under drift noise): the tensors after {steps} steps are reported, not asserted");
            continue;
        }
        failures.extend(checks.iter().filter(|c| !c.ok()).map(|c| {
            format!(
                "{} after {steps} step(s): {:.2e} from PyTorch float64 (bound {:.2e}; PyTorch float32 {:.2e}), {:.2e} from PyTorch float32; float64 with 1e-6 input noise moves it {:.2e}",
                c.name, c.convoy, c.bound, c.spread, c.vs_float32, c.drift
            )
        }));
    }
    std::fs::remove_dir_all(tmp).ok();
    assert!(
        failures.is_empty(),
        "{case}: {} update(s) out of bounds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The step counts a fixture has updates for (meta.json's `steps`; [1, 3] where it has none):
/// none for a logits-only case.
fn fixture_steps(d: &Path) -> Vec<usize> {
    let meta = std::fs::read_to_string(d.join("meta.json")).expect("meta.json");
    let Some(at) = meta.find("\"steps\": [") else {
        return vec![1, 3];
    };
    let list = &meta[at + 10..];
    let list = &list[..list.find(']').expect("a closed list")];
    list.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().expect("a step count"))
        .collect()
}

fn tempdir(case: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("parity-out-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn resnet18_matches_pytorch() {
    parity("resnet18", "resnet18");
}

#[test]
fn resnet34_matches_pytorch() {
    parity("resnet34", "resnet34");
}

#[test]
fn resnet50_matches_pytorch() {
    parity("resnet50", "resnet50");
}

#[test]
fn mobilenet_v2_matches_pytorch() {
    parity("mobilenet_v2", "mobilenet_v2");
}

#[test]
fn resnet101_matches_pytorch() {
    parity("resnet101", "resnet101");
}

#[test]
fn resnet152_matches_pytorch() {
    parity("resnet152", "resnet152");
}

#[test]
fn resnext50_32x4d_matches_pytorch() {
    parity("resnext50_32x4d", "resnext50_32x4d");
}

#[test]
fn wide_resnet50_2_matches_pytorch() {
    parity("wide_resnet50_2", "wide_resnet50_2");
}

#[test]
fn mobilenet_v3_small_matches_pytorch() {
    parity("mobilenet_v3_small", "mobilenet_v3_small");
}

#[test]
fn mobilenet_v3_large_matches_pytorch() {
    parity("mobilenet_v3_large", "mobilenet_v3_large");
}

#[test]
fn efficientnet_b0_matches_pytorch() {
    parity("efficientnet_b0", "efficientnet_b0");
}

#[test]
fn densenet121_matches_pytorch() {
    parity("densenet121", "densenet121");
}

#[test]
fn squeezenet1_1_matches_pytorch() {
    parity("squeezenet1_1", "squeezenet1_1");
}

#[test]
fn shufflenet_v2_x1_0_matches_pytorch() {
    parity("shufflenet_v2_x1_0", "shufflenet_v2_x1_0");
}

/// Logits only: its classifier holds 124M of its 133M parameters, a 515 MB fixture (26 s to
/// make, 28 s to run here). Its first classifier weight (392 MiB) is past lavapipe's (and
/// WebGPU's default) 128 MiB storage binding, so convoy holds it as four row chunks
/// (`nn::chunks`); measured: eval logits 3.6e-6 and train-mode 3.0e-6 from float64.
#[test]
fn vgg11_bn_matches_pytorch() {
    parity("vgg11_bn", "vgg11_bn");
}
