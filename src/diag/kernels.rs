//! Which kernel runs each pass of each conv of a model on a device, and why: the conv variant
//! table (`kernels::conv::variants`) read over a model's training step, as `convoy info --model`
//! prints it, with the tuner's recorded tile where it has one.

use std::fmt::Write;

use crate::device::Gpu;
use crate::error::Result;
use crate::graph::{Op, ValueId};
use crate::kernels::conv::variants::{self, Choice, Forward, InputGradient, Tiled, WeightGradient};
use crate::kernels::conv::{recorded_tile, ConvDevice};
use crate::nn::{Model, Net};
use crate::passes::{autodiff, fuse};
use crate::shape::{Conv2dGeom, DType};

/// One conv of a model and the kernel of each of its passes.
#[derive(Clone, Debug)]
pub struct ConvPasses {
    /// The conv's name: its weight's, without `.weight` (torchvision's names).
    pub layer: String,
    pub geom: Conv2dGeom,
    /// The inference forward (epilogue fused, no statistics), on `storage` activations.
    pub inference: Choice<Forward>,
    /// The training step's forward: with the batch statistics where fusion gave the conv its
    /// batch norm's.
    pub training: Choice<Forward>,
    pub training_stats: bool,
    /// None where the step computes no input gradient (the first conv: its input is the image).
    pub input_gradient: Option<Choice<InputGradient>>,
    pub weight_gradient: Option<Choice<WeightGradient>>,
}

/// Every conv of `model` on images of `shape` (N, C, H, W), in the order the forward runs them,
/// as the variant table chooses on `gpu`: a training step's graph (fused as the executor fuses
/// it where `fusion`) gives each conv's passes; the inference forward stores `storage`.
pub fn conv_passes(
    gpu: &Gpu,
    model: &dyn Model,
    shape: [usize; 4],
    storage: DType,
    fusion: bool,
) -> Result<Vec<ConvPasses>> {
    let mut net = Net::new(true);
    let x = net.graph.input("x", shape);
    let logits = model.forward(&mut net, x)?;
    let y = net.graph.labels("labels", shape[0]);
    let loss = net.graph.cross_entropy(logits, y, 0.0)?;
    let (mut g, loss) = match fusion {
        true => {
            let (fused, map) = fuse::fuse(&net.graph, fuse::Mode::Train, &[loss]);
            (fused, map[loss.0].expect("the loss survives fusion"))
        }
        false => (net.graph, loss),
    };
    autodiff::backward(&mut g, loss)?;
    let dev = ConvDevice::from(gpu);
    let mut out = Vec::new();
    for n in &g.nodes {
        let Op::Conv2d { args, stats, .. } = n.op else { continue };
        let (x, w) = (n.inputs[0], n.inputs[1]);
        let geom = Conv2dGeom::new(g.shape(x), g.shape(w), args)?;
        let reads = |op: fn(&Op) -> bool, k: usize, v: ValueId| {
            g.nodes
                .iter()
                .any(|m| op(&m.op) && m.inputs.get(k) == Some(&v) && conv_args(&m.op) == Some(args))
        };
        let name = &g.value(w).name;
        out.push(ConvPasses {
            layer: name.strip_suffix(".weight").unwrap_or(name).to_string(),
            geom,
            inference: variants::forward(dev, &geom, storage, false)?,
            training: variants::forward(dev, &geom, DType::F32, stats)?,
            training_stats: stats,
            // [dy, w] -> dx and [dy, x] -> dw
            input_gradient: reads(|o| matches!(o, Op::Conv2dBwdData { .. }), 1, w)
                .then(|| variants::input_gradient(dev, &geom, DType::F32)),
            weight_gradient: reads(|o| matches!(o, Op::Conv2dBwdWeight { .. }), 1, x)
                .then(|| variants::weight_gradient(dev, &geom, DType::F32)),
        });
    }
    Ok(out)
}

fn conv_args(op: &Op) -> Option<crate::shape::Conv2dArgs> {
    match op {
        Op::Conv2dBwdData { args } | Op::Conv2dBwdWeight { args } => Some(*args),
        _ => None,
    }
}

/// `conv_passes` as text, one block per conv: its shape, then each pass's kernel, the tiles
/// the tuner may pick, why, and the tile the tuner recorded on this device where it has one.
pub fn format_conv_passes(gpu: &Gpu, convs: &[ConvPasses]) -> String {
    let mut s = String::new();
    let tuned = |t: &Tiled, g: &Conv2dGeom| match recorded_tile(gpu, &t.tuner, g) {
        Some(tile) => format!(" [tuned: {}]", variants::tile_name(&tile)),
        None => String::new(),
    };
    let tiles_of = |k: &Forward| match k {
        Forward::Tiled { tiles, .. } => Some(tiles.clone()),
        _ => None,
    };
    for c in convs {
        let g = &c.geom;
        let a = &g.args;
        let _ = writeln!(
            s,
            "{}: x [{}, {}, {}, {}] -> [{}, {}, {}, {}], kernel {}x{}, stride {:?}, padding {:?}, dilation {:?}, groups {}",
            c.layer, g.n, g.cin, g.h, g.w, g.n, g.cout, g.oh, g.ow, g.kh, g.kw, a.stride, a.padding, a.dilation, a.groups
        );
        let mut line = |pass: &str, kernel: String, why: &str, tuned: String| {
            let _ = writeln!(s, "  {pass:<16} {kernel}{tuned}\n  {:<16} why: {why}", "");
        };
        let t = tiles_of(&c.inference.kernel).map_or(String::new(), |t| tuned(&t, g));
        line("inference", c.inference.kernel.to_string(), &c.inference.why, t);
        let t = tiles_of(&c.training.kernel).map_or(String::new(), |t| tuned(&t, g));
        line("training forward", c.training.kernel.to_string(), &c.training.why, t);
        if let Some(d) = &c.input_gradient {
            let t = match &d.kernel {
                InputGradient::Tiled(t) => tuned(t, g),
                _ => String::new(),
            };
            line("input gradient", d.kernel.to_string(), &d.why, t);
        }
        if let Some(d) = &c.weight_gradient {
            let t = match &d.kernel {
                WeightGradient::Tiled(t) | WeightGradient::Texture { tiles: t, .. } => tuned(t, g),
                _ => String::new(),
            };
            line("weight gradient", d.kernel.to_string(), &d.why, t);
        }
    }
    s
}
