//! The activation family (`convoy::ops::activation`): every activation's forward and backward
//! kernel against its float64 reference on random shapes and data, the references' derivatives
//! against finite differences, and both against PyTorch itself.

use crate::common::{gpu, reference};
use convoy::internals::ops::activation::{self, Act};
use convoy::Rng;
use convoy::Tensor;

/// Every activation, and leaky slopes of both signs (a negative one takes its gradient from
/// the input).
fn cases() -> Vec<Act> {
    let mut v = Act::ALL.to_vec();
    v.extend([Act::LeakyRelu(0.2), Act::LeakyRelu(-0.3)]);
    v
}

/// Random values over the range where every activation is curved, plus the kinks, both sides
/// of them, and far tails (where a naive sigmoid or tanh overflows).
fn inputs(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut x = rng.vec(n, -8.0, 8.0);
    let special = [
        0.0, -0.0, 3.0, -3.0, 6.0, 1e-3, -1e-3, 2.9999, -2.9999, 6.0001, 30.0, -30.0, 100.0, -100.0, -12.0,
    ];
    for (i, &s) in special.iter().enumerate() {
        if i < x.len() {
            x[i] = s;
        }
    }
    x
}

/// Max over elements of |got - want| / max(|want|, floor).
fn err(got: &[f32], want: &[f64], floor: f64) -> f64 {
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            if g as f64 == w {
                0.0
            } else {
                (g as f64 - w).abs() / w.abs().max(floor)
            }
        })
        .fold(0.0, f64::max)
}

/// Forward kernels: within 1e-5 relative of float64 everywhere (measured 4.4e-6: the
/// driver's exp, in the tails of sigmoid, silu and gelu), and within 1e-6 of max(|y|, 1)
/// (measured 3.4e-7).
const REL_TOL: f64 = 1e-5;
/// Backward kernels are held to the 1e-6 of max(|dx|, 1) only, since two derivatives are not
/// relatively accurate in float32, in PyTorch either: sigmoid's from its output, y (1 - y),
/// once y rounds to 1, and hardswish's x/3 + 1/2 near its zero at x = -1.5.
const ABS_TOL: f64 = 1e-6;

#[test]
fn forward_and_backward_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(21);
    for act in cases() {
        let shape = [rng.int(1, 3), rng.int(1, 9), rng.int(1, 13), rng.int(2, 13)];
        let n: usize = shape.iter().product();
        let x = inputs(&mut rng, n.max(16));
        let x = &x[..n];
        let dy = rng.vec(n, -2.0, 2.0);
        let xt = Tensor::from_slice(g, x, shape).unwrap();
        let y = activation::activation(g, &xt, act).unwrap();
        let yv = y.to_vec().unwrap();
        let want: Vec<f64> = x.iter().map(|&v| reference::activation(act, v as f64)).collect();
        let what = format!("{} {shape:?}", act.name());
        assert!(
            err(&yv, &want, 1e-30) <= REL_TOL,
            "{what} forward: {:.2e}",
            err(&yv, &want, 1e-30)
        );
        assert!(
            err(&yv, &want, 1.0) <= ABS_TOL,
            "{what} forward: {:.2e}",
            err(&yv, &want, 1.0)
        );

        let dyt = Tensor::from_slice(g, &dy, shape).unwrap();
        let dx = Tensor::empty(g, shape).unwrap();
        let saved = if act.grad_from_output() { &y } else { &xt };
        g.run(&[activation::backward_kernel(g, act, n, dyt.buffer(), saved.buffer(), dx.buffer()).unwrap()]);
        let want_dx: Vec<f64> = x
            .iter()
            .zip(&dy)
            .map(|(&v, &d)| d as f64 * reference::activation_grad(act, v as f64))
            .collect();
        let dxv = dx.to_vec().unwrap();
        assert!(
            err(&dxv, &want_dx, 1.0) <= ABS_TOL,
            "{what} backward: {:.2e}",
            err(&dxv, &want_dx, 1.0)
        );
    }
}

#[test]
fn reference_derivatives_match_finite_differences() {
    // erfc at known values (Abramowitz & Stegun, table 7.1); the series loses up to 3.4 digits
    // to cancellation in 1 - erf just below its switch at 2.5
    for (x, want) in [
        (0.0, 1.0),
        (0.5, 0.4795001221869535),
        (1.0, 0.1572992070502851),
        (2.0, 4.677734981047266e-3),
        (3.0, 2.209049699858544e-5),
        (-1.0, 1.8427007929497148),
    ] {
        let got = reference::erfc(x);
        assert!((got - want).abs() <= 1e-12 * want, "erfc({x}) = {got}, want {want}");
    }
    let mut rng = Rng::new(5);
    for act in cases() {
        for _ in 0..400 {
            let x = rng.vec(1, -8.0, 8.0)[0] as f64;
            // away from the kinks, where the one-sided slopes differ
            if [0.0, 3.0, -3.0, 6.0].iter().any(|k| (x - k).abs() < 1e-3) {
                continue;
            }
            let h = 1e-6;
            let fd = (reference::activation(act, x + h) - reference::activation(act, x - h)) / (2.0 * h);
            let d = reference::activation_grad(act, x);
            assert!(
                (fd - d).abs() <= 1e-8 * d.abs().max(1.0),
                "{} at {x}: {d} vs finite difference {fd}",
                act.name()
            );
        }
    }
}

