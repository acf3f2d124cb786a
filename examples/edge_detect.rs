//! Hand-set convolution kernels, as in the MNIST chapter of fastai's book: the top-edge and
//! left-edge detectors applied to Fashion-MNIST images on the GPU with `ops::conv2d`.
//!
//! cargo run --release --example edge_detect [OUT_DIR]   (default: out/)
//! Writes OUT_DIR/edge_detect.png: each row is an image, its top edges and its left edges
//! (gray = 0, bright = positive response, dark = negative).

use convoy::data::Mnist;
use convoy::ops::{conv2d, Conv2dArgs};
use convoy::{Gpu, Tensor};

fn main() -> convoy::Result<()> {
    let out_dir = std::env::args().nth(1).unwrap_or_else(|| "out".into());
    let path = run(std::path::Path::new(&out_dir))?;
    println!("wrote {} (original | top edges | left edges)", path.display());
    Ok(())
}

fn run(out_dir: &std::path::Path) -> convoy::Result<std::path::PathBuf> {
    let gpu = Gpu::new()?;
    println!("{}", gpu.info());
    let data = Mnist::fashion_embedded()?;
    let test = &data.test;
    let (n, h, w) = (8, test.h, test.w);

    // A batch of n images: (N, 1, 28, 28), scaled to [0, 1].
    let pixels: Vec<f32> = (0..n).flat_map(|i| test.image(i)).collect();
    let x = Tensor::from_slice(&gpu, &pixels, [n, 1, h, w])?;

    // Both detectors as one conv with two output channels: weight (2, 1, 3, 3).
    #[rustfmt::skip]
    let kernels = [
        -1., -1., -1.,   0., 0., 0.,   1., 1., 1.,  // top edge: bright below, dark above
        -1., 0., 1.,    -1., 0., 1.,  -1., 0., 1.,  // left edge: bright right, dark left
    ];
    let weight = Tensor::from_slice(&gpu, &kernels, [2, 1, 3, 3])?;
    let args = Conv2dArgs::default().padding(1);
    let edges = conv2d(&gpu, &x, &weight, None, args)?.to_vec()?; // (N, 2, 28, 28)

    // One row per image: original | top | left, 2 pixels apart.
    let gap = 2;
    let (cols, rows) = (3 * w + 2 * gap, n * (h + gap));
    let mut img = vec![255u8; cols * rows];
    for i in 0..n {
        for y in 0..h {
            let row = (i * (h + gap) + y) * cols;
            for xx in 0..w {
                img[row + xx] = test.images[(i * h + y) * w + xx];
                for k in 0..2 {
                    // responses lie in [-3, 3]: map 0 to mid-gray
                    let v = edges[((i * 2 + k) * h + y) * w + xx];
                    img[row + (k + 1) * (w + gap) + xx] = (128.0 + v * 42.0).clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    // 3x nearest-neighbour upscale so the 28-pixel images are easy to see.
    let s = 3;
    let big: Vec<u8> = (0..rows * s)
        .flat_map(|y| (0..cols * s).map(move |x| (y, x)))
        .map(|(y, x)| img[(y / s) * cols + x / s])
        .collect();
    let path = out_dir.join("edge_detect.png");
    convoy::io::image::write_png(&path, cols * s, rows * s, 1, &big)?;
    Ok(path)
}

#[test]
fn edge_detect_writes_its_png() {
    let dir = std::env::temp_dir().join(format!("convoy-edge-{}", std::process::id()));
    let path = run(&dir).expect("edge_detect runs (needs a GPU adapter)");
    let bytes = std::fs::read(&path).expect("PNG written");
    assert_eq!(&bytes[1..4], b"PNG");
    std::fs::remove_dir_all(dir).ok();
}
