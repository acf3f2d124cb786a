//! The fuzz targets' inputs as ordinary tests: every file of fuzz/seeds/<target>/ (the seeds,
//! and any input a fuzzing run found a fault with, added as a regression) goes through its parser, and every truncation and
//! many byte flips of a valid input of each format must give Ok or an error, never a panic.
//! `cargo test --release --test fuzz_corpus -- --ignored write_seeds` regenerates the seeds.
//! (fuzz/corpus, the working corpus `cargo fuzz` grows, is not kept in git.)

use convoy::io::npy::{encode_npy, NpyArray};
use convoy::io::safetensors::{encode_safetensors, encode_safetensors_with, HostData, HostTensor};
use convoy::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

mod common;

type Parser = fn(&[u8]);

fn targets() -> [(&'static str, Parser); 6] {
    [
        ("safetensors", |b| {
            let _ = convoy::io::safetensors::parse_safetensors(b, "t");
            let _ = convoy::io::safetensors::parse_metadata(b, "t");
        }),
        ("checkpoint", |b| {
            let _ = convoy::train::checkpoint::parse_checkpoint(b, "t");
        }),
        ("npy", |b| {
            let _ = convoy::io::npy::parse_npy(b, "t");
        }),
        ("idx", |b| {
            let _ = convoy::data::idx::parse_idx(b, "t");
        }),
        ("image", |b| {
            let _ = convoy::data::folder::decode_image(b, "t");
        }),
        ("onnx", |b| {
            if let Ok(m) = convoy::onnx::OnnxModel::from_bytes(b, "t", &convoy::onnx::NoExternalData) {
                let _ = m.describe([1, 2, 6, 5], true);
            }
        }),
    ]
}

/// A small valid input of each format.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut t = BTreeMap::new();
    t.insert(
        "conv.weight".to_string(),
        HostTensor {
            shape: vec![2, 1, 2, 2],
            data: HostData::F32(vec![0.5, -1.0, 2.0, 0.25, 1.0, 2.0, 3.0, 4.0]),
        },
    );
    t.insert(
        "bn.num_batches_tracked".to_string(),
        HostTensor {
            shape: vec![],
            data: HostData::I64(vec![7]),
        },
    );
    let st = encode_safetensors(&t).unwrap();
    let meta = HashMap::from([
        ("format".to_string(), "convoy-checkpoint-1".to_string()),
        ("epoch".to_string(), "1".to_string()),
        ("step".to_string(), "10".to_string()),
        ("epochs_total".to_string(), "3".to_string()),
        ("model".to_string(), "simple_cnn".to_string()),
        ("seed".to_string(), "0".to_string()),
    ]);
    let ckpt = encode_safetensors_with(&t, Some(meta)).unwrap();
    let npy = encode_npy(&NpyArray::F32 {
        shape: vec![2, 3],
        data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    });
    let mut idx = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
    idx.extend([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let png = convoy::io::image::encode_png(3, 2, 3, &[9u8; 18]).unwrap();
    let mut jpeg = Vec::new();
    image::RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 90]))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    vec![
        ("safetensors", "small.safetensors", st),
        ("checkpoint", "small.safetensors", ckpt),
        ("npy", "small.npy", npy),
        ("idx", "small.idx", idx),
        ("image", "small.png", png),
        ("image", "small.jpg", jpeg),
        (
            "onnx",
            "tiny.onnx",
            common::onnx_files::bytes(&common::onnx_files::tiny()),
        ),
        (
            "onnx",
            "folds.onnx",
            common::onnx_files::bytes(&common::onnx_files::folding()),
        ),
    ]
}

fn corpus_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds"))
}

#[test]
fn corpus_files_never_panic() {
    let mut files = 0;
    for (target, parse) in targets() {
        let dir = corpus_dir().join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("{} is missing: regenerate the seeds", dir.display());
        };
        for e in entries {
            let path = e.unwrap().path();
            parse(&std::fs::read(&path).unwrap());
            files += 1;
        }
    }
    assert!(files >= 8, "only {files} corpus files");
}

#[test]
fn truncations_and_flips_never_panic() {
    let parsers: HashMap<&str, Parser> = targets().into_iter().collect();
    let mut rng = Rng::new(5);
    for (target, _, bytes) in seeds() {
        let parse = parsers[target];
        parse(&bytes);
        for cut in 0..bytes.len() {
            parse(&bytes[..cut]);
        }
        // the ONNX importer has the most structure to get wrong: more flips
        let rounds = if target == "onnx" { 5000 } else { 300 };
        for _ in 0..rounds {
            let mut b = bytes.clone();
            for _ in 0..rng.int(1, 4) {
                let i = rng.int(0, b.len() - 1);
                b[i] = (rng.uniform() * 256.0) as u8;
            }
            parse(&b);
        }
    }
}

#[test]
#[ignore = "writes the seed files of fuzz/seeds"]
fn write_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
