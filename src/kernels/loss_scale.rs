//! Dynamic loss scaling for mixed-precision training, with PyTorch GradScaler's semantics, kept
//! on the GPU so that a step never waits for the host: the loss's gradient is multiplied by the
//! scale (`kernels::loss`), every parameter gradient is checked for infinities and NaNs
//! (`check_finite`), the optimizer unscales them and skips the whole update where one was found
//! (`kernels::optim::update` with the scaler), and `update_scale` moves the scale afterwards.
//!
//! The scaler is one resident tensor of `STATE_LEN` floats (checkpointed with the optimizer
//! state, as GradScaler's `state_dict` holds the same fields):
//! [scale, growth tracker (clean steps since the scale last moved), found-inf flag (0 or 1,
//! cleared after every step), updates applied (AdamW's step count), growth factor, backoff
//! factor, growth interval, 0].

use super::optim::{chunk_launch, chunk_table, chunk_wgsl, storage_bindings};
use crate::device::{Binding, Dispatch, Gpu, Shader};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Floats in the scaler's state tensor.
pub const STATE_LEN: usize = 8;

/// The most gradients one check binds (as the optimizer's updates bound their tensors).
const MAX_SLOTS: usize = 128;

/// Dynamic loss scaling's settings; `Default` is PyTorch GradScaler's (2^16, x2 after 2,000
/// clean steps, x0.5 and the step skipped on an inf or NaN gradient).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScale {
    pub init_scale: f32,
    pub growth_factor: f32,
    pub backoff_factor: f32,
    pub growth_interval: u32,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

impl LossScale {
    /// An error unless the settings are ones GradScaler accepts: a finite positive scale,
    /// growth > 1, backoff in (0, 1), an interval of at least one step.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::arg("loss scale", field, why));
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return bad(
                "init_scale",
                format!("{} is not a finite positive scale", self.init_scale),
            );
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            return bad("growth_factor", format!("{} is not above 1", self.growth_factor));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return bad("backoff_factor", format!("{} is not in (0, 1)", self.backoff_factor));
        }
        if self.growth_interval == 0 || self.growth_interval > 1 << 24 {
            return bad(
                "growth_interval",
                format!("{} is not in [1, 2^24] steps", self.growth_interval),
            );
        }
        Ok(())
    }

    /// The scaler's state before the first step.
    pub fn initial_state(&self) -> [f32; STATE_LEN] {
        [
            self.init_scale,
            0.0,
            0.0,
            0.0,
            self.growth_factor,
            self.backoff_factor,
            self.growth_interval as f32,
            0.0,
        ]
    }
}

/// An error unless `state` (a checkpoint's, say) is a scaler state a step can run from.
pub fn check_state(state: &[f32], origin: &str) -> Result<()> {
    let bad = |why: String| Err(Error::format(origin, format!("loss scaler state: {why}")));
    if state.len() != STATE_LEN {
        return bad(format!("{} values, not {STATE_LEN}", state.len()));
    }
    let settings = LossScale {
        init_scale: state[0],
        growth_factor: state[4],
        backoff_factor: state[5],
        growth_interval: state[6] as u32,
    };
    if let Err(e) = settings.check() {
        return bad(e.to_string());
    }
    let whole = |v: f32| v >= 0.0 && v.fract() == 0.0 && v < (1 << 24) as f32;
    if !whole(state[1]) || !whole(state[3]) || state[6].fract() != 0.0 || !(state[2] == 0.0 || state[2] == 1.0) {
        return bad(format!("counters {:?} are not whole counts below 2^24", &state[1..4]));
    }
    Ok(())
}

/// The finite check over `grads` (element counts and buffers): sets the scaler's found-inf flag
/// where any value is an infinity or a NaN. One dispatch per `MAX_SLOTS` gradients (fewer where
/// the device binds fewer buffers), each workgroup a chunk of one gradient.
pub fn check_finite(gpu: &Gpu, scaler: &wgpu::Buffer, grads: &[(usize, &wgpu::Buffer)]) -> Result<Vec<Dispatch>> {
    let per = storage_bindings(gpu).saturating_sub(2).clamp(1, MAX_SLOTS);
    let mut out = Vec::new();
    for batch in grads.chunks(per) {
        let sizes: Vec<(usize, usize)> = batch.iter().map(|&(n, _)| (n, 0)).collect();
        let (table, chunks) = chunk_table(gpu, "finite check", &sizes)?;
        let (constants, grid) = chunk_launch(gpu, "finite check", chunks)?;
        let pipeline = gpu.pipeline(check_shader(batch.len()), &constants)?;
        let mut buffers: Vec<&wgpu::Buffer> = vec![scaler, &table];
        buffers.extend(batch.iter().map(|&(_, b)| b));
        let numel: usize = batch.iter().map(|&(n, _)| n).sum();
        out.push(Dispatch::new(gpu, pipeline, &[], &buffers, grid)?.moving(4 * numel));
    }
    Ok(out)
}

