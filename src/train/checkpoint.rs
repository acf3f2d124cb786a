//! Training checkpoints: every tensor of the parameter store (weights with torchvision names,
//! batch-norm running statistics and counters, optimizer state as `<param>.momentum_buffer` /
//! `.exp_avg` / `.exp_avg_sq`) in one safetensors file, with the training position in its header
//! metadata. Written atomically (temporary file, fsync, rename): a crash mid-write leaves the
//! previous checkpoint intact.

use super::EpochStats;
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
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken (the schedule position and AdamW's bias correction).
    pub step: u64,
    /// Epochs of the schedule the run follows (1cycle is laid out over all of them).
    pub epochs_total: usize,
    pub model: String,
    pub seed: u64,
    /// The metrics of every epoch so far, so that a resumed run's metrics.json has the whole
    /// run (empty in checkpoints written before convoy kept it).
    pub history: Vec<EpochStats>,
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
            ("history".to_string(), history_text(&self.history)),
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
            history: match m.get("history") {
                Some(h) => parse_history(h, path)?,
                None => Vec::new(),
            },
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

/// The epoch history as header text: an epoch per `;`, its fields (epoch, train loss, valid
/// loss, top-1, top-5, seconds, images/s) separated by `,`; Rust's float text reads back exactly.
fn history_text(h: &[EpochStats]) -> String {
    let epochs: Vec<String> = h
        .iter()
        .map(|s| {
            format!(
                "{},{},{},{},{},{},{}",
                s.epoch, s.train_loss, s.valid_loss, s.top1, s.top5, s.seconds, s.images_per_sec
            )
        })
        .collect();
    epochs.join(";")
}

fn parse_history(text: &str, path: &str) -> Result<Vec<EpochStats>> {
    let bad = |what: &str| Error::format(path, format!("checkpoint metadata 'history': {what}"));
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(';')
        .map(|e| {
            let f: Vec<&str> = e.split(',').collect();
            let [epoch, train_loss, valid_loss, top1, top5, seconds, ips] = f[..] else {
                return Err(bad(&format!("'{e}' has {} fields, not 7", f.len())));
            };
            let f32_of = |v: &str| v.parse::<f32>().map_err(|_| bad(&format!("'{v}' is not a number")));
            let f64_of = |v: &str| v.parse::<f64>().map_err(|_| bad(&format!("'{v}' is not a number")));
            Ok(EpochStats {
                epoch: epoch
                    .parse()
                    .map_err(|_| bad(&format!("epoch '{epoch}' is not a whole number")))?,
                train_loss: f32_of(train_loss)?,
                valid_loss: f32_of(valid_loss)?,
                top1: f32_of(top1)?,
                top5: f32_of(top5)?,
                seconds: f64_of(seconds)?,
                images_per_sec: f64_of(ips)?,
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn info(history: Vec<EpochStats>) -> CheckpointInfo {
        CheckpointInfo {
            epoch: history.len(),
            step: 17,
            epochs_total: 4,
            model: "xresnet18".into(),
            seed: 3,
            history,
        }
    }

    #[test]
    fn history_reads_back_exactly() {
        let e = |epoch, x: f32| EpochStats {
            epoch,
            train_loss: x,
            valid_loss: x / 3.0,
            top1: 0.9265,
            top5: 1.0 - x / 7.0,
            seconds: 1586.452 * x as f64,
            images_per_sec: 37.8 / x as f64,
        };
        for h in [
            vec![],
            vec![e(1, 0.927_454_2)],
            vec![e(1, 0.1), e(2, std::f32::consts::PI)],
        ] {
            let i = info(h);
            assert_eq!(CheckpointInfo::from_metadata(&i.to_metadata(), "c").unwrap(), i);
        }
        // checkpoints from before the history was kept still load
        let mut m = info(vec![]).to_metadata();
        m.remove("history");
        assert!(CheckpointInfo::from_metadata(&m, "c").unwrap().history.is_empty());
    }

    #[test]
    fn a_broken_history_is_a_clear_error() {
        for bad in [
            "1,2,3",
            "1,0.5,0.4,0.9,0.99,10,5;x,0.5,0.4,0.9,0.99,10,5",
            "1,0.5,0.4,nine,0.99,10,5",
            ";",
        ] {
            let mut m = info(vec![]).to_metadata();
            m.insert("history".into(), bad.into());
            let e = CheckpointInfo::from_metadata(&m, "ckpt.safetensors")
                .unwrap_err()
                .to_string();
            assert!(e.contains("ckpt.safetensors") && e.contains("'history'"), "{bad}: {e}");
        }
    }
}
