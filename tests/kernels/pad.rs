//! Spatial padding (F.pad, constant) against a float64 reference, and its backward, the crop,
//! against the pad's transpose: <pad(x), dy> = <x, crop(dy)> for every x and dy.

use crate::common::{assert_close, gpu, reference};
use convoy::internals::ops::pad::{launch, pad2d, Pad2dArgs, PadBuffers};
use convoy::Rng;
use convoy::Tensor;

#[test]
fn padding_and_its_crop_match_reference() {
    let g = gpu();
    let mut rng = Rng::new(43);
    for (shape, pads, value) in [
        ([1, 1, 1, 1], [1, 1, 1, 1], 0.0),
        ([2, 3, 5, 4], [0, 1, 2, 0], 0.0),
        ([1, 2, 7, 9], [3, 0, 0, 2], -1.5),
        ([2, 1, 3, 6], [0, 0, 1, 1], 0.25),
    ] {
        let [n, c, h, w] = shape;
        let args = Pad2dArgs { pads, value };
        let [oh, ow] = args.out_hw(h, w);
        let x = rng.vec(n * c * h * w, -1.0, 1.0);
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = reference::pad2d(&xd, shape, pads, value as f64);
        let what = format!("pad2d {shape:?} by {pads:?}");
        let xt = Tensor::from_slice(g, &x, shape).unwrap();
        // a copy: exact
        assert_close(&what, &pad2d(g, &xt, args).unwrap().to_vec().unwrap(), &want, 0.0);
        // the crop: dx[i] = dy[i + (top, left)], the pad's transpose
        let dy = rng.vec(n * c * oh * ow, -1.0, 1.0);
        let mut want_dx = vec![0.0; x.len()];
        for p in 0..n * c {
            for i in 0..h {
                for j in 0..w {
                    want_dx[(p * h + i) * w + j] = dy[(p * oh + i + pads[0]) * ow + j + pads[1]] as f64;
                }
            }
        }
        let dyt = Tensor::from_slice(g, &dy, [n, c, oh, ow]).unwrap();
        let dx = Tensor::empty(g, shape).unwrap();
        let off = [-(pads[0] as i64), -(pads[1] as i64)];
        let bufs = PadBuffers {
            src: dyt.buffer(),
            dst: dx.buffer(),
        };
        g.run(&[launch(g, n * c, [oh, ow], [h, w], off, 0.0, &bufs).unwrap()]);
        assert_close(&format!("{what} backward"), &dx.to_vec().unwrap(), &want_dx, 0.0);
    }
}
