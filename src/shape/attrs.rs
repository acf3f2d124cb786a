//! The attributes the graph's ops carry: which activation, what a fused kernel does to its
//! result, and the arguments of dropout, padding and upsampling. Plain data here, below graph,
//! ops and kernels, so that `Op` (graph), the families' shape rules (ops) and the launchers
//! (kernels) read them without importing one another.

use crate::error::{Error, Result};

/// An elementwise activation, as an op of its own or applied in a kernel's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Act {
    #[default]
    None,
    /// max(x, 0)
    Relu,
    /// min(max(x, 0), 6): MobileNetV2's activation
    Relu6,
    /// x for x > 0, else slope * x (`torch.nn.LeakyReLU(negative_slope)`)
    LeakyRelu(f32),
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// relu6(x + 3) / 6 (MobileNetV3's gate)
    HardSigmoid,
    /// x * sigmoid(x), also called swish (EfficientNet)
    Silu,
    /// x * relu6(x + 3) / 6 (MobileNetV3)
    HardSwish,
    /// x * Phi(x), Phi the standard normal CDF (`approximate='none'`)
    Gelu,
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (`approximate='tanh'`)
    GeluTanh,
}

// A leaky slope is checked finite where it enters a graph, so equality is an equivalence.
impl Eq for Act {}

impl std::hash::Hash for Act {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code().hash(state);
        self.alpha().to_bits().hash(state);
    }
}

impl Act {
    /// Every activation with a kernel, for tests and listings (LeakyRelu with PyTorch's default
    /// slope).
    pub const ALL: [Act; 9] = [
        Act::Relu,
        Act::Relu6,
        Act::LeakyRelu(0.01),
        Act::Sigmoid,
        Act::HardSigmoid,
        Act::Silu,
        Act::HardSwish,
        Act::Gelu,
        Act::GeluTanh,
    ];

    /// The `ACT` override of `activation.wgsl`.
    pub fn code(self) -> u32 {
        match self {
            Act::None => 0,
            Act::Relu => 1,
            Act::Relu6 => 2,
            Act::LeakyRelu(_) => 3,
            Act::Sigmoid => 4,
            Act::HardSigmoid => 5,
            Act::Silu => 6,
            Act::HardSwish => 7,
            Act::Gelu => 8,
            Act::GeluTanh => 9,
        }
    }

    /// The `ACT_ALPHA` override: LeakyRelu's slope (0.01, unused, for the others).
    pub fn alpha(self) -> f32 {
        match self {
            Act::LeakyRelu(s) => s,
            _ => 0.01,
        }
    }

    /// The override constants a kernel that starts with `activation.wgsl` takes.
    pub fn constants(self) -> [(&'static str, f64); 2] {
        [("ACT", f64::from(self.code())), ("ACT_ALPHA", f64::from(self.alpha()))]
    }

    pub fn name(self) -> &'static str {
        match self {
            Act::None => "identity",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
            Act::LeakyRelu(_) => "leaky_relu",
            Act::Sigmoid => "sigmoid",
            Act::HardSigmoid => "hardsigmoid",
            Act::Silu => "silu",
            Act::HardSwish => "hardswish",
            Act::Gelu => "gelu",
            Act::GeluTanh => "gelu_tanh",
        }
    }

    /// Whether the derivative at x follows from y = act(x) alone. Such an activation's backward
    /// keeps only its output, and it can be fused into a training batch norm (whose backward
    /// sees the stored output, not the value before the activation).
    pub fn grad_from_output(self) -> bool {
        match self {
            Act::None | Act::Relu | Act::Relu6 | Act::Sigmoid | Act::HardSigmoid => true,
            // y's sign is x's only for a positive slope
            Act::LeakyRelu(s) => s > 0.0,
            Act::Silu | Act::HardSwish | Act::Gelu | Act::GeluTanh => false,
        }
    }

    /// Errors unless the activation's parameters are usable (a finite leaky slope).
    pub(crate) fn check(self, op: &str) -> Result<()> {
        match self {
            Act::LeakyRelu(s) if !s.is_finite() => Err(Error::arg(op, "negative_slope", format!("{s} is not finite"))),
            _ => Ok(()),
        }
    }
}

/// What a fused kernel does to its result before storing it: add a residual input (the skip
/// connection), then apply an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Epilogue {
    pub residual: bool,
    pub act: Act,
}

impl Epilogue {
    pub fn is_none(&self) -> bool {
        !self.residual && self.act == Act::None
    }
}

/// A dropout layer's attributes: the drop probability, per element or per image, and the
/// layer's salt (its ordinal in the graph, so layers draw different masks).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutArgs {
    pub p: f32,
    pub per_sample: bool,
    pub salt: u32,
}

/// Padding of H and W: `pads` = (top, left, bottom, right), filled with `value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pad2dArgs {
    pub pads: [usize; 4],
    pub value: f32,
}

impl Pad2dArgs {
    /// The output's (H, W) for an input of (h, w).
    pub fn out_hw(&self, h: usize, w: usize) -> [usize; 2] {
        [h + self.pads[0] + self.pads[2], w + self.pads[1] + self.pads[3]]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpsampleArgs {
    pub scale: usize,
    pub bilinear: bool,
}
