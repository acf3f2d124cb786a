//! Data sets and their parsers. Parsers take bytes; files come through `io/`.

pub mod dataset;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod mnist;
pub mod transform;

pub use dataset::{batch_indices, epoch_order, for_each_batch, Batch, Dataset};
pub use folder::ImageFolder;
pub use mnist::{Mnist, Split, FASHION_CLASSES};
