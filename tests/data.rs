//! The embedded Fashion-MNIST subset and the IDX parser, including hostile bytes.

mod common;

use convoy::data::idx::parse_idx;
use convoy::data::Mnist;

#[test]
fn embedded_subset_has_ten_balanced_classes() {
    let m = Mnist::fashion_embedded().unwrap();
    assert_eq!((m.train.n, m.train.h, m.train.w), (10_000, 28, 28));
    assert_eq!(m.test.n, 2_000);
    assert_eq!(m.train.classes(), 10);
    for c in 0..10u8 {
        let count = m.train.labels.iter().filter(|&&l| l == c).count();
        assert!((900..=1100).contains(&count), "class {c}: {count} images");
    }
    // real images, not blank: mean intensity of Fashion-MNIST is about 0.29
    let mean = m.train.images.iter().map(|&b| b as f64).sum::<f64>() / m.train.images.len() as f64 / 255.0;
    assert!((0.25..0.33).contains(&mean), "mean {mean}");
}

#[test]
fn reads_a_full_set_from_a_folder_plain_or_gzip() {
    let m = Mnist::fashion_embedded().unwrap();
    let dir = std::env::temp_dir().join(format!("convoy-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let idx = |dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(data);
        v
    };
    let n = 50;
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx(&[n, 28, 28], &m.train.images[..n as usize * 784]),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        idx(&[n], &m.train.labels[..n as usize]),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx(&[3, 28, 28], &m.test.images[..3 * 784]),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[3], &m.test.labels[..3])).unwrap();
    let got = Mnist::from_dir(&dir).unwrap();
    assert_eq!(got.train.images, m.train.images[..n as usize * 784]);
    assert_eq!(got.test.labels, m.test.labels[..3]);
    let err = Mnist::from_dir(dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_idx_bytes_are_errors_not_panics() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("bad magic", vec![1, 2, 8, 1, 0, 0, 0, 1, 5]),
        ("float type", vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]),
        ("zero dims", vec![0, 0, 8, 0]),
        ("truncated header", vec![0, 0, 8, 3, 0, 0]),
        ("short body", vec![0, 0, 8, 1, 0, 0, 0, 9, 1, 2]),
        ("long body", vec![0, 0, 8, 1, 0, 0, 0, 1, 1, 2]),
        // 4e9 x 4e9 elements would overflow; must not allocate
        (
            "huge dims",
            vec![0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
        ),
        ("broken gzip", vec![0x1f, 0x8b, 8, 0, 1, 2, 3]),
    ];
    for (what, bytes) in cases {
        let r = parse_idx(&bytes, what);
        assert!(r.is_err(), "{what} parsed");
        assert!(r.unwrap_err().to_string().contains(what), "error names the file");
    }
    let ok = parse_idx(&[0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 2, 7, 9], "ok").unwrap();
    assert_eq!((ok.dims, ok.data), (vec![1, 2], vec![7, 9]));
}

mod folders {
    use convoy::data::transform::{crop_resize_normalize, Box2, Crop, Image, Normalize};
    use convoy::data::{Dataset, ImageFolder, Mnist};
    use convoy::Rng;

    use crate::common::images::{make_folder, tmp};

    #[test]
    fn image_folder_scans_classes_and_decodes() {
        let root = make_folder("scan");
        let (train, val) = ImageFolder::open(&root, 16).unwrap();
        assert_eq!(train.classes, ["cat", "dog"]);
        assert_eq!((train.len(), val.len()), (12, 2));
        assert_eq!(train.items.iter().filter(|i| i.1 == 1).count(), 6);
        let b = val.batch(&[0, 1], None, None).unwrap();
        assert_eq!(b.shape, [2, 3, 16, 16]);
        // val is sorted: cat/b.png (red) then dog/a.jpeg (blue); normalised red channel of the
        // red image is high, of the blue one low
        assert_eq!(b.labels, [0, 1]);
        let red = |k: usize| b.images[k * 768..k * 768 + 256].iter().sum::<f32>() / 256.0;
        assert!(red(0) > 1.0 && red(1) < -1.0, "{} {}", red(0), red(1));
        // augmented training batches at another size
        let mut rng = Rng::new(2);
        let t = train.batch(&[0, 7, 11], Some(24), Some(&mut rng)).unwrap();
        assert_eq!(t.shape, [3, 3, 24, 24]);
        assert!(t.images.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn image_folder_errors_name_the_problem() {
        let root = make_folder("errors");
        // a val class that training does not have
        std::fs::create_dir_all(root.join("val/bird")).unwrap();
        std::fs::write(root.join("val/bird/x.png"), b"").unwrap();
        let err = ImageFolder::open(&root, 16).err().unwrap().to_string();
        assert!(err.contains("bird"), "{err}");
        std::fs::remove_dir_all(root.join("val/bird")).unwrap();
        // a corrupt image fails its batch with the file's name
        std::fs::write(root.join("train/cat/0.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
        let (train, _) = ImageFolder::open(&root, 16).unwrap();
        let err = train.batch(&[0], None, None).err().unwrap().to_string();
        assert!(err.contains("0.png"), "{err}");
        // no images, and no folder at all
        let empty = tmp("empty");
        std::fs::create_dir_all(empty.join("train/a")).unwrap();
        assert!(ImageFolder::open(&empty, 16)
            .err()
            .unwrap()
            .to_string()
            .contains("no images"));
        assert!(ImageFolder::open(empty.join("missing"), 16).is_err());
    }

    #[test]
    fn crop_resize_is_exact_on_the_identity_and_mirrors_with_flip() {
        let mut rng = Rng::new(3);
        let (w, h) = (7, 5);
        let px: Vec<u8> = (0..w * h * 3).map(|_| (rng.uniform() * 255.0) as u8).collect();
        let img = Image {
            w,
            h,
            c: 3,
            pixels: &px,
        };
        let whole = Box2 {
            x: 0.0,
            y: 0.0,
            w: w as f32,
            h: h as f32,
        };
        let (mean, std) = ([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]);
        let norm = Normalize { mean: &mean, std: &std };
        let crop = Crop {
            region: whole,
            size: [h, w],
            flip: false,
        };
        let mut out = vec![0.0; 3 * w * h];
        crop_resize_normalize(&img, crop, norm, &mut out);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let want = (f32::from(px[(y * w + x) * 3 + c]) / 255.0 - mean[c]) / std[c];
                    let got = out[c * w * h + y * w + x];
                    assert!((got - want).abs() < 1e-5, "({c},{y},{x}) {got} {want}");
                }
            }
        }
        let mut flipped = vec![0.0; 3 * w * h];
        crop_resize_normalize(&img, Crop { flip: true, ..crop }, norm, &mut flipped);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(flipped[c * w * h + y * w + x], out[c * w * h + y * w + w - 1 - x]);
                }
            }
        }
    }

    #[test]
    fn mnist_batches_resize_for_progressive_resizing() {
        let m = Mnist::fashion_embedded().unwrap();
        let native = m.train.batch(&[0, 1, 2], None, None).unwrap();
        assert_eq!(native.shape, [3, 1, 28, 28]);
        let small = m.train.batch(&[0, 1, 2], Some(14), None).unwrap();
        assert_eq!(small.shape, [3, 1, 14, 14]);
        // a 2x downsample of the same images keeps their mean brightness
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&native.images) - mean(&small.images)).abs() < 0.05);
        assert!(m.train.batch(&[10_000], None, None).is_err());
    }
}
