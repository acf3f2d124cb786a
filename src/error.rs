//! One error type for the whole runtime: every variant says what went wrong and where.

use std::fmt;

/// The result type of every fallible convoy call.
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter: says how to get one.
    #[error("no GPU adapter found{detail}. {hint}")]
    NoAdapter { detail: String, hint: &'static str },

    /// The adapter was found but refused the device request.
    #[error("could not open the GPU device on '{adapter}': {reason}")]
    Device { adapter: String, reason: String },

    /// Shapes that do not fit the op: names the op, what it expected and what it got.
    #[error("{op}: expected {expected}, got {got}")]
    Shape { op: String, expected: String, got: String },

    /// A bad argument value (stride 0, groups not dividing channels, ...).
    #[error("{op}: invalid argument {arg}: {reason}")]
    Arg { op: String, arg: String, reason: String },

    /// A size beyond what the device allows.
    #[error("{what} needs {need} but the device allows at most {max}")]
    Limit { what: String, need: u64, max: u64 },

    /// A feature the adapter does not have (f16 shaders, timestamps, ...).
    #[error("{what} needs the GPU feature {feature}, which adapter '{adapter}' lacks")]
    Feature {
        what: String,
        feature: String,
        adapter: String,
    },

    /// A shader failed to compile or a pipeline failed to build.
    #[error("shader '{shader}': {reason}")]
    Shader { shader: String, reason: String },

    /// The GPU reported an error while running or reading back.
    #[error("GPU error during {during}: {reason}")]
    Gpu { during: String, reason: String },

    /// A file or stream could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A file whose content does not follow its format.
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },

    /// An error raised while building the layer a model names `layer` (`layer2.0.conv1`), so a
    /// shape that does not fit says where in the model it went wrong.
    #[error("{layer}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: Box<Error>,
    },

    /// Training produced a non-finite loss; checkpoints written before it are untouched.
    #[error("training diverged at epoch {epoch}, step {step}: the loss is {loss}; lower the learning rate or resume from the last checkpoint")]
    Diverged { epoch: usize, step: u64, loss: f32 },
}

impl Error {
    /// This error as raised in the layer `layer`, unless an inner layer already named itself.
    pub fn in_layer(self, layer: &str) -> Self {
        match self {
            Error::Layer { .. } => self,
            other if layer.is_empty() => other,
            other => Error::Layer {
                layer: layer.to_string(),
                source: Box::new(other),
            },
        }
    }

    pub fn shape(op: impl Into<String>, expected: impl fmt::Display, got: impl fmt::Display) -> Self {
        Error::Shape {
            op: op.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    pub fn arg(op: impl Into<String>, arg: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Arg {
            op: op.into(),
            arg: arg.into(),
            reason: reason.into(),
        }
    }

    pub fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    pub fn format(path: impl fmt::Display, reason: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}
