//! Data sets and their parsers. Parsers take bytes; files come through `io/`.

pub mod idx;
pub mod loader;
pub mod mnist;

pub use mnist::{Mnist, Split, FASHION_CLASSES};
