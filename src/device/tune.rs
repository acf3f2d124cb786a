//! The kernel tuner's memory: which tile configuration won for a kernel and shape on this
//! adapter. Kernel launchers (`kernels/`) ask it before they pick a configuration; when tuning is
//! on and the shape is new, they time the candidates and record the winner here.
//!
//! Tuning is on by default on GPUs and off on CPU drivers (`KernelPolicy::tune_by_default`;
//! `CONVOY_TUNE=1|0` or `GpuBuilder::tune` decide otherwise): on a GPU the tile moves a kernel by
//! integer factors and timing a candidate with timestamp queries costs microseconds, while on a
//! CPU driver timing a dozen candidates per shape costs seconds and the default tiles are the
//! measured best there. The choices persist in a small text file
//! (`CONVOY_TUNE_CACHE`, else `$XDG_CACHE_HOME/convoy/tune.tsv`, else `~/.cache/convoy/tune.tsv`),
//! one line per choice: adapter, kernel and shape key, then the configuration's numbers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// What tuning has cost this process so far: shapes tuned, candidates timed, timed runs of
/// them (warm-ups included) and the wall time spent building and timing them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TuneCost {
    pub shapes: usize,
    pub candidates: usize,
    pub runs: usize,
    pub seconds: f64,
}

pub struct Tuner {
    /// The adapter part of every key (name, backend, driver): a choice made on one device is
    /// never reused on another.
    adapter: String,
    path: Option<PathBuf>,
    choices: Mutex<HashMap<String, Vec<usize>>>,
    cost: Mutex<TuneCost>,
}

impl Tuner {
    /// A tuner for `adapter`, loading earlier choices from the cache file (a missing or unreadable
    /// file starts empty: the cache only saves time, it never decides correctness).
    pub(crate) fn new(adapter: String, path: Option<PathBuf>) -> Tuner {
        let mut choices = HashMap::new();
        if let Some(text) = path.as_ref().and_then(|p| crate::io::read_file(p).ok()) {
            for line in String::from_utf8_lossy(&text).lines() {
                let mut parts = line.split('\t');
                let (Some(a), Some(key), Some(vals)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                let vals: Option<Vec<usize>> = vals.split(' ').map(|v| v.parse().ok()).collect();
                if let (true, Some(vals)) = (a == adapter, vals) {
                    choices.insert(key.to_string(), vals);
                }
            }
        }
        Tuner {
            adapter,
            path,
            choices: Mutex::new(choices),
            cost: Mutex::default(),
        }
    }

    /// The default cache file, from the environment.
    pub(crate) fn default_path() -> Option<PathBuf> {
        if cfg!(target_arch = "wasm32") {
            return None;
        }
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        env("CONVOY_TUNE_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("convoy/tune.tsv")))
            .or_else(|| env("HOME").map(|d| d.join(".cache/convoy/tune.tsv")))
    }

    /// What tuning has cost this process so far.
    pub fn cost(&self) -> TuneCost {
        *crate::device::lock(&self.cost)
    }

    /// Count one tuned shape: `candidates` timed in `runs` runs all told, in `seconds`.
    pub(crate) fn add_cost(&self, candidates: usize, runs: usize, seconds: f64) {
        let mut c = crate::device::lock(&self.cost);
        c.shapes += 1;
        c.candidates += candidates;
        c.runs += runs;
        c.seconds += seconds;
    }

    /// The recorded choice for `key` (kernel name and shape), if any.
    pub fn get(&self, key: &str) -> Option<Vec<usize>> {
        crate::device::lock(&self.choices).get(key).cloned()
    }

    /// Record a choice and rewrite the cache file (atomically; a failed write is reported on
    /// stderr and otherwise ignored, since the choice still holds for this process).
    pub fn set(&self, key: &str, vals: Vec<usize>) {
        let mut choices = crate::device::lock(&self.choices);
        choices.insert(key.to_string(), vals);
        let Some(path) = &self.path else { return };
        // keep other adapters' lines from the existing file
        let mut lines: Vec<String> = crate::io::read_file(path)
            .map(|t| String::from_utf8_lossy(&t).lines().map(str::to_string).collect())
            .unwrap_or_default();
        lines.retain(|l| !l.starts_with(&format!("{}\t", self.adapter)));
        let mut mine: Vec<String> = choices
            .iter()
            .map(|(k, v)| {
                let v: Vec<String> = v.iter().map(usize::to_string).collect();
                format!("{}\t{k}\t{}", self.adapter, v.join(" "))
            })
            .collect();
        mine.sort();
        lines.extend(mine);
        if let Err(e) = crate::io::write_file(path, (lines.join("\n") + "\n").as_bytes()) {
            eprintln!("convoy: could not save tuning choices: {e}");
        }
    }
}
