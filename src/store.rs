//! `ParamStore`: the resident tensors of a model by name (parameters, batch-norm running
//! statistics, optimizer state), shared by compiled plans, which update them in place. Below exec,
//! nn and io, which all hold one: models initialise it, files load it, plans run on it.

use crate::device::Gpu;
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Integer buffers kept on the host, such as batch norm's `num_batches_tracked`, shared by the
/// plans that advance them.
pub type Counters = Arc<Mutex<BTreeMap<String, i64>>>;

#[derive(Clone, Default, Debug)]
pub struct ParamStore {
    tensors: BTreeMap<String, Tensor>,
    counters: Counters,
    /// Bumped whenever the parameters change (each training step, `touch`), so plans that
    /// derive values from them (folded batch norms) know to recompute.
    version: Arc<AtomicU64>,
}

impl ParamStore {
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) {
        self.tensors.insert(name.into(), t);
        self.touch();
    }

    /// Say that parameters changed outside a training step (after writing into a tensor).
    pub fn touch(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn version(&self) -> Arc<AtomicU64> {
        self.version.clone()
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        self.tensors.remove(name)
    }

    /// The tensor called `name`, which must have `shape`; a clear error if absent or mis-shaped.
    pub fn expect(&self, name: &str, shape: &Shape) -> Result<&Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| Error::Arg {
            op: "parameter store".into(),
            arg: name.into(),
            reason: "missing: the model needs this tensor".into(),
        })?;
        if t.shape() != shape {
            return Err(Error::shape(format!("parameter '{name}'"), shape, t.shape()));
        }
        Ok(t)
    }

    /// The tensor called `name`, created zero-filled with `shape` if absent (optimizer state).
    pub fn get_or_zeros(&mut self, gpu: &Gpu, name: &str, shape: &Shape) -> Result<&Tensor> {
        if !self.tensors.contains_key(name) {
            self.tensors
                .insert(name.to_string(), Tensor::zeros(gpu, shape.clone())?);
        }
        self.expect(name, shape)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }

    /// Integer buffers (`num_batches_tracked`), shared with every plan compiled on this store.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn counter(&self, name: &str) -> Option<i64> {
        crate::device::lock(&self.counters).get(name).copied()
    }

    pub fn set_counter(&self, name: impl Into<String>, v: i64) {
        crate::device::lock(&self.counters).insert(name.into(), v);
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}
