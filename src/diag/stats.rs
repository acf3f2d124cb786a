//! What the activation statistics hold: per training batch and watched layer, the mean, the
//! standard deviation, the fraction near zero and a histogram (act_stats kernels).

/// Which statistics to gather: a histogram of `bins` bins over [0, hi) and "near zero" meaning
/// |x| <= near. The defaults follow fastai's ActivationStats (40 bins over [0, 10)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsConfig {
    pub bins: usize,
    pub hi: f32,
    pub near: f32,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            bins: 40,
            hi: 10.0,
            near: 0.05,
        }
    }
}

/// One record per training batch: for each watched layer (`names`, model order),
/// [mean, std, near_zero, histogram (bins)].
#[derive(Clone, Debug, Default)]
pub struct ActivationStats {
    pub config: StatsConfig,
    pub names: Vec<String>,
    pub batches: Vec<Vec<Vec<f32>>>,
}

impl ActivationStats {
    pub fn new(config: StatsConfig) -> ActivationStats {
        ActivationStats {
            config,
            names: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// The series of statistic `which` (0 mean, 1 std, 2 near zero) of layer `layer`.
    pub fn series(&self, layer: usize, which: usize) -> Vec<f32> {
        self.batches.iter().map(|b| b[layer][which]).collect()
    }

    /// The histogram of layer `layer` at each batch.
    pub fn histograms(&self, layer: usize) -> Vec<&[f32]> {
        self.batches.iter().map(|b| &b[layer][3..]).collect()
    }

    /// As JSON: config, names, and per layer the mean/std/near-zero series.
    pub fn to_json(&self) -> String {
        let series = |l: usize, w: usize| {
            let v: Vec<String> = self.series(l, w).iter().map(|x| format!("{x}")).collect();
            format!("[{}]", v.join(","))
        };
        let layers: Vec<String> = (0..self.names.len())
            .map(|l| {
                format!(
                    "{{\"name\":{:?},\"mean\":{},\"std\":{},\"near_zero\":{}}}",
                    self.names[l],
                    series(l, 0),
                    series(l, 1),
                    series(l, 2)
                )
            })
            .collect();
        format!(
            "{{\"bins\":{},\"hi\":{},\"near\":{},\"layers\":[{}]}}",
            self.config.bins,
            self.config.hi,
            self.config.near,
            layers.join(",")
        )
    }
}
