//! Dropout: the kernel draws the mask `ops::dropout::keeps` defines, keeps 1 - p of the
//! elements (statistically), scales them by PyTorch's 1 / (1 - p), draws the same mask for the
//! backward and again for the same (seed, step), another for another step, layer or seed, and
//! whole images in per-sample mode.

use crate::common::gpu;
use convoy::internals::ops::dropout::{keeps, launch, DropoutArgs};
use convoy::Rng;
use convoy::Tensor;

fn run(args: DropoutArgs, x: &Tensor, sample: usize, seed: [u32; 2]) -> Vec<f32> {
    let g = gpu();
    let s = Tensor::from_i32(g, &[seed[0] as i32, seed[1] as i32], [2]).unwrap();
    let y = Tensor::empty(g, x.shape().clone()).unwrap();
    g.run(&[launch(g, args, x.numel(), sample, x.buffer(), s.buffer(), y.buffer()).unwrap()]);
    y.to_vec().unwrap()
}

#[test]
fn dropout_masks_scale_and_reproduce() {
    let g = gpu();
    let mut rng = Rng::new(3);
    let n = 1 << 20;
    // no zeros in x: a zero output means dropped
    let x: Vec<f32> = rng.vec(n, 0.5, 2.0);
    let xt = Tensor::from_slice(g, &x, [4, n / 4]).unwrap();
    for (p, salt) in [(0.1f32, 0u32), (0.5, 1), (0.8, 7)] {
        let args = DropoutArgs {
            p,
            per_sample: false,
            salt,
        };
        let seed = [1234, 17];
        let y = run(args, &xt, n / 4, seed);
        let scale = 1.0 / (1.0 - p);
        let mut kept = 0usize;
        for i in 0..n {
            let keep = keeps(args, seed, i, n / 4);
            assert_eq!(y[i] != 0.0, keep, "p {p}: element {i} against the reference mask");
            if keep {
                kept += 1;
                assert_eq!(y[i], x[i] * scale, "p {p}: element {i} scaled as PyTorch does");
            }
        }
        // binomial: 1 - p of n within 5 standard deviations
        let sd = (n as f64 * p as f64 * (1.0 - p as f64)).sqrt();
        let dev = (kept as f64 - n as f64 * (1.0 - p as f64)).abs();
        assert!(
            dev < 5.0 * sd,
            "p {p}: kept {kept} of {n} ({dev:.0} from the mean, sd {sd:.0})"
        );
        // the same (seed, step) draws the same mask; the backward is this kernel on dy
        assert_eq!(run(args, &xt, n / 4, seed), y);
        // another step, layer or seed: a mask that agrees with this one only by chance
        let agree = |other: Vec<f32>| {
            other
                .iter()
                .zip(&y)
                .filter(|(a, b)| (**a == 0.0) == (**b == 0.0))
                .count()
        };
        let expect = n as f64 * (p as f64 * p as f64 + (1.0 - p as f64).powi(2));
        for (what, other) in [
            ("step", run(args, &xt, n / 4, [1234, 18])),
            ("seed", run(args, &xt, n / 4, [1235, 17])),
            ("layer", run(DropoutArgs { salt: salt + 1, ..args }, &xt, n / 4, seed)),
        ] {
            let a = agree(other) as f64;
            assert!(
                (a - expect).abs() < 6.0 * (n as f64).sqrt(),
                "p {p}: another {what} agrees on {a} (independent: {expect:.0})"
            );
        }
    }
}

#[test]
fn per_sample_dropout_drops_whole_images() {
    let g = gpu();
    let (n, sample) = (4000, 3 * 5);
    let x: Vec<f32> = Rng::new(4).vec(n * sample, 0.5, 2.0);
    let xt = Tensor::from_slice(g, &x, [n, 3, 5, 1]).unwrap();
    let args = DropoutArgs {
        p: 0.25,
        per_sample: true,
        salt: 2,
    };
    let y = run(args, &xt, sample, [9, 1]);
    let mut kept = 0;
    for img in 0..n {
        let keep = keeps(args, [9, 1], img * sample, sample);
        kept += usize::from(keep);
        for j in 0..sample {
            let i = img * sample + j;
            assert_eq!(y[i], if keep { x[i] * (1.0 / 0.75) } else { 0.0 }, "image {img}");
        }
    }
    assert!(
        (kept as f64 - 3000.0).abs() < 5.0 * (n as f64 * 0.25 * 0.75).sqrt(),
        "kept {kept} of {n}"
    );
}

#[test]
fn dropout_refuses_a_probability_outside_0_1() {
    let mut graph = convoy::graph::Graph::new();
    let x = graph.input("x", [2, 3]);
    for p in [1.0, -0.1, f32::NAN] {
        let e = graph.dropout(x, p, false).unwrap_err().to_string();
        assert!(e.contains("dropout") && e.contains("p"), "{e}");
    }
    assert_eq!(graph.dropout(x, 0.0, false).unwrap(), x, "p = 0 is the identity");
}