/// The scale's move after a step (GradScaler's `update`): on a found inf or NaN, scale x
/// backoff and the tracker to 0; else one more update applied and one more clean step, and
/// after `growth interval` of them scale x growth (where that stays finite) and the tracker to
/// 0. The flag is cleared for the next step.
pub fn update_scale(gpu: &Gpu, scaler: &wgpu::Buffer) -> Result<Dispatch> {
    let pipeline = gpu.pipeline(&UPDATE_SCALE, &[])?;
    Ok(Dispatch::new(gpu, pipeline, &[], &[scaler], [1, 1, 1])?.moving(2 * 4 * STATE_LEN))
}

static UPDATE_SCALE: Shader = Shader {
    name: "loss_scale_update",
    source: "// The loss scaler's move after a step: `kernels::loss_scale::update_scale`.
@group(0) @binding(0) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(1)
fn main() {
    if (s[2] != 0.0) {
        s[0] = s[0] * s[5];
        s[1] = 0.0;
    } else {
        s[3] = s[3] + 1.0;
        let clean = s[1] + 1.0;
        if (clean >= s[6]) {
            let grown = s[0] * s[4];
            // finite: below f32's largest value (an infinity fails the test)
            if (abs(grown) <= 3.4028234e38) {
                s[0] = grown;
            }
            s[1] = 0.0;
        } else {
            s[1] = clean;
        }
    }
    s[2] = 0.0;
}
",
    bindings: &[Binding::ReadWrite],
    trusted: false,
};

/// The finite check for `slots` gradients, generated once per slot count and kept for the life
/// of the process.
fn check_shader(slots: usize) -> &'static Shader {
    static BUILT: OnceLock<Mutex<HashMap<usize, &'static Shader>>> = OnceLock::new();
    let mut built = crate::device::lock(BUILT.get_or_init(Default::default));
    built.entry(slots).or_insert_with(|| {
        let mut bindings = vec![Binding::ReadWrite, Binding::Read];
        bindings.extend(std::iter::repeat_n(Binding::Read, slots));
        Box::leak(Box::new(Shader {
            name: Box::leak(format!("loss_scale_check{slots}").into_boxed_str()),
            source: Box::leak(check_source(slots).into_boxed_str()),
            bindings: Box::leak(bindings.into_boxed_slice()),
            trusted: false,
        }))
    })
}

/// The WGSL of `check_shader`: the chunk table of the optimizer's updates; a lane's values are
/// tested on their bits (exponent all ones: an infinity or a NaN), which no fast-math folding
/// can drop, and a lane that found one raises the flag (1.0's bits, so the f32 readers see 1).
fn check_source(slots: usize) -> String {
    let mut decl = String::new();
    let mut cases = String::new();
    for s in 0..slots {
        decl += &format!(
            "@group(0) @binding({}) var<storage, read> grad{s}: array<u32>;\n",
            2 + s
        );
        cases += &format!(
            "        case {s}u: {{\n            for (var k = 0u; k < PER_LANE; k++) {{\n                let i = start + k * WG + lid;\n                if (i < end && (grad{s}[i] & 0x7f800000u) == 0x7f800000u) {{\n                    bad = true;\n                }}\n            }}\n        }}\n"
        );
    }
    format!(
        "// The finite check of {slots} gradients, generated by kernels::loss_scale::check_source.\n\
         {chunks}\
         @group(0) @binding(0) var<storage, read_write> scaler: array<atomic<u32>>;\n\
         {decl}\n\
         @compute @workgroup_size(WG)\n\
         fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,\n\
         \x20       @builtin(local_invocation_index) lid: u32) {{\n\
         \x20   let c = wid.x + wid.y * nwg.x;\n\
         \x20   if (c >= table[0]) {{\n\
         \x20       return;\n\
         \x20   }}\n\
         \x20   let slot = chunk_slot(c);\n\
         \x20   let start = chunk_start(c);\n\
         \x20   let end = chunk_end(c);\n\
         \x20   var bad = false;\n\
         \x20   switch slot {{\n\
         {cases}\
         \x20       default: {{}}\n\
         \x20   }}\n\
         \x20   if (bad) {{\n\
         \x20       atomicStore(&scaler[2], 0x3f800000u);\n\
         \x20   }}\n\
         }}\n",
        chunks = chunk_wgsl(slots),
    )
}
