//! Training checkpoints: every tensor of the parameter store (weights with torchvision names,
//! batch-norm running statistics and counters, optimizer state as `<param>.momentum_buffer` /
//! `.exp_avg` / `.exp_avg_sq`) in one safetensors file, with the training position in its header
//! metadata. Written atomically (temporary file, fsync, rename): a crash mid-write leaves the
//! previous checkpoint intact.

use crate::error::{Error, Result};
use crate::io::safetensors::{parse_metadata, parse_safetensors, reject_non_finite, HostTensor};
#[cfg(not(target_arch = "wasm32"))]
use crate::{
    device::Gpu,
    exec::ParamStore,
    io::safetensors::{encode_safetensors_with, store_from_host},
};
use std::collections::{BTreeMap, HashMap};
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

const FORMAT: &str = "convoy-checkpoint-1";

/// Where training stood when a checkpoint was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken (the schedule position and AdamW's bias correction).
    pub step: u64,
    /// Epochs of the schedule the run follows (1cycle is laid out over all of them).
    pub epochs_total: usize,
    pub model: String,
    pub seed: u64,
}

impl CheckpointInfo {
    /// The header metadata a checkpoint carries (as `parse_checkpoint` reads it back).
    pub fn to_metadata(&self) -> HashMap<String, String> {
        HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("epoch".to_string(), self.epoch.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("epochs_total".to_string(), self.epochs_total.to_string()),
            ("model".to_string(), self.model.clone()),
            ("seed".to_string(), self.seed.to_string()),
        ])
    }

    fn from_metadata(m: &HashMap<String, String>, path: &str) -> Result<CheckpointInfo> {
        if m.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(Error::format(
                path,
                format!("not a convoy checkpoint (header metadata 'format' is not '{FORMAT}'); to start from plain weights, load them as a model instead"),
            ));
        }
        let field = |k: &str| {
            m.get(k)
                .ok_or_else(|| Error::format(path, format!("checkpoint metadata lacks '{k}'")))
        };
        let num = |k: &str| -> Result<u64> {
            let v = field(k)?;
            v.parse()
                .map_err(|_| Error::format(path, format!("checkpoint metadata '{k}' = '{v}' is not a whole number")))
        };
        let info = CheckpointInfo {
            epoch: num("epoch")? as usize,
            step: num("step")?,
            epochs_total: num("epochs_total")? as usize,
            model: field("model")?.clone(),
            seed: num("seed")?,
        };
        if info.epoch > info.epochs_total {
            return Err(Error::format(
                path,
                format!(
                    "checkpoint epoch {} is past its schedule of {} epochs",
                    info.epoch, info.epochs_total
                ),
            ));
        }
        Ok(info)
    }
}

/// Write every tensor and counter of `store` with `info` to `path`, atomically.
#[cfg(not(target_arch = "wasm32"))]
pub fn save_checkpoint(path: impl AsRef<Path>, store: &ParamStore, info: &CheckpointInfo) -> Result<()> {
    let tensors = crate::io::safetensors::store_to_host(store, None)?;
    crate::io::write_file(path, &encode_safetensors_with(&tensors, Some(info.to_metadata()))?)
}

/// Parse checkpoint bytes (untrusted): the tensors on the host and where training stood;
/// `name` labels errors. Non-finite values are refused: a checkpoint is written only after a
/// finite epoch, so NaN or Inf in one means it was damaged or is not what it claims.
pub fn parse_checkpoint(bytes: &[u8], name: &str) -> Result<(BTreeMap<String, HostTensor>, CheckpointInfo)> {
    let info = CheckpointInfo::from_metadata(&parse_metadata(bytes, name)?, name)?;
    let tensors = parse_safetensors(bytes, name)?;
    reject_non_finite(&tensors, name)?;
    Ok((tensors, info))
}

/// Read a checkpoint into a new store, with where training stood.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_checkpoint(gpu: &Gpu, path: impl AsRef<Path>) -> Result<(ParamStore, CheckpointInfo)> {
    let path = path.as_ref();
    let bytes = crate::io::read_file(path)?;
    let (tensors, info) = parse_checkpoint(&bytes, &path.display().to_string())?;
    Ok((store_from_host(gpu, tensors)?, info))
}
