//! MNIST-style data sets (MNIST, Fashion-MNIST): the embedded Fashion-MNIST subset, or the four
//! IDX files of a full set from a folder.

use super::idx::{parse_idx, Idx};
use crate::error::{Error, Result};

/// Fashion-MNIST class names, by label.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// One split: `n` grayscale images of `h` x `w` bytes, and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    fn from_idx(images: Idx, labels: Idx, name: &str) -> Result<Split> {
        let [n, h, w] = images.dims[..] else {
            return Err(Error::format(
                name,
                format!("images must have 3 dimensions (N, H, W), got {:?}", images.dims),
            ));
        };
        if labels.dims != [n] {
            return Err(Error::format(
                name,
                format!(
                    "labels have dimensions {:?}, expected [{n}] to match the images",
                    labels.dims
                ),
            ));
        }
        Ok(Split {
            n,
            h,
            w,
            images: images.data,
            labels: labels.data,
        })
    }

    /// Image `i` scaled to [0, 1].
    pub fn image(&self, i: usize) -> Vec<f32> {
        let px = self.h * self.w;
        self.images[i * px..(i + 1) * px]
            .iter()
            .map(|&b| b as f32 / 255.0)
            .collect()
    }

    /// The number of distinct classes (the largest label plus one).
    pub fn classes(&self) -> usize {
        self.labels.iter().copied().max().map_or(0, |m| m as usize + 1)
    }
}

#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Split,
    pub test: Split,
}

const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Mnist {
    /// Parse the four IDX files (train images, train labels, test images, test labels).
    pub fn from_bytes(files: [(&[u8], &str); 4]) -> Result<Mnist> {
        let p: Vec<Idx> = files
            .iter()
            .map(|(b, name)| parse_idx(b, name))
            .collect::<Result<_>>()?;
        let [ti, tl, vi, vl]: [Idx; 4] = p
            .try_into()
            .map_err(|_| Error::format("mnist", "four files expected"))?;
        Ok(Mnist {
            train: Split::from_idx(ti, tl, files[0].1)?,
            test: Split::from_idx(vi, vl, files[2].1)?,
        })
    }

    /// The Fashion-MNIST subset compiled into convoy: 10,000 training and 2,000 test images
    /// (data/fashion-mnist, from Debian's dataset-fashion-mnist; MIT licence, Zalando SE).
    pub fn fashion_embedded() -> Result<Mnist> {
        macro_rules! embedded {
            ($f:literal) => {
                (
                    &include_bytes!(concat!("../../data/fashion-mnist/", $f, ".gz"))[..],
                    $f,
                )
            };
        }
        Mnist::from_bytes([
            embedded!("train-images-idx3-ubyte"),
            embedded!("train-labels-idx1-ubyte"),
            embedded!("t10k-images-idx3-ubyte"),
            embedded!("t10k-labels-idx1-ubyte"),
        ])
    }

    /// Read a full set from a folder holding the four IDX files, gzip (`.gz`) or not, as in
    /// the original distribution (e.g. /usr/share/datasets/fashion-mnist).
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Mnist> {
        let dir = dir.as_ref();
        let mut bytes = Vec::new();
        let mut names = Vec::new();
        for f in FILES {
            let gz = dir.join(format!("{f}.gz"));
            let path = if crate::io::exists(&gz) { gz } else { dir.join(f) };
            bytes.push(crate::io::read_file(&path)?);
            names.push(path.display().to_string());
        }
        Mnist::from_bytes([
            (&bytes[0], &names[0]),
            (&bytes[1], &names[1]),
            (&bytes[2], &names[2]),
            (&bytes[3], &names[3]),
        ])
    }
}