#[test]
fn a_leaky_slope_must_be_finite() {
    let mut graph = convoy::graph::Graph::new();
    let x = graph.input("x", [1, 2, 3, 3]);
    let e = graph.activation(x, Act::LeakyRelu(f32::NAN)).unwrap_err().to_string();
    assert!(e.contains("leaky_relu") && e.contains("negative_slope"), "{e}");
    let e = activation::activation(
        gpu(),
        &Tensor::zeros(gpu(), [2]).unwrap(),
        Act::LeakyRelu(f32::INFINITY),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("negative_slope"), "{e}");
}

/// PyTorch's rows (tools/make_activation_fixtures.py): `case kind values...`, the inputs and the
/// float32 rows read as float32, the float64 rows as float64.
fn torch_rows(text: &str) -> std::collections::HashMap<String, Vec<f64>> {
    let mut rows = std::collections::HashMap::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let (case, kind) = (it.next().unwrap(), it.next().unwrap());
        let v: Vec<f64> = if kind == "in" || kind.ends_with("32") {
            it.map(|t| t.parse::<f32>().unwrap() as f64).collect()
        } else {
            it.map(|t| t.parse().unwrap()).collect()
        };
        rows.insert(format!("{case} {kind}"), v);
    }
    rows
}

/// PyTorch's rows as tools/make_activation_fixtures.py printed them (Debian's torch 1.13).
fn committed_rows() -> std::collections::HashMap<String, Vec<f64>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/activations_pytorch.txt");
    torch_rows(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// Each activation against PyTorch float64 (`rows`), element by element, within 4x PyTorch
/// float32's own distance from it plus 1e-5 relative (the driver's exp, above) and 1e-7 absolute
/// (one float32 rounding at 1, where both compute 1 - something).
fn match_pytorch(rows: &std::collections::HashMap<String, Vec<f64>>) {
    let x: Vec<f32> = rows["x in"].iter().map(|&v| v as f32).collect();
    let g = gpu();
    let xt = Tensor::from_slice(g, &x, [x.len()]).unwrap();
    let ones = Tensor::from_slice(g, &vec![1.0; x.len()], [x.len()]).unwrap();
    for act in cases() {
        let case = torch_case(act);
        let y = activation::activation(g, &xt, act).unwrap();
        let dx = Tensor::empty(g, [x.len()]).unwrap();
        let saved = if act.grad_from_output() { &y } else { &xt };
        g.run(&[activation::backward_kernel(g, act, x.len(), ones.buffer(), saved.buffer(), dx.buffer()).unwrap()]);
        for (kind, got) in [("y", y.to_vec().unwrap()), ("g", dx.to_vec().unwrap())] {
            let (t32, t64) = (&rows[&format!("{case} {kind}32")], &rows[&format!("{case} {kind}64")]);
            for i in 0..x.len() {
                let bound = 4.0 * (t32[i] - t64[i]).abs() + 1e-5 * t64[i].abs() + 1e-7;
                let e = (got[i] as f64 - t64[i]).abs();
                assert!(
                    e <= bound,
                    "{case} {kind} at x = {}: convoy {} PyTorch float64 {} float32 {}",
                    x[i],
                    got[i],
                    t64[i],
                    t32[i]
                );
            }
        }
    }
}

/// The script's name of a case.
fn torch_case(act: Act) -> String {
    match act {
        Act::LeakyRelu(s) => format!("leaky_relu:{s}"),
        a => a.name().to_string(),
    }
}

/// Against PyTorch's output committed in tests/fixtures/activations_pytorch.txt.
#[test]
fn activations_match_pytorch() {
    match_pytorch(&committed_rows());
}

/// PyTorch run now (tools/make_activation_fixtures.py): convoy against its output, and the
/// committed copy the same as it to within what two PyTorch builds may differ by (their
/// vectorised exp and erf): 1e-12 of max(|v|, 1) in float64, 1e-6 in float32.
#[test]
#[ignore = "needs PyTorch (python3-torch, python3-torchvision): cargo test --release -- --include-ignored"]
fn activations_match_live_pytorch() {
    let python = crate::common::python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/make_activation_fixtures.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (needs python3-torch): {e}"));
    assert!(
        out.status.success(),
        "PyTorch failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = torch_rows(&String::from_utf8(out.stdout).unwrap());
    match_pytorch(&fresh);
    let committed = committed_rows();
    let mut keys: Vec<&String> = fresh.keys().collect();
    keys.sort();
    assert_eq!(keys, {
        let mut k: Vec<&String> = committed.keys().collect();
        k.sort();
        k
    });
    assert_eq!(fresh["x in"], committed["x in"], "the inputs");
    for key in keys {
        let tol = if key.ends_with("64") { 1e-12 } else { 1e-6 };
        let (a, b) = (&committed[key], &fresh[key]);
        assert_eq!(a.len(), b.len(), "{key}");
        let worst = a
            .iter()
            .zip(b)
            .map(|(c, f)| (c - f).abs() / f.abs().max(1.0))
            .fold(0.0, f64::max);
        println!("{key}: committed vs fresh {worst:.1e}");
        assert!(
            worst <= tol,
            "{key}: the committed copy is {worst:.1e} from PyTorch now; regenerate it with \
             `/usr/bin/python3 tools/make_activation_fixtures.py > tests/fixtures/activations_pytorch.txt`"
        );
    }
}
