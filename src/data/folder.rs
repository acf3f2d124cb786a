//! Image folders in the ImageNet / Imagenette layout: `root/train/<class>/*.jpg` and
//! `root/val/<class>/*.jpg` (JPEG or PNG), classes in sorted folder order (as torchvision's
//! ImageFolder). Files are decoded with the `image` crate when a batch needs them; training
//! batches get a random resized crop and a horizontal flip, evaluation the central crop.

use super::dataset::{Batch, Dataset};
use super::transform::{center_box, crop_resize_normalize, random_resized_box, Crop, Image, Normalize};
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// Images of one split with their class indices.
pub struct ImageFolder {
    pub classes: Vec<String>,
    pub items: Vec<(PathBuf, usize)>,
    /// Side of the square batches when no size is asked for.
    pub size: usize,
}

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

impl ImageFolder {
    /// The train and val splits under `root`; val's classes must be among train's.
    pub fn open(root: impl AsRef<Path>, size: usize) -> Result<(ImageFolder, ImageFolder)> {
        let root = root.as_ref();
        let train = Self::scan(&root.join("train"), None, size)?;
        let val = Self::scan(&root.join("val"), Some(&train.classes), size)?;
        Ok((train, val))
    }

    /// One split: each sub-folder is a class. With `classes`, the folder's classes must be
    /// among them and take their indices.
    pub fn scan(dir: &Path, classes: Option<&[String]>, size: usize) -> Result<ImageFolder> {
        let folders: Vec<String> = crate::io::list_dir(dir)?
            .into_iter()
            .filter(|(_, is_dir)| *is_dir)
            .map(|(n, _)| n)
            .collect();
        let names: Vec<String> = classes.map_or_else(|| folders.clone(), <[String]>::to_vec);
        let mut items = Vec::new();
        for f in &folders {
            let Some(label) = names.iter().position(|n| n == f) else {
                return Err(Error::format(
                    dir.display(),
                    format!("class folder '{f}' is not one of the training classes"),
                ));
            };
            for (file, is_dir) in crate::io::list_dir(dir.join(f))? {
                let ext = file.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
                if !is_dir && EXTENSIONS.contains(&ext.as_str()) {
                    items.push((dir.join(f).join(file), label));
                }
            }
        }
        if items.is_empty() {
            return Err(Error::format(
                dir.display(),
                "no images (expected <class>/*.jpg|jpeg|png under this folder)",
            ));
        }
        if size == 0 {
            return Err(Error::arg("image folder", "size", "must be at least 1"));
        }
        Ok(ImageFolder {
            classes: names,
            items,
            size,
        })
    }
}

/// Images larger than this on either side are refused before decoding (a hostile header must
/// not make convoy allocate gigabytes), as are decodes needing more than `MAX_DECODE_BYTES`.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
pub const MAX_DECODE_BYTES: u64 = 512 << 20;

/// Decode image bytes (JPEG or PNG, untrusted) to 8-bit RGB: (width, height, pixels);
/// `name` labels errors.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<(usize, usize, Vec<u8>)> {
    let bad = |e: image::ImageError| Error::format(name, format!("cannot decode image: {e}"));
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::format(name, format!("cannot read image: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(bad)?.to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(Error::format(name, "image has no pixels"));
    }
    Ok((w, h, img.into_raw()))
}

fn decode(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    decode_image(&crate::io::read_file(path)?, &path.display().to_string())
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn channels(&self) -> usize {
        3
    }
    fn classes(&self) -> usize {
        self.classes.len()
    }
    fn default_size(&self) -> [usize; 2] {
        [self.size, self.size]
    }
    fn batch(&self, idx: &[usize], size: Option<usize>, mut augment: Option<&mut Rng>) -> Result<Batch> {
        let s = size.unwrap_or(self.size);
        if s == 0 {
            return Err(Error::arg("batch", "size", "must be at least 1"));
        }
        let plane = 3 * s * s;
        let mut images = vec![0.0; idx.len() * plane];
        let mut labels = Vec::with_capacity(idx.len());
        for (k, &i) in idx.iter().enumerate() {
            let (path, label) = self
                .items
                .get(i)
                .ok_or_else(|| Error::arg("batch", "index", format!("{i} is past the {} images", self.items.len())))?;
            let (w, h, pixels) = decode(path)?;
            let img = Image {
                w,
                h,
                c: 3,
                pixels: &pixels,
            };
            let (b, flip) = match augment.as_deref_mut() {
                Some(rng) => (random_resized_box(w, h, rng), rng.uniform() < 0.5),
                None => (center_box(w, h, 0.875), false),
            };
            let out = &mut images[k * plane..(k + 1) * plane];
            let crop = Crop {
                region: b,
                size: [s, s],
                flip,
            };
            crop_resize_normalize(&img, crop, Normalize::IMAGENET, out);
            labels.push(*label as i32);
        }
        Ok(Batch {
            images,
            labels,
            shape: [idx.len(), 3, s, s],
        })
    }
}
