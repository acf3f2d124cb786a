//! Training diagnostics: per-layer activation statistics gathered on the GPU during training,
//! and the plots (PNG) of a run: loss and learning rate, per-layer mean / std / near-zero curves,
//! and fastai's "colorful dimension" histogram image.

// plots draw text with ab_glyph, which plotters enables on native targets only; the web app
// draws its curves on a canvas
pub mod kernels;
#[cfg(not(target_arch = "wasm32"))]
pub mod plots;
pub mod stats;

pub use stats::{ActivationStats, StatsConfig};
