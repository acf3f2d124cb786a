//! A small synthetic image folder (ImageNet layout) for the data and training tests.

use convoy::Rng;
use std::path::{Path, PathBuf};

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("convoy-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An RGB image of a solid colour with a little noise, as PNG or JPEG by extension.
pub fn write_image(path: &Path, w: u32, h: u32, rgb: [u8; 3], rng: &mut Rng) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |_, _| {
        let mut j = |c: u8| c.saturating_add((rng.uniform() * 20.0) as u8);
        image::Rgb([j(rgb[0]), j(rgb[1]), j(rgb[2])])
    });
    img.save(path).unwrap();
}

/// train/{cat,dog}, val/{dog}; odd sizes, both formats, a stray text file.
pub fn make_folder(name: &str) -> PathBuf {
    let root = tmp(name);
    let mut rng = Rng::new(1);
    for i in 0..6 {
        write_image(
            &root.join(format!("train/cat/{i}.png")),
            37,
            29,
            [200, 30, 30],
            &mut rng,
        );
        write_image(
            &root.join(format!("train/dog/{i}.JPG")),
            23,
            41,
            [30, 30, 200],
            &mut rng,
        );
    }
    write_image(&root.join("val/dog/a.jpeg"), 30, 30, [30, 30, 200], &mut rng);
    write_image(&root.join("val/cat/b.png"), 50, 20, [200, 30, 30], &mut rng);
    std::fs::write(root.join("train/cat/notes.txt"), "not an image").unwrap();
    root
}
