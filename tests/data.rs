//! The embedded Fashion-MNIST subset and the IDX parser, including hostile bytes.

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
